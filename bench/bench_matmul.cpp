// matmul on Mistral-7B shapes for every weight type, GEMV (decode, 1 token) and GEMM (prefill
// chunk), with 1 or 2 OpenMP threads splitting the rows, and an Eigen f32 baseline in the same run.
//
// Counters: GB/s = weight bytes read per second, GFLOP/s, BW% / FMA% = the fraction of the read
// bandwidth / FMA peak measured in this process (bench/support/roofline_counters.hpp).
// GEMV cycles through enough copies of the weights (>= 512 MiB in all) that every call streams
// them from DRAM, as a decode step through a 7B model does.
//
//   build/bench/bench_matmul --benchmark_filter='gemv/f16' --benchmark_min_time=0.5
// First: it includes the intrinsics headers with GCC 12's false -Wmaybe-uninitialized muted,
// which Eigen's AVX-512 code would otherwise trigger.
#include "kernels/simd.hpp"

#include <benchmark/benchmark.h>
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/support/roofline_counters.hpp"
#include "brise/tensor_type.hpp"
#include "kernels/fp16.hpp"
#include "kernels/matmul.hpp"
#include "kernels/quantize.hpp"

namespace {

using brise::TensorType;
using namespace brise::kernels;

struct Shape {
  size_t rows, cols;
};
// Mistral-7B: wq/wo, wk/wv, w1/w3, w2, output.
constexpr Shape kShapes[] = {
    {4096, 4096}, {1024, 4096}, {14336, 4096}, {4096, 14336}, {32000, 4096}};
constexpr TensorType kTypes[] = {TensorType::F32, TensorType::F16, TensorType::BF16,
                                 TensorType::Q8_0, TensorType::Q4_0};
constexpr size_t kGemvFootprint = size_t{512} << 20;

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

// `copies` copies of one random weight matrix in `type`, each 64-byte aligned.
struct Weights {
  std::unique_ptr<uint8_t, FreeDeleter> data;
  size_t copy_bytes = 0;
  size_t copies = 0;
  WeightMatrix matrix(size_t copy, const Shape& s, TensorType type) const {
    return WeightMatrix{data.get() + copy * copy_bytes, type, s.rows, s.cols,
                        *brise::tensor_row_bytes(type, s.cols)};
  }
};

Weights make_weights(TensorType type, const Shape& s, size_t copies) {
  const size_t row_bytes = *brise::tensor_row_bytes(type, s.cols);
  Weights w;
  w.copy_bytes = (s.rows * row_bytes + 63) / 64 * 64;
  w.copies = copies;
  w.data.reset(static_cast<uint8_t*>(std::aligned_alloc(64, w.copy_bytes * copies)));
  Rng rng;
  std::vector<float> row(s.cols);
#pragma omp parallel for firstprivate(rng, row)
  for (size_t r = 0; r < s.rows; ++r) {
    rng.s += r * 0x632BE59BD9B4E019ull;
    for (auto& v : row) v = rng.next();
    uint8_t* dst = w.data.get() + r * row_bytes;
    switch (type) {
      case TensorType::F32:
        std::memcpy(dst, row.data(), s.cols * sizeof(float));
        break;
      case TensorType::F16:
        convert_f32_to_f16(row.data(), reinterpret_cast<uint16_t*>(dst), s.cols);
        break;
      case TensorType::BF16:
        convert_f32_to_bf16(row.data(), reinterpret_cast<uint16_t*>(dst), s.cols);
        break;
      case TensorType::Q8_0:
        quantize_row_q8_0(row.data(), reinterpret_cast<BlockQ8_0*>(dst), s.cols);
        break;
      case TensorType::Q4_0:
        quantize_row_q4_0(row.data(), reinterpret_cast<BlockQ4_0*>(dst), s.cols);
        break;
    }
  }
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

// Contiguous row ranges, one per thread, aligned to kMatmulRowAlign.
void row_range(size_t rows, int threads, int t, size_t* begin, size_t* end) {
  const size_t per = (rows / static_cast<size_t>(threads) + kMatmulRowAlign - 1) / kMatmulRowAlign *
                     kMatmulRowAlign;
  *begin = std::min(rows, per * static_cast<size_t>(t));
  *end = t == threads - 1 ? rows : std::min(rows, *begin + per);
}

void run_matmul(const WeightMatrix& w, const float* x, size_t n_tokens, float* y, int threads) {
#pragma omp parallel num_threads(threads)
  {
    size_t begin, end;
    row_range(w.rows, threads, omp_get_thread_num(), &begin, &end);
    matmul(w, x, w.cols, n_tokens, y, w.rows, begin, end);
  }
}

void bm_brise(benchmark::State& state, TensorType type, Shape s, size_t n_tokens, int threads) {
  const size_t row_bytes = *brise::tensor_row_bytes(type, s.cols);
  const size_t bytes = s.rows * row_bytes;
  const size_t copies = n_tokens == 1 ? std::max<size_t>(1, kGemvFootprint / bytes) : 1;
  const Weights w = make_weights(type, s, copies);
  const auto x = make_activations(n_tokens * s.cols);
  std::vector<float> y(n_tokens * s.rows);
  brise::bench::machine_roofline(threads);
  size_t copy = 0;
  const brise::bench::LoopTimer timer;
  for (auto _ : state) {
    run_matmul(w.matrix(copy, s, type), x.data(), n_tokens, y.data(), threads);
    copy = copy + 1 == copies ? 0 : copy + 1;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  brise::bench::set_roofline_counters(state, timer.seconds(), static_cast<double>(bytes),
                                      2.0 * static_cast<double>(s.rows * s.cols * n_tokens),
                                      threads);
}

// Eigen's own f32 product (column-major MatrixXf, Eigen's threading set to `threads`; Eigen
// parallelises GEMM only, its GEMV runs on one thread).
void bm_eigen(benchmark::State& state, Shape s, size_t n_tokens, int threads) {
  const size_t bytes = s.rows * s.cols * sizeof(float);
  const size_t copies = n_tokens == 1 ? std::max<size_t>(1, kGemvFootprint / bytes) : 1;
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
  for (int threads : {1, 2}) {
    const std::string th = "/threads:" + std::to_string(threads);
    for (const Shape& s : kShapes) {
      // GEMM chunk: 128 tokens on every shape, 64 and 512 on the square one.
      std::vector<size_t> gemm_tokens = {128};
      if (s.rows == 4096 && s.cols == 4096) gemm_tokens = {64, 128, 512};
      for (TensorType type : kTypes) {
        const std::string tn(brise::tensor_type_name(type));
        add("gemv/" + tn + "/" + shape_name(s) + th,
            [=](benchmark::State& st) { bm_brise(st, type, s, 1, threads); });
        for (size_t n : gemm_tokens)
          add("gemm/" + tn + "/" + shape_name(s) + "/tokens:" + std::to_string(n) + th,
              [=](benchmark::State& st) { bm_brise(st, type, s, n, threads); });
      }
      add("gemv/eigen_f32/" + shape_name(s) + th,
          [=](benchmark::State& st) { bm_eigen(st, s, 1, threads); });
      for (size_t n : gemm_tokens)
        add("gemm/eigen_f32/" + shape_name(s) + "/tokens:" + std::to_string(n) + th,
            [=](benchmark::State& st) { bm_eigen(st, s, n, threads); });
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // Measured before the run so that the figures appear in the context header.
  brise::bench::machine_roofline(1);
  brise::bench::machine_roofline(2);
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
