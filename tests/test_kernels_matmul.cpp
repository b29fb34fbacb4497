// matmul against the scalar references for every type of the registry on awkward shapes, the int8
// path against an independent double-precision sum, packing, activation quantization, and the
// determinism contract: one token vs a chunk, any row split, any token tiling give the same bits.
// Run under every kernel set this CPU has (ctest's isa:* copies set BRISE_ISA).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/kernel_set.hpp"
#include "kernels/matmul.hpp"
#include "kernels/type_traits.hpp"
#include "support/rounding_block.hpp"

namespace brise::kernels {
namespace {

// A weight matrix of random values stored in `type`: as in a file (rows padded by a few bytes
// for float types, so that row_bytes > the row's size is exercised too), and packed for the
// kernels as the model loader does for the kernel set in use (packs_rows; row-major types are
// read in the file's layout unless the set packs them), or as `pack` says.
struct TestMatrix {
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> packed_bytes;
  WeightMatrix file;    // the file's layout: what the references read
  WeightMatrix kernel;  // what the kernels read
};

TestMatrix make_matrix(const TypeTraits& type, size_t rows, size_t cols, uint32_t seed,
                       std::optional<bool> pack = std::nullopt) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const size_t size = *row_bytes(type, cols);
  const size_t stride = type.quantized ? size : size + 6;
  TestMatrix m;
  m.bytes.assign(rows * stride + 64, 0);
  std::vector<float> row(cols);
  for (size_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = normal(rng);
    type.encode_row_ref(row.data(), m.bytes.data() + r * stride, cols);
  }
  m.file = WeightMatrix{m.bytes.data(), &type, rows, cols, stride, false};
  if (!pack.value_or(packs_rows(type))) {
    m.kernel = m.file;
    return m;
  }
  m.kernel = WeightMatrix{nullptr, &type, rows, cols, size, true};
  m.packed_bytes.assign(packed_bytes(m.kernel), 0xA5);
  pack_groups(m.file, m.packed_bytes.data(), 0, (rows + kMatmulRowAlign - 1) / kMatmulRowAlign);
  m.kernel.data = m.packed_bytes.data();
  return m;
}

std::vector<float> make_activations(size_t n_tokens, size_t stride, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n_tokens * stride + 16);
  for (auto& v : x) v = normal(rng);
  return x;
}

// n tokens of `cols` values (row t at x + t * x_stride) as a matmul input quantized into `q`:
// the f32 rows, int8 blocks of 32, and when cols allows, Q8_K blocks of 256 (for the K-quants).
// Every quantized type finds its format in it, so the matmul multiplies it with int8 activations.
MatmulInput quantize(QuantizedInput& q, const float* x, size_t x_stride, size_t n, size_t cols) {
  ActivationFormats formats;
  formats.add(ActivationFormat::Q8);
  if (cols % kQ8KBlock == 0) formats.add(ActivationFormat::Q8K);
  return q.quantize(x, x_stride, n, cols, formats);
}

// The same rows as f32 only: quantized types are multiplied in the exact mode.
MatmulInput f32_input(const std::vector<float>& x, size_t x_stride, size_t n) {
  return {x.data(), x_stride, n};
}

// Row r decoded with the type's scalar reference.
std::vector<float> decoded_row(const WeightMatrix& w, size_t r) {
  std::vector<float> e(w.cols);
  w.type->decode_row_ref(static_cast<const uint8_t*>(w.data) + r * w.row_bytes, e.data(), w.cols);
  return e;
}

// sum_k w_k x_k (and sum_k |w_k x_k|, for the tolerances) in double, from the decoded rows.
struct DoubleDots {
  std::vector<double> sum, abs;
};
DoubleDots double_dots(const WeightMatrix& w, const float* x, size_t x_stride, size_t n_tokens) {
  DoubleDots d{std::vector<double>(n_tokens * w.rows), std::vector<double>(n_tokens * w.rows)};
  for (size_t r = 0; r < w.rows; ++r) {
    const auto e = decoded_row(w, r);
    for (size_t t = 0; t < n_tokens; ++t) {
      double s = 0, a = 0;
      for (size_t k = 0; k < w.cols; ++k) {
        const double p = double(e[k]) * x[t * x_stride + k];
        s += p;
        a += std::fabs(p);
      }
      d.sum[t * w.rows + r] = s;
      d.abs[t * w.rows + r] = a;
    }
  }
  return d;
}

bool same_bits(float a, float b) {
  uint32_t x, y;
  std::memcpy(&x, &a, 4);
  std::memcpy(&y, &b, 4);
  return x == y;
}

std::string label(const TypeTraits& type, size_t rows, size_t cols, size_t n_tokens) {
  return std::string(type.name) + " rows=" + std::to_string(rows) +
         " cols=" + std::to_string(cols) + " tokens=" + std::to_string(n_tokens);
}

// |y - exact| <= 2e-5 * sum_k |w_k x_k| + 1e-6 for the f32 sums against the same products summed
// in double: random data's rounding errors grow ~sqrt(cols) * 2^-24 of that sum (~1e-6 at 14368
// columns), while one dropped or doubled term (~1/cols of it, >= 7e-5) is far above the bound.
constexpr double kRelTol = 2e-5;

std::vector<size_t> test_cols(const TypeTraits& type) {
  if (type.block_elems == 256) return {256, 768, 4096, 14336};
  std::vector<size_t> cols = {32, 96, 4128};
  if (!type.quantized) cols.insert(cols.end(), {1, 7, 21, 417});  // partial last batch
  cols.push_back(14368);  // long rows (float: split into k blocks)
  return cols;
}

TEST(Matmul, MatchesReferenceOnAwkwardShapes) {
  std::vector<size_t> token_counts;
  for (size_t n = 1; n <= 13; ++n) token_counts.push_back(n);
  token_counts.push_back(64);
  for (const TypeTraits& type : all_types()) {
    for (size_t cols : test_cols(type)) {
      for (size_t rows : {1u, 7u, 17u, 33u}) {
        if (cols > 10000 && rows != 17) continue;  // keep the scalar reference's work small
        const TestMatrix m = make_matrix(type, rows, cols, static_cast<uint32_t>(rows * 31 + cols));
        const size_t x_stride = cols + (type.quantized ? 0 : 3);
        const auto x = make_activations(64, x_stride, static_cast<uint32_t>(cols));
        const DoubleDots dots = double_dots(m.file, x.data(), x_stride, 64);
        const auto& mag = dots.abs;
        const auto& exact = dots.sum;
        QuantizedInput q;
        const MatmulInput xq = quantize(q, x.data(), x_stride, 64, cols);
        for (size_t n : token_counts) {
          const size_t y_stride = rows + 2;
          std::vector<float> y(n * y_stride, -7.0f), y_ref(n * y_stride, -7.0f);
          matmul(m.kernel, f32_input(x, x_stride, n), y.data(), y_stride, 0, rows);
          matmul_ref(m.file, f32_input(x, x_stride, n), y_ref.data(), y_stride, 0, rows);
          for (size_t t = 0; t < n; ++t) {
            for (size_t r = 0; r < rows; ++r) {
              const float got = y[t * y_stride + r], want = y_ref[t * y_stride + r];
              // The reference's order: equal bits; and close to the sum in double.
              ASSERT_TRUE(same_bits(got, want)) << label(type, rows, cols, n) << " t=" << t
                                                << " r=" << r << ": " << got << " vs " << want;
              ASSERT_NEAR(got, exact[t * rows + r], kRelTol * mag[t * rows + r] + 1e-6)
                  << label(type, rows, cols, n) << " t=" << t << " r=" << r;
            }
            for (size_t r = rows; r < y_stride; ++r)  // padding untouched
              ASSERT_EQ(y[t * y_stride + r], -7.0f) << label(type, rows, cols, n);
          }
          if (!type.quantized) continue;
          std::vector<float> y8(n * y_stride, -7.0f), y8_ref(n * y_stride, -7.0f);
          matmul(m.kernel, xq.tokens(0, n), y8.data(), y_stride, 0, rows);
          matmul_ref(m.file, xq.tokens(0, n), y8_ref.data(), y_stride, 0, rows);
          for (size_t t = 0; t < n; ++t) {
            for (size_t r = 0; r < rows; ++r)
              ASSERT_TRUE(same_bits(y8[t * y_stride + r], y8_ref[t * y_stride + r]))
                  << "int8 " << label(type, rows, cols, n) << " t=" << t << " r=" << r << ": "
                  << y8[t * y_stride + r] << " vs " << y8_ref[t * y_stride + r];
            for (size_t r = rows; r < y_stride; ++r)
              ASSERT_EQ(y8[t * y_stride + r], -7.0f) << label(type, rows, cols, n);
          }
        }
      }
    }
  }
}

// The 256-element types' prefill lays out a group of rows' block once per panel of 128 tokens:
// token counts across panels, and a row range starting inside the matrix, equal the reference.
TEST(Matmul, Int8KQuantPrefillAcrossTokenPanels) {
  const size_t rows = 37, cols = 512;
  for (const TypeTraits& type : all_types()) {
    if (type.activation != ActivationFormat::Q8K) continue;
    const TestMatrix m = make_matrix(type, rows, cols, 977);
    for (size_t n : {129u, 150u, 300u}) {
      const auto x = make_activations(n, cols, static_cast<uint32_t>(n));
      QuantizedInput q;
      const MatmulInput xq = quantize(q, x.data(), cols, n, cols);
      for (size_t begin : {0u, 16u}) {
        std::vector<float> y(n * rows, -7.0f), y_ref(n * rows, -7.0f);
        matmul(m.kernel, xq, y.data(), rows, begin, rows);
        matmul_ref(m.file, xq, y_ref.data(), rows, begin, rows);
        for (size_t t = 0; t < n; ++t)
          for (size_t r = 0; r < rows; ++r)
            ASSERT_TRUE(same_bits(y[t * rows + r], y_ref[t * rows + r]))
                << label(type, rows, cols, n) << " rows from " << begin << " t=" << t << " r=" << r
                << ": " << y[t * rows + r] << " vs " << y_ref[t * rows + r];
      }
    }
  }
}

// A row-major type may be packed in word units (the loader does so when the kernel set has a
// 16-row one-token kernel for it, packs_rows): the kernels give the reference's bits from either
// form, for every path (exact, int8 one token, the small-chunk and the prefill paths), on a
// matrix whose last group is partial and on a row range after the first group.
TEST(Matmul, RowMajorTypesPackedOrStoredGiveTheReferenceBits) {
  const size_t rows = 37;
  for (const TypeTraits& type : all_types()) {
    if (!type.row_major) {
      EXPECT_TRUE(packs_rows(type)) << type.name;
      continue;
    }
    const size_t cols = type.block_elems == kQ8KBlock ? 768 : 96;
    for (bool pack : {false, true}) {
      const TestMatrix m = make_matrix(type, rows, cols, 41, pack);
      ASSERT_EQ(m.kernel.packed, pack);
      const auto x = make_activations(140, cols, 3);
      QuantizedInput q;
      const MatmulInput xq = quantize(q, x.data(), cols, 140, cols);
      for (size_t n : {1u, 2u, 3u, 4u, 7u, 13u, 140u}) {
        for (size_t begin : {0u, 16u}) {
          const auto label_of = [&](const char* path) {
            return std::string(path) + " " + label(type, rows, cols, n) +
                   (pack ? " packed" : " stored") + " rows from " + std::to_string(begin);
          };
          std::vector<float> y(n * rows, -7.0f), y_ref(n * rows, -7.0f);
          if (n <= 13) {  // exact mode (f32 activations): the reference is slow
            matmul(m.kernel, f32_input(x, cols, n), y.data(), rows, begin, rows);
            matmul_ref(m.file, f32_input(x, cols, n), y_ref.data(), rows, begin, rows);
            for (size_t j = 0; j < y.size(); ++j)
              ASSERT_TRUE(same_bits(y[j], y_ref[j])) << label_of("exact") << " j=" << j;
          }
          matmul(m.kernel, xq.tokens(0, n), y.data(), rows, begin, rows);
          matmul_ref(m.file, xq.tokens(0, n), y_ref.data(), rows, begin, rows);
          for (size_t j = 0; j < y.size(); ++j)
            ASSERT_TRUE(same_bits(y[j], y_ref[j])) << label_of("int8") << " j=" << j;
        }
      }
    }
  }
}

// The int8 path computes sum_b d_w,b * d_x,b * sum_j code_w * code_x: checked against that sum
// evaluated independently in double from the decoded weights and the dequantized activations,
// and against the f32 product within the activations' rounding (|x - d q| <= d / 2).
TEST(Matmul, Int8PathComputesTheQuantizedProduct) {
  for (const TypeTraits& type : all_types()) {
    if (!type.quantized) continue;
    for (size_t cols : {256u, 4096u, 14336u}) {
      const size_t rows = 37, n = 5;
      const TestMatrix m = make_matrix(type, rows, cols, static_cast<uint32_t>(cols + 3));
      const auto x = make_activations(n, cols, 11);
      QuantizedInput q;
      const MatmulInput xq = quantize(q, x.data(), cols, n, cols);
      std::vector<float> y(n * rows);
      const bool q8k = type.activation == ActivationFormat::Q8K;
      const size_t block = q8k ? kQ8KBlock : kQ8Block;
      const int8_t* codes = q8k ? xq.q8k.q : xq.q8.q;
      const float* scales = q8k ? xq.q8k.d : xq.q8.d;
      matmul(m.kernel, xq, y.data(), rows, 0, rows);
      for (size_t r = 0; r < rows; ++r) {
        const auto w = decoded_row(m.file, r);
        for (size_t t = 0; t < n; ++t) {
          double quantized = 0, exact = 0, mag = 0, rounding = 0;
          for (size_t k = 0; k < cols; ++k) {
            const double dx = scales[t * cols / block + k / block];
            quantized += double(w[k]) * dx * codes[t * cols + k];
            exact += double(w[k]) * x[t * cols + k];
            mag += std::fabs(double(w[k]) * x[t * cols + k]);
            rounding += std::fabs(double(w[k])) * dx / 2;
          }
          const double got = y[t * rows + r];
          ASSERT_NEAR(got, quantized, 1e-5 * mag + 1e-6) << label(type, rows, cols, n);
          ASSERT_LE(std::fabs(got - exact), rounding * 1.001 + 1e-5 * mag)
              << label(type, rows, cols, n);
        }
      }
    }
  }
}

// Shapes for the bit-identity checks: one block, a block multiple that is not a multiple of 64,
// a long row, one long enough to be split into k blocks (float: accumulators spilled between
// blocks, like Mistral's 14336-wide w2), and (float types) partial last batches.
std::vector<size_t> identity_cols(const TypeTraits& type) {
  if (type.block_elems == 256) return {256, 768, 4096, 14336};
  std::vector<size_t> c = {32, 96, 4128, 14368};
  if (!type.quantized) c.insert(c.end(), {21, 1000, 4100});
  return c;
}

// Every path of a type: f32 activations, and for quantized types int8 ones.
struct Path {
  const char* name;
  bool int8;
};
std::vector<Path> paths(const TypeTraits& type) {
  if (!type.quantized) return {{"f32", false}};
  return {{"exact", false}, {"int8", true}};
}

// Tokens [t0, t0 + n) of the input through the path's activations.
void run(const TestMatrix& m, const Path& p, const MatmulInput& xq, size_t t0, size_t n, float* y,
         size_t y_stride, size_t r0, size_t r1) {
  const MatmulInput x = p.int8 ? xq : MatmulInput{xq.x, xq.x_stride, xq.n_tokens};
  matmul(m.kernel, x.tokens(t0, n), y, y_stride, r0, r1);
}

TEST(Matmul, OneTokenAndChunkAreBitIdentical) {
  constexpr size_t kRows = 37;
  for (const TypeTraits& type : all_types()) {
    for (size_t cols : identity_cols(type)) {
      const TestMatrix m = make_matrix(type, kRows, cols, static_cast<uint32_t>(cols));
      const auto x = make_activations(130, cols, 5);
      QuantizedInput q;
      const MatmulInput xq = quantize(q, x.data(), cols, 130, cols);
      for (const Path& p : paths(type)) {
        // Token-by-token (the decode path) is the baseline.
        std::vector<float> single(130 * kRows);
        for (size_t t = 0; t < 130; ++t)
          run(m, p, xq, t, 1, single.data() + t * kRows, kRows, 0, kRows);
        // Chunks of every tile remainder, more than one token block, at different offsets.
        for (size_t n : {2u, 3u, 5u, 6u, 7u, 12u, 13u, 47u, 49u, 64u, 100u, 130u}) {
          for (size_t t0 : {size_t{0}, 130 - n}) {
            std::vector<float> y(n * kRows);
            run(m, p, xq, t0, n, y.data(), kRows, 0, kRows);
            for (size_t t = 0; t < n; ++t)
              for (size_t r = 0; r < kRows; ++r)
                ASSERT_TRUE(same_bits(y[t * kRows + r], single[(t0 + t) * kRows + r]))
                    << p.name << " " << label(type, kRows, cols, n) << " t0=" << t0 << " t=" << t
                    << " r=" << r;
          }
        }
      }
    }
  }
}

TEST(Matmul, RowSplitsAreBitIdentical) {
  constexpr size_t kRows = 53;
  for (const TypeTraits& type : all_types()) {
    for (size_t cols : identity_cols(type)) {
      const TestMatrix m = make_matrix(type, kRows, cols, static_cast<uint32_t>(cols + 1));
      const auto x = make_activations(20, cols, 9);
      QuantizedInput q;
      const MatmulInput xq = quantize(q, x.data(), cols, 20, cols);
      // Packed matrices split at whole groups of 16 rows.
      const std::vector<std::vector<size_t>> splits = {
          {0, 16, 32, 48, kRows}, {0, 32, kRows}, {0, 48, kRows}, {0, 16, kRows}};
      for (const Path& p : paths(type)) {
        for (size_t n : {1u, 2u, 20u}) {
          std::vector<float> whole(n * kRows);
          run(m, p, xq, 0, n, whole.data(), kRows, 0, kRows);
          for (const auto& s : splits) {
            std::vector<float> y(n * kRows, -1.0f);
            for (size_t i = 0; i + 1 < s.size(); ++i)
              run(m, p, xq, 0, n, y.data(), kRows, s[i], s[i + 1]);
            for (size_t j = 0; j < y.size(); ++j)
              ASSERT_TRUE(same_bits(y[j], whole[j]))
                  << p.name << " " << label(type, kRows, cols, n) << " j=" << j;
          }
        }
      }
    }
  }
}

TEST(Matmul, WritesOnlyItsRowRange) {
  for (const char* name : {"f16", "q4_0"}) {
    const TestMatrix m = make_matrix(*find_type(name), 40, 64, 1);
    const auto x = make_activations(3, 64, 2);
    std::vector<float> y(3 * 40, 123.0f);
    matmul(m.kernel, f32_input(x, 64, 3), y.data(), 40, 16, 32);
    for (size_t t = 0; t < 3; ++t)
      for (size_t r = 0; r < 40; ++r)
        if (r < 16 || r >= 32)
          EXPECT_EQ(y[t * 40 + r], 123.0f) << name << " " << t << " " << r;
        else
          EXPECT_NE(y[t * 40 + r], 123.0f) << name << " " << t << " " << r;
  }
}

TEST(Matmul, RejectsBadArguments) {
  const TestMatrix m = make_matrix(*find_type("q8_0"), 20, 64, 1);
  const auto x = make_activations(1, 64, 2);
  std::vector<float> y(20);
  const auto call = [&](const WeightMatrix& w, size_t r0, size_t r1) {
    matmul(w, f32_input(x, 64, 1), y.data(), 20, r0, r1);
  };
  WeightMatrix bad = m.kernel;
  bad.cols = 48;  // not a whole number of blocks
  EXPECT_THROW(call(bad, 0, 16), std::invalid_argument);
  EXPECT_THROW(call(m.kernel, 0, 21), std::invalid_argument);   // past the rows
  EXPECT_THROW(call(m.kernel, 16, 15), std::invalid_argument);  // reversed range
  EXPECT_THROW(call(m.kernel, 3, 16), std::invalid_argument);   // not whole packed groups
  EXPECT_THROW(call(m.kernel, 0, 7), std::invalid_argument);
  EXPECT_THROW(call(m.file, 0, 16), std::invalid_argument);  // not packed
  bad = m.kernel;
  bad.row_bytes = 10;
  EXPECT_THROW(call(bad, 0, 16), std::invalid_argument);
  bad = m.kernel;
  bad.type = nullptr;
  EXPECT_THROW(call(bad, 0, 16), std::invalid_argument);
  const TestMatrix f = make_matrix(*find_type("f16"), 4, 64, 1);
  EXPECT_THROW(call(f.file, 0, 4), std::invalid_argument);  // not packed
  EXPECT_THROW(matmul_ref(f.kernel, f32_input(x, 64, 1), y.data(), 4, 0, 4),
               std::invalid_argument);  // the reference reads the file's layout
  EXPECT_THROW(matmul(m.kernel, MatmulInput{nullptr, 64, 1}, y.data(), 20, 0, 16),
               std::invalid_argument);  // no activations
  QuantizedInput q;
  MatmulInput xq = quantize(q, x.data(), 64, 1, 64);
  xq.q8.cols = 32;  // activations of another width
  EXPECT_THROW(matmul(m.kernel, xq, y.data(), 20, 0, 16), std::invalid_argument);
  // Float weights read the f32 rows of an input quantized for other matrices.
  EXPECT_NO_THROW(matmul(f.kernel, quantize(q, x.data(), 64, 1, 64), y.data(), 4, 0, 4));
  // Each int8 format goes with its types (TypeTraits::activation): an input quantized only to
  // the other one is refused, one with no int8 form is the exact mode.
  const auto x256 = make_activations(1, 256, 3);
  const TestMatrix k = make_matrix(*find_type("q4_K"), 4, 256, 1, /*pack=*/false);
  const TestMatrix q40 = make_matrix(*find_type("q4_0"), 4, 256, 1);
  const auto only = [&](ActivationFormat format) {
    ActivationFormats formats;
    formats.add(format);
    return q.quantize(x256.data(), 256, 1, 256, formats);
  };
  EXPECT_THROW(matmul(k.kernel, only(ActivationFormat::Q8), y.data(), 4, 0, 4),
               std::invalid_argument);
  EXPECT_THROW(matmul(q40.kernel, only(ActivationFormat::Q8K), y.data(), 4, 0, 4),
               std::invalid_argument);
  EXPECT_NO_THROW(matmul(k.kernel, only(ActivationFormat::Q8K), y.data(), 4, 0, 4));
  // Row-major matrices are read unpacked and split anywhere.
  EXPECT_NO_THROW(matmul(k.kernel, f32_input(x256, 256, 1), y.data(), 4, 1, 3));
  // Empty work is fine, and the last partial group may end at the matrix's end.
  EXPECT_NO_THROW(matmul(m.kernel, f32_input(x, 64, 0), y.data(), 20, 0, 16));
  EXPECT_NO_THROW(call(m.kernel, 16, 16));
  EXPECT_NO_THROW(call(m.kernel, 16, 20));
}

TEST(Packing, RoundTripsEveryRowAndPadsWithZeros) {
  for (const TypeTraits& type : all_types()) {
    const size_t cols = type.block_elems == 256 ? 512 : 96;
    for (size_t rows : {1u, 16u, 37u}) {
      const TestMatrix m = make_matrix(type, rows, cols, static_cast<uint32_t>(rows), true);
      EXPECT_EQ(packed_bytes(m.file), (rows + 15) / 16 * 16 * m.kernel.row_bytes);
      std::vector<uint8_t> row(m.kernel.row_bytes);
      for (size_t r = 0; r < rows; ++r) {
        unpack_row(m.kernel, r, row.data());
        ASSERT_EQ(0, std::memcmp(row.data(), m.bytes.data() + r * m.file.row_bytes, row.size()))
            << type.name << " row " << r;
      }
      // Rows past the matrix in its last group are zeros (quantized: scale 0).
      WeightMatrix padded = m.kernel;
      padded.rows = (rows + 15) / 16 * 16;
      for (size_t r = rows; r < padded.rows; ++r) {
        unpack_row(padded, r, row.data());
        for (uint8_t b : row) ASSERT_EQ(b, 0) << type.name << " padding row " << r;
      }
    }
  }
}

TEST(ActivationQuantization, SimdMatchesReferenceBitwise) {
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float scale : {1.0f, 1e-3f, 300.0f, 1e-30f, 3e38f}) {
    const size_t n = 3, cols = 4096;
    std::vector<float> x(n * cols);
    for (auto& v : x) v = normal(rng) * scale;
    x[5] = 0.0f;
    for (size_t i = 64; i < 96; ++i) x[i] = 0.0f;  // an all-zero block
    QuantizedInput quantized;
    const MatmulInput a = quantize(quantized, x.data(), cols, n, cols);
    std::vector<int8_t> q(n * cols);
    std::vector<float> d(n * cols / kQ8Block);
    std::vector<int32_t> sums(n * cols / kQ8Block);
    quantize_activations_ref(x.data(), cols, n, {q.data(), d.data(), sums.data(), cols});
    ASSERT_EQ(0, std::memcmp(a.q8.q, q.data(), q.size())) << scale;
    ASSERT_EQ(0, std::memcmp(a.q8.d, d.data(), d.size() * sizeof(float))) << scale;
    ASSERT_EQ(0, std::memcmp(a.q8.s, sums.data(), sums.size() * sizeof(int32_t))) << scale;
  }
}

TEST(ActivationQuantization, Q8KSimdMatchesReferenceBitwise) {
  std::mt19937 rng(19);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float scale : {1.0f, 1e-3f, 300.0f, 1e-30f, 3e38f}) {
    const size_t n = 3, cols = 4096;
    std::vector<float> x(n * cols);
    for (auto& v : x) v = normal(rng) * scale;
    for (size_t i = 256; i < 512; ++i) x[i] = 0.0f;  // an all-zero block
    QuantizedInput quantized;
    const MatmulInput a = quantize(quantized, x.data(), cols, n, cols);
    std::vector<int8_t> q(n * cols);
    std::vector<float> d(n * cols / kQ8KBlock);
    std::vector<int32_t> s16(n * cols / 16);
    quantize_activations_k_ref(x.data(), cols, n, {q.data(), d.data(), s16.data(), cols});
    ASSERT_EQ(0, std::memcmp(a.q8k.q, q.data(), q.size())) << scale;
    ASSERT_EQ(0, std::memcmp(a.q8k.d, d.data(), d.size() * sizeof(float))) << scale;
    ASSERT_EQ(0, std::memcmp(a.q8k.s16, s16.data(), s16.size() * sizeof(int32_t))) << scale;
  }
}

// The forward pass quantizes its input a row at a time, threads side by side: any order of rows
// gives the bytes of one call over them all, and tokens() views the same rows.
TEST(ActivationQuantization, RowsQuantizedApartEqualAllAtOnce) {
  const size_t n = 5, cols = 512, stride = cols + 7;
  const auto x = make_activations(n, stride, 23);
  QuantizedInput whole, apart;
  const MatmulInput a = quantize(whole, x.data(), stride, n, cols);
  ActivationFormats both;
  both.add(ActivationFormat::Q8);
  both.add(ActivationFormat::Q8K);
  apart.reserve(n, cols);
  for (size_t t : {3u, 0u, 4u, 1u, 2u}) apart.quantize_rows(x.data(), stride, t, 1, cols, both);
  const MatmulInput b = apart.input(x.data(), stride, n, cols, both);
  EXPECT_EQ(0, std::memcmp(a.q8.q, b.q8.q, n * cols));
  EXPECT_EQ(0, std::memcmp(a.q8.d, b.q8.d, n * cols / kQ8Block * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(a.q8.s, b.q8.s, n * cols / kQ8Block * sizeof(int32_t)));
  EXPECT_EQ(0, std::memcmp(a.q8k.q, b.q8k.q, n * cols));
  EXPECT_EQ(0, std::memcmp(a.q8k.d, b.q8k.d, n * cols / kQ8KBlock * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(a.q8k.s16, b.q8k.s16, n * cols / 16 * sizeof(int32_t)));
  // Token 3 alone, quantized on its own, is tokens(3, 1) of the whole.
  QuantizedInput one;
  const MatmulInput c = quantize(one, x.data() + 3 * stride, stride, 1, cols);
  const MatmulInput t3 = a.tokens(3, 1);
  EXPECT_EQ(t3.x, x.data() + 3 * stride);
  EXPECT_EQ(t3.n_tokens, 1u);
  EXPECT_EQ(0, std::memcmp(t3.q8.q, c.q8.q, cols));
  EXPECT_EQ(0, std::memcmp(t3.q8.d, c.q8.d, cols / kQ8Block * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(t3.q8.s, c.q8.s, cols / kQ8Block * sizeof(int32_t)));
  EXPECT_EQ(0, std::memcmp(t3.q8k.q, c.q8k.q, cols));
  EXPECT_EQ(0, std::memcmp(t3.q8k.d, c.q8k.d, cols / kQ8KBlock * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(t3.q8k.s16, c.q8k.s16, cols / 16 * sizeof(int32_t)));
  // Rows past what was reserved are refused, not written.
  EXPECT_THROW(apart.quantize_rows(x.data(), stride, n, 1, cols, both), std::length_error);
}

// By hand: a 256-block whose largest magnitude is 127 has d = 1, so q = round(x) and the sums per
// 16 are the codes' sums; its first 32 values are the rounding block's.
TEST(ActivationQuantization, Q8KHandComputedBlock) {
  const auto block = test::rounding_block();
  std::vector<float> x(256, 0.0f);
  for (int i = 0; i < 32; ++i) x[i] = block.x[i];
  x[200] = 127.0f;
  int8_t q[256];
  float d;
  int32_t s16[16];
  const Q8KActivations out{q, &d, s16, 256};
  for (auto fn : {&quantize_activations_k, &quantize_activations_k_ref}) {
    fn(x.data(), 256, 1, out);
    EXPECT_EQ(d, 1.0f);
    for (int j = 0; j < 2; ++j) {
      int32_t sum = 0;
      for (int i = 0; i < 16; ++i) {
        EXPECT_EQ(q[16 * j + i], block.codes[16 * j + i]) << i;
        sum += block.codes[16 * j + i];
      }
      EXPECT_EQ(s16[j], sum);
    }
    EXPECT_EQ(q[200], 127);
    EXPECT_EQ(s16[12], 127);
    EXPECT_EQ(s16[5], 0);
  }
}

// By hand: amax = 127 gives d = 1, so q = round(x) (half away from zero) and s = sum q.
TEST(ActivationQuantization, HandComputedBlock) {
  const auto block = test::rounding_block();
  int8_t q[32];
  float d;
  int32_t s;
  const Q8Activations out{q, &d, &s, 32};
  for (auto fn : {&quantize_activations, &quantize_activations_ref}) {
    fn(block.x.data(), 32, 1, out);
    EXPECT_EQ(d, 1.0f);
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      EXPECT_EQ(q[i], block.codes[i]) << i;
      sum += block.codes[i];
    }
    EXPECT_EQ(s, sum);
  }
}

// A NaN makes the block's scale NaN, so the product is NaN (the forward pass's fault check sees
// it); an Inf makes it Inf with codes 0, so the product is NaN too.
TEST(ActivationQuantization, NonFiniteInputPropagates) {
  std::vector<float> x(96, 1.0f);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[40] = std::numeric_limits<float>::infinity();
  for (auto fn : {&quantize_activations, &quantize_activations_ref}) {
    std::vector<int8_t> q(96);
    std::vector<float> d(3);
    std::vector<int32_t> sums(3);
    fn(x.data(), 96, 1, {q.data(), d.data(), sums.data(), 96});
    EXPECT_TRUE(std::isnan(d[0]));
    EXPECT_TRUE(std::isinf(d[1]));
    EXPECT_EQ(d[2], 1.0f / 127.0f);
    for (size_t i = 0; i < 64; ++i) EXPECT_EQ(q[i], 0) << i;
  }
  const TestMatrix m = make_matrix(*find_type("q4_0"), 16, 96, 3);
  QuantizedInput quantized;
  std::vector<float> y(16);
  matmul(m.kernel, quantize(quantized, x.data(), 96, 1, 96), y.data(), 16, 0, 16);
  for (float v : y) EXPECT_TRUE(std::isnan(v));
}

// matmul_kernel chooses, for each type family, kernel set and token count, the kernel that
// kernels/MATMUL.md names for it (its table is the expectation here).
TEST(Matmul, ChoosesTheKernelOfTheMap) {
  // The AVX-512 VNNI kernels are the sets' main difference in the table. The byte-group prefill
  // and the word-packed group decode need AVX2 (every set but generic, and generic too in a
  // -march=native build of an AVX2 machine); q3_K, q4_K, q5_K and iq4_xs are packed wherever they
  // are built, q6_K only on the 256-bit sets (see its dot_groups_q8k for why).
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
  const bool avx2 = true;
#else
  const bool avx2 = active_kernel_set().name != "generic";
#endif
  for (const char* type : {"q3_K", "q4_K", "q5_K", "iq4_xs"})
    EXPECT_EQ(packs_rows(*find_type(type)), avx2) << type;
  const bool vnni = avx2 && !packs_rows(*find_type("q6_K"));
  const bool set256 = avx2 && !vnni;
  const size_t cols = 256;
  const auto x = make_activations(4, cols, 1);
  QuantizedInput q;
  const MatmulInput int8 = quantize(q, x.data(), cols, 4, cols);
  const auto chosen = [&](const char* type, std::optional<bool> pack, bool with_int8, size_t n) {
    const TestMatrix m = make_matrix(*find_type(type), 16, cols, 1, pack);
    const MatmulInput in = with_int8 ? int8.tokens(0, n) : f32_input(x, cols, n);
    return std::string(matmul_kernel(m.kernel, in).name);
  };
  const bool i8 = true, f32 = false;
  EXPECT_EQ(chosen("f16", {}, f32, 1), "packed float decode");
  EXPECT_EQ(chosen("bf16", {}, i8, 2), "packed float prefill");  // float types read f32
  EXPECT_EQ(chosen("q4_0", {}, i8, 1), "packed int8 decode");
  EXPECT_EQ(chosen("q8_0", {}, i8, 2), "packed int8 prefill");
  EXPECT_EQ(chosen("q4_0", {}, f32, 1), "packed exact decode");
  EXPECT_EQ(chosen("q8_0", {}, f32, 4), "packed exact prefill");
  EXPECT_EQ(chosen("q5_0", {}, i8, 1), "row int8");
  EXPECT_EQ(chosen("iq4_nl", {}, i8, 4), "row int8");
  for (const char* type : {"q4_1", "q2_K", "q4_K", "iq4_xs"})
    for (size_t n : {1u, 4u}) EXPECT_EQ(chosen(type, {}, f32, n), "row exact") << type << n;
  if (avx2) {
    EXPECT_EQ(chosen("q4_K", {}, i8, 1), "word-packed group decode");
    EXPECT_EQ(chosen("q4_K", true, i8, 1), "word-packed group decode");
  }
  if (!vnni) {
    // IQ4_XS's codes (its levels + 128) are too large for vpmaddubsw's 16-bit pair sums.
    for (const char* type : {"q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "iq4_xs"}) {
      const std::string t = type;
      const bool byte_group = avx2 && t != "iq4_xs";
      const bool group_decode = set256 && t != "q2_K";
      EXPECT_EQ(chosen(type, {}, i8, 1), group_decode ? "word-packed group decode" : "row int8")
          << type;
      for (size_t n : {2u, 4u})
        EXPECT_EQ(chosen(type, {}, i8, n), byte_group ? "byte-group prefill" : "row int8")
            << type << n;
    }
    EXPECT_EQ(chosen("q4_K", false, i8, 1), "row int8");
    EXPECT_EQ(chosen("q6_K", false, i8, 1), "row int8");
    return;
  }
  EXPECT_EQ(chosen("q4_K", true, i8, 2), "byte-group prefill");
  EXPECT_EQ(chosen("q6_K", {}, i8, 1), "row fused decode");
  for (const char* type : {"q3_K", "q4_K", "q5_K", "iq4_xs"}) {
    EXPECT_EQ(chosen(type, {}, i8, 1), "word-packed group decode") << type;
    EXPECT_EQ(chosen(type, false, i8, 1), "row fused decode") << type;
  }
  for (const char* type : {"q2_K", "q3_K", "q5_K", "q6_K", "iq4_xs"}) {
    const std::string t = type;
    if (t == "q2_K" || t == "q6_K") {
      EXPECT_EQ(chosen(type, {}, i8, 1), t == "q2_K" ? "row int8" : "row fused decode") << type;
    }
    for (size_t n : {2u, 3u, 4u})
      EXPECT_EQ(chosen(type, {}, i8, n), "byte-group prefill") << type << n;
  }
}

}  // namespace
}  // namespace brise::kernels
