// Prefill of the types with a ByteGroup form (kernels/types/byte_group.hpp: Q3_K, Q4_K, Q5_K,
// Q6_K, IQ4_XS) from kByteGemmMinTokens tokens (kernels/matmul_thresholds.hpp): the codes stay
// bytes and meet the int8 activations in vpdpbusd (AVX-512 VNNI: 64 products per instruction,
// where a 16-bit layout's vpdpwssd does 32) or vpmaddubsw (AVX2: 32, with 16-bit pair
// sums). The activations need no layout: each 4 bytes of a token's block are broadcast straight
// from it, and the 12 (AVX2: 8) tokens of a register tile read 3 KiB of them per block, which L1
// keeps while the tile runs over the block's 16 halves.
//
// Why this is exact: per row (lane) and run of a scale's elements, the products' integer sum
// (vpdpbusd chained into 32 bits; vpmaddubsw's pair sums added in 16 bits only as far as
// kCodeMax x 127 bounds them below 2^15, then vpmaddwd by the scale in both words) times the
// scale (vpdpwssd when the run's sum fits the lane's low word, the scale in its low word and 0 in
// its high one; else vpmulld) joins the row's block sum. The pairs (16-bit multipliers of the
// token's activation sums per 16 or 32, vpdpwssd/vpmaddwd) give the mins' sum or take the code
// offset off. These are the integers of int8_block.hpp in another order; add_block's two FMAs
// follow in block order: bit for bit the per-row path and the reference.
#pragma once

#include "kernels/isa.hpp"

#if defined(BRISE_AVX2)

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/matmul.hpp"
#include "kernels/types/byte_group.hpp"
#include "kernels/types/packed.hpp"

// gcc 12 flags its own avx512fintrin.h here (`__m512i __Y = __Y;`, the undefined first operand of
// the broadcast and convert intrinsics, once inlined): a false -Wuninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
namespace brise::kernels::BRISE_ISA::byte_gemm {

constexpr int kMaxActivation = 127;  // |Q8_K code| (kernels/matmul_input.hpp)

// vpmaddubsw's pair sums of codes up to C::kCodeMax, added in 16 bits: how many of its results
// (4 elements per lane each) stay below 2^15 in magnitude, at most a half's 4. 0: the type's codes
// are too large for vpmaddubsw (IQ4_XS's levels + 128), and AVX2 has no byte-group kernel for it.
template <class C>
constexpr size_t kMaddubsRun = std::min<size_t>(4, 32767 / (2 * C::kCodeMax * kMaxActivation));

// Whether the kernel set has the byte-group prefill for codec C: the codec has the form, and
// AVX2's vpmaddubsw can multiply its codes.
template <class C>
inline constexpr bool kHasByteGemm = [] {
  if constexpr (requires(ByteGroup & g) { C::to_byte_group(byte_group::RowBlocks{}, g); }) {
#if defined(BRISE_AVX512_VNNI)
    return true;
#else
    return kMaddubsRun<C> > 0;
#endif
  } else {
    return false;
  }
}();

// Whether C's ByteGroup codes already hold their scale (ByteGroup::scale unused): an AVX-512
// VNNI form of the types whose scaled codes fit a byte (Q2_K, Q3_K).
template <class C>
constexpr bool kScaledCodes = [] {
  if constexpr (requires { C::kScaledCodes; })
    return C::kScaledCodes;
  else
    return false;
}();

struct Token {          // one token's activation block
  const int8_t* q;      // 256 codes
  const int32_t* sums;  // its sums per C::kPairElems, as 16-bit pairs like ByteGroup::pairs
  float da;
};

inline int32_t four_bytes(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

#if defined(BRISE_AVX512_VNNI)
constexpr size_t kTileTokens = 12;  // register tile: 12 tokens' sums, a step's codes, 3 more

// acc[t] (lane = row) = add_block(acc[t], ...) for the group's block and T tokens.
template <class C, size_t T>
void tile(const ByteGroup& g, const Token* x, float (*acc)[16]) {
  // A step: the elements whose products one vpdpbusd chain sums before the scale multiplies them
  // (vpdpwssd for a half whose sum fits 16 bits, else vpmulld once per scale).
  constexpr size_t kStep = C::kScaleElems;
  constexpr bool kWord = kStep * C::kCodeMax * kMaxActivation <= INT16_MAX;
  constexpr size_t kVecs = kStep / 4;
  __m512i sum[T];
  for (size_t t = 0; t < T; ++t) sum[t] = _mm512_setzero_si512();
  if constexpr (kScaledCodes<C>) {  // the codes hold their scale: one chain over the block
    for (size_t h = 0; h < ByteGroup::kHalves; ++h) {
      __m512i w[4];
      for (size_t j = 0; j < 4; ++j) w[j] = _mm512_load_si512(g.code[h][j]);
      for (size_t t = 0; t < T; ++t)
        for (size_t j = 0; j < 4; ++j)
          sum[t] = _mm512_dpbusd_epi32(sum[t], w[j],
                                       _mm512_set1_epi32(four_bytes(x[t].q + 16 * h + 4 * j)));
    }
  }
  for (size_t s = 0; s < (kScaledCodes<C> ? 0 : kQ8KBlock / kStep); ++s) {
    const size_t h0 = s * kStep / 16;
    __m512i w[kVecs];
    for (size_t j = 0; j < kVecs; ++j) w[j] = _mm512_load_si512(g.code[h0 + j / 4][j % 4]);
    // vpdpwssd: the scale in the low word, 0 in the high one (a negative scale's sign bits
    // would multiply the sum's high word).
    const __m512i scale =
        kWord ? _mm512_and_si512(_mm512_load_si512(g.scale[h0]), _mm512_set1_epi32(0xFFFF))
              : _mm512_load_si512(g.scale[h0]);
    for (size_t t = 0; t < T; ++t) {
      const int8_t* q = x[t].q + kStep * s;
      __m512i part =
          _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[0], _mm512_set1_epi32(four_bytes(q)));
      for (size_t j = 1; j < kVecs; ++j)
        part = _mm512_dpbusd_epi32(part, w[j], _mm512_set1_epi32(four_bytes(q + 4 * j)));
      if constexpr (kWord)
        sum[t] = _mm512_dpwssd_epi32(sum[t], part, scale);
      else
        sum[t] = _mm512_add_epi32(sum[t], _mm512_mullo_epi32(part, scale));
    }
  }
  constexpr size_t kPairs = 256 / C::kPairElems / 2;
  const __m512 d = _mm512_load_ps(g.d);
  const __m512 dmin = _mm512_load_ps(g.dmin);
  for (size_t t = 0; t < T; ++t) {
    __m512i pairs = _mm512_setzero_si512();
    if (g.any_pairs)
      for (size_t p = 0; p < kPairs; ++p)
        pairs = _mm512_dpwssd_epi32(pairs, _mm512_load_si512(g.pairs[p]),
                                    _mm512_set1_epi32(x[t].sums[p]));
    const __m512i sumi = C::kPairsAreMins ? sum[t] : _mm512_add_epi32(sum[t], pairs);
    const __m512i summ = C::kPairsAreMins ? pairs : _mm512_setzero_si512();
    // add_block: fma(sumi, d * da, acc), then fma(summ, -(dmin * da), acc); the sign flipped
    // exactly (xor), as the scalar negation does.
    const __m512 da = _mm512_set1_ps(x[t].da);
    const __m512 neg_dmin_da = _mm512_castsi512_ps(_mm512_xor_si512(
        _mm512_castps_si512(_mm512_mul_ps(dmin, da)), _mm512_set1_epi32(INT32_MIN)));
    __m512 a = _mm512_load_ps(acc[t]);
    a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, da), a);
    a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(summ), neg_dmin_da, a);
    _mm512_store_ps(acc[t], a);
  }
}
#else
constexpr size_t kTileTokens = 8;  // register tile: 8 tokens' sums, 4 code vectors, 4 more

// Rows 8 R .. 8 R + 7 of tile(): one 256-bit vector of row lanes.
template <class C, size_t T>
void tile8(const ByteGroup& g, const Token* x, float (*acc)[16], size_t R) {
  constexpr size_t kRun = kMaddubsRun<C>;  // vpmaddubsw results summed in 16 bits
  constexpr size_t kStep = 4 * kRun;       // elements per vpmaddwd by the scale
  const auto load = [R](const void* p) {
    return _mm256_load_si256(
        reinterpret_cast<const __m256i*>(static_cast<const uint8_t*>(p) + 32 * R));
  };
  __m256i sum[T];
  for (size_t t = 0; t < T; ++t) sum[t] = _mm256_setzero_si256();
  for (size_t s = 0; s < kQ8KBlock / kStep; ++s) {
    const size_t h = s * kStep / 16, j0 = s * kStep % 16 / 4;
    __m256i w[kRun];
    for (size_t j = 0; j < kRun; ++j) w[j] = load(g.code[h][j0 + j]);
    // The scale in both 16-bit words of its lane (|scale| < 2^15), for vpmaddwd.
    const __m256i s32 = load(g.scale[h]);
    const __m256i scale = _mm256_or_si256(_mm256_and_si256(s32, _mm256_set1_epi32(0xFFFF)),
                                          _mm256_slli_epi32(s32, 16));
    for (size_t t = 0; t < T; ++t) {
      const int8_t* q = x[t].q + kStep * s;
      __m256i part = _mm256_maddubs_epi16(w[0], _mm256_set1_epi32(four_bytes(q)));
      for (size_t j = 1; j < kRun; ++j)
        part = _mm256_add_epi16(
            part, _mm256_maddubs_epi16(w[j], _mm256_set1_epi32(four_bytes(q + 4 * j))));
      sum[t] = _mm256_add_epi32(sum[t], _mm256_madd_epi16(part, scale));
    }
  }
  constexpr size_t kPairs = 256 / C::kPairElems / 2;
  const __m256 d = _mm256_load_ps(g.d + 8 * R);
  const __m256 dmin = _mm256_load_ps(g.dmin + 8 * R);
  for (size_t t = 0; t < T; ++t) {
    __m256i pairs = _mm256_setzero_si256();
    if (g.any_pairs)
      for (size_t p = 0; p < kPairs; ++p)
        pairs = _mm256_add_epi32(
            pairs, _mm256_madd_epi16(load(g.pairs[p]), _mm256_set1_epi32(x[t].sums[p])));
    const __m256i sumi = C::kPairsAreMins ? sum[t] : _mm256_add_epi32(sum[t], pairs);
    const __m256i summ = C::kPairsAreMins ? pairs : _mm256_setzero_si256();
    // add_block, as on AVX-512.
    const __m256 da = _mm256_set1_ps(x[t].da);
    const __m256 neg_dmin_da = _mm256_castsi256_ps(_mm256_xor_si256(
        _mm256_castps_si256(_mm256_mul_ps(dmin, da)), _mm256_set1_epi32(INT32_MIN)));
    float* out = acc[t] + 8 * R;
    __m256 a = _mm256_load_ps(out);
    a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(d, da), a);
    a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(summ), neg_dmin_da, a);
    _mm256_store_ps(out, a);
  }
}

template <class C, size_t T>
void tile(const ByteGroup& g, const Token* x, float (*acc)[16]) {
  tile8<C, T>(g, x, acc, 0);
  tile8<C, T>(g, x, acc, 1);
}
#endif

template <class C, size_t T>
void tile_upto(size_t n, const ByteGroup& g, const Token* x, float (*acc)[16]) {
  if constexpr (T > 1)
    if (n < T) return tile_upto<C, T - 1>(n, g, x, acc);
  tile<C, T>(g, x, acc);
}

// The 16 rows of a group's block b, in the form to_byte_group reads: straight from the group block
// when the matrix is packed in word units, else the blocks in the file's layout.
template <class C>
inline void group_to_byte_group(const WeightMatrix& w, size_t r0, size_t rows, size_t b,
                                ByteGroup& g) {
  alignas(64) static constexpr uint8_t kZeroBlock[C::kBlockBytes] = {};  // d = 0: adds 0
  const auto* data = static_cast<const uint8_t*>(w.data);
  if (w.packed)
    return C::to_byte_group(
        byte_group::GroupWords{packed::group_block_at(data, w.row_bytes, r0, b, C::kBlockBytes)},
        g);
  const uint8_t* blocks[16];
  for (size_t r = 0; r < 16; ++r)
    blocks[r] = r < rows ? data + (r0 + r) * w.row_bytes + b * C::kBlockBytes : kZeroBlock;
  C::to_byte_group(byte_group::RowBlocks{blocks}, g);
}

// Rows [row_begin, row_end) of y = W x for n_tokens tokens of Q8_K activations.
template <class C>
void gemm(const WeightMatrix& w, const Q8KActivations& x, size_t n_tokens, float* y,
          size_t y_stride, size_t row_begin, size_t row_end) {
  static_assert(C::kBlockElems == kQ8KBlock);
  constexpr size_t kPanelTokens = 128;  // tokens that one layout of a group's block serves
  constexpr size_t kPairs = kQ8KBlock / C::kPairElems / 2;
  const size_t n_blocks = w.cols / kQ8KBlock;
  // The panel's activation sums per kPairElems as 16-bit pairs (|sum| <= 32 x 127), per token
  // and block.
  std::vector<int32_t> sums(std::min(n_tokens, kPanelTokens) * n_blocks * kPairs);
  ByteGroup g;
  alignas(64) float acc[kPanelTokens][16];
  Token tokens[kTileTokens];
  for (size_t t0 = 0; t0 < n_tokens; t0 += kPanelTokens) {
    const size_t nt = std::min(kPanelTokens, n_tokens - t0);
    for (size_t t = 0; t < nt; ++t)
      for (size_t b = 0; b < n_blocks; ++b)
        byte_group::pair_sums<C::kPairElems>(x.s16 + (t0 + t) * (x.cols / 16) + 16 * b,
                                             &sums[(t * n_blocks + b) * kPairs]);
    for (size_t r0 = row_begin; r0 < row_end; r0 += 16) {
      const size_t rows = std::min<size_t>(16, row_end - r0);
      std::memset(acc, 0, nt * sizeof acc[0]);
      for (size_t b = 0; b < n_blocks; ++b) {
        group_to_byte_group<C>(w, r0, rows, b, g);
        for (size_t t = 0; t < nt; t += kTileTokens) {
          const size_t n = std::min(kTileTokens, nt - t);
          for (size_t i = 0; i < n; ++i) {
            const size_t tok = t0 + t + i;
            tokens[i] = {x.q + tok * x.cols + b * kQ8KBlock,
                         &sums[((t + i) * n_blocks + b) * kPairs],
                         x.d[tok * (x.cols / kQ8KBlock) + b]};
          }
          tile_upto<C, kTileTokens>(n, g, tokens, acc + t);
        }
      }
      for (size_t t = 0; t < nt; ++t)
        std::memcpy(y + (t0 + t) * y_stride + r0, acc[t], rows * sizeof(float));
    }
  }
}

// The kernel (MatmulFn).
template <class C>
void byte_group_prefill(const WeightMatrix& w, const MatmulInput& x, float* y, size_t y_stride,
                        size_t row_begin, size_t row_end) {
  gemm<C>(w, x.q8k, x.n_tokens, y, y_stride, row_begin, row_end);
}

}  // namespace brise::kernels::BRISE_ISA::byte_gemm
#pragma GCC diagnostic pop
#endif
