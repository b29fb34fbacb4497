#include "engine/parallel_ops.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "engine/tensor_encoding.hpp"
#include "kernels/matmul.hpp"

namespace brise {

int team_size(size_t work, int threads) {
  constexpr size_t kMinWorkPerThread = size_t{1} << 16;
  return static_cast<int>(std::clamp<size_t>(work / kMinWorkPerThread, 1, std::max(threads, 1)));
}

void parallel_matmul(const WeightView& w, const float* x, size_t n_tokens, float* y, int threads) {
  const kernels::WeightMatrix m{w.data, w.type, w.rows, w.cols, w.row_bytes};
  const size_t align = kernels::kMatmulRowAlign;
  const size_t blocks = (w.rows + align - 1) / align;
  const int team =
      std::min(team_size(n_tokens * w.rows * w.cols, threads), static_cast<int>(blocks));
  if (team <= 1) {
    kernels::matmul(m, x, w.cols, n_tokens, y, w.rows, 0, w.rows);
    return;
  }
#pragma omp parallel num_threads(team)
  {
    const size_t t = static_cast<size_t>(omp_get_thread_num());
    const size_t nt = static_cast<size_t>(omp_get_num_threads());
    const size_t begin = std::min<size_t>(w.rows, blocks * t / nt * align);
    const size_t end = std::min<size_t>(w.rows, blocks * (t + 1) / nt * align);
    if (begin < end) kernels::matmul(m, x, w.cols, n_tokens, y, w.rows, begin, end);
  }
}

void embedding_row(const WeightView& e, int32_t token, float* out) {
  decode_row(e.type,
             static_cast<const std::byte*>(e.data) + static_cast<size_t>(token) * e.row_bytes, out,
             e.cols);
}

}  // namespace brise
