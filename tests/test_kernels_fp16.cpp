// fp16 / bf16 conversions against independent decodings and roundings computed in double.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/fp16.hpp"

namespace brise::kernels {
namespace {

uint32_t bits_of(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

float float_of(uint32_t b) {
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

// IEEE binary16 decoded from its bit fields (independent of the code under test).
double decode_f16(uint16_t h) {
  const int sign = (h >> 15) & 1;
  const int exp = (h >> 10) & 0x1F;
  const int mant = h & 0x3FF;
  double mag;
  if (exp == 0) {
    mag = std::ldexp(static_cast<double>(mant), -24);
  } else if (exp == 31) {
    mag = mant ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  } else {
    mag = std::ldexp(static_cast<double>(1024 + mant), exp - 25);
  }
  return sign ? -mag : mag;
}

// Round-to-nearest-even of a finite |x| onto a sorted grid of non-negative representable values
// (bit pattern i = grid index), with `overflow` standing for the value one step past the top:
// anything nearer to it than to the largest finite value (or tied, the largest being odd) is Inf.
uint32_t round_to_grid(double ax, const std::vector<double>& grid, double overflow,
                       uint32_t inf_bits) {
  auto hi = std::lower_bound(grid.begin(), grid.end(), ax);
  if (hi != grid.end() && *hi == ax) return static_cast<uint32_t>(hi - grid.begin());
  const uint32_t lo_i = static_cast<uint32_t>(hi - grid.begin()) - 1;  // ax > grid[0] == 0
  const double lo = grid[lo_i];
  const double up = hi == grid.end() ? overflow : *hi;
  const uint32_t up_i = lo_i + 1;  // == inf_bits when past the grid
  const double dl = ax - lo, du = up - ax;
  if (dl < du) return lo_i;
  if (du < dl) return up_i == grid.size() ? inf_bits : up_i;
  return (lo_i & 1u) ? (up_i == grid.size() ? inf_bits : up_i) : lo_i;
}

const std::vector<double>& f16_grid() {
  static const std::vector<double> grid = [] {
    std::vector<double> g;
    for (uint32_t h = 0; h < 0x7C00; ++h) g.push_back(decode_f16(static_cast<uint16_t>(h)));
    return g;
  }();
  return grid;
}

uint16_t expected_f16(float x) {
  const uint32_t sign = bits_of(x) >> 31 << 15;
  const double ax = std::fabs(static_cast<double>(x));
  if (std::isinf(ax)) return static_cast<uint16_t>(sign | 0x7C00);
  return static_cast<uint16_t>(sign | round_to_grid(ax, f16_grid(), 65536.0, 0x7C00));
}

// bf16 value of pattern b (no grid needed: a bf16 is the top half of an f32).
uint16_t expected_bf16(float x) {
  const uint32_t b = bits_of(x);
  const uint32_t sign = b >> 31 << 15;
  const double ax = std::fabs(static_cast<double>(x));
  if (std::isinf(ax)) return static_cast<uint16_t>(sign | 0x7F80);
  const uint32_t lo = (b & 0x7FFFFFFF) >> 16;  // truncation towards zero
  const double lo_v = static_cast<double>(float_of(lo << 16));
  const double up_v =
      lo == 0x7F7F ? std::ldexp(1.0, 128) : static_cast<double>(float_of((lo + 1) << 16));
  const double dl = ax - lo_v, du = up_v - ax;
  const uint32_t r = (dl < du || (dl == du && !(lo & 1u))) ? lo : lo + 1;
  return static_cast<uint16_t>(sign | r);
}

// f32 values that stress rounding: every half value, the midpoints between neighbours and one
// f32 ulp either side, the overflow and subnormal boundaries, and random bit patterns.
std::vector<float> f32_probe_values() {
  std::vector<float> v;
  const auto& grid = f16_grid();
  for (size_t i = 0; i < grid.size(); ++i) {
    const float g = static_cast<float>(grid[i]);
    v.push_back(g);
    const double next = i + 1 < grid.size() ? grid[i + 1] : 65536.0;
    const float mid = static_cast<float>((grid[i] + next) / 2);  // exact: 12 significant bits
    v.push_back(mid);
    v.push_back(std::nextafter(mid, 0.0f));
    v.push_back(std::nextafter(mid, 1e30f));
  }
  for (float f : {65504.0f, 65519.0f, 65519.996f, 65520.0f, 65536.0f, 1e10f, 3.4e38f, 0x1p-24f,
                  0x1p-25f, 0x1.000002p-25f, 0x1.8p-24f, 0x1p-26f, 1e-45f, 0x1p-14f,
                  std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max()})
    v.push_back(f);
  std::mt19937 rng(1234);
  for (int i = 0; i < 400000; ++i) v.push_back(float_of(static_cast<uint32_t>(rng())));
  std::uniform_real_distribution<float> small(-70000.0f, 70000.0f);
  for (int i = 0; i < 100000; ++i) v.push_back(small(rng));
  const size_t n = v.size();
  for (size_t i = 0; i < n; ++i) v.push_back(-v[i]);
  return v;
}

TEST(Fp16, DecodeAllPatternsMatchesBitFieldDecoding) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float got = f16_to_f32(static_cast<uint16_t>(h));
    const double want = decode_f16(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << h;
      // Sign and payload kept, quiet bit set (what x86's vcvtph2ps produces).
      const uint32_t expect = ((h & 0x8000u) << 16) | 0x7FC00000u | ((h & 0x3FFu) << 13);
      ASSERT_EQ(bits_of(got), expect) << std::hex << h;
    } else {
      ASSERT_EQ(static_cast<double>(got), want) << std::hex << h;
      ASSERT_EQ(std::signbit(got), (h & 0x8000u) != 0) << std::hex << h;
    }
  }
}

TEST(Fp16, EncodeRoundsToNearestEven) {
  for (float x : f32_probe_values()) {
    if (std::isnan(x)) continue;
    ASSERT_EQ(f32_to_f16(x), expected_f16(x)) << std::hexfloat << x;
  }
}

TEST(Fp16, EncodeKeepsNaN) {
  for (uint32_t b : {0x7F800001u, 0x7FC00000u, 0xFFC00123u, 0x7FBFFFFFu, 0xFF802000u}) {
    const uint16_t h = f32_to_f16(float_of(b));
    EXPECT_EQ(h & 0x7C00u, 0x7C00u);
    EXPECT_NE(h & 0x3FFu, 0u) << "NaN must not become Inf";
    EXPECT_EQ(h & 0x200u, 0x200u) << "quiet";
    EXPECT_EQ(h >> 15, b >> 31) << "sign";
  }
}

TEST(Fp16, Bf16EncodeRoundsToNearestEven) {
  for (float x : f32_probe_values()) {
    if (std::isnan(x)) continue;
    ASSERT_EQ(f32_to_bf16(x), expected_bf16(x)) << std::hexfloat << x;
  }
  // Halfway cases built explicitly: ties go to the even neighbour.
  EXPECT_EQ(f32_to_bf16(float_of(0x3F808000u)), 0x3F80u);  // 1 + 2^-8: tie, 0x3F80 is even
  EXPECT_EQ(f32_to_bf16(float_of(0x3F818000u)), 0x3F82u);  // tie, 0x3F81 odd -> up
  EXPECT_EQ(f32_to_bf16(float_of(0x7F7F8000u)), 0x7F80u);  // tie at the top -> Inf
  EXPECT_EQ(f32_to_bf16(float_of(0x7F7F7FFFu)), 0x7F7Fu);  // just below -> max finite
}

TEST(Fp16, Bf16KeepsNaNQuiet) {
  for (uint32_t b : {0x7F800001u, 0x7FC00000u, 0xFF800001u, 0x7F80FFFFu}) {
    const uint16_t h = f32_to_bf16(float_of(b));
    EXPECT_TRUE(std::isnan(bf16_to_f32(h))) << std::hex << b;
    EXPECT_EQ(h & 0x40u, 0x40u) << "quiet";
    EXPECT_EQ(h >> 15, b >> 31) << "sign";
  }
}

TEST(Fp16, Bf16DecodeIsTopHalf) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    ASSERT_EQ(bits_of(f), h << 16);
  }
}

// Bulk conversions equal the scalar ones bit for bit, for every length tail.
TEST(Fp16, BulkMatchesScalar) {
  std::vector<uint16_t> all(65536);
  for (uint32_t h = 0; h < 65536; ++h) all[h] = static_cast<uint16_t>(h);
  std::vector<float> f(all.size()), f_ref(all.size());
  convert_f16_to_f32(all.data(), f.data(), all.size());
  convert_f16_to_f32_ref(all.data(), f_ref.data(), all.size());
  ASSERT_EQ(0, std::memcmp(f.data(), f_ref.data(), f.size() * sizeof(float)));
  convert_bf16_to_f32(all.data(), f.data(), all.size());
  convert_bf16_to_f32_ref(all.data(), f_ref.data(), all.size());
  ASSERT_EQ(0, std::memcmp(f.data(), f_ref.data(), f.size() * sizeof(float)));

  std::vector<float> x = f32_probe_values();
  for (uint32_t b : {0x7F800001u, 0x7FC00000u, 0xFFC00123u, 0x7FBFFFFFu, 0x7F800000u, 0x1u})
    x.push_back(float_of(b));
  std::vector<uint16_t> h(x.size()), h_ref(x.size());
  convert_f32_to_f16(x.data(), h.data(), x.size());
  convert_f32_to_f16_ref(x.data(), h_ref.data(), x.size());
  ASSERT_EQ(h, h_ref);
  convert_f32_to_bf16(x.data(), h.data(), x.size());
  convert_f32_to_bf16_ref(x.data(), h_ref.data(), x.size());
  ASSERT_EQ(h, h_ref);

  // Short lengths and offsets exercise the partial-batch paths; nothing past n is written.
  for (size_t off = 0; off < 3; ++off) {
    for (size_t n = 0; n <= 40; ++n) {
      std::vector<uint16_t> out(n + 8, 0xABCD), out_ref(n + 8, 0xABCD);
      convert_f32_to_f16(x.data() + off, out.data(), n);
      convert_f32_to_f16_ref(x.data() + off, out_ref.data(), n);
      ASSERT_EQ(out, out_ref) << n;
      convert_f32_to_bf16(x.data() + off, out.data(), n);
      convert_f32_to_bf16_ref(x.data() + off, out_ref.data(), n);
      ASSERT_EQ(out, out_ref) << n;
      std::vector<float> g(n + 8, 7.0f), g_ref(n + 8, 7.0f);
      convert_f16_to_f32(all.data() + 31000 + off, g.data(), n);
      convert_f16_to_f32_ref(all.data() + 31000 + off, g_ref.data(), n);
      ASSERT_EQ(0, std::memcmp(g.data(), g_ref.data(), g.size() * sizeof(float))) << n;
      convert_bf16_to_f32(all.data() + 31000 + off, g.data(), n);
      convert_bf16_to_f32_ref(all.data() + 31000 + off, g_ref.data(), n);
      ASSERT_EQ(0, std::memcmp(g.data(), g_ref.data(), g.size() * sizeof(float))) << n;
    }
  }
}

}  // namespace
}  // namespace brise::kernels
