// Decode of a row-major type packed in word units (kernels/types/packed.hpp), for the codecs with
// a one-token kernel over 16 rows (dot_groups_q8k), on every set with 256-bit vectors or wider:
// 16 rows' block sums per group (one vector on AVX-512, two on AVX2), no horizontal sum.
// kernels/matmul.cpp chooses it for one token of such a matrix.
#pragma once

#include "kernels/isa.hpp"

#if defined(BRISE_AVX2)
#include <algorithm>
#include <cstdint>

#include "kernels/group_decode_ops.hpp"
#include "kernels/matmul_rows.hpp"
#include "kernels/prefetch.hpp"
#include "kernels/types/packed.hpp"

namespace brise::kernels::BRISE_ISA::row_matmul {

// Whether the codec has a one-token kernel over packed groups of 16 rows (the loader packs its
// matrices then: packs_rows).
template <class C>
inline constexpr bool kHasGroupDecode = requires(const WordVectors& w, GroupOps::I i,
                                                 GroupOps::F f) {
  C::dot_groups_q8k(w, nullptr, nullptr, &i, &i, &f, &f);
};

// Decode over a matrix packed in word units (kernels/types/packed.hpp): the codec's one-token dot
// product of a group block gives 16 rows' block sums at once (C::dot_groups_q8k), then add_block's
// two FMAs per lane in block order: bit for bit the per-row path's result. One group at a time,
// block by block, prefetched ahead: streaming 2 or 4 groups side by side (to keep more reads in
// flight) measured 1.3-1.8x slower on Zen 4, AVX-512 and AVX2 alike, its vectors spilled to the
// stack; one stream per thread keeps every vector in a register and the memory busy enough.
// The prefetch asks for the block two blocks on, into L2 (prefetcht2): a codec that reads its
// block's words out of order (Q3_K, Q5_K, Q6_K) waited on the memory with the rows' prefetch
// (kStreamPrefetchBytes ahead, into L1): AVX-512, Zen 4, 4096 x 4096, one thread, q5_K 0.91 ->
// 0.50 ms, q3_K 0.59 -> 0.44. Q4_K reads its words in order and keeps the rows' prefetch: with
// the L2 one its 1B decode fell 10 % (Zen 4, `brise bench -p 64 -n 64`, 89.0 -> 79.8 tok/s).
template <class C>
constexpr bool reads_words_in_order() {
  if constexpr (requires { C::kReadsWordsInOrder; })
    return C::kReadsWordsInOrder;
  else
    return false;
}

template <class C>
void group_decode_tile(const uint8_t* group, size_t n_blocks, const Q8KBlocks& act, size_t t,
                       GroupOps::F* acc) {
  using Ops = GroupOps;
  constexpr size_t S = WordVectors::kStreams;
  constexpr size_t kGroupBlock = packed::group_block_bytes(C::kBlockBytes);
  for (size_t s = 0; s < S; ++s) acc[s] = Ops::zero_f();
  for (size_t b = 0; b < n_blocks; ++b) {
    const uint8_t* block = group + b * kGroupBlock;
    if constexpr (reads_words_in_order<C>())
      prefetch_ahead(block, kStreamPrefetchBytes, kGroupBlock);
    else
      prefetch_ahead<1>(block, 2 * kGroupBlock, kGroupBlock);
    Ops::I sumi[S], summ[S];
    Ops::F d[S], dmin[S];
    C::dot_groups_q8k(WordVectors{block}, act.codes(t, b), act.sums16(t, b), sumi, summ, d, dmin);
    const Ops::F da = Ops::splat(act.scale(t, b));
    for (size_t s = 0; s < S; ++s) {
      // add_block: fma(sumi, d * da, acc), then fma(summ, -(dmin * da), acc); the sign flipped
      // exactly, as the scalar negation does.
      acc[s] = Ops::fma(Ops::to_float(sumi[s]), Ops::mul(d[s], da), acc[s]);
      acc[s] = Ops::fma(Ops::to_float(summ[s]), Ops::neg(Ops::mul(dmin[s], da)), acc[s]);
    }
  }
}

// Token by token (it is chosen for one), group by group.
template <class C>
void group_decode(const WeightMatrix& w, const Q8KBlocks& act, size_t n_tokens, float* y,
                  size_t y_stride, size_t row_begin, size_t row_end) {
  using Ops = GroupOps;
  const size_t n_blocks = w.cols / kQ8KBlock;
  for (size_t t = 0; t < n_tokens; ++t)
    for (size_t r0 = row_begin; r0 < row_end; r0 += packed::kGroupRows) {
      Ops::F acc[WordVectors::kStreams];
      group_decode_tile<C>(static_cast<const uint8_t*>(w.data) + r0 * w.row_bytes, n_blocks, act, t,
                           acc);
      const size_t rows = std::min(packed::kGroupRows, row_end - r0);
      for (size_t v = 0; v * Ops::kRows < rows; ++v)
        Ops::store(y + t * y_stride + r0 + v * Ops::kRows, acc[v],
                   std::min(Ops::kRows, rows - v * Ops::kRows));
    }
}

template <class C>
void word_group_decode(const WeightMatrix& w, const MatmulInput& x, float* y, size_t y_stride,
                       size_t row_begin, size_t row_end) {
  group_decode<C>(w, Q8KBlocks{x.q8k}, x.n_tokens, y, y_stride, row_begin, row_end);
}

}  // namespace brise::kernels::BRISE_ISA::row_matmul
#endif
