// softmax, silu_mul and argmax: SIMD vs scalar reference on awkward sizes, known values, and
// the documented tie and NaN rules.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "kernels/activation.hpp"
#include "support/random_vector.hpp"

namespace brise::kernels {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
const size_t kSizes[] = {1, 2, 7, 15, 16, 17, 31, 32, 33, 100, 4099, 14336};

using brise::test::random_vector;

// ---- softmax ----

std::vector<double> softmax_expected(const std::vector<float>& x) {
  long double m = -INFINITY;
  for (float v : x) m = std::max<long double>(m, v);
  long double sum = 0;
  for (float v : x) sum += std::exp(v - m);
  std::vector<double> out;
  for (float v : x) out.push_back(static_cast<double>(std::exp(v - m) / sum));
  return out;
}

TEST(Softmax, SimdAndReferenceMatchLongDouble) {
  for (size_t n : kSizes) {
    for (float spread : {1.0f, 30.0f}) {
      SCOPED_TRACE(testing::Message() << "n=" << n << " spread=" << spread);
      // An offset of 1000 would overflow exp without the max subtraction.
      auto x = random_vector(n, 1000.0f - spread, 1000.0f + spread, static_cast<unsigned>(n));
      const auto expected = softmax_expected(x);
      std::vector<float> simd = x, ref = x;
      softmax(simd.data(), n);
      softmax_ref(ref.data(), n);
      double total = 0.0;
      for (size_t i = 0; i < n; ++i) {
        // f32 exp of an argument up to 60 in size carries ~60 * 2^-24 relative error.
        const double tol = 4e-6 * expected[i] + 1e-37;
        ASSERT_NEAR(simd[i], expected[i], tol) << "i=" << i;
        ASSERT_NEAR(ref[i], expected[i], 1e-6 * expected[i] + 1e-37) << "i=" << i;
        total += simd[i];
      }
      EXPECT_NEAR(total, 1.0, 1e-5);
    }
  }
}

TEST(Softmax, KnownValuesAndEmpty) {
  float x[3] = {0.0f, std::log(2.0f), std::log(5.0f)};  // weights 1 : 2 : 5
  softmax(x, 3);
  EXPECT_NEAR(x[0], 1.0 / 8, 1e-7);
  EXPECT_NEAR(x[1], 2.0 / 8, 1e-7);
  EXPECT_NEAR(x[2], 5.0 / 8, 1e-7);
  float untouched = 42.0f;
  softmax(&untouched, 0);
  softmax_ref(&untouched, 0);
  EXPECT_EQ(untouched, 42.0f);
}

// ---- silu_mul ----

TEST(SiluMul, SimdMatchesReferenceOnAwkwardSizes) {
  for (size_t n : kSizes) {
    SCOPED_TRACE(testing::Message() << "n=" << n);
    auto gate = random_vector(n, -20.0f, 20.0f, static_cast<unsigned>(n));
    const auto up = random_vector(n, -3.0f, 3.0f, static_cast<unsigned>(n + 7));
    // Extremes: exp(-g) overflows f32 for g = -100; saturates for g = 100.
    const float extremes[] = {0.0f, -0.0f, 100.0f, -100.0f, 88.0f, -88.0f, 1e-20f};
    for (size_t i = 0; i < n && i < std::size(extremes); ++i) gate[n - 1 - i] = extremes[i];
    std::vector<float> simd(n), ref(n);
    silu_mul(gate.data(), up.data(), simd.data(), n);
    silu_mul_ref(gate.data(), up.data(), ref.data(), n);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_NEAR(simd[i], ref[i], 2e-6 * std::fabs(ref[i]) + 1e-37)
          << "i=" << i << " g=" << gate[i];
    }
  }
}

TEST(SiluMul, KnownValues) {
  const float gate[4] = {0.0f, 1.0f, -1.0f, 5.0f};
  const float up[4] = {3.0f, 2.0f, 1.0f, -1.0f};
  float out[4], ref[4];
  silu_mul(gate, up, out, 4);
  silu_mul_ref(gate, up, ref, 4);
  const double expected[4] = {0.0, 2.0 * 0.7310585786300049, -0.2689414213699951,
                              -5.0 / (1.0 + std::exp(-5.0))};
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(out[i], expected[i], 1e-6) << i;
    EXPECT_NEAR(ref[i], expected[i], 1e-6) << i;
  }
}

TEST(SiluMul, OutputMayAliasEitherInput) {
  const size_t n = 100;
  const auto gate = random_vector(n, -5.0f, 5.0f, 1);
  const auto up = random_vector(n, -5.0f, 5.0f, 2);
  std::vector<float> separate(n);
  silu_mul(gate.data(), up.data(), separate.data(), n);
  std::vector<float> g = gate, u = up;
  silu_mul(g.data(), up.data(), g.data(), n);
  silu_mul(gate.data(), u.data(), u.data(), n);
  EXPECT_EQ(g, separate);
  EXPECT_EQ(u, separate);
}

// ---- argmax ----

// First index of the largest non-NaN value; 0 when all are NaN.
size_t argmax_expected(const std::vector<float>& x) {
  size_t best = x.size();
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i])) continue;
    if (best == x.size() || x[i] > x[best]) best = i;
  }
  return best == x.size() ? 0 : best;
}

void expect_argmax(const std::vector<float>& x, const char* what) {
  SCOPED_TRACE(testing::Message() << what << " n=" << x.size());
  const size_t expected = argmax_expected(x);
  EXPECT_EQ(argmax(x.data(), x.size()), expected);
  EXPECT_EQ(argmax_ref(x.data(), x.size()), expected);
}

TEST(Argmax, RandomValuesOnAwkwardSizes) {
  for (size_t n : kSizes) {
    expect_argmax(random_vector(n, -10.0f, 10.0f, static_cast<unsigned>(n)), "random");
  }
}

TEST(Argmax, FirstIndexWinsTies) {
  for (size_t n : kSizes) {
    expect_argmax(std::vector<float>(n, 1.5f), "all equal");
    expect_argmax(std::vector<float>(n, -kInf), "all -inf");
    auto x = random_vector(n, -10.0f, 10.0f, 3);
    // The same maximum in several lanes, in the SIMD body and in the scalar tail.
    for (size_t at : {n / 3, n / 2 + 1, n - 1}) {
      if (at < n) x[at] = 50.0f;
    }
    expect_argmax(x, "planted ties");
    x[n - 1] = 60.0f;
    expect_argmax(x, "maximum last");
  }
  std::vector<float> zeros(40, -1.0f);
  zeros[5] = -0.0f;
  zeros[20] = 0.0f;
  expect_argmax(zeros, "-0 ties +0");
  EXPECT_EQ(argmax(zeros.data(), zeros.size()), 5u);
}

TEST(Argmax, NaNNeverBeatsANumber) {
  for (size_t n : kSizes) {
    auto x = random_vector(n, -10.0f, 10.0f, 5);
    for (size_t i = 0; i < n; i += 3) x[i] = kNaN;
    expect_argmax(x, "every third NaN");
    x[0] = kNaN;
    expect_argmax(x, "NaN first");
    expect_argmax(std::vector<float>(n, kNaN), "all NaN");
    std::vector<float> one_number(n, kNaN);
    one_number[n - 1] = -kInf;
    expect_argmax(one_number, "one -inf among NaNs");
    EXPECT_EQ(argmax(one_number.data(), n), n - 1);
  }
  const std::vector<float> all_nan(33, kNaN);
  EXPECT_EQ(argmax(all_nan.data(), all_nan.size()), 0u);
}

TEST(Argmax, LongArraysAcrossInternalBlocks) {
  // Longer than 2^23: argmax merges blocks whose lane indices are kept in f32.
  const size_t n = (size_t{1} << 23) + 1000;
  std::vector<float> x(n, 0.0f);
  x[12345] = 3.0f;
  x[(size_t{1} << 23) + 17] = 3.0f;  // a tie in the second block: the first still wins
  expect_argmax(x, "tie across blocks");
  x[(size_t{1} << 23) + 999] = 4.0f;
  expect_argmax(x, "maximum in the last block's tail");
  EXPECT_EQ(argmax(x.data(), n), (size_t{1} << 23) + 999);
  x[(size_t{1} << 22) + 3] = 5.0f;  // index > 2^22 inside the first block
  EXPECT_EQ(argmax(x.data(), n), (size_t{1} << 22) + 3);
}

}  // namespace
}  // namespace brise::kernels
