#include "engine/runtime/parallel_ops.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "kernels/matmul.hpp"

namespace brise {

int team_size(size_t work, int threads) {
  constexpr size_t kMinWorkPerThread = size_t{1} << 16;
  return static_cast<int>(std::clamp<size_t>(work / kMinWorkPerThread, 1, std::max(threads, 1)));
}

namespace {

// The rows of all the outputs, one after the other, in units of the kernel's row alignment.
size_t units_of(const MatmulOutput& o) {
  return (o.w.rows + kernels::kMatmulRowAlign - 1) / kernels::kMatmulRowAlign;
}

// Units [begin, end) of the concatenated outputs, matrix by matrix.
void matmul_units(std::span<const MatmulOutput> outputs,
                  std::span<const kernels::MatmulKernel> chosen, const kernels::MatmulInput& x,
                  size_t begin, size_t end) {
  const size_t align = kernels::kMatmulRowAlign;
  size_t first = 0;  // the current output's first unit
  for (size_t i = 0; i < outputs.size(); ++i) {
    const MatmulOutput& o = outputs[i];
    const size_t units = units_of(o);
    const size_t b = std::max(begin, first), e = std::min(end, first + units);
    if (b < e)
      chosen[i](o.w, x, o.y, o.w.rows, (b - first) * align,
                std::min<size_t>(o.w.rows, (e - first) * align));
    first += units;
  }
}

}  // namespace

void team_matmuls(std::span<const MatmulOutput> outputs,
                  std::span<const kernels::MatmulKernel> chosen, const kernels::MatmulInput& x,
                  std::atomic<size_t>& next) {
  size_t units = 0, unit_bytes = 0;
  for (const auto& o : outputs) {
    units += units_of(o);
    unit_bytes = std::max<size_t>(unit_bytes, o.w.row_bytes * kernels::kMatmulRowAlign);
  }
  // Guided self-scheduling: a thread takes a share of what is left (half of it divided among the
  // team, but at least ~256 KiB of weights), so the first pieces are long contiguous runs that
  // stream well, and the last are short enough to even out threads that fell behind.
  constexpr size_t kMinPieceBytes = size_t{256} << 10;
  const size_t min_take = std::max<size_t>(1, kMinPieceBytes / std::max<size_t>(unit_bytes, 1));
  const size_t divisor = 2 * static_cast<size_t>(omp_get_num_threads());
  for (;;) {
    size_t begin = next.load(std::memory_order_relaxed), take = 0;
    do {
      if (begin >= units) return;
      take = std::min(units - begin, std::max(min_take, (units - begin) / divisor));
    } while (!next.compare_exchange_weak(begin, begin + take, std::memory_order_relaxed));
    matmul_units(outputs, chosen, x, begin, begin + take);
  }
}

void parallel_matmuls(std::span<const MatmulOutput> outputs,
                      std::span<const kernels::MatmulKernel> chosen, const kernels::MatmulInput& x,
                      int threads) {
  size_t work = 0, units = 0;
  for (const auto& o : outputs) {
    work += x.n_tokens * o.w.rows * o.w.cols;
    units += units_of(o);
  }
  const int team = std::min(team_size(work, threads), static_cast<int>(units));
  std::atomic<size_t> next{0};
#pragma omp parallel num_threads(std::max(team, 1))
  team_matmuls(outputs, chosen, x, next);
}

void embedding_row(const kernels::WeightMatrix& e, int32_t token, float* out) {
  kernels::decode_row(
      *e.type, static_cast<const std::byte*>(e.data) + static_cast<size_t>(token) * e.row_bytes,
      out, e.cols);
}

}  // namespace brise
