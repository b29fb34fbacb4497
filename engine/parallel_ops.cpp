#include "engine/parallel_ops.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "kernels/fp16.hpp"
#include "kernels/matmul.hpp"
#include "kernels/quantize.hpp"

namespace brise {

int team_size(size_t work, int threads) {
  constexpr size_t kMinWorkPerThread = size_t{1} << 16;
  return static_cast<int>(std::clamp<size_t>(work / kMinWorkPerThread, 1, std::max(threads, 1)));
}

void parallel_matmul(const WeightView& w, const float* x, size_t n_tokens, float* y, int threads) {
  const kernels::WeightMatrix m{w.data, w.type, w.rows, w.cols, w.row_bytes};
  const size_t align = kernels::kMatmulRowAlign;
  const size_t blocks = (w.rows + align - 1) / align;
  const int team = std::min(team_size(n_tokens * w.rows * w.cols, threads), static_cast<int>(blocks));
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
  const std::byte* row =
      static_cast<const std::byte*>(e.data) + static_cast<size_t>(token) * e.row_bytes;
  switch (e.type) {
    case TensorType::F32:
      std::memcpy(out, row, size_t{e.cols} * 4);
      return;
    case TensorType::F16:
      kernels::convert_f16_to_f32(reinterpret_cast<const uint16_t*>(row), out, e.cols);
      return;
    case TensorType::BF16:
      kernels::convert_bf16_to_f32(reinterpret_cast<const uint16_t*>(row), out, e.cols);
      return;
    case TensorType::Q8_0:
      kernels::dequantize_row_q8_0(reinterpret_cast<const kernels::BlockQ8_0*>(row), out, e.cols);
      return;
    case TensorType::Q4_0:
      kernels::dequantize_row_q4_0(reinterpret_cast<const kernels::BlockQ4_0*>(row), out, e.cols);
      return;
  }
}

}  // namespace brise
