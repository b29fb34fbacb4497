// Q8_0 / Q4_0: SIMD == scalar reference bit for bit, hand-computed blocks from ggml's formulas,
// round-trip error bounds, and defined behaviour on non-finite input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/fp16.hpp"
#include "kernels/matmul.hpp"
#include "kernels/type_traits.hpp"
#include "support/rounding_block.hpp"

namespace brise::kernels {
namespace {

// The two block layouts as ggml-common.h defines them, and their row functions through the
// registry: the kernel set's SIMD encoder/decoder, and the codec's scalar reference.
constexpr size_t kQuantBlock = 32;
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18);

const TypeTraits& q8_0() {
  return *find_type("q8_0");
}
const TypeTraits& q4_0() {
  return *find_type("q4_0");
}
void quantize_row_q8_0(const float* x, BlockQ8_0* y, size_t n) {
  encode_row(q8_0(), x, y, n);
}
void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, size_t n) {
  q8_0().encode_row_ref(x, y, n);
}
void quantize_row_q4_0(const float* x, BlockQ4_0* y, size_t n) {
  encode_row(q4_0(), x, y, n);
}
void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, size_t n) {
  q4_0().encode_row_ref(x, y, n);
}
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, size_t n) {
  decode_row(q8_0(), x, y, n);
}
void dequantize_row_q8_0_ref(const BlockQ8_0* x, float* y, size_t n) {
  q8_0().decode_row_ref(x, y, n);
}
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, size_t n) {
  decode_row(q4_0(), x, y, n);
}
void dequantize_row_q4_0_ref(const BlockQ4_0* x, float* y, size_t n) {
  q4_0().decode_row_ref(x, y, n);
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

template <class Block>
bool same_bytes(const std::vector<Block>& a, const std::vector<Block>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(Block)) == 0;
}

// Rows that cover the interesting cases block by block.
std::vector<std::vector<float>> test_rows() {
  std::vector<std::vector<float>> rows;
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t n : {32u, 64u, 96u, 160u, 1024u, 4096u}) {
    for (float scale : {1.0f, 1e-3f, 300.0f, 1e-30f, 7e4f}) {
      std::vector<float> r(n);
      for (auto& v : r) v = normal(rng) * scale;
      rows.push_back(r);
    }
  }
  rows.push_back(std::vector<float>(64, 0.0f));   // all zeros
  rows.push_back(std::vector<float>(64, -0.0f));  // all negative zeros
  std::vector<float> huge(64, 0.5f);
  huge[5] = 1e30f;  // one huge value (its fp16 scale overflows to Inf)
  huge[40] = -3e38f;
  rows.push_back(huge);
  std::vector<float> neg(96);
  for (size_t i = 0; i < neg.size(); ++i) neg[i] = -static_cast<float>(i % 32) - 0.25f;
  rows.push_back(neg);  // all negative
  std::vector<float> ties(64);
  for (size_t i = 0; i < ties.size(); ++i) ties[i] = static_cast<float>(i % 7) - 3.0f;
  ties[9] = -6.0f;
  ties[20] = 6.0f;  // equal magnitudes: the first one (negative) sets the Q4_0 sign
  ties[33] = 6.0f;
  ties[50] = -6.0f;
  rows.push_back(ties);
  std::vector<float> halves(32);  // x / d lands exactly on .5: round half away from zero
  for (size_t i = 0; i < 32; ++i) halves[i] = static_cast<float>(i) - 15.5f;
  halves[0] = 127.0f;
  rows.push_back(halves);
  std::vector<float> subnormal(32, 1e-41f);
  subnormal[3] = -2e-40f;  // 1 / d overflows to Inf here
  subnormal[7] = 0.0f;
  rows.push_back(subnormal);
  std::vector<float> nonfinite(128, 1.0f);
  nonfinite[2] = kNaN;    // block 0: a NaN among finite values
  nonfinite[33] = kInf;   // block 1: +Inf
  nonfinite[70] = -kInf;  // block 2: -Inf and a NaN
  nonfinite[71] = kNaN;
  for (size_t i = 96; i < 128; ++i) nonfinite[i] = kNaN;  // block 3: all NaN
  rows.push_back(nonfinite);
  return rows;
}

TEST(Quant, Q8SimdMatchesReferenceBitwise) {
  for (const auto& x : test_rows()) {
    const size_t nb = x.size() / kQuantBlock;
    std::vector<BlockQ8_0> a(nb), b(nb);
    quantize_row_q8_0(x.data(), a.data(), x.size());
    quantize_row_q8_0_ref(x.data(), b.data(), x.size());
    ASSERT_TRUE(same_bytes(a, b)) << "n = " << x.size();
    std::vector<float> da(x.size()), db(x.size());
    dequantize_row_q8_0(a.data(), da.data(), x.size());
    dequantize_row_q8_0_ref(a.data(), db.data(), x.size());
    ASSERT_EQ(0, std::memcmp(da.data(), db.data(), da.size() * sizeof(float)));
  }
}

TEST(Quant, Q4SimdMatchesReferenceBitwise) {
  for (const auto& x : test_rows()) {
    const size_t nb = x.size() / kQuantBlock;
    std::vector<BlockQ4_0> a(nb), b(nb);
    quantize_row_q4_0(x.data(), a.data(), x.size());
    quantize_row_q4_0_ref(x.data(), b.data(), x.size());
    ASSERT_TRUE(same_bytes(a, b)) << "n = " << x.size();
    std::vector<float> da(x.size()), db(x.size());
    dequantize_row_q4_0(a.data(), da.data(), x.size());
    dequantize_row_q4_0_ref(a.data(), db.data(), x.size());
    ASSERT_EQ(0, std::memcmp(da.data(), db.data(), da.size() * sizeof(float)));
  }
}

TEST(Quant, DequantizeOfArbitraryBlocksMatchesReference) {
  std::mt19937 rng(7);
  std::vector<BlockQ8_0> q8(64);
  std::vector<BlockQ4_0> q4(64);
  for (size_t i = 0; i < q8.size(); ++i) {
    q8[i].d = static_cast<uint16_t>(rng() % 0x7C00);  // every finite positive scale
    q4[i].d = static_cast<uint16_t>(rng() % 0x7C00 | 0x8000);
    for (auto& q : q8[i].qs) q = static_cast<int8_t>(rng());
    for (auto& q : q4[i].qs) q = static_cast<uint8_t>(rng());
  }
  const size_t n = 64 * kQuantBlock;
  std::vector<float> a(n), b(n);
  dequantize_row_q8_0(q8.data(), a.data(), n);
  dequantize_row_q8_0_ref(q8.data(), b.data(), n);
  ASSERT_EQ(0, std::memcmp(a.data(), b.data(), n * sizeof(float)));
  dequantize_row_q4_0(q4.data(), a.data(), n);
  dequantize_row_q4_0_ref(q4.data(), b.data(), n);
  ASSERT_EQ(0, std::memcmp(a.data(), b.data(), n * sizeof(float)));
}

// Hand-computed from ggml's formulas: amax = 127 gives d = 1 (fp16 0x3C00), id = 1, so
// q = roundf(x), ties away from zero.
TEST(Quant, Q8HandComputedBlock) {
  const auto block = test::rounding_block();
  for (auto fn : {&quantize_row_q8_0, &quantize_row_q8_0_ref}) {
    BlockQ8_0 b;
    fn(block.x.data(), &b, 32);
    EXPECT_EQ(b.d, 0x3C00);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(b.qs[i], block.codes[i]) << i;
  }
  // amax = 63.5: d = 0.5 (fp16 0x3800), id = 2.
  float y[32] = {};
  y[0] = -63.5f;
  y[1] = 0.25f;  // 0.5 -> 1
  y[2] = 0.2f;   // 0.4 -> 0
  y[3] = 10.0f;  // 20
  for (auto fn : {&quantize_row_q8_0, &quantize_row_q8_0_ref}) {
    BlockQ8_0 b;
    fn(y, &b, 32);
    EXPECT_EQ(b.d, 0x3800);
    EXPECT_EQ(b.qs[0], -127);
    EXPECT_EQ(b.qs[1], 1);
    EXPECT_EQ(b.qs[2], 0);
    EXPECT_EQ(b.qs[3], 20);
    for (int i = 4; i < 32; ++i) EXPECT_EQ(b.qs[i], 0);
  }
}

// Q4_0 by hand: the first value of largest magnitude is -8, so d = -8 / -8 = 1 (0x3C00), id = 1,
// q = min(15, trunc(x + 8.5)); element j in the low nibble of byte j, j + 16 in the high nibble.
TEST(Quant, Q4HandComputedBlock) {
  float x[32] = {};
  x[0] = -8.0f;   // q 0
  x[1] = 7.4f;    // 15.9 -> 15
  x[2] = 8.0f;    // 16.5 -> 16 -> clamped 15 (same magnitude as x[0], but later)
  x[3] = 0.4f;    // 8.9 -> 8
  x[4] = -0.6f;   // 7.9 -> 7
  x[5] = 2.5f;    // 11.0 -> 11
  x[16] = -3.2f;  // 5.3 -> 5 (high nibble of byte 0)
  x[17] = 1.0f;   // 9.5 -> 9
  x[31] = -7.6f;  // 0.9 -> 0
  uint8_t expect[16];
  const int lo[16] = {0, 15, 15, 8, 7, 11, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8};
  const int hi[16] = {5, 9, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 0};
  for (int j = 0; j < 16; ++j) expect[j] = static_cast<uint8_t>(lo[j] | (hi[j] << 4));
  for (auto fn : {&quantize_row_q4_0, &quantize_row_q4_0_ref}) {
    BlockQ4_0 b;
    fn(x, &b, 32);
    EXPECT_EQ(b.d, 0x3C00);
    for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], expect[j]) << j;
  }
  // Ties in magnitude: the first (+5 here) decides the sign: d = 5 / -8 = -0.625 (0xB900),
  // id = -1.6; x = 5 -> trunc(-8 + 8.5) = 0, x = -5 -> 16.5 -> 15, x = 0 -> 8.
  float y[32] = {};
  y[3] = 5.0f;
  y[10] = -5.0f;
  for (auto fn : {&quantize_row_q4_0, &quantize_row_q4_0_ref}) {
    BlockQ4_0 b;
    fn(y, &b, 32);
    EXPECT_EQ(b.d, 0xB900);
    for (int j = 0; j < 16; ++j) {
      const int want = j == 3 ? 0 : j == 10 ? 15 : 8;
      EXPECT_EQ(b.qs[j], want | (8 << 4)) << j;
    }
  }
}

// Round-trip bounds, with d32 = the scale before fp16 rounding and d16 = the stored one:
//   q8_0: |x - x'| <= d32 / 2 + |q| |d16 - d32| + slack      (q = stored code)
//   q4_0: |x - x'| <= |d32| / 2 + 8 |d16 - d32| + slack for codes below 15, and |d32| instead
//         of |d32| / 2 at the clamped top code 15 (x / d up to 8 maps to 7),
// where slack = 2^-20 |x'| + 1e-6 |d32| covers the f32 roundings of id, x * id and d16 * q.
TEST(Quant, RoundTripErrorBounds) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t n : {32u, 256u, 4096u}) {
    for (float scale : {1.0f, 0.01f, 50.0f}) {
      std::vector<float> x(n);
      for (auto& v : x) v = normal(rng) * scale;
      const size_t nb = n / kQuantBlock;
      std::vector<BlockQ8_0> q8(nb);
      std::vector<BlockQ4_0> q4(nb);
      quantize_row_q8_0(x.data(), q8.data(), n);
      quantize_row_q4_0(x.data(), q4.data(), n);
      std::vector<float> y8(n), y4(n);
      dequantize_row_q8_0(q8.data(), y8.data(), n);
      dequantize_row_q4_0(q4.data(), y4.data(), n);
      for (size_t b = 0; b < nb; ++b) {
        double amax = 0, max = 0;
        for (size_t j = 0; j < kQuantBlock; ++j) {
          const double v = x[b * kQuantBlock + j];
          if (std::fabs(v) > amax) amax = std::fabs(v), max = v;
        }
        const double d8 = amax / 127, d8h = f16_to_f32(q8[b].d);
        const double d4 = max / -8, d4h = f16_to_f32(q4[b].d);
        for (size_t j = 0; j < kQuantBlock; ++j) {
          const size_t i = b * kQuantBlock + j;
          const int code8 = q8[b].qs[j];
          const double bound8 = d8 / 2 + std::abs(code8) * std::fabs(d8h - d8) +
                                std::ldexp(std::fabs(y8[i]), -20) + 1e-6 * d8;
          ASSERT_LE(std::fabs(x[i] - y8[i]), bound8) << "q8 block " << b << " elem " << j;
          const int code4 = j < 16 ? (q4[b].qs[j] & 0x0F) : (q4[b].qs[j - kQuantBlock / 2] >> 4);
          const double bound4 = (code4 == 15 ? 1.0 : 0.5) * std::fabs(d4) +
                                8 * std::fabs(d4h - d4) + std::ldexp(std::fabs(y4[i]), -20) +
                                1e-6 * std::fabs(d4);
          ASSERT_LE(std::fabs(x[i] - y4[i]), bound4) << "q4 block " << b << " elem " << j;
        }
      }
    }
  }
}

// The documented (not ggml-defined) behaviour on NaN / Inf input.
TEST(Quant, NonFiniteInputIsDefined) {
  std::vector<float> x(96, 1.0f);
  x[2] = kNaN;    // block 0: NaN ignored for the scale, quantizes to code 0 / 0
  x[40] = kInf;   // block 1: d = Inf, id = 0
  x[64] = -kInf;  // block 2: Q4_0 d = +Inf (max = -Inf), id = 0
  for (auto fn : {&quantize_row_q8_0, &quantize_row_q8_0_ref}) {
    std::vector<BlockQ8_0> q(3);
    fn(x.data(), q.data(), x.size());
    EXPECT_EQ(q[0].d, f32_to_f16(1.0f / 127.0f));
    EXPECT_EQ(q[0].qs[2], 0);
    EXPECT_EQ(q[0].qs[0], 127);
    EXPECT_EQ(q[1].d, 0x7C00);
    for (int8_t c : q[1].qs) EXPECT_EQ(c, 0);  // finite * 0 = 0; Inf * 0 = NaN -> 0
  }
  for (auto fn : {&quantize_row_q4_0, &quantize_row_q4_0_ref}) {
    std::vector<BlockQ4_0> q(3);
    fn(x.data(), q.data(), x.size());
    EXPECT_EQ(q[0].d, f32_to_f16(-1.0f / 8.0f));
    EXPECT_EQ(q[0].qs[2] & 0x0F, 0);  // NaN -> code 0
    EXPECT_EQ(q[1].d, 0xFC00);        // -Inf
    EXPECT_EQ(q[2].d, 0x7C00);        // +Inf
    EXPECT_EQ(q[1].qs[0], 0x88);      // finite elements: x * -0 + 8.5 -> 8
  }
}

}  // namespace
}  // namespace brise::kernels
