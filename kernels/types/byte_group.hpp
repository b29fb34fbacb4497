// The int8 prefill's form of one block of 16 rows (kernels/matmul_byte_gemm.hpp), for the
// 256-element types whose codes are small unsigned integers (Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS): the
// codes stay bytes, one row per 32-bit lane, so that vpdpbusd (AVX2: vpmaddubsw) multiplies 4
// codes of each of 16 rows with 4 broadcast activations.
//
// code[h][j] holds codes 16 h + 4 j .. + 3 of row r in lane r: four vectors cover the 16
// elements of half h. scale[h] is the multiplier of that half's integer sum per row, pairs[p]
// per-row multipliers of the activations' sums (16-bit pairs, vpdpwssd/vpmaddwd) that correct the
// result: a type's mins (into summ) or its code offset (into sumi). The codec's to_byte_group fills
// it from the 16 rows' block bytes (a zero block past the matrix, RowBlocks) or from a group block
// packed in word units (GroupWords), with the helpers below, written once over Lanes16 (16 rows'
// 32-bit lanes: one AVX-512 vector, or two AVX2 ones for rows 0..7 and 8..15) so that both widths
// lay out the same bytes.
#pragma once

#if defined(BRISE_AVX2)
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

// 16 rows' 32-bit lanes, row r in lane r, and the lane-wise operations the codecs' to_byte_group
// use. Every operation acts within 32-bit lanes or within 128-bit lanes, so two AVX2 halves
// compute exactly what one AVX-512 vector does.
// The lane-wise operations of both widths that are one intrinsic each, named by the intrinsic
// without its _mm512_ / _mm256_ (shuffle_epi8 is pshufb: byte i of each 128-bit lane = byte
// idx[i] & 15 of that lane of v, 0 if idx[i] < 0).
#define BRISE_LANES_BINARY_OPS(X) \
  X(add16, add_epi16)             \
  X(sub16, sub_epi16)             \
  X(sub32, sub_epi32)             \
  X(mullo16, mullo_epi16)         \
  X(mullo32, mullo_epi32)         \
  X(shuffle8, shuffle_epi8)       \
  X(unpacklo32, unpacklo_epi32)   \
  X(unpackhi32, unpackhi_epi32)   \
  X(unpacklo64, unpacklo_epi64)   \
  X(unpackhi64, unpackhi_epi64)
#define BRISE_LANES_SHIFT_OPS(X) \
  X(srli16, srli_epi16)          \
  X(slli16, slli_epi16)          \
  X(srai16, srai_epi16)          \
  X(srli32, srli_epi32)          \
  X(slli32, slli_epi32)          \
  X(srai32, srai_epi32)

#if defined(BRISE_AVX512)
using Lanes16 = __m512i;
namespace lanes {
inline Lanes16 load(const void* p) {
  return _mm512_loadu_si512(p);
}
inline void store(void* p, Lanes16 v) {
  _mm512_store_si512(p, v);
}
inline Lanes16 set1_8(int8_t x) {
  return _mm512_set1_epi8(x);
}
inline Lanes16 set1_16(int16_t x) {
  return _mm512_set1_epi16(x);
}
inline Lanes16 set1_32(int32_t x) {
  return _mm512_set1_epi32(x);
}
inline Lanes16 and_(Lanes16 a, Lanes16 b) {
  return _mm512_and_si512(a, b);
}
inline Lanes16 or_(Lanes16 a, Lanes16 b) {
  return _mm512_or_si512(a, b);
}
#define BRISE_LANES_BINARY(name, op)          \
  inline Lanes16 name(Lanes16 a, Lanes16 b) { \
    return _mm512_##op(a, b);                 \
  }
#define BRISE_LANES_SHIFT(name, op)            \
  inline Lanes16 name(Lanes16 a, unsigned n) { \
    return _mm512_##op(a, n);                  \
  }
BRISE_LANES_BINARY_OPS(BRISE_LANES_BINARY)
BRISE_LANES_SHIFT_OPS(BRISE_LANES_SHIFT)
#undef BRISE_LANES_BINARY
#undef BRISE_LANES_SHIFT
inline bool any(Lanes16 v) {
  return _mm512_test_epi32_mask(v, v) != 0;
}
// The fp16 in each lane's low 16 bits as f32 (vcvtph2ps: exactly f16_to_f32), lane r to out[r].
inline void low_f16_to_f32(Lanes16 v, float* out) {
  _mm512_store_ps(out, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)));
}
// 16 fp16 values side by side as f32.
inline void f16_to_f32(const void* p, float* out) {
  _mm512_store_ps(out, _mm512_cvtph_ps(_mm256_loadu_si256(static_cast<const __m256i*>(p))));
}
// 128-bit lane m = q[m].
inline Lanes16 from_quarters(const __m128i* q) {
  __m512i v = _mm512_castsi128_si512(q[0]);
  v = _mm512_inserti32x4(v, q[1], 1);
  v = _mm512_inserti32x4(v, q[2], 2);
  return _mm512_inserti32x4(v, q[3], 3);
}
}  // namespace lanes
#else
struct Lanes16 {
  __m256i lo, hi;  // rows 0..7, rows 8..15
};
namespace lanes {
inline Lanes16 load(const void* p) {
  const auto* q = static_cast<const __m256i*>(p);
  return {_mm256_loadu_si256(q), _mm256_loadu_si256(q + 1)};
}
inline void store(void* p, Lanes16 v) {
  auto* q = static_cast<__m256i*>(p);
  _mm256_store_si256(q, v.lo);
  _mm256_store_si256(q + 1, v.hi);
}
inline Lanes16 set1_8(int8_t x) {
  return {_mm256_set1_epi8(x), _mm256_set1_epi8(x)};
}
inline Lanes16 set1_16(int16_t x) {
  return {_mm256_set1_epi16(x), _mm256_set1_epi16(x)};
}
inline Lanes16 set1_32(int32_t x) {
  return {_mm256_set1_epi32(x), _mm256_set1_epi32(x)};
}
inline Lanes16 and_(Lanes16 a, Lanes16 b) {
  return {_mm256_and_si256(a.lo, b.lo), _mm256_and_si256(a.hi, b.hi)};
}
inline Lanes16 or_(Lanes16 a, Lanes16 b) {
  return {_mm256_or_si256(a.lo, b.lo), _mm256_or_si256(a.hi, b.hi)};
}
#define BRISE_LANES_BINARY(name, op)                           \
  inline Lanes16 name(Lanes16 a, Lanes16 b) {                  \
    return {_mm256_##op(a.lo, b.lo), _mm256_##op(a.hi, b.hi)}; \
  }
#define BRISE_LANES_SHIFT(name, op)                      \
  inline Lanes16 name(Lanes16 a, unsigned n) {           \
    const int c = static_cast<int>(n);                   \
    return {_mm256_##op(a.lo, c), _mm256_##op(a.hi, c)}; \
  }
BRISE_LANES_BINARY_OPS(BRISE_LANES_BINARY)
BRISE_LANES_SHIFT_OPS(BRISE_LANES_SHIFT)
#undef BRISE_LANES_BINARY
#undef BRISE_LANES_SHIFT
inline bool any(Lanes16 v) {
  return !_mm256_testz_si256(_mm256_or_si256(v.lo, v.hi), _mm256_or_si256(v.lo, v.hi));
}
inline void low_f16_to_f32(Lanes16 v, float* out) {
  // The low 16 bits of each lane to the low 8 bytes of its 128-bit lane, the two 128-bit lanes'
  // 8 bytes side by side, then vcvtph2ps.
  const __m256i low = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1, 0,
                                       1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
  const auto eight = [&](__m256i x) {
    return _mm256_cvtph_ps(
        _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_shuffle_epi8(x, low), 0x08)));
  };
  _mm256_store_ps(out, eight(v.lo));
  _mm256_store_ps(out + 8, eight(v.hi));
}
inline void f16_to_f32(const void* p, float* out) {
  const auto* h = static_cast<const __m128i*>(p);
  _mm256_store_ps(out, _mm256_cvtph_ps(_mm_loadu_si128(h)));
  _mm256_store_ps(out + 8, _mm256_cvtph_ps(_mm_loadu_si128(h + 1)));
}
inline Lanes16 from_quarters(const __m128i* q) {
  return {_mm256_inserti128_si256(_mm256_castsi128_si256(q[0]), q[1], 1),
          _mm256_inserti128_si256(_mm256_castsi128_si256(q[2]), q[3], 1)};
}
}  // namespace lanes
#endif

namespace byte_group {

// A token's activation sums per kPairElems (8 or 16 of them per block, from its sums per 16
// `s16`) as 16-bit pairs, like ByteGroup::pairs: out[p] = sum 2 p & 0xFFFF | sum 2 p + 1 << 16
// (|sum| <= 32 x 127).
template <size_t kPairElems>
inline void pair_sums(const int32_t* s16, int32_t* out) {
  constexpr size_t kPer = kPairElems / 16;  // sums of 16 per element of a pair
  for (size_t p = 0; p < 256 / kPairElems / 2; ++p) {
    int32_t lo = 0, hi = 0;
    for (size_t k = 0; k < kPer; ++k) {
      lo += s16[2 * kPer * p + k];
      hi += s16[2 * kPer * p + kPer + k];
    }
    out[p] = static_cast<int32_t>((static_cast<uint32_t>(lo) & 0xFFFF) | static_cast<uint32_t>(hi)
                                                                             << 16);
  }
}

// 128-bit lane m = the 16 bytes at blocks[4 m + k] + offset.
inline Lanes16 four_rows(const uint8_t* const* blocks, size_t k, size_t offset) {
  __m128i q[4];
  for (size_t m = 0; m < 4; ++m)
    q[m] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks[4 * m + k] + offset));
  return lanes::from_quarters(q);
}

// In each 128-bit lane, a 4 x 4 transpose of 32-bit words: afterwards x[j] holds, in lane r, word
// j of the 16 bytes that four_rows(blocks, k, offset) put into x[k] for row r = 4 m + k.
inline void transpose4(Lanes16 x[4]) {
  using namespace lanes;
  const Lanes16 t0 = unpacklo32(x[0], x[1]);
  const Lanes16 t1 = unpackhi32(x[0], x[1]);
  const Lanes16 t2 = unpacklo32(x[2], x[3]);
  const Lanes16 t3 = unpackhi32(x[2], x[3]);
  x[0] = unpacklo64(t0, t2);
  x[1] = unpackhi64(t0, t2);
  x[2] = unpacklo64(t1, t3);
  x[3] = unpackhi64(t1, t3);
}

// Rows' words of 16 bytes at `offset` of each block, row r's word j in lane r of x[j].
inline void rows_words(const uint8_t* const* blocks, size_t offset, Lanes16 x[4]) {
  for (size_t k = 0; k < 4; ++k) x[k] = four_rows(blocks, k, offset);
  transpose4(x);
}

// The pshufb index that rearranges every 32-bit lane's bytes: byte i of a lane becomes its byte
// kFrom_i (-1: zero), for 64 bytes (one AVX-512 vector, or the same 32 bytes twice for AVX2).
struct LaneBytesIndex {
  alignas(64) int8_t i[64];
};
template <int kFrom0, int kFrom1, int kFrom2, int kFrom3>
inline constexpr LaneBytesIndex kLaneBytesIndex = [] {
  constexpr int from[4] = {kFrom0, kFrom1, kFrom2, kFrom3};
  LaneBytesIndex x{};
  for (int i = 0; i < 64; ++i) {
    const int word = (i / 4) % 4;  // pshufb indexes within a 128-bit lane
    x.i[i] = static_cast<int8_t>(from[i % 4] < 0 ? -128 : 4 * word + from[i % 4]);
  }
  return x;
}();

// Every 32-bit lane's bytes rearranged: byte i of the result is byte kFrom[i] of the lane (-1:
// zero).
template <int kFrom0, int kFrom1, int kFrom2, int kFrom3>
inline Lanes16 lane_bytes(Lanes16 v) {
  return lanes::shuffle8(v, lanes::load(kLaneBytesIndex<kFrom0, kFrom1, kFrom2, kFrom3>.i));
}

// GroupOps' lane operations (kernels/group_decode_ops.hpp) over Lanes16: what the one-token
// kernels and to_byte_group both unpack (Q4_K's scales and mins, Q3_K's stored scales) is written
// once, over an Ops of either.
struct Lanes16Ops {
  using I = Lanes16;
  static constexpr size_t kRows = 16;
  static I splat8(uint8_t v) { return lanes::set1_8(static_cast<int8_t>(v)); }
  static I splat32(int32_t v) { return lanes::set1_32(v); }
  static I and_(I a, I b) { return lanes::and_(a, b); }
  static I or_(I a, I b) { return lanes::or_(a, b); }
  template <int N>
  static I slli32(I a) {
    return lanes::slli32(a, N);
  }
  template <int N>
  static I srli32(I a) {
    return lanes::srli32(a, N);
  }
  template <int kFrom0, int kFrom1, int kFrom2, int kFrom3>
  static I lane_bytes(I v) {
    return byte_group::lane_bytes<kFrom0, kFrom1, kFrom2, kFrom3>(v);
  }
};

// The 16 rows' fp16 at `offset` of each block, as f32 (vcvtph2ps: exactly f16_to_f32).
inline void rows_f16(const uint8_t* const* blocks, size_t offset, float* out) {
  alignas(32) uint16_t h[16];
  for (size_t r = 0; r < 16; ++r) std::memcpy(&h[r], blocks[r] + offset, 2);
  lanes::f16_to_f32(h, out);
}

// Where to_byte_group reads the 16 rows' blocks from: words(offset, x) puts row r's word j of the
// 16 bytes at `offset` (a multiple of 4) into lane r of x[j].
struct RowBlocks {  // 16 blocks in the file's layout (a zero block past the matrix)
  const uint8_t* const* blocks;
  void words(size_t offset, Lanes16 x[4]) const { rows_words(blocks, offset, x); }
  void f16(size_t offset, float* out) const { rows_f16(blocks, offset, out); }
};
struct GroupWords {  // a group block packed in word units (packed::pack_block_words)
  const uint8_t* group;
  void words(size_t offset, Lanes16 x[4]) const {
    for (size_t j = 0; j < 4; ++j)
      x[j] = lanes::load(group + (offset / 4 + j) * packed::kUnitBytes);
  }
  // Only for an fp16 that is the block's 2-byte tail (offset = 4 W): the 16 rows' side by side.
  void f16(size_t offset, float* out) const {
    lanes::f16_to_f32(group + offset / 4 * packed::kUnitBytes, out);
  }
};

// The 16 rows' scale (or pair) vectors from the bytes of 32-bit lanes: out[4 i + b] = byte b of
// v[i], sign-extended when kSigned.
template <bool kSigned, size_t N>
inline void lane_bytes_each(const Lanes16 (&v)[N], Lanes16* out) {
  for (size_t i = 0; i < N; ++i) {
    const Lanes16 x[4] = {lane_bytes<-1, -1, -1, 0>(v[i]), lane_bytes<-1, -1, -1, 1>(v[i]),
                          lane_bytes<-1, -1, -1, 2>(v[i]), lane_bytes<-1, -1, -1, 3>(v[i])};
    for (size_t b = 0; b < 4; ++b)
      out[4 * i + b] = kSigned ? lanes::srai32(x[b], 24) : lanes::srli32(x[b], 24);
  }
}

// Q2_K's and Q3_K's 2-bit fields of the 16 rows' blocks, whose qs start at `qs`: element
// 128 h + 32 k + 16 i + l (half 8 h + 2 k + i) is bits 2 k, 2 k + 1 of qs byte 32 h + 16 i + l.
// Calls f(half, 4 h + k, i, j, crumbs) for word j of each half, crumbs holding those bits as
// bytes 0..3.
template <class Rows, class F>
inline void two_bit_codes(const Rows& blocks, size_t qs, F f) {
  const Lanes16 low = lanes::set1_8(0x03);
  for (unsigned h = 0; h < 2; ++h)
    for (size_t i = 0; i < 2; ++i) {
      Lanes16 q[4];
      blocks.words(qs + 32 * h + 16 * i, q);
      for (unsigned k = 0; k < 4; ++k)
        for (size_t j = 0; j < 4; ++j)
          f(8 * h + 2 * k + i, 4 * h + k, i, j, lanes::and_(lanes::srli16(q[j], 2 * k), low));
    }
}

// ByteGroup::pairs p from the 16-bit values lo (in each lane's low word) and hi (also in the low
// word): lo & 0xFFFF | hi << 16.
inline Lanes16 pair_of(Lanes16 lo, Lanes16 hi) {
  return lanes::or_(lanes::and_(lo, lanes::set1_32(0xFFFF)), lanes::slli32(hi, 16));
}

}  // namespace byte_group
}  // namespace brise::kernels::BRISE_ISA
#undef BRISE_LANES_BINARY_OPS
#undef BRISE_LANES_SHIFT_OPS
#pragma GCC diagnostic pop
#endif
