#include "engine/roofline.hpp"

#include <omp.h>
#include <sys/mman.h>

#include "kernels/simd.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <vector>

namespace brise {
namespace {

using Batch = xsimd::batch<float>;
constexpr size_t kLanes = Batch::size;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One fused multiply-add instruction (xsimd 8.1's AVX-512 fma relies on compiler contraction).
Batch fmadd(Batch a, Batch b, Batch c) {
#if defined(__AVX512F__)
  static_assert(kLanes == 16);
  return _mm512_fmadd_ps(a, b, c);
#elif defined(__AVX2__) && defined(__FMA__)
  static_assert(kLanes == 8);
  return _mm256_fmadd_ps(a, b, c);
#else
  return xsimd::fma(a, b, c);
#endif
}

// Keeps results alive so the measured loops cannot be optimised away.
volatile float g_sink;

// Unaligned loads: they cost nothing extra on aligned data, and mapped weights are aligned to
// GGUF's 32 bytes, not to a 64-byte batch.
float sum_range(const float* p, size_t n) {
  // Eight independent accumulators hide the add latency; the loop is load-bound.
  constexpr size_t kAcc = 8;
  Batch acc[kAcc];
  for (auto& a : acc) a = Batch(0.0f);
  size_t i = 0;
  for (; i + kAcc * kLanes <= n; i += kAcc * kLanes)
    for (size_t j = 0; j < kAcc; ++j) acc[j] += Batch::load_unaligned(p + i + j * kLanes);
  float s = 0.0f;
  for (; i < n; ++i) s += p[i];
  for (auto& a : acc) s += xsimd::hadd(a);
  return s;
}

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
      float s = sum_range(reinterpret_cast<const float*>(p), floats);
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
  // Each thread's part is a whole number of batches, so loads stay aligned.
  const size_t part = (n / static_cast<size_t>(threads)) / kLanes * kLanes;

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
      total += sum_range(data + begin, part);
    }
    const double dt = now_seconds() - t0;
    g_sink = total;
    const double gbs =
        static_cast<double>(part * static_cast<size_t>(threads) * sizeof(float)) / dt / 1e9;
    if (pass > 0) best = std::max(best, gbs);
  }
  return best;
}

double measure_fma_peak_gflops(int threads) {
  threads = std::max(threads, 1);
  // Enough independent chains to cover FMA latency x FMA ports on current x86 cores.
  constexpr size_t kChains = 16;
  constexpr size_t kIters = size_t{1} << 19;  // ~1.3 ms per run at 200 GFLOP/s per core
  volatile float vb = 0.9999999f;
  volatile float vc = 1e-7f;

  double best = 0.0;
  // Many short runs, keeping the best (some run undisturbed on a shared machine); the first
  // warms up the clock.
  constexpr int kRuns = 150;
  for (int run = 0; run < kRuns; ++run) {
    float sink = 0.0f;
    const double t0 = now_seconds();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      const Batch b(static_cast<float>(vb));
      const Batch c(static_cast<float>(vc));
      Batch acc[kChains];
      for (size_t j = 0; j < kChains; ++j) acc[j] = Batch(static_cast<float>(j));
      for (size_t i = 0; i < kIters; ++i)
        for (size_t j = 0; j < kChains; ++j) acc[j] = fmadd(acc[j], b, c);
      for (auto& a : acc) sink += xsimd::hadd(a);
    }
    g_sink = sink;
    const double dt = now_seconds() - t0;
    const double flops =
        2.0 * static_cast<double>(kLanes * kChains * kIters) * static_cast<double>(threads);
    if (run > 0) best = std::max(best, flops / dt / 1e9);
  }
  return best;
}

}  // namespace brise
