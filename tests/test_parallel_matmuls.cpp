// parallel_matmuls: several matrices sharing one input, their rows handed out to threads in
// pieces of varying length that cross from one matrix into the next. Every row must come out
// exactly as one single-threaded kernel call over the whole matrix gives it, whatever the thread
// count, and agree with the scalar reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "brise/model.hpp"
#include "engine/parallel_ops.hpp"
#include "kernels/fp16.hpp"
#include "kernels/matmul.hpp"

namespace brise {
namespace {

struct Matrix {
  std::vector<uint16_t> f16;  // rows x cols, packed
  WeightView view;
};

Matrix random_f16_matrix(uint32_t rows, uint32_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(size_t{rows} * cols);
  for (auto& v : values) v = normal(rng);
  Matrix m;
  m.f16.resize(values.size());
  kernels::convert_f32_to_f16_ref(values.data(), m.f16.data(), values.size());
  m.view = WeightView{m.f16.data(), TensorType::F16, rows, cols, uint64_t{cols} * 2};
  return m;
}

kernels::WeightMatrix as_kernel(const WeightView& w) {
  return {w.data, w.type, w.rows, w.cols, w.row_bytes};
}

TEST(ParallelMatmuls, EveryRowMatchesOneKernelCallWhateverTheThreads) {
  // Row counts that are not multiples of the kernel's row alignment, so pieces end mid-unit at
  // matrix ends; enough work that up to 4 threads are woken.
  constexpr uint32_t kCols = 512;
  const Matrix a = random_f16_matrix(37, kCols, 1);
  const Matrix b = random_f16_matrix(203, kCols, 2);
  const Matrix c = random_f16_matrix(1003, kCols, 3);

  for (size_t tokens : {size_t{1}, size_t{2}, size_t{5}}) {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(tokens * kCols);
    for (auto& v : x) v = normal(rng);

    std::vector<std::vector<float>> expected;
    for (const Matrix* m : {&a, &b, &c}) {
      std::vector<float> y(tokens * m->view.rows);
      kernels::matmul(as_kernel(m->view), x.data(), kCols, tokens, y.data(), m->view.rows, 0,
                      m->view.rows);
      std::vector<float> ref(y.size());
      kernels::matmul_ref(as_kernel(m->view), x.data(), kCols, tokens, ref.data(), m->view.rows, 0,
                          m->view.rows);
      for (size_t i = 0; i < y.size(); ++i)
        ASSERT_NEAR(y[i], ref[i], 1e-3f * (1.0f + std::fabs(ref[i]))) << "row-major index " << i;
      expected.push_back(std::move(y));
    }

    for (int threads : {1, 2, 3, 4}) {
      std::vector<float> ya(tokens * a.view.rows, NAN), yb(tokens * b.view.rows, NAN),
          yc(tokens * c.view.rows, NAN);
      parallel_matmuls({{a.view, ya.data()}, {b.view, yb.data()}, {c.view, yc.data()}}, x.data(),
                       tokens, threads);
      EXPECT_EQ(ya, expected[0]) << tokens << " tokens, " << threads << " threads";
      EXPECT_EQ(yb, expected[1]) << tokens << " tokens, " << threads << " threads";
      EXPECT_EQ(yc, expected[2]) << tokens << " tokens, " << threads << " threads";
    }
  }
}

}  // namespace
}  // namespace brise
