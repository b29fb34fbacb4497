// Prefill of the types with a ByteGroup form (kernels/types/byte_group.hpp: Q4_K, Q6_K) on
// AVX-512 VNNI, from kByteGemmMinTokens tokens (kernels/matmul_thresholds.hpp): the codes stay
// bytes and meet the int8 activations in vpdpbusd, 64 products per instruction where the 16-bit
// path (matmul_rows_gemm.hpp) does 32. The activations need no layout: each 4 bytes of a token's
// block are broadcast straight from it.
//
// Why this is exact: per row (lane) and half of 16 elements, four vpdpbusd give the half's
// integer sum of code x activation; times the half's scale (vpdpwssd when the sum fits the lane's
// low word, the scale in its low word and 0 in its high one; else vpmulld) it joins the row's
// block sum. The pairs (16-bit multipliers of the token's activation sums per 16 or 32, vpdpwssd)
// give the mins' sum or take the code offset off. These are the integers of int8_block.hpp in
// another order; add_block's two FMAs follow in block order: bit for bit the per-row path and the
// reference.
#pragma once

#include "kernels/isa.hpp"

#if defined(BRISE_AVX512_VNNI)

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

constexpr size_t kTileTokens = 12;    // register tile: 12 tokens' sums, their half sums, 5 more
constexpr size_t kPanelTokens = 128;  // tokens that one layout of a group's block serves

struct Token {          // one token's activation block
  const int8_t* q;      // 256 codes
  const int32_t* sums;  // its sums per C::kPairElems, as 16-bit pairs like ByteGroup::pairs
  float da;
};

inline __m512i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// acc[t] (lane = row) = add_block(acc[t], ...) for the group's block and T tokens.
template <class C, size_t T>
void tile(const ByteGroup& g, const Token* x, float (*acc)[16]) {
  __m512i sum[T];
  for (size_t t = 0; t < T; ++t) sum[t] = _mm512_setzero_si512();
  for (size_t h = 0; h < ByteGroup::kHalves; ++h) {
    const __m512i w0 = _mm512_load_si512(g.code[h][0]);
    const __m512i w1 = _mm512_load_si512(g.code[h][1]);
    const __m512i w2 = _mm512_load_si512(g.code[h][2]);
    const __m512i w3 = _mm512_load_si512(g.code[h][3]);
    const __m512i scale = _mm512_load_si512(g.scale[h]);
    for (size_t t = 0; t < T; ++t) {
      const int8_t* q = x[t].q + 16 * h;
      __m512i half = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w0, broadcast4(q));
      half = _mm512_dpbusd_epi32(half, w1, broadcast4(q + 4));
      half = _mm512_dpbusd_epi32(half, w2, broadcast4(q + 8));
      half = _mm512_dpbusd_epi32(half, w3, broadcast4(q + 12));
      if constexpr (C::kHalfFitsWord)
        sum[t] = _mm512_dpwssd_epi32(sum[t], half, scale);
      else
        sum[t] = _mm512_add_epi32(sum[t], _mm512_mullo_epi32(half, scale));
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

template <class C, size_t T>
void tile_upto(size_t n, const ByteGroup& g, const Token* x, float (*acc)[16]) {
  if constexpr (T > 1)
    if (n < T) return tile_upto<C, T - 1>(n, g, x, acc);
  tile<C, T>(g, x, acc);
}

// A token's activation sums per kPairElems (8 or 16 of them per block, from its sums per 16
// `s16`) as 16-bit pairs, like ByteGroup::pairs: out[p] = sum 2 p & 0xFFFF | sum 2 p + 1 << 16
// (|sum| <= 32 x 127).
template <size_t kPairElems>
inline void pair_sums(const int32_t* s16, int32_t* out) {
  constexpr size_t kPer = kPairElems / 16;  // sums of 16 per element of a pair
  for (size_t p = 0; p < kQ8KBlock / kPairElems / 2; ++p) {
    int32_t lo = 0, hi = 0;
    for (size_t k = 0; k < kPer; ++k) {
      lo += s16[2 * kPer * p + k];
      hi += s16[2 * kPer * p + kPer + k];
    }
    out[p] = static_cast<int32_t>((static_cast<uint32_t>(lo) & 0xFFFF) | static_cast<uint32_t>(hi)
                                                                             << 16);
  }
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
        pair_sums<C::kPairElems>(x.s16 + (t0 + t) * (x.cols / 16) + 16 * b,
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
      const __mmask16 mask = static_cast<__mmask16>((1u << rows) - 1);
      for (size_t t = 0; t < nt; ++t)
        _mm512_mask_storeu_ps(y + (t0 + t) * y_stride + r0, mask, _mm512_load_ps(acc[t]));
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
