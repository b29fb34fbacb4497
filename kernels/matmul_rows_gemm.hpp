// Prefill of the 256-element types without a ByteGroup form (Q2_K, Q3_K, Q5_K, IQ4_XS) on
// AVX-512 VNNI: 16-bit weights of 16 rows laid out once per block and 128 tokens.
// kernels/matmul.cpp chooses it from kGemmMinTokens tokens (kernels/matmul_thresholds.hpp).
#pragma once

#include "kernels/isa.hpp"

#if defined(BRISE_AVX512_VNNI)
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/matmul_rows.hpp"

namespace brise::kernels::BRISE_ISA::row_matmul {

// Prefill of the other 256-element types (Q8_K activations) on AVX-512 (those without a ByteGroup
// form: Q2_K, Q3_K, Q5_K, IQ4_XS): the same integers as int8_rows,
// without its horizontal sum per (row, block, token). A group of 16 rows' 16-bit weights of one
// block are laid out once (GroupBlock) so that a vector holds 8 consecutive weights of each of 4
// rows, one row per 128-bit lane; the token's 8 activations of those columns, broadcast to the 4
// lanes, meet them in vpdpwssd. Four vectors cover the 16 rows; at the block's end their partial
// sums (4 per row) fold into one vector of 16 row sums by two unpack-and-add steps, in which lane
// L holds row lane_row(L). The mins' sum goes straight into that order: each lane holds its row's
// mins as 16-bit pairs, multiplied with the token's activation sums (also pairs). Then
// add_block's two FMAs per lane, in block order: bit for bit the per-row path's result.
// gcc 12 flags its own avx512fintrin.h here (`__m512i __Y = __Y;`, the undefined first operand of
// the unpack, broadcast and convert intrinsics, once inlined): a false -Wuninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
namespace gemm {

constexpr size_t kChunks = kQ8KBlock / 8;  // 8 weights per 128-bit lane
constexpr size_t kTileTokens = 6;          // register tile: 6 tokens x 4 vectors of int32 sums
constexpr size_t kPanelTokens = 128;       // tokens that one layout of a group's block serves

// The row of a group whose sum lane L of the folded vector holds (an involution: also the lane of
// row L).
constexpr size_t lane_row(size_t lane) {
  return 4 * (lane % 4) + lane / 4;
}

struct GroupBlock {                         // block b of 16 rows
  alignas(64) int16_t w[kChunks][4][4][8];  // [chunk c][vector i][row 4 i + j][weights 8 c ..]
  alignas(64) int32_t mins[8][16];          // [pair p][lane]: min[2 p] | min[2 p + 1] << 16
  alignas(64) float d[16];                  // [lane]
  alignas(64) float dmin[16];
  bool any_mins;
};

struct TokenBlock {  // block b of one token's activations
  alignas(64) int16_t a[kQ8KBlock];
  alignas(64) int32_t asum[8];  // the 16 sums of 16 codes as pairs, like GroupBlock::mins
  float da;
};

template <class C>
void lay_out(const WeightMatrix& w, size_t row0, size_t rows, size_t b, GroupBlock& g) {
  alignas(64) int16_t w16[kQ8KBlock];
  alignas(64) uint8_t scratch[C::kBlockBytes];
  Int8Block meta;
  g.any_mins = false;
  for (size_t r = 0; r < 16; ++r) {
    const size_t lane = lane_row(r);
    if (r < rows) {
      block_to_weights16<C>(block_at<C>(w, row0 + r, b, scratch), w16, meta);
      g.any_mins = g.any_mins || has_mins<kQ8KBlock>(meta);
    } else {  // past the matrix: zeros (never stored)
      std::memset(w16, 0, sizeof w16);
      std::memset(meta.min, 0, sizeof meta.min);
      meta.d = meta.dmin = 0.0f;
    }
    for (size_t c = 0; c < kChunks; ++c)
      _mm_store_si128(reinterpret_cast<__m128i*>(g.w[c][r / 4][r % 4]),
                      _mm_load_si128(reinterpret_cast<const __m128i*>(w16 + 8 * c)));
    for (size_t p = 0; p < 8; ++p)
      g.mins[p][lane] = static_cast<int32_t>(static_cast<uint32_t>(meta.min[2 * p] & 0xFFFF) |
                                             static_cast<uint32_t>(meta.min[2 * p + 1]) << 16);
    g.d[lane] = meta.d;
    g.dmin[lane] = meta.dmin;
  }
}

inline void widen(const Q8KBlocks& act, size_t t, size_t b, TokenBlock& x) {
  const int8_t* q = act.codes(t, b);
  for (size_t c = 0; c < kQ8KBlock / 32; ++c)
    _mm512_store_si512(
        x.a + 32 * c,
        _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * c))));
  // |sum of 16 codes| <= 16 x 127: exact in 16 bits.
  _mm256_store_si256(reinterpret_cast<__m256i*>(x.asum),
                     _mm512_cvtepi32_epi16(_mm512_loadu_si512(act.sums16(t, b))));
  x.da = act.scale(t, b);
}

// Block b of the group for T tokens: acc[t] (lane order) = add_block(acc[t], ...).
template <size_t T>
void group_tokens(const GroupBlock& g, const TokenBlock* x, float* acc) {
  __m512i s[T][4];
  for (size_t t = 0; t < T; ++t)
    for (size_t i = 0; i < 4; ++i) s[t][i] = _mm512_setzero_si512();
  for (size_t c = 0; c < kChunks; ++c) {
    __m512i wv[4];
    for (size_t i = 0; i < 4; ++i) wv[i] = _mm512_load_si512(g.w[c][i]);
    for (size_t t = 0; t < T; ++t) {
      const __m512i av =
          _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(x[t].a + 8 * c)));
      for (size_t i = 0; i < 4; ++i) s[t][i] = _mm512_dpwssd_epi32(s[t][i], wv[i], av);
    }
  }
  const __m512 d = _mm512_load_ps(g.d);
  const __m512 dmin = _mm512_load_ps(g.dmin);
  for (size_t t = 0; t < T; ++t) {
    const __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(s[t][0], s[t][1]),
                                         _mm512_unpackhi_epi32(s[t][0], s[t][1]));
    const __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(s[t][2], s[t][3]),
                                         _mm512_unpackhi_epi32(s[t][2], s[t][3]));
    const __m512i sumi =
        _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
    __m512i summ = _mm512_setzero_si512();
    if (g.any_mins)
      for (size_t p = 0; p < 8; ++p)
        summ = _mm512_dpwssd_epi32(summ, _mm512_load_si512(g.mins[p]),
                                   _mm512_set1_epi32(x[t].asum[p]));
    // add_block: fma(sumi, d * da, acc), then fma(summ, -(dmin * da), acc); the sign flipped
    // exactly (xor), as the scalar negation does.
    const __m512 da = _mm512_set1_ps(x[t].da);
    const __m512 neg_dmin_da = _mm512_castsi512_ps(_mm512_xor_si512(
        _mm512_castps_si512(_mm512_mul_ps(dmin, da)), _mm512_set1_epi32(INT32_MIN)));
    __m512 a = _mm512_load_ps(acc + 16 * t);
    a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, da), a);
    a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(summ), neg_dmin_da, a);
    _mm512_store_ps(acc + 16 * t, a);
  }
}

template <class C>
void int8_rows_gemm(const WeightMatrix& w, const Q8KBlocks& act, size_t n_tokens, float* y,
                    size_t y_stride, size_t row_begin, size_t row_end) {
  const size_t n_blocks = w.cols / kQ8KBlock;
  GroupBlock g;
  TokenBlock x[kTileTokens];
  alignas(64) float acc[kPanelTokens][16];
  alignas(64) int32_t to_rows[16];  // vpermd indices: output row r from lane lane_row(r)
  for (size_t r = 0; r < 16; ++r) to_rows[r] = static_cast<int32_t>(lane_row(r));
  const __m512i perm = _mm512_load_si512(to_rows);
  for (size_t t0 = 0; t0 < n_tokens; t0 += kPanelTokens) {
    const size_t nt = std::min(kPanelTokens, n_tokens - t0);
    for (size_t r0 = row_begin; r0 < row_end; r0 += 16) {
      const size_t rows = std::min<size_t>(16, row_end - r0);
      std::memset(acc, 0, nt * sizeof acc[0]);
      for (size_t b = 0; b < n_blocks; ++b) {
        lay_out<C>(w, r0, rows, b, g);
        for (size_t t = 0; t < nt; t += kTileTokens) {
          const size_t n = std::min(kTileTokens, nt - t);
          for (size_t i = 0; i < n; ++i) widen(act, t0 + t + i, b, x[i]);
          float* a = acc[t];
          switch (n) {
            case 1:
              group_tokens<1>(g, x, a);
              break;
            case 2:
              group_tokens<2>(g, x, a);
              break;
            case 3:
              group_tokens<3>(g, x, a);
              break;
            case 4:
              group_tokens<4>(g, x, a);
              break;
            case 5:
              group_tokens<5>(g, x, a);
              break;
            default:
              group_tokens<6>(g, x, a);
              break;
          }
        }
      }
      const __mmask16 mask = static_cast<__mmask16>((1u << rows) - 1);
      for (size_t t = 0; t < nt; ++t)
        _mm512_mask_storeu_ps(y + (t0 + t) * y_stride + r0, mask,
                              _mm512_permutexvar_ps(perm, _mm512_load_ps(acc[t])));
    }
  }
}

}  // namespace gemm
#pragma GCC diagnostic pop

template <class C>
void gemm16(const WeightMatrix& w, const MatmulInput& x, float* y, size_t y_stride,
            size_t row_begin, size_t row_end) {
  gemm::int8_rows_gemm<C>(w, Q8KBlocks{x.q8k}, x.n_tokens, y, y_stride, row_begin, row_end);
}

}  // namespace brise::kernels::BRISE_ISA::row_matmul
#endif
