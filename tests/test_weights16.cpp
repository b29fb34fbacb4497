// The codecs' SIMD to_weights16 (kernels/types/*.hpp, used by the row-major int8 matmul) against
// their to_int8 through the scalar reference, bit for bit, on blocks of raw bytes rather than
// quantizer output: random bytes and the extremes (all scales and mins 63, codes at both ends,
// the most negative signed scales of Q3_K, Q6_K and IQ4_XS). Run it under each kernel set
// (BRISE_ISA=avx2, ...) to test that set's version.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "kernels/matmul.hpp"
#include "kernels/type_traits.hpp"

namespace brise::kernels {
namespace {

// Where a type's fp16 d (and dmin, if any) sit in its block: raw bytes there could be NaN or
// infinite, so the test writes finite values.
struct Case {
  const char* name;
  size_t d_at;
  int dmin_at;  // -1: no dmin
};
constexpr Case kCases[] = {
    {"q4_K", 0, 2},    {"q5_K", 0, 2},    {"q6_K", 208, -1},
    {"q3_K", 108, -1}, {"iq4_xs", 0, -1}, {"q2_K", 80, 82},
};

// Fills of a row's blocks: random bytes, then constant bytes that put every field at an end.
constexpr int kRandom = -1;
constexpr int kFills[] = {kRandom, 0xFF, 0x00, 0x80, 0x7F, 0xF0, 0x0F, 0x55, 0xAA, kRandom};

bool same_bits(float a, float b) {
  uint32_t x, y;
  std::memcpy(&x, &a, 4);
  std::memcpy(&y, &b, 4);
  return x == y;
}

TEST(Weights16, SimdDecodeMatchesTheReferenceOnRawBlocks) {
  constexpr size_t kCols = 3 * kQ8KBlock;
  constexpr size_t kTokens = 35;  // more than one token tile
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<float> normal(0.0f, 1.0f);

  // Activations: random, then tokens of ±large values (codes ±127) and of all zeros.
  std::vector<float> x(kTokens * kCols);
  for (size_t t = 0; t < kTokens; ++t)
    for (size_t k = 0; k < kCols; ++k)
      x[t * kCols + k] = t == 1   ? (k % 2 ? 1000.0f : -1000.0f)
                         : t == 2 ? 0.0f
                         : t == 3 ? 1000.0f
                                  : normal(rng);
  ActivationFormats q8k;
  q8k.add(ActivationFormat::Q8K);
  QuantizedInput quantized;
  const MatmulInput act = quantized.quantize(x.data(), kCols, kTokens, kCols, q8k);

  for (const Case& c : kCases) {
    const TypeTraits* type = find_type(c.name);
    ASSERT_NE(type, nullptr) << c.name;
    const size_t block_bytes = type->block_bytes;
    const size_t row_size = kCols / kQ8KBlock * block_bytes;
    const size_t rows = std::size(kFills) * 3;
    std::vector<uint8_t> bytes(rows * row_size);
    for (size_t r = 0; r < rows; ++r) {
      const int fill = kFills[r % std::size(kFills)];
      uint8_t* row = bytes.data() + r * row_size;
      for (size_t i = 0; i < row_size; ++i)
        row[i] = static_cast<uint8_t>(fill == kRandom ? byte(rng) : fill);
      for (size_t b = 0; b < kCols / kQ8KBlock; ++b) {
        uint8_t* block = row + b * block_bytes;
        // fp16 0.0123, 0.5, 1.0, 2.0 and the smallest and largest subnormals.
        const uint16_t dv[] = {0x224Du, 0x3800u, 0x3C00u, 0x4000u, 0x0001u, 0x03FFu};
        const uint16_t dd = dv[(r + b) % 6], dm = dv[(r + 2 * b + 1) % 6];
        std::memcpy(block + c.d_at, &dd, 2);
        if (c.dmin_at >= 0) std::memcpy(block + c.dmin_at, &dm, 2);
      }
    }
    const WeightMatrix w{bytes.data(), type, rows, kCols, row_size, false};
    std::vector<float> y(kTokens * rows), y_ref(kTokens * rows);
    for (size_t n : {size_t{1}, kTokens}) {
      std::fill(y.begin(), y.end(), -1.0f);
      std::fill(y_ref.begin(), y_ref.end(), -2.0f);
      matmul(w, act.tokens(0, n), y.data(), rows, 0, rows);
      matmul_ref(w, act.tokens(0, n), y_ref.data(), rows, 0, rows);
      for (size_t t = 0; t < n; ++t)
        for (size_t r = 0; r < rows; ++r)
          ASSERT_TRUE(same_bits(y[t * rows + r], y_ref[t * rows + r]))
              << c.name << " tokens=" << n << " t=" << t << " row=" << r
              << " fill=" << kFills[r % std::size(kFills)] << ": " << y[t * rows + r] << " vs "
              << y_ref[t * rows + r];
    }
  }
}

}  // namespace
}  // namespace brise::kernels
