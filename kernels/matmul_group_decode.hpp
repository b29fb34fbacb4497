// Decode of a row-major type packed in word units (kernels/types/packed.hpp) on AVX-512 VNNI, for
// the codecs with a one-token kernel over 16 rows (dot_groups_q8k: Q4_K): 16 rows' block sums per
// vector, no horizontal sum. kernels/matmul.cpp chooses it for one token of such a matrix.
#pragma once

#include "kernels/isa.hpp"

#if defined(BRISE_AVX512_VNNI)
#include <algorithm>
#include <cstdint>

#include "kernels/matmul_byte_gemm.hpp"
#include "kernels/matmul_rows.hpp"
#include "kernels/prefetch.hpp"
#include "kernels/types/packed.hpp"

namespace brise::kernels::BRISE_ISA::row_matmul {

// Whether the codec has a one-token kernel over packed groups of 16 rows (the loader packs its
// matrices then: packs_rows).
template <class C>
inline constexpr bool kHasGroupDecode = requires(__m512i i, __m512 f) {
  C::template dot_groups_q8k<1>(nullptr, 0, nullptr, nullptr, &i, &i, &f, &f);
};

// Decode over a matrix packed in word units (kernels/types/packed.hpp): the codec's one-token dot
// product of a group block gives 16 rows' block sums at once (C::dot_groups_q8k), then add_block's
// two FMAs per lane in block order: bit for bit the per-row path's result. G groups are streamed
// side by side, block by block, each prefetched ahead: one stream alone leaves the memory idle.
constexpr size_t kDecodeGroups = 4;

template <class C, size_t G>
void group_decode_tile(const uint8_t* group0, size_t group_bytes, size_t n_blocks,
                       const Q8KBlocks& act, size_t t, __m512* acc) {
  constexpr size_t kGroupBlock = packed::group_block_bytes(C::kBlockBytes);
  for (size_t g = 0; g < G; ++g) acc[g] = _mm512_setzero_ps();
  for (size_t b = 0; b < n_blocks; ++b) {
    const uint8_t* blocks = group0 + b * kGroupBlock;
    int32_t pairs[kQ8KBlock / C::kPairElems / 2];  // the token's activation sums, as pairs
    byte_gemm::pair_sums<C::kPairElems>(act.sums16(t, b), pairs);
    for (size_t g = 0; g < G; ++g)
      prefetch_ahead(blocks + g * group_bytes, kStreamPrefetchBytes, kGroupBlock);
    __m512i sumi[G], summ[G];
    __m512 d[G], dmin[G];
    C::template dot_groups_q8k<G>(blocks, group_bytes, act.codes(t, b), pairs, sumi, summ, d, dmin);
    const __m512 da = _mm512_set1_ps(act.scale(t, b));
    for (size_t g = 0; g < G; ++g) {
      // add_block: fma(sumi, d * da, acc), then fma(summ, -(dmin * da), acc); the sign flipped
      // exactly (xor), as the scalar negation does.
      const __m512 neg_dmin_da = _mm512_castsi512_ps(_mm512_xor_si512(
          _mm512_castps_si512(_mm512_mul_ps(dmin[g], da)), _mm512_set1_epi32(INT32_MIN)));
      acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[g]), _mm512_mul_ps(d[g], da), acc[g]);
      acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(summ[g]), neg_dmin_da, acc[g]);
    }
  }
}

// Token by token (it is chosen for one), up to kDecodeGroups groups at a time.
template <class C>
void group_decode(const WeightMatrix& w, const Q8KBlocks& act, size_t n_tokens, float* y,
                  size_t y_stride, size_t row_begin, size_t row_end) {
  const size_t n_blocks = w.cols / kQ8KBlock;
  const size_t group_bytes = packed::kGroupRows * w.row_bytes;
  for (size_t t = 0; t < n_tokens; ++t)
    for (size_t r0 = row_begin; r0 < row_end;) {
      const size_t groups =
          std::min(kDecodeGroups, (row_end - r0 + packed::kGroupRows - 1) / packed::kGroupRows);
      const uint8_t* group0 = static_cast<const uint8_t*>(w.data) + r0 * w.row_bytes;
      __m512 acc[kDecodeGroups];
      switch (groups) {
        case 1:
          group_decode_tile<C, 1>(group0, group_bytes, n_blocks, act, t, acc);
          break;
        case 2:
          group_decode_tile<C, 2>(group0, group_bytes, n_blocks, act, t, acc);
          break;
        case 3:
          group_decode_tile<C, 3>(group0, group_bytes, n_blocks, act, t, acc);
          break;
        default:
          group_decode_tile<C, 4>(group0, group_bytes, n_blocks, act, t, acc);
          break;
      }
      for (size_t g = 0; g < groups; ++g, r0 += packed::kGroupRows) {
        const size_t rows = std::min(packed::kGroupRows, row_end - r0);
        _mm512_mask_storeu_ps(y + t * y_stride + r0, static_cast<__mmask16>((1u << rows) - 1),
                              acc[g]);
      }
    }
}

template <class C>
void word_group_decode(const WeightMatrix& w, const MatmulInput& x, float* y, size_t y_stride,
                       size_t row_begin, size_t row_end) {
  group_decode<C>(w, Q8KBlocks{x.q8k}, x.n_tokens, y, y_stride, row_begin, row_end);
}

}  // namespace brise::kernels::BRISE_ISA::row_matmul
#endif
