// parallel_matmuls: several matrices sharing one input, their rows handed out to threads in
// pieces of varying length that cross from one matrix into the next. Every row must come out
// exactly as one single-threaded kernel call over the whole matrix gives it, whatever the thread
// count, for float and packed quantized matrices, with int8 or f32 activations.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "engine/runtime/parallel_ops.hpp"
#include "kernels/matmul.hpp"
#include "kernels/type_traits.hpp"

namespace brise {
namespace {

struct Matrix {
  std::vector<uint8_t> bytes;
  kernels::WeightMatrix w;  // as the forward pass reads it (packed when quantized)
};

Matrix random_matrix(const char* type_name, uint32_t rows, uint32_t cols, uint32_t seed) {
  const kernels::TypeTraits& type = *kernels::find_type(type_name);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const size_t row_bytes = *kernels::row_bytes(type, cols);
  std::vector<uint8_t> file(rows * row_bytes);
  std::vector<float> row(cols);
  for (uint32_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = normal(rng);
    type.encode_row_ref(row.data(), file.data() + r * row_bytes, cols);
  }
  Matrix m;
  m.w = {file.data(), &type, rows, cols, row_bytes, false};
  m.bytes.resize(kernels::packed_bytes(m.w));
  kernels::pack_groups(m.w, m.bytes.data(), 0, (rows + 15) / 16);
  m.w.packed = true;
  m.w.data = m.bytes.data();
  return m;
}

TEST(ParallelMatmuls, EveryRowMatchesOneKernelCallWhateverTheThreads) {
  // Row counts that are not multiples of the kernel's row alignment, so pieces end mid-unit at
  // matrix ends; enough work that up to 4 threads are woken.
  constexpr uint32_t kCols = 512;
  const Matrix a = random_matrix("f16", 37, kCols, 1);
  const Matrix b = random_matrix("q8_0", 203, kCols, 2);
  const Matrix c = random_matrix("q4_0", 1003, kCols, 3);

  for (size_t tokens : {size_t{1}, size_t{2}, size_t{5}}) {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(tokens * kCols);
    for (auto& v : x) v = normal(rng);
    kernels::QuantizedInput quantized;

    for (bool int8 : {false, true}) {
      kernels::ActivationFormats formats;  // q8_0 and q4_0 take Q8; f16 reads the f32 rows
      if (int8) formats.add(kernels::ActivationFormat::Q8);
      const kernels::MatmulInput input =
          quantized.quantize(x.data(), kCols, tokens, kCols, formats);
      std::vector<std::vector<float>> expected;
      for (const Matrix* m : {&a, &b, &c}) {
        std::vector<float> y(tokens * m->w.rows);
        kernels::matmul(m->w, input, y.data(), m->w.rows, 0, m->w.rows);
        expected.push_back(std::move(y));
      }
      for (int threads : {1, 2, 3, 4}) {
        std::vector<float> ya(tokens * a.w.rows, NAN), yb(tokens * b.w.rows, NAN),
            yc(tokens * c.w.rows, NAN);
        parallel_matmuls({{a.w, ya.data()}, {b.w, yb.data()}, {c.w, yc.data()}}, input, threads);
        const std::string what = std::to_string(tokens) + " tokens, " + std::to_string(threads) +
                                 " threads, " + (int8 ? "int8" : "f32") + " activations";
        EXPECT_EQ(ya, expected[0]) << what;
        EXPECT_EQ(yb, expected[1]) << what;
        EXPECT_EQ(yc, expected[2]) << what;
      }
    }
  }
}

}  // namespace
}  // namespace brise
