#include "bench/support/roofline.hpp"

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <vector>

#include "kernels/probes.hpp"

namespace brise {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Keeps results alive so the measured loops cannot be optimised away.
volatile float g_sink;

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float, FreeDeleter>;

// A 2 MiB-aligned buffer of `bytes` (a multiple of 2 MiB), or null.
Buffer allocate(size_t bytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  Buffer buf(static_cast<float*>(std::aligned_alloc(kHuge, bytes)));
#ifdef MADV_HUGEPAGE
  if (buf) madvise(buf.get(), bytes, MADV_HUGEPAGE);  // fewer TLB misses; a hint only
#endif
  return buf;
}

}  // namespace

double measure_region_read_gbs(std::span<const std::span<const std::byte>> regions, int threads,
                               int passes) {
  threads = std::max(threads, 1);
  constexpr size_t kPiece = size_t{16} << 20;
  std::vector<std::span<const std::byte>> pieces;
  size_t total = 0;
  for (const auto& r : regions) {
    for (size_t off = 0; off < r.size(); off += kPiece)
      pieces.push_back(r.subspan(off, std::min(kPiece, r.size() - off)));
    total += r.size();
  }
  if (total == 0) return 0.0;
  double best = 0.0;
  for (int pass = 0; pass < passes; ++pass) {
    float sum = 0.0f;
    const double t0 = now_seconds();
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) reduction(+ : sum)
    for (size_t i = 0; i < pieces.size(); ++i) {
      const std::byte* p = pieces[i].data();
      const size_t n = pieces[i].size(), floats = n / sizeof(float);
      float s = kernels::sum_floats(reinterpret_cast<const float*>(p), floats);
      for (size_t off = floats * sizeof(float); off < n; ++off)
        s += static_cast<float>(std::to_integer<int>(p[off]));
      sum += s;
    }
    const double dt = now_seconds() - t0;
    g_sink = sum;
    best = std::max(best, static_cast<double>(total) / dt / 1e9);
  }
  return best;
}

double measure_read_bandwidth_gbs(int threads) {
  threads = std::max(threads, 1);
  // 512 MiB is 16x a 32 MiB L3 (what one core of current x86 server parts sees) and takes
  // ~1.4 s to fault in on a VM with slow page faults; fall back to less if memory is short.
  size_t bytes = size_t{512} << 20;
  Buffer buf = allocate(bytes);
  while (!buf && bytes > (size_t{64} << 20)) buf = allocate(bytes /= 2);
  if (!buf) return 0.0;
  float* data = buf.get();
  const size_t n = bytes / sizeof(float);
  // Each thread's part is a whole number of 64-byte lines, so loads stay aligned.
  const size_t part = (n / static_cast<size_t>(threads)) / 16 * 16;

  // First touch by the thread that will read the part (places pages near it on NUMA machines).
#pragma omp parallel num_threads(threads)
  {
    const size_t begin = part * static_cast<size_t>(omp_get_thread_num());
    std::fill(data + begin, data + begin + part, 1.0f);
  }

  // Many short passes, keeping the best: on a shared machine some pass runs undisturbed.
  double best = 0.0;
  constexpr int kPasses = 20;  // the first is a warm-up
  for (int pass = 0; pass < kPasses; ++pass) {
    float total = 0.0f;
    const double t0 = now_seconds();
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
      const size_t begin = part * static_cast<size_t>(omp_get_thread_num());
      total += kernels::sum_floats(data + begin, part);
    }
    const double dt = now_seconds() - t0;
    g_sink = total;
    const double gbs =
        static_cast<double>(part * static_cast<size_t>(threads) * sizeof(float)) / dt / 1e9;
    if (pass > 0) best = std::max(best, gbs);
  }
  return best;
}

namespace {

// The best rate (operations per second / 1e9) of `threads` threads running probe(iterations) at
// once, over many short runs (some run undisturbed on a shared machine; the first warms up).
template <class Probe>
double peak_rate(int threads, Probe probe) {
  threads = std::max(threads, 1);
  constexpr size_t kIters = size_t{1} << 17;
  constexpr int kRuns = 150;
  double best = 0.0;
  for (int run = 0; run < kRuns; ++run) {
    double ops = 0.0;
    const double t0 = now_seconds();
#pragma omp parallel num_threads(threads) reduction(+ : ops)
    ops += probe(kIters);
    const double dt = now_seconds() - t0;
    if (run > 0) best = std::max(best, ops / dt / 1e9);
  }
  return best;
}

}  // namespace

double measure_fma_peak_gflops(int threads) {
  volatile float vb = 0.9999999f;
  volatile float vc = 1e-7f;
  return peak_rate(threads, [&](size_t iterations) {
    float sink = 0.0f;
    const double flops = kernels::fma_peak_probe(iterations, vb, vc, &sink);
    g_sink = sink;
    return flops;
  });
}

double measure_int8_peak_gops(int threads) {
  return peak_rate(threads, [](size_t iterations) {
    int32_t sink = 0;
    const double ops = kernels::int8_peak_probe(iterations, &sink);
    g_sink = static_cast<float>(sink);
    return ops;
  });
}

}  // namespace brise
