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

namespace {

// Rows per block of a matrix: about kBlockBytes of weights, so a block streams long enough to
// amortise taking it (and the cold start of its rows), in multiples of the kernel's row tile.
size_t block_rows(const WeightView& w) {
  constexpr size_t kBlockBytes = size_t{512} << 10;
  const size_t align = kernels::kMatmulRowAlign;
  const size_t rows = std::max<size_t>(1, kBlockBytes / std::max<size_t>(w.row_bytes, 1));
  return std::max(align, rows / align * align);
}

size_t block_count(const WeightView& w) {
  return (w.rows + block_rows(w) - 1) / block_rows(w);
}

void matmul_rows(const MatmulOutput& o, const float* x, size_t n_tokens, size_t begin, size_t end) {
  const kernels::WeightMatrix m{o.w.data, o.w.type, o.w.rows, o.w.cols, o.w.row_bytes};
  kernels::matmul(m, x, o.w.cols, n_tokens, o.y, o.w.rows, begin, end);
}

}  // namespace

void parallel_matmuls(std::initializer_list<MatmulOutput> outputs, const float* x, size_t n_tokens,
                      int threads) {
  size_t work = 0, blocks = 0;
  for (const auto& o : outputs) {
    work += n_tokens * o.w.rows * o.w.cols;
    blocks += block_count(o.w);
  }
  const int team = std::min(team_size(work, threads), static_cast<int>(blocks));
  if (team <= 1) {
    for (const auto& o : outputs) matmul_rows(o, x, n_tokens, 0, o.w.rows);
    return;
  }
#pragma omp parallel for schedule(dynamic, 1) num_threads(team)
  for (size_t b = 0; b < blocks; ++b) {
    size_t first = b;  // the block's index within its matrix
    for (const auto& o : outputs) {
      const size_t count = block_count(o.w);
      if (first < count) {
        const size_t rows = block_rows(o.w);
        matmul_rows(o, x, n_tokens, first * rows, std::min<size_t>(o.w.rows, (first + 1) * rows));
        break;
      }
      first -= count;
    }
  }
}

void embedding_row(const WeightView& e, int32_t token, float* out) {
  decode_row(e.type,
             static_cast<const std::byte*>(e.data) + static_cast<size_t>(token) * e.row_bytes, out,
             e.cols);
}

}  // namespace brise
