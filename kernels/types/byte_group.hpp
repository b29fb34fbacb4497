// The int8 prefill's form of one block of 16 rows (kernels/matmul_byte_gemm.hpp), for the types
// whose codes are small unsigned integers (Q4_K, Q6_K): the codes stay bytes, one row per 32-bit
// lane, so that vpdpbusd multiplies 4 codes of each of 16 rows with 4 broadcast activations.
//
// code[h][j] holds codes 16 h + 4 j .. + 3 of row r in lane r: four vectors cover the 16
// elements of half h. scale[h] is the multiplier of that half's integer sum per row, pairs[p]
// per-row multipliers of the activations' sums (16-bit pairs, vpdpwssd) that correct the result:
// a type's mins (into summ) or its code offset (into sumi). The codec's to_byte_group fills it
// from the 16 rows' block bytes (a zero block past the matrix, RowBlocks) or from a group block
// packed in word units (GroupWords), with the helpers below.
#pragma once

#if defined(BRISE_AVX512_VNNI)
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/types/packed.hpp"

// gcc 12 flags its own avx512fintrin.h here (`__m512i __Y = __Y;`, the undefined first operand of
// the insert and convert intrinsics, once inlined): a false -Wuninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
namespace brise::kernels::BRISE_ISA {

struct ByteGroup {
  static constexpr size_t kHalves = 16;      // of 16 elements, per 256-element block
  alignas(64) uint8_t code[kHalves][4][64];  // [h][j][4 r + i]: row r's code 16 h + 4 j + i
  alignas(64) int32_t scale[kHalves][16];    // [h][r]
  alignas(64) int32_t pairs[8][16];          // [p][r]: c[2 p] & 0xFFFF | c[2 p + 1] << 16
  alignas(64) float d[16];
  alignas(64) float dmin[16];
  bool any_pairs;
};

namespace byte_group {

// 128-bit lane m = the 16 bytes at blocks[4 m + k] + offset.
inline __m512i four_rows(const uint8_t* const* blocks, size_t k, size_t offset) {
  const auto at = [&](size_t m) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks[4 * m + k] + offset));
  };
  __m512i v = _mm512_castsi128_si512(at(0));
  v = _mm512_inserti32x4(v, at(1), 1);
  v = _mm512_inserti32x4(v, at(2), 2);
  return _mm512_inserti32x4(v, at(3), 3);
}

// In each 128-bit lane, a 4 x 4 transpose of 32-bit words: afterwards x[j] holds, in lane r, word
// j of the 16 bytes that four_rows(blocks, k, offset) put into x[k] for row r = 4 m + k.
inline void transpose4(__m512i x[4]) {
  const __m512i t0 = _mm512_unpacklo_epi32(x[0], x[1]);
  const __m512i t1 = _mm512_unpackhi_epi32(x[0], x[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(x[2], x[3]);
  const __m512i t3 = _mm512_unpackhi_epi32(x[2], x[3]);
  x[0] = _mm512_unpacklo_epi64(t0, t2);
  x[1] = _mm512_unpackhi_epi64(t0, t2);
  x[2] = _mm512_unpacklo_epi64(t1, t3);
  x[3] = _mm512_unpackhi_epi64(t1, t3);
}

// Rows' words of 16 bytes at `offset` of each block, row r's word j in lane r of x[j].
inline void rows_words(const uint8_t* const* blocks, size_t offset, __m512i x[4]) {
  for (size_t k = 0; k < 4; ++k) x[k] = four_rows(blocks, k, offset);
  transpose4(x);
}

// Every 32-bit lane's bytes rearranged: byte i of the result is byte kFrom[i] of the lane (-1:
// zero).
template <int kFrom0, int kFrom1, int kFrom2, int kFrom3>
inline __m512i lane_bytes(__m512i v) {
  struct Index {
    alignas(64) int8_t i[64];
  };
  static constexpr Index kIndex = [] {
    constexpr int from[4] = {kFrom0, kFrom1, kFrom2, kFrom3};
    Index x{};
    for (int i = 0; i < 64; ++i) {
      const int word = (i / 4) % 4;  // pshufb indexes within a 128-bit lane
      x.i[i] = static_cast<int8_t>(from[i % 4] < 0 ? -128 : 4 * word + from[i % 4]);
    }
    return x;
  }();
  return _mm512_shuffle_epi8(v, _mm512_load_si512(kIndex.i));
}

// The 16 rows' fp16 at `offset` of each block, as f32 (vcvtph2ps: exactly f16_to_f32).
inline __m512 rows_f16(const uint8_t* const* blocks, size_t offset) {
  alignas(32) uint16_t h[16];
  for (size_t r = 0; r < 16; ++r) std::memcpy(&h[r], blocks[r] + offset, 2);
  return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(h)));
}

// Where to_byte_group reads the 16 rows' blocks from: words(offset, x) puts row r's word j of the
// 16 bytes at `offset` (a multiple of 4) into lane r of x[j].
struct RowBlocks {  // 16 blocks in the file's layout (a zero block past the matrix)
  const uint8_t* const* blocks;
  void words(size_t offset, __m512i x[4]) const { rows_words(blocks, offset, x); }
  __m512 f16(size_t offset) const { return rows_f16(blocks, offset); }
};
struct GroupWords {  // a group block packed in word units (packed::pack_block_words)
  const uint8_t* group;
  void words(size_t offset, __m512i x[4]) const {
    for (size_t j = 0; j < 4; ++j)
      x[j] = _mm512_loadu_si512(group + (offset / 4 + j) * packed::kUnitBytes);
  }
  // Only for an fp16 that is the block's 2-byte tail (offset = 4 W): the 16 rows' side by side.
  __m512 f16(size_t offset) const {
    return _mm512_cvtph_ps(_mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(group + offset / 4 * packed::kUnitBytes)));
  }
};

}  // namespace byte_group
}  // namespace brise::kernels::BRISE_ISA
#pragma GCC diagnostic pop
#endif
