// matmul on Mistral-7B shapes for every kernel set this CPU runs x every type of the registry
// (quantized types on both paths: int8 activations, and exact f32 ones) x 1, 8, 64, 512 tokens x
// 1 or 2 threads, through parallel_matmuls, the same parallel split the forward pass uses; and
// Eigen's f32 product beside it.
//
// Names: matmul/SET/TYPE[/exact]/ROWSxCOLS/tokens:N/threads:T and eigen_f32/ROWSxCOLS/...
// Counters: GB/s = weight bytes read per second; GFLOP/s (int8 path: GOP/s, a multiply-add is 2);
// BW% and peak% = the fraction of the read bandwidth and of the FMA (or int8) peak measured in
// this process for that kernel set and thread count (bench/support/roofline_counters.hpp). The
// int8 path's time includes quantizing the activations (once per input, as in the forward pass).
// With up to 8 tokens the weights cycle through copies totalling >= 512 MiB, so every call
// streams them from DRAM as a decode step through a 7B model does.
//
//   build/bench/bench_matmul --benchmark_filter='matmul/avx512/q4_0/4096x4096'
//   build/bench/bench_matmul --benchmark_filter='threads:2' --benchmark_min_time=0.2
//       --benchmark_format=json > m.json   # then: bench/roofline_plot.sh m.json roofline.png
// First: it includes the intrinsics headers with GCC 12's false -Wmaybe-uninitialized muted,
// which Eigen's AVX-512 code would otherwise trigger.
#include "kernels/simd.hpp"

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/support/roofline_counters.hpp"
#include "engine/runtime/huge_pages.hpp"
#include "engine/runtime/parallel_ops.hpp"
#include "kernels/kernel_set.hpp"
#include "kernels/matmul.hpp"
#include "kernels/type_traits.hpp"

namespace {

using namespace brise::kernels;
using brise::bench::Peak;

struct Shape {
  size_t rows, cols;
};
// Mistral-7B: wq/wo, wk/wv, w1/w3, w2.
constexpr Shape kShapes[] = {{4096, 4096}, {1024, 4096}, {14336, 4096}, {4096, 14336}};
constexpr size_t kTokenCounts[] = {1, 8, 64, 512};
constexpr size_t kStreamFootprint = size_t{512} << 20;
constexpr size_t kMaxStreamedTokens = 8;

std::string shape_name(const Shape& s) {
  return std::to_string(s.rows) + "x" + std::to_string(s.cols);
}

// Fast deterministic pseudo-random floats in [-1, 1).
struct Rng {
  uint64_t s = 0x9E3779B97F4A7C15ull;
  float next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return static_cast<float>(static_cast<int32_t>(s >> 32)) * 0x1p-31f;
  }
};

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<uint8_t, FreeDeleter>;

// On 2 MiB pages from 2 MiB on, as the engine holds its matrices (engine/runtime/huge_pages.hpp):
// on 4 KiB pages a hardware prefetcher stops at every page, and the figures of a codec that reads
// its block out of order would understate the engine.
Buffer allocate(size_t bytes) {
  return Buffer(static_cast<uint8_t*>(brise::allocate_on_huge_pages(bytes)));
}

// `copies` copies of one random weight matrix, as the forward pass holds it (packed, but for the
// row-major types the kernel set in use multiplies as stored).
struct Weights {
  Buffer data;
  size_t copy_bytes = 0;
  size_t copies = 0;
  WeightMatrix matrix;  // copy 0
  WeightMatrix copy(size_t c) const {
    WeightMatrix m = matrix;
    m.data = data.get() + c * copy_bytes;
    return m;
  }
};

Weights make_weights(const TypeTraits& type, const Shape& s, size_t copies) {
  const size_t row_bytes = *brise::kernels::row_bytes(type, s.cols);
  WeightMatrix file{nullptr, &type, s.rows, s.cols, row_bytes, false};
  Buffer stored = allocate(s.rows * row_bytes);
  file.data = stored.get();
#pragma omp parallel for
  for (size_t r = 0; r < s.rows; ++r) {
    Rng rng;
    rng.s += r * 0x632BE59BD9B4E019ull;
    std::vector<float> row(s.cols);
    for (auto& v : row) v = rng.next();
    encode_row(type, row.data(), stored.get() + r * row_bytes, s.cols);
  }
  Weights w;
  w.matrix = file;
  w.matrix.packed = packs_rows(type);  // as the model loader does, for the set in use
  w.copy_bytes = ((w.matrix.packed ? packed_bytes(file) : file.bytes()) + 63) / 64 * 64;
  w.data = allocate(w.copy_bytes * copies);
  if (!w.matrix.packed)
    std::memcpy(w.data.get(), stored.get(), file.bytes());
  else
    pack_groups(file, w.data.get(), 0, (s.rows + kMatmulRowAlign - 1) / kMatmulRowAlign);
  w.copies = copies;
  w.matrix.data = w.data.get();
  for (size_t c = 1; c < copies; ++c)
    std::memcpy(w.data.get() + c * w.copy_bytes, w.data.get(), w.copy_bytes);
  return w;
}

std::vector<float> make_activations(size_t n) {
  Rng rng;
  std::vector<float> x(n);
  for (auto& v : x) v = rng.next();
  return x;
}

void bm_brise(benchmark::State& state, std::string set, const TypeTraits* type, bool exact, Shape s,
              size_t n_tokens, int threads) {
  use_kernel_set(set);
  const size_t bytes = s.rows * *row_bytes(*type, s.cols);
  const size_t copies =
      n_tokens <= kMaxStreamedTokens ? std::max<size_t>(1, kStreamFootprint / bytes) : 1;
  const Weights w = make_weights(*type, s, copies);
  const auto x = make_activations(n_tokens * s.cols);
  std::vector<float> y(n_tokens * s.rows);
  const bool int8 = type->quantized && !exact;
  ActivationFormats formats;  // none: the exact mode
  if (int8) formats.add(type->activation);
  QuantizedInput quantized;
  quantized.reserve(n_tokens, s.cols);
  brise::bench::machine_roofline(threads);
  size_t copy = 0;
  const brise::bench::LoopTimer timer;
  for (auto _ : state) {
    const MatmulInput input = quantized.quantize(x.data(), s.cols, n_tokens, s.cols, formats);
    brise::parallel_matmul(w.copy(copy), input, y.data(), threads);
    copy = copy + 1 == copies ? 0 : copy + 1;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  brise::bench::set_roofline_counters(state, timer.seconds(), static_cast<double>(bytes),
                                      2.0 * static_cast<double>(s.rows * s.cols * n_tokens),
                                      threads, int8 ? Peak::Int8 : Peak::Fma);
}

// Eigen's own f32 product (column-major MatrixXf, Eigen's threading set to `threads`; Eigen
// parallelises GEMM only, its GEMV runs on one thread), compiled for this machine.
void bm_eigen(benchmark::State& state, Shape s, size_t n_tokens, int threads) {
  use_kernel_set(kernel_set().name);  // the roofline of the best set
  const size_t bytes = s.rows * s.cols * sizeof(float);
  const size_t copies =
      n_tokens <= kMaxStreamedTokens ? std::max<size_t>(1, kStreamFootprint / bytes) : 1;
  std::vector<Eigen::MatrixXf> w(copies);
  const Eigen::Index rows = static_cast<Eigen::Index>(s.rows);
  const Eigen::Index cols = static_cast<Eigen::Index>(s.cols);
  const Eigen::Index n = static_cast<Eigen::Index>(n_tokens);
  w[0] = Eigen::MatrixXf::Random(rows, cols);
  for (size_t c = 1; c < copies; ++c) w[c] = w[0];
  const Eigen::MatrixXf x = Eigen::MatrixXf::Random(cols, n);
  Eigen::MatrixXf y(rows, n);
  Eigen::setNbThreads(threads);
  brise::bench::machine_roofline(threads);
  size_t copy = 0;
  const brise::bench::LoopTimer timer;
  for (auto _ : state) {
    y.noalias() = w[copy] * x;
    copy = copy + 1 == copies ? 0 : copy + 1;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  brise::bench::set_roofline_counters(state, timer.seconds(), static_cast<double>(bytes),
                                      2.0 * static_cast<double>(s.rows * s.cols * n_tokens),
                                      threads);
}

void register_all() {
  auto add = [](const std::string& name, auto fn) {
    benchmark::RegisterBenchmark(name.c_str(), fn)->UseRealTime()->Unit(benchmark::kMillisecond);
  };
  const std::string best(kernel_set().name);
  for (int threads : {1, 2}) {
    std::string th = "/threads:";
    th += std::to_string(threads);
    for (const Shape& s : kShapes) {
      for (size_t n : kTokenCounts) {
        // Appended piecewise: gcc 12 warns falsely (-Wrestrict) on "/" + std::string.
        std::string tail = "/";
        tail += shape_name(s);
        tail += "/tokens:" + std::to_string(n) + th;
        for (const KernelSetInfo& set : built_kernel_sets()) {
          if (!set.runs_here) continue;
          const std::string sn(set.name);
          for (const TypeTraits& type : all_types()) {
            for (bool exact : {false, true}) {
              if (exact && !type.quantized) continue;
              const std::string name =
                  "matmul/" + sn + "/" + std::string(type.name) + (exact ? "/exact" : "") + tail;
              add(name, [=, t = &type](benchmark::State& st) {
                bm_brise(st, sn, t, exact, s, n, threads);
              });
            }
          }
        }
        add("eigen_f32" + tail, [=](benchmark::State& st) { bm_eigen(st, s, n, threads); });
      }
    }
  }
  use_kernel_set(best);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("kernel_set_best", std::string(kernel_set().name));
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
