// What the codecs' one-token kernels over packed groups (dot_groups_q8k, read by
// kernels/matmul_group_decode.hpp) are written with, once for every set with 256-bit vectors or
// wider: the packed matmul's lane operations (PackedOps, kernels/packed_ops.hpp: one 32-bit lane
// per row, kRows rows per vector) and a few more, and WordVectors, the vectors of a group block
// packed in word units (kernels/types/packed.hpp). On AVX-512 a vector holds a whole group of 16
// rows; on AVX2 two vectors of 8 rows do, each reading its half of every 64-byte word unit.
//
// Every operation is exact on integers (the codecs' sums are the integers of int8_block.hpp), and
// the one f32 operation here (neg) flips the sign bit as the scalar negation does.
#pragma once

#include "kernels/isa.hpp"

#if defined(BRISE_AVX2)
#include <cstddef>
#include <cstdint>

#include "kernels/packed_ops.hpp"
#include "kernels/types/byte_group.hpp"
#include "kernels/types/packed.hpp"

namespace brise::kernels::BRISE_ISA {

struct GroupOps : PackedOps {
  // Whether dot_unsigned sums its products in 32 bits (vpdpbusd): unsigned codes up to 255 may meet
  // the activations. Without VNNI, vpmaddubsw's 16-bit pair sums saturate past 2^15 - 1, so codes
  // must stay below 2^15 / (2 x 128) = 128 (4-bit codes are shifted down first).
#if defined(BRISE_AVX512_VNNI) || defined(BRISE_AVX_VNNI)
  static constexpr bool kWideDot = true;
#else
  static constexpr bool kWideDot = false;
#endif

#if defined(BRISE_AVX512)
  static I or_(I a, I b) {
    return _mm512_or_si512(a, b);
  }
  static I add32(I a, I b) {
    return _mm512_add_epi32(a, b);
  }
  static I mullo32(I a, I b) {
    return _mm512_mullo_epi32(a, b);
  }
  // acc + the two 16-bit products of each lane (vpdpwssd; exact for |a|, |b| < 2^15).
  static I dot_pairs(I acc, I a, I b) {
    return _mm512_dpwssd_epi32(acc, a, b);
  }
  static I shuffle_bytes(I v, const int8_t* index) {
    return _mm512_shuffle_epi8(v, _mm512_loadu_si512(index));
  }
  // The fp16 in each lane's low 16 bits, as f32 (vcvtph2ps: exactly f16_to_f32).
  static F low_f16(I v) {
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v));
  }
  static F neg(F v) {
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), splat32(INT32_MIN)));
  }
#else
  static I or_(I a, I b) {
    return _mm256_or_si256(a, b);
  }
  static I add32(I a, I b) {
    return _mm256_add_epi32(a, b);
  }
  static I mullo32(I a, I b) {
    return _mm256_mullo_epi32(a, b);
  }
#if defined(BRISE_AVX_VNNI)
  static I dot_pairs(I acc, I a, I b) {
    return _mm256_dpwssd_avx_epi32(acc, a, b);
  }
#else
  static I dot_pairs(I acc, I a, I b) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
  }
#endif
  static I shuffle_bytes(I v, const int8_t* index) {
    return _mm256_shuffle_epi8(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(index)));
  }
  static F low_f16(I v) {
    // Masked to 16 bits, the lanes pack without saturating.
    const I low = _mm256_and_si256(v, splat32(0xFFFF));
    return _mm256_cvtph_ps(
        _mm_packus_epi32(_mm256_castsi256_si128(low), _mm256_extracti128_si256(low, 1)));
  }
  static F neg(F v) {
    return _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(v), splat32(INT32_MIN)));
  }
#endif
  static F high_f16(I v) {
    return low_f16(srli32<16>(v));
  }

  // Bit kFrom of every byte moved to bit kTo, the others cleared (a shift of the 32-bit lanes
  // by less than 8 keeps each byte's bit in its byte).
  template <int kFrom, int kTo>
  static I move_bit(I v) {
    const I moved = kFrom <= kTo ? slli32<(kTo - kFrom) & 31>(v) : srli32<(kFrom - kTo) & 31>(v);
    return and_(moved, splat8(static_cast<uint8_t>(1u << kTo)));
  }
  // Each byte's low 4 bits looked up in the 16 bytes of `table` (repeated in every 128-bit lane).
  static I lookup16(I table, I nibbles) {
#if defined(BRISE_AVX512)
    return _mm512_shuffle_epi8(table, nibbles);
#else
    return _mm256_shuffle_epi8(table, nibbles);
#endif
  }
  // The 16 bytes at p in every 128-bit lane.
  static I load16_each_lane(const void* p) {
#if defined(BRISE_AVX512)
    return _mm512_broadcast_i32x4(_mm_loadu_si128(static_cast<const __m128i*>(p)));
#else
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(static_cast<const __m128i*>(p)));
#endif
  }

  // Every 32-bit lane's bytes rearranged: byte i of the result is byte kFrom_i of the lane (-1:
  // zero).
  template <int kFrom0, int kFrom1, int kFrom2, int kFrom3>
  static I lane_bytes(I v) {
    return shuffle_bytes(v, byte_group::kLaneBytesIndex<kFrom0, kFrom1, kFrom2, kFrom3>.i);
  }
};

// The vectors of one group's block b, packed in word units (packed::pack_block_words), for a
// codec's dot_groups_q8k: vector s of kStreams holds rows [kRows s, + kRows) of the group.
struct WordVectors {
  using Ops = GroupOps;
  using I = Ops::I;
  using F = Ops::F;
  static constexpr size_t kStreams = packed::kGroupRows / Ops::kRows;  // vectors per group

  const uint8_t* block;  // block b of the group

  const uint8_t* rows(size_t s) const { return block + s * 4 * Ops::kRows; }
  // Word u of vector s's rows' blocks, one row per lane.
  I word(size_t s, size_t u) const { return Ops::load(rows(s) + u * packed::kUnitBytes); }
  // The rows' 2-byte tails (past the block's `words` whole words) as f32: an fp16 d.
  F tail_f16(size_t s, size_t words) const {
    return Ops::load_f16(block + words * packed::kUnitBytes + s * 2 * Ops::kRows);
  }
};

// dot_groups_q8k of a type with 16 signed scales per block and no min, its fp16 d the block's
// 2-byte tail (Q3_K, Q6_K): for each vector s, the sum of the codec's C::sub_blocks<h, i>
// (sum_k scale_j (dot_j - offset x s16_j) over the sub-blocks j = 8 h + 2 k + i).
template <class C, class V>
void dot_groups_signed_sub16(const V& w, const int8_t* a, const int32_t* s16, typename V::I* sumi,
                             typename V::I* summ, typename V::F* d, typename V::F* dmin) {
  using Ops = typename V::Ops;
  static_assert(C::kBlockBytes % 4 == 2);  // the tail: tail_f16
  for (size_t s = 0; s < V::kStreams; ++s) {
    sumi[s] = Ops::add32(Ops::add32(C::template sub_blocks<0, 0>(w, s, a, s16),
                                    C::template sub_blocks<0, 1>(w, s, a, s16)),
                         Ops::add32(C::template sub_blocks<1, 0>(w, s, a, s16),
                                    C::template sub_blocks<1, 1>(w, s, a, s16)));
    summ[s] = Ops::zero();
    d[s] = w.tail_f16(s, C::kBlockBytes / 4);
    dmin[s] = Ops::zero_f();
  }
}

}  // namespace brise::kernels::BRISE_ISA
#endif
