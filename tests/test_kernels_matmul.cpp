// matmul against the scalar reference for every weight type on awkward shapes, and the
// determinism contract: one token vs a chunk, any row split, any token tiling give the same bits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "brise/error.hpp"
#include "brise/tensor_type.hpp"
#include "kernels/fp16.hpp"
#include "kernels/matmul.hpp"
#include "kernels/quantize.hpp"

namespace brise::kernels {
namespace {

constexpr TensorType kAllTypes[] = {TensorType::F32, TensorType::F16, TensorType::BF16,
                                    TensorType::Q8_0, TensorType::Q4_0};

// A weight matrix of random values stored in `type`, rows padded by a few bytes so that
// row_bytes > the packed size is exercised too.
struct TestMatrix {
  std::vector<uint8_t> bytes;
  WeightMatrix w;
};

TestMatrix make_matrix(TensorType type, size_t rows, size_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const size_t packed = *tensor_row_bytes(type, cols);
  const size_t row_bytes = packed + 6;
  TestMatrix m;
  m.bytes.assign(rows * row_bytes + 64, 0);
  std::vector<float> row(cols);
  for (size_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = normal(rng);
    uint8_t* dst = m.bytes.data() + r * row_bytes;
    switch (type) {
      case TensorType::F32:
        std::memcpy(dst, row.data(), cols * sizeof(float));
        break;
      case TensorType::F16:
      case TensorType::BF16: {
        std::vector<uint16_t> h(cols);
        if (type == TensorType::F16)
          convert_f32_to_f16_ref(row.data(), h.data(), cols);
        else
          convert_f32_to_bf16_ref(row.data(), h.data(), cols);
        std::memcpy(dst, h.data(), cols * sizeof(uint16_t));
        break;
      }
      case TensorType::Q8_0: {
        std::vector<BlockQ8_0> q(cols / kQuantBlock);
        quantize_row_q8_0_ref(row.data(), q.data(), cols);
        std::memcpy(dst, q.data(), packed);
        break;
      }
      case TensorType::Q4_0: {
        std::vector<BlockQ4_0> q(cols / kQuantBlock);
        quantize_row_q4_0_ref(row.data(), q.data(), cols);
        std::memcpy(dst, q.data(), packed);
        break;
      }
    }
  }
  m.w = WeightMatrix{m.bytes.data(), type, rows, cols, row_bytes};
  return m;
}

std::vector<float> make_activations(size_t n_tokens, size_t stride, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n_tokens * stride + 16);
  for (auto& v : x) v = normal(rng);
  return x;
}

// sum_k |w_k x_k| in double, for the tolerance; rows decoded with the scalar reference decoders.
std::vector<double> abs_dot(const WeightMatrix& w, const float* x, size_t x_stride,
                            size_t n_tokens) {
  std::vector<double> out(n_tokens * w.rows, 0.0);
  std::vector<float> e(w.cols);
  for (size_t r = 0; r < w.rows; ++r) {
    const uint8_t* row = static_cast<const uint8_t*>(w.data) + r * w.row_bytes;
    switch (w.type) {
      case TensorType::F32:
        std::memcpy(e.data(), row, w.cols * sizeof(float));
        break;
      case TensorType::F16:
        convert_f16_to_f32_ref(reinterpret_cast<const uint16_t*>(row), e.data(), w.cols);
        break;
      case TensorType::BF16:
        convert_bf16_to_f32_ref(reinterpret_cast<const uint16_t*>(row), e.data(), w.cols);
        break;
      case TensorType::Q8_0:
        dequantize_row_q8_0_ref(reinterpret_cast<const BlockQ8_0*>(row), e.data(), w.cols);
        break;
      case TensorType::Q4_0:
        dequantize_row_q4_0_ref(reinterpret_cast<const BlockQ4_0*>(row), e.data(), w.cols);
        break;
    }
    for (size_t t = 0; t < n_tokens; ++t) {
      double s = 0;
      for (size_t k = 0; k < w.cols; ++k) s += std::fabs(double(e[k]) * x[t * x_stride + k]);
      out[t * w.rows + r] = s;
    }
  }
  return out;
}

bool same_bits(float a, float b) {
  uint32_t x, y;
  std::memcpy(&x, &a, 4);
  std::memcpy(&y, &b, 4);
  return x == y;
}

std::string label(TensorType type, size_t rows, size_t cols, size_t n_tokens) {
  return std::string(tensor_type_name(type)) + " rows=" + std::to_string(rows) +
         " cols=" + std::to_string(cols) + " tokens=" + std::to_string(n_tokens);
}

// |y - y_ref| <= 1e-5 * sum_k |w_k x_k|: both are f32 sums of the same products in different
// orders; with random data their rounding errors are ~sqrt(cols) * 2^-24 of that sum, while one
// dropped or doubled term (~1/cols of it) is far above the bound for every cols tested.
constexpr double kRelTol = 1e-5;

TEST(Matmul, MatchesReferenceOnAwkwardShapes) {
  std::vector<size_t> token_counts;
  for (size_t n = 1; n <= 13; ++n) token_counts.push_back(n);
  token_counts.push_back(64);
  for (TensorType type : kAllTypes) {
    std::vector<size_t> col_set = {32, 96, 4128};
    if (type == TensorType::F32 || type == TensorType::F16 || type == TensorType::BF16)
      col_set.insert(col_set.end(), {1, 7, 21, 417});  // partial last batch
    col_set.push_back(14368);                          // split into k blocks
    for (size_t cols : col_set) {
      for (size_t rows : {1u, 7u, 17u, 33u}) {
        if (cols > 10000 && rows != 17) continue;  // keep the scalar reference's work small
        const TestMatrix m = make_matrix(type, rows, cols, static_cast<uint32_t>(rows * 31 + cols));
        const size_t x_stride = cols + 3;
        const auto x = make_activations(64, x_stride, static_cast<uint32_t>(cols));
        const auto mag = abs_dot(m.w, x.data(), x_stride, 64);
        for (size_t n : token_counts) {
          const size_t y_stride = rows + 2;
          std::vector<float> y(n * y_stride, -7.0f), y_ref(n * y_stride, -7.0f);
          matmul(m.w, x.data(), x_stride, n, y.data(), y_stride, 0, rows);
          matmul_ref(m.w, x.data(), x_stride, n, y_ref.data(), y_stride, 0, rows);
          for (size_t t = 0; t < n; ++t) {
            for (size_t r = 0; r < rows; ++r) {
              const double tol = kRelTol * mag[t * rows + r] + 1e-30;
              ASSERT_NEAR(y[t * y_stride + r], y_ref[t * y_stride + r], tol)
                  << label(type, rows, cols, n) << " t=" << t << " r=" << r;
            }
            for (size_t r = rows; r < y_stride; ++r)  // padding untouched
              ASSERT_EQ(y[t * y_stride + r], -7.0f) << label(type, rows, cols, n);
          }
        }
      }
    }
  }
}

// Shapes for the bit-identity checks: one quant block, a quant-block multiple that is not a
// multiple of 64, a long row, one long enough to be split into k blocks (accumulators spilled
// between blocks, like Mistral's 14336-wide w2), and (float types) partial last batches.
std::vector<size_t> identity_cols(TensorType type) {
  std::vector<size_t> c = {32, 96, 4128, 14368};
  if (type == TensorType::F32 || type == TensorType::F16 || type == TensorType::BF16)
    c.insert(c.end(), {21, 1000, 4100});
  return c;
}

TEST(Matmul, OneTokenAndChunkAreBitIdentical) {
  constexpr size_t kRows = 37;
  for (TensorType type : kAllTypes) {
    for (size_t cols : identity_cols(type)) {
      const TestMatrix m = make_matrix(type, kRows, cols, static_cast<uint32_t>(cols));
      const size_t x_stride = cols;
      const auto x = make_activations(130, x_stride, 5);
      // Token-by-token (the decode path) is the baseline.
      std::vector<float> single(130 * kRows);
      for (size_t t = 0; t < 130; ++t)
        matmul(m.w, x.data() + t * x_stride, x_stride, 1, single.data() + t * kRows, kRows, 0,
               kRows);
      // Chunks of every tile remainder, more than one token block, at different token offsets.
      for (size_t n : {2u, 3u, 5u, 6u, 7u, 12u, 13u, 47u, 49u, 64u, 100u, 130u}) {
        for (size_t t0 : {size_t{0}, 130 - n}) {
          std::vector<float> y(n * kRows);
          matmul(m.w, x.data() + t0 * x_stride, x_stride, n, y.data(), kRows, 0, kRows);
          for (size_t t = 0; t < n; ++t)
            for (size_t r = 0; r < kRows; ++r)
              ASSERT_TRUE(same_bits(y[t * kRows + r], single[(t0 + t) * kRows + r]))
                  << label(type, kRows, cols, n) << " t0=" << t0 << " t=" << t << " r=" << r;
        }
      }
    }
  }
}

TEST(Matmul, RowSplitsAreBitIdentical) {
  constexpr size_t kRows = 53;
  for (TensorType type : kAllTypes) {
    for (size_t cols : identity_cols(type)) {
      const TestMatrix m = make_matrix(type, kRows, cols, static_cast<uint32_t>(cols + 1));
      const auto x = make_activations(20, cols, 9);
      for (size_t n : {1u, 2u, 20u}) {
        std::vector<float> whole(n * kRows);
        matmul(m.w, x.data(), cols, n, whole.data(), kRows, 0, kRows);
        const std::vector<std::vector<size_t>> splits = {
            {0, 16, 32, 48, kRows}, {0, 1, 2, 9, 26, 27, kRows}, {0, 5, 50, kRows}};
        for (const auto& s : splits) {
          std::vector<float> y(n * kRows, -1.0f);
          for (size_t i = 0; i + 1 < s.size(); ++i)
            matmul(m.w, x.data(), cols, n, y.data(), kRows, s[i], s[i + 1]);
          for (size_t j = 0; j < y.size(); ++j)
            ASSERT_TRUE(same_bits(y[j], whole[j])) << label(type, kRows, cols, n) << " j=" << j;
        }
      }
    }
  }
}

TEST(Matmul, WritesOnlyItsRowRange) {
  const TestMatrix m = make_matrix(TensorType::F16, 40, 64, 1);
  const auto x = make_activations(3, 64, 2);
  std::vector<float> y(3 * 40, 123.0f);
  matmul(m.w, x.data(), 64, 3, y.data(), 40, 10, 27);
  for (size_t t = 0; t < 3; ++t)
    for (size_t r = 0; r < 40; ++r)
      if (r < 10 || r >= 27)
        EXPECT_EQ(y[t * 40 + r], 123.0f) << t << " " << r;
      else
        EXPECT_NE(y[t * 40 + r], 123.0f) << t << " " << r;
}

TEST(Matmul, RejectsBadArguments) {
  const TestMatrix m = make_matrix(TensorType::Q8_0, 4, 64, 1);
  const auto x = make_activations(1, 64, 2);
  std::vector<float> y(4);
  WeightMatrix bad = m.w;
  bad.cols = 48;  // not a whole number of blocks
  EXPECT_THROW(matmul(bad, x.data(), 64, 1, y.data(), 4, 0, 4), Error);
  EXPECT_THROW(matmul(m.w, x.data(), 64, 1, y.data(), 4, 0, 5), Error);  // past the rows
  EXPECT_THROW(matmul(m.w, x.data(), 64, 1, y.data(), 4, 3, 2), Error);  // reversed range
  bad = m.w;
  bad.row_bytes = 10;
  EXPECT_THROW(matmul(bad, x.data(), 64, 1, y.data(), 4, 0, 4), Error);
  bad = m.w;
  bad.type = static_cast<TensorType>(12345);
  EXPECT_THROW(matmul(bad, x.data(), 64, 1, y.data(), 4, 0, 4), Error);
  // Empty work is fine.
  EXPECT_NO_THROW(matmul(m.w, x.data(), 64, 0, y.data(), 4, 0, 4));
  EXPECT_NO_THROW(matmul(m.w, x.data(), 64, 1, y.data(), 4, 2, 2));
}

}  // namespace
}  // namespace brise::kernels
