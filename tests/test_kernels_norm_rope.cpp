// RMSNorm and RoPE kernels: SIMD vs scalar reference on awkward sizes, and both against
// independent computations in (long) double written here.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels/norm.hpp"
#include "kernels/rope.hpp"
#include "support/random_vector.hpp"

namespace brise::kernels {
namespace {

using brise::test::random_vector;

// ---- RMSNorm ----

// out = x / sqrt(mean(x^2) + eps) * w in long double.
std::vector<double> rmsnorm_expected(const std::vector<float>& x, const std::vector<float>& w,
                                     float eps) {
  long double sum = 0;
  for (float v : x) sum += static_cast<long double>(v) * v;
  const long double inv = 1.0L / std::sqrt(sum / x.size() + eps);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = static_cast<double>(x[i] * inv * w[i]);
  return out;
}

TEST(RmsNorm, KnownValues) {
  // mean(x^2) = (9 + 16) / 2 = 12.5.
  const float x[2] = {3.0f, 4.0f};
  const float w[2] = {1.0f, 2.0f};
  float out[2];
  rmsnorm(x, w, 2, 0.0f, out);
  EXPECT_NEAR(out[0], 3.0 / std::sqrt(12.5), 1e-6);
  EXPECT_NEAR(out[1], 8.0 / std::sqrt(12.5), 1e-6);
  rmsnorm_ref(x, w, 2, 0.0f, out);
  EXPECT_NEAR(out[0], 3.0 / std::sqrt(12.5), 1e-6);
  EXPECT_NEAR(out[1], 8.0 / std::sqrt(12.5), 1e-6);
}

TEST(RmsNorm, SimdMatchesReferenceAndDoubleOnAwkwardSizes) {
  for (size_t n : {1, 2, 7, 15, 16, 17, 31, 63, 64, 65, 100, 4096, 4099}) {
    for (float magnitude : {1e-3f, 1.0f, 300.0f}) {
      SCOPED_TRACE(testing::Message() << "n=" << n << " magnitude=" << magnitude);
      const auto x = random_vector(n, -magnitude, magnitude, static_cast<unsigned>(n));
      const auto w = random_vector(n, 0.5f, 1.5f, static_cast<unsigned>(n + 1));
      const float eps = 1e-5f;
      std::vector<float> simd(n), ref(n);
      rmsnorm(x.data(), w.data(), n, eps, simd.data());
      rmsnorm_ref(x.data(), w.data(), n, eps, ref.data());
      const auto expected = rmsnorm_expected(x, w, eps);
      for (size_t i = 0; i < n; ++i) {
        // Both are within a few f32 roundings of the exact value.
        const double tol = 1e-6 * std::fabs(expected[i]) + 1e-30;
        ASSERT_NEAR(simd[i], ref[i], tol) << "i=" << i;
        ASSERT_NEAR(ref[i], expected[i], tol) << "i=" << i;
      }
    }
  }
}

TEST(RmsNorm, EpsDominatesForTinyInputs) {
  // With x tiny the eps term decides the scale: out ~= x / sqrt(eps) * w.
  const std::vector<float> x = {1e-6f, -2e-6f, 3e-6f};
  const std::vector<float> w = {1.0f, 1.0f, 1.0f};
  std::vector<float> out(3);
  rmsnorm(x.data(), w.data(), 3, 1e-2f, out.data());
  const auto expected = rmsnorm_expected(x, w, 1e-2f);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(out[i], expected[i], 1e-6 * std::fabs(expected[i]));
  EXPECT_NEAR(out[0], 1e-5, 1e-9);
}

TEST(RmsNorm, OutputMayAliasInput) {
  for (size_t n : {7, 4099}) {
    const auto x = random_vector(n, -2.0f, 2.0f, 7);
    const auto w = random_vector(n, 0.5f, 1.5f, 8);
    std::vector<float> separate(n);
    rmsnorm(x.data(), w.data(), n, 1e-5f, separate.data());
    std::vector<float> in_place = x;
    rmsnorm(in_place.data(), w.data(), n, 1e-5f, in_place.data());
    EXPECT_EQ(in_place, separate);
  }
}

// ---- RoPE ----

// cos/sin of pos * theta^(-2i/head_dim) in long double.
void angles_expected(double pos, size_t head_dim, double theta, std::vector<long double>& c,
                     std::vector<long double>& s) {
  c.resize(head_dim / 2);
  s.resize(head_dim / 2);
  for (size_t i = 0; i < head_dim / 2; ++i) {
    const long double angle = pos * std::pow(static_cast<long double>(theta),
                                             -2.0L * i / static_cast<long double>(head_dim));
    c[i] = std::cos(angle);
    s[i] = std::sin(angle);
  }
}

TEST(RopeAngles, MatchLongDoubleAtSmallAndLargePositions) {
  for (double theta : {10000.0, 1e6}) {
    for (size_t head_dim : {2, 8, 64, 128}) {
      for (size_t pos : {0, 1, 2, 10, 4095, 32768, 100000, 1000000}) {
        SCOPED_TRACE(testing::Message()
                     << "theta=" << theta << " head_dim=" << head_dim << " pos=" << pos);
        std::vector<float> c(head_dim / 2), s(head_dim / 2);
        rope_angles(pos, head_dim, theta, c.data(), s.data());
        std::vector<long double> ce, se;
        angles_expected(static_cast<double>(pos), head_dim, theta, ce, se);
        for (size_t i = 0; i < head_dim / 2; ++i) {
          // Only the final rounding to f32 (half an ulp, < 3e-8 near 1) plus the double angle.
          ASSERT_NEAR(c[i], static_cast<double>(ce[i]), 1e-7) << "i=" << i;
          ASSERT_NEAR(s[i], static_cast<double>(se[i]), 1e-7) << "i=" << i;
        }
      }
    }
  }
}

// Mistral Small 3.1+ (theta 1e9) and Ministral (1e8) over a 128k context. The angle reaches
// 131071 radians, so it must be formed in double: in f32 its rounding alone would be up to
// 131071 x 2^-24 = 0.008 rad. Bound: the f32 rounding of a value in [-1, 1] (half an ulp of
// [0.5, 1), 2^-25) plus the double angle's error (relative 4.4e-16, x 131071 = 6e-11).
TEST(RopeAngles, LargeThetaUpTo128kPositionsMatchLongDouble) {
  const double bound = std::ldexp(1.0, -25) + 1e-10;
  for (double theta : {1e8, 1e9}) {
    ASSERT_EQ(static_cast<double>(static_cast<float>(theta)), theta);  // exact as GGUF's f32
    std::vector<size_t> positions;
    for (size_t pos = 0; pos < 131072; pos += 997) positions.push_back(pos);
    for (size_t pos = 131072 - 16; pos < 131072; ++pos) positions.push_back(pos);
    for (size_t pos : positions) {
      std::vector<float> c(64), s(64);
      rope_angles(pos, 128, theta, c.data(), s.data());
      std::vector<long double> ce, se;
      angles_expected(static_cast<double>(pos), 128, theta, ce, se);
      for (size_t i = 0; i < 64; ++i) {
        ASSERT_LE(std::fabs(c[i] - static_cast<double>(ce[i])), bound)
            << "theta " << theta << " pos " << pos << " i " << i;
        ASSERT_LE(std::fabs(s[i] - static_cast<double>(se[i])), bound)
            << "theta " << theta << " pos " << pos << " i " << i;
      }
    }
  }
}

TEST(RopeAngles, PairZeroTurnsByPositionRadians) {
  // i = 0 has frequency 1: the angle is the position itself.
  float c[4], s[4];
  rope_angles(3, 8, 10000.0, c, s);
  EXPECT_FLOAT_EQ(c[0], static_cast<float>(std::cos(3.0)));
  EXPECT_FLOAT_EQ(s[0], static_cast<float>(std::sin(3.0)));
  // i = 2: 3 * 10000^(-4/8) = 0.03.
  EXPECT_FLOAT_EQ(c[2], static_cast<float>(std::cos(0.03)));
  EXPECT_FLOAT_EQ(s[2], static_cast<float>(std::sin(0.03)));
}

TEST(RopeApply, RotatesInterleavedPairs) {
  // One head of 4: pair 0 rotated by 90 degrees, pair 1 by 180.
  float x[4] = {1.0f, 2.0f, 3.0f, -5.0f};
  const float c[2] = {0.0f, -1.0f};
  const float s[2] = {1.0f, 0.0f};
  float y[4] = {1.0f, 2.0f, 3.0f, -5.0f};
  rope_apply(x, 1, 4, c, s);
  rope_apply_ref(y, 1, 4, c, s);
  const float expected[4] = {-2.0f, 1.0f, -3.0f, 5.0f};
  for (int i = 0; i < 4; ++i) {
    EXPECT_FLOAT_EQ(x[i], expected[i]);
    EXPECT_FLOAT_EQ(y[i], expected[i]);
  }
}

TEST(RopeApply, SimdMatchesReferenceOnAwkwardShapes) {
  // head_dim 300 spans more than one stack chunk of pairs inside rope_apply.
  for (size_t head_dim : {2, 4, 6, 8, 12, 30, 64, 100, 128, 256, 300}) {
    for (size_t n_heads : {1, 3, 8, 32}) {
      SCOPED_TRACE(testing::Message() << "head_dim=" << head_dim << " heads=" << n_heads);
      std::vector<float> c(head_dim / 2), s(head_dim / 2);
      rope_angles(12345, head_dim, 10000.0, c.data(), s.data());
      const auto x = random_vector(n_heads * head_dim, -3.0f, 3.0f,
                                   static_cast<unsigned>(head_dim * 100 + n_heads));
      std::vector<float> simd = x, ref = x;
      rope_apply(simd.data(), n_heads, head_dim, c.data(), s.data());
      rope_apply_ref(ref.data(), n_heads, head_dim, c.data(), s.data());
      for (size_t e = 0; e < x.size(); e += 2) {
        // An FMA may round differently from a multiply and add: a few ulps of the pair's size.
        const double tol = 1e-6 * (std::fabs(x[e]) + std::fabs(x[e + 1]));
        ASSERT_NEAR(simd[e], ref[e], tol) << "e=" << e;
        ASSERT_NEAR(simd[e + 1], ref[e + 1], tol) << "e=" << e;
      }
    }
  }
}

TEST(RopeApply, MatchesIndependentDoubleRotationIncludingLargePositions) {
  const size_t head_dim = 128;
  const size_t n_heads = 4;
  for (double theta : {10000.0, 1e6}) {
    for (size_t pos : {0, 1, 7, 4096, 100000}) {
      SCOPED_TRACE(testing::Message() << "theta=" << theta << " pos=" << pos);
      std::vector<float> c(head_dim / 2), s(head_dim / 2);
      rope_angles(pos, head_dim, theta, c.data(), s.data());
      const auto x = random_vector(n_heads * head_dim, -2.0f, 2.0f, static_cast<unsigned>(pos));
      std::vector<float> y = x;
      rope_apply(y.data(), n_heads, head_dim, c.data(), s.data());
      std::vector<long double> ce, se;
      angles_expected(static_cast<double>(pos), head_dim, theta, ce, se);
      for (size_t h = 0; h < n_heads; ++h) {
        for (size_t i = 0; i < head_dim / 2; ++i) {
          const size_t e = h * head_dim + 2 * i;
          const long double a = x[e], b = x[e + 1];
          const double ya = static_cast<double>(a * ce[i] - b * se[i]);
          const double yb = static_cast<double>(a * se[i] + b * ce[i]);
          const double tol = 1e-6 * static_cast<double>(std::fabs(a) + std::fabs(b));
          ASSERT_NEAR(y[e], ya, tol) << "h=" << h << " i=" << i;
          ASSERT_NEAR(y[e + 1], yb, tol) << "h=" << h << " i=" << i;
        }
      }
    }
  }
}

TEST(RopeApply, OddHeadDimLeavesLastValue) {
  const size_t head_dim = 5;
  std::vector<float> c(2), s(2);
  rope_angles(9, head_dim, 10000.0, c.data(), s.data());
  const auto x = random_vector(2 * head_dim, -1.0f, 1.0f, 3);
  std::vector<float> simd = x, ref = x;
  rope_apply(simd.data(), 2, head_dim, c.data(), s.data());
  rope_apply_ref(ref.data(), 2, head_dim, c.data(), s.data());
  EXPECT_EQ(simd[4], x[4]);
  EXPECT_EQ(simd[9], x[9]);
  EXPECT_EQ(ref[4], x[4]);
  EXPECT_EQ(ref[9], x[9]);
  EXPECT_NE(simd[0], x[0]);
}

}  // namespace
}  // namespace brise::kernels
