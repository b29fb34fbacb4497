// y = W x for the row-major quantized types (kernels/types/int8_block.hpp): each row in the file's
// layout, a block at a time, its codes turned once into 16-bit weights (or f32 values in the exact
// mode) that every token of the tile multiplies. A type with a one-token kernel over 16 rows
// (Q4_K on AVX-512 VNNI) is packed at load in word units (kernels/types/packed.hpp): decode reads
// the groups, the other paths the blocks copied out of them.
//
// Determinism (kernels/matmul.hpp): y[t][r] depends only on row r and token t. Int8: per block an
// exact integer dot product (any instruction order gives the same integer), then add_block's two
// f32 FMAs in block order. Exact: 16 lane sums in k order and a fixed tree. The references
// (matmul_reference.cpp) do the same in scalar code, so every kernel set equals them bit for bit.
#include "kernels/matmul_rows.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "kernels/matmul_byte_gemm.hpp"
#include "kernels/types/all_types.hpp"
#include "kernels/types/int8_block.hpp"
#include "kernels/types/k_quants.hpp"
#include "kernels/types/packed.hpp"

namespace brise::kernels::BRISE_ISA {
namespace {

constexpr size_t kTokenTile = 32;  // tokens whose accumulators a row's pass over its blocks updates
// From this many tokens on, the 256-element types go through byte_gemm::gemm when they have a
// ByteGroup form (Q4_K, Q6_K: matmul_byte_gemm.hpp; 3-4x the per-row path's speed at 2 and 3
// tokens), else from kGemmMinTokens through gemm::int8_rows_gemm (AVX-512).
constexpr size_t kByteGemmMinTokens = 2;
constexpr size_t kGemmMinTokens = 4;

#if defined(BRISE_AVX512_VNNI)
// dot16x8's products summed into 16 int32 lanes (not yet added together).
inline __m512i dot16x8_lanes(const int16_t* w16, const int8_t* a, size_t n) {
  __m512i acc = _mm512_setzero_si512();
  for (size_t k = 0; k < n; k += 32) {
    const __m512i av =
        _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + k)));
    acc = _mm512_dpwssd_epi32(acc, _mm512_loadu_si512(w16 + k), av);
  }
  return acc;
}
#endif

// sum_k w16[k] * a[k] over n (a multiple of 32) elements, exact in int32.
inline int32_t dot16x8(const int16_t* w16, const int8_t* a, size_t n) {
#if defined(BRISE_AVX512_VNNI)
  return _mm512_reduce_add_epi32(dot16x8_lanes(w16, a, n));
#elif defined(BRISE_AVX2)
  __m256i acc = _mm256_setzero_si256();
  for (size_t k = 0; k < n; k += 16) {
    const __m256i av =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + k)));
    acc = _mm256_add_epi32(
        acc, _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w16 + k)), av));
  }
  const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  const __m128i s2 = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xB1)));
#else
  int32_t sum = 0;
  for (size_t k = 0; k < n; ++k) sum += int32_t{w16[k]} * int32_t{a[k]};
  return sum;
#endif
}

// block_weights16 (int8_block.hpp) with the set's SIMD: the same integers.
template <size_t kElems>
inline void weights16(const Int8Block& b, int16_t* w16) {
#if defined(BRISE_AVX512)
  const __m512i offset = _mm512_set1_epi16(static_cast<int16_t>(b.offset));
  for (size_t c = 0; c < kElems / 32; ++c) {
    const __m512i codes =
        _mm512_cvtepu8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(b.code + 32 * c)));
    const __m512i scale = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_set1_epi16(static_cast<int16_t>(b.scale[2 * c]))),
        _mm256_set1_epi16(static_cast<int16_t>(b.scale[2 * c + 1])), 1);
    _mm512_store_si512(w16 + 32 * c, _mm512_mullo_epi16(_mm512_sub_epi16(codes, offset), scale));
  }
#elif defined(BRISE_AVX2)
  const __m256i offset = _mm256_set1_epi16(static_cast<int16_t>(b.offset));
  for (size_t c = 0; c < kElems / 16; ++c) {
    const __m256i codes =
        _mm256_cvtepu8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(b.code + 16 * c)));
    const __m256i scale = _mm256_set1_epi16(static_cast<int16_t>(b.scale[c]));
    _mm256_store_si256(reinterpret_cast<__m256i*>(w16 + 16 * c),
                       _mm256_mullo_epi16(_mm256_sub_epi16(codes, offset), scale));
  }
#else
  block_weights16(b, w16, kElems);
#endif
}

// part[l] = fma(w[16 j + l], x[16 j + l], part[l]) for j in order, over n (a multiple of 16).
inline void fma_lanes16(float* part, const float* w, const float* x, size_t n) {
#if defined(BRISE_AVX512)
  __m512 p = _mm512_loadu_ps(part);
  for (size_t k = 0; k < n; k += 16)
    p = _mm512_fmadd_ps(_mm512_loadu_ps(w + k), _mm512_loadu_ps(x + k), p);
  _mm512_storeu_ps(part, p);
#elif defined(BRISE_AVX2)
  __m256 p0 = _mm256_loadu_ps(part), p1 = _mm256_loadu_ps(part + 8);
  for (size_t k = 0; k < n; k += 16) {
    p0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + k), _mm256_loadu_ps(x + k), p0);
    p1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + k + 8), _mm256_loadu_ps(x + k + 8), p1);
  }
  _mm256_storeu_ps(part, p0);
  _mm256_storeu_ps(part + 8, p1);
#else
  for (size_t k = 0; k < n; k += 16)
    for (size_t l = 0; l < 16; ++l) part[l] = std::fma(w[k + l], x[k + l], part[l]);
#endif
}

// Decode streams the rows once: hints to fetch a block's bytes this far ahead (the address may lie
// past the matrix, which a prefetch never faults on; formed as an integer, no pointer is made).
constexpr size_t kPrefetchBytes = 2048;
inline void prefetch_ahead(const uint8_t* p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64)
    __builtin_prefetch(
        reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) + kPrefetchBytes + off));
}

const uint8_t* row_of(const WeightMatrix& w, size_t r) {
  return static_cast<const uint8_t*>(w.data) + r * w.row_bytes;
}

// Block b of row r in the file's layout: in place, or copied out of its group into `scratch`
// (kBlockBytes) when the matrix is packed in word units (kernels/types/packed.hpp).
template <class C>
inline const uint8_t* block_at(const WeightMatrix& w, size_t r, size_t b, uint8_t* scratch) {
  if (!w.packed) return row_of(w, r) + b * C::kBlockBytes;
  packed::unpack_block_words(packed::group_block_at(w.data, w.row_bytes, r, b, C::kBlockBytes),
                             C::kBlockBytes, r % packed::kGroupRows, scratch);
  return scratch;
}

// Where a token's activation block b is, for both activation formats.
struct Q8Blocks {  // blocks of 32: one sum per block
  const Q8Activations& x;
  const int8_t* codes(size_t t, size_t b) const { return x.q + t * x.cols + b * kQ8Block; }
  float scale(size_t t, size_t b) const { return x.d[t * (x.cols / kQ8Block) + b]; }
  // sum_j min[j] * asum[j] over the block (scale and min are the same for both halves).
  // The block's integer sums (int8_block.hpp) with token t's activation block b.
  void sums(const int16_t* w16, const Int8Block& ib, bool mins, size_t t, size_t b, int32_t& sumi,
            int32_t& summ) const {
    sumi = dot16x8(w16, codes(t, b), kQ8Block);
    summ = mins ? ib.min[0] * x.s[t * (x.cols / kQ8Block) + b] : 0;
  }
};
struct Q8KBlocks {  // blocks of 256: sums per 16
  const Q8KActivations& x;
  const int8_t* codes(size_t t, size_t b) const { return x.q + t * x.cols + b * kQ8KBlock; }
  float scale(size_t t, size_t b) const { return x.d[t * (x.cols / kQ8KBlock) + b]; }
  const int32_t* sums16(size_t t, size_t b) const {
    return x.s16 + t * (x.cols / 16) + b * (kQ8KBlock / 16);
  }
  void sums(const int16_t* w16, const Int8Block& ib, bool mins, size_t t, size_t b, int32_t& sumi,
            int32_t& summ) const {
    const int32_t* s16 = sums16(t, b);
#if defined(BRISE_AVX512_VNNI)
    const __m512i dot = dot16x8_lanes(w16, codes(t, b), kQ8KBlock);
    const __m512i m = mins ? _mm512_mullo_epi32(_mm512_loadu_si512(ib.min), _mm512_loadu_si512(s16))
                           : _mm512_setzero_si512();
    kquant::reduce_add_pair(dot, m, sumi, summ);
#else
    sumi = dot16x8(w16, codes(t, b), kQ8KBlock);
    summ = 0;
    if (mins)
      for (size_t j = 0; j < kQ8KBlock / 16; ++j) summ += ib.min[j] * s16[j];
#endif
  }
};

// A block's 16-bit weights (block_weights16) with its mins and scales in `meta`: straight from the
// block's bytes when the codec has a SIMD to_weights16, else through to_int8.
template <class C>
inline void block_to_weights16(const uint8_t* block, int16_t* w16, Int8Block& meta) {
  if constexpr (requires { C::to_weights16(block, w16, meta); }) {
    C::to_weights16(block, w16, meta);
  } else {
    C::to_int8(block, meta);
    weights16<C::kBlockElems>(meta, w16);
  }
}

// Whether any of the block's mins is non-zero (summ is 0 otherwise, whatever the activations).
template <size_t kElems>
inline bool has_mins(const Int8Block& b) {
#if defined(BRISE_AVX512)
  if constexpr (kElems == 256) {
    const __m512i m = _mm512_loadu_si512(b.min);
    return _mm512_test_epi32_mask(m, m) != 0;
  }
#endif
  int32_t any = 0;
  for (size_t j = 0; j < kElems / 16; ++j) any |= b.min[j];
  return any != 0;
}

#if defined(BRISE_AVX512_VNNI)
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
constexpr size_t kDecodePrefetchBytes = 2048;

template <class C, size_t G>
void group_decode_tile(const uint8_t* group0, size_t group_bytes, size_t n_blocks,
                       const Q8KBlocks& act, __m512* acc) {
  constexpr size_t kGroupBlock = packed::group_block_bytes(C::kBlockBytes);
  for (size_t g = 0; g < G; ++g) acc[g] = _mm512_setzero_ps();
  for (size_t b = 0; b < n_blocks; ++b) {
    const uint8_t* blocks = group0 + b * kGroupBlock;
    int32_t pairs[kQ8KBlock / C::kPairElems / 2];  // the token's activation sums, as pairs
    byte_gemm::pair_sums<C::kPairElems>(act.sums16(0, b), pairs);
    for (size_t g = 0; g < G; ++g)
      for (size_t off = 0; off < kGroupBlock; off += 64)  // an address, never dereferenced
        __builtin_prefetch(reinterpret_cast<const void*>(
            reinterpret_cast<uintptr_t>(blocks + g * group_bytes) + kDecodePrefetchBytes + off));
    __m512i sumi[G], summ[G];
    __m512 d[G], dmin[G];
    C::template dot_groups_q8k<G>(blocks, group_bytes, act.codes(0, b), pairs, sumi, summ, d, dmin);
    const __m512 da = _mm512_set1_ps(act.scale(0, b));
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

template <class C>
void group_decode(const WeightMatrix& w, const Q8KBlocks& act, float* y, size_t row_begin,
                  size_t row_end) {
  const size_t n_blocks = w.cols / kQ8KBlock;
  const size_t group_bytes = packed::kGroupRows * w.row_bytes;
  for (size_t r0 = row_begin; r0 < row_end;) {
    const size_t groups =
        std::min(kDecodeGroups, (row_end - r0 + packed::kGroupRows - 1) / packed::kGroupRows);
    const uint8_t* group0 = static_cast<const uint8_t*>(w.data) + r0 * w.row_bytes;
    __m512 acc[kDecodeGroups];
    switch (groups) {
      case 1:
        group_decode_tile<C, 1>(group0, group_bytes, n_blocks, act, acc);
        break;
      case 2:
        group_decode_tile<C, 2>(group0, group_bytes, n_blocks, act, acc);
        break;
      case 3:
        group_decode_tile<C, 3>(group0, group_bytes, n_blocks, act, acc);
        break;
      default:
        group_decode_tile<C, 4>(group0, group_bytes, n_blocks, act, acc);
        break;
    }
    for (size_t g = 0; g < groups; ++g, r0 += packed::kGroupRows) {
      const size_t rows = std::min(packed::kGroupRows, row_end - r0);
      _mm512_mask_storeu_ps(y + r0, static_cast<__mmask16>((1u << rows) - 1), acc[g]);
    }
  }
}
#endif

template <class C, class Blocks>
void int8_rows(const WeightMatrix& w, const Blocks& act, size_t n_tokens, float* y, size_t y_stride,
               size_t row_begin, size_t row_end) {
  constexpr size_t kElems = C::kBlockElems;
  const size_t n_blocks = w.cols / kElems;
  Int8Block ib;
  alignas(64) int16_t w16[kElems];
  alignas(64) uint8_t scratch[C::kBlockBytes];
  float acc[kTokenTile];
#if defined(BRISE_AVX512_VNNI)
  if constexpr (kHasGroupDecode<C>) {
    if (n_tokens == 1 && w.packed) {
      group_decode<C>(w, act, y, row_begin, row_end);
      return;
    }
  }
  if constexpr (requires(__m512i i, float f) {
                  C::dot_q8k(nullptr, act.codes(0, 0), act.sums16(0, 0), i, i, f, f);
                }) {
    if (n_tokens == 1 && !w.packed) {  // decode: the codec's fused block dot product
      for (size_t r = row_begin; r < row_end; ++r) {
        const uint8_t* row = row_of(w, r);
        float sum = 0.0f;
        for (size_t b = 0; b < n_blocks; ++b) {
          __m512i sumi, summ;
          float d, dmin;
          prefetch_ahead(row + b * C::kBlockBytes, C::kBlockBytes);
          C::dot_q8k(row + b * C::kBlockBytes, act.codes(0, b), act.sums16(0, b), sumi, summ, d,
                     dmin);
          sum = add_block(sum, _mm512_reduce_add_epi32(sumi), _mm512_reduce_add_epi32(summ), d,
                          dmin, act.scale(0, b));
        }
        y[r] = sum;
      }
      return;
    }
  }
#endif
  for (size_t t0 = 0; t0 < n_tokens; t0 += kTokenTile) {
    const size_t nt = std::min(kTokenTile, n_tokens - t0);
    for (size_t r = row_begin; r < row_end; ++r) {
      std::fill(acc, acc + nt, 0.0f);
      for (size_t b = 0; b < n_blocks; ++b) {
        if (nt == 1 && !w.packed) prefetch_ahead(row_of(w, r) + b * C::kBlockBytes, C::kBlockBytes);
        block_to_weights16<C>(block_at<C>(w, r, b, scratch), w16, ib);
        const bool mins = has_mins<kElems>(ib);
        for (size_t t = 0; t < nt; ++t) {
          int32_t sumi, summ;
          act.sums(w16, ib, mins, t0 + t, b, sumi, summ);
          acc[t] = add_block(acc[t], sumi, summ, ib.d, ib.dmin, act.scale(t0 + t, b));
        }
      }
      for (size_t t = 0; t < nt; ++t) y[(t0 + t) * y_stride + r] = acc[t];
    }
  }
}

#if defined(BRISE_AVX512_VNNI)
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
#endif

template <class C>
void exact_rows(const WeightMatrix& w, const float* x, size_t x_stride, size_t n_tokens, float* y,
                size_t y_stride, size_t row_begin, size_t row_end) {
  constexpr size_t kElems = C::kBlockElems;
  const size_t n_blocks = w.cols / kElems;
  alignas(64) float values[kElems];
  alignas(64) float part[kTokenTile][16];
  alignas(64) uint8_t scratch[C::kBlockBytes];
  for (size_t t0 = 0; t0 < n_tokens; t0 += kTokenTile) {
    const size_t nt = std::min(kTokenTile, n_tokens - t0);
    for (size_t r = row_begin; r < row_end; ++r) {
      std::memset(part, 0, sizeof part);
      for (size_t b = 0; b < n_blocks; ++b) {
        C::decode_row(block_at<C>(w, r, b, scratch), values, kElems);
        for (size_t t = 0; t < nt; ++t)
          fma_lanes16(part[t], values, x + (t0 + t) * x_stride + b * kElems, kElems);
      }
      for (size_t t = 0; t < nt; ++t) y[(t0 + t) * y_stride + r] = sum_lanes16(part[t]);
    }
  }
}

}  // namespace

bool packs_rows(const TypeTraits& type) {
  bool packs = !type.row_major;
#if defined(BRISE_AVX512_VNNI)
  with_codec(type, [&]<class C>() {
    if constexpr (kHasGroupDecode<C>) packs = true;
  });
#endif
  return packs;
}

void row_major_matmul(const WeightMatrix& w, const float* x, size_t x_stride, size_t n_tokens,
                      float* y, size_t y_stride, size_t row_begin, size_t row_end) {
  with_codec(*w.type, [&]<class C>() {
    if constexpr (kIsRowMajor<C>)
      exact_rows<C>(w, x, x_stride, n_tokens, y, y_stride, row_begin, row_end);
    else
      throw std::invalid_argument("matmul: " + std::string(C::kName) + " is not row-major");
  });
}

void row_major_matmul_q8(const WeightMatrix& w, const Q8Activations& x, size_t n_tokens, float* y,
                         size_t y_stride, size_t row_begin, size_t row_end) {
  with_codec(*w.type, [&]<class C>() {
    if constexpr (kIsRowMajor<C> && C::kActivations == ActivationFormat::Q8)
      int8_rows<C>(w, Q8Blocks{x}, n_tokens, y, y_stride, row_begin, row_end);
    else
      throw std::invalid_argument("matmul_q8: " + std::string(C::kName) +
                                  " takes Q8_K activations (matmul_q8k)");
  });
}

void row_major_matmul_q8k(const WeightMatrix& w, const Q8KActivations& x, size_t n_tokens, float* y,
                          size_t y_stride, size_t row_begin, size_t row_end) {
  with_codec(*w.type, [&]<class C>() {
    if constexpr (kIsRowMajor<C> && C::kActivations == ActivationFormat::Q8K) {
#if defined(BRISE_AVX512_VNNI)
      if constexpr (requires(ByteGroup & g) { C::to_byte_group(byte_group::RowBlocks{}, g); }) {
        if (n_tokens >= kByteGemmMinTokens) {
          byte_gemm::gemm<C>(w, x, n_tokens, y, y_stride, row_begin, row_end);
          return;
        }
      }
      if (n_tokens >= kGemmMinTokens) {
        gemm::int8_rows_gemm<C>(w, Q8KBlocks{x}, n_tokens, y, y_stride, row_begin, row_end);
        return;
      }
#endif
      int8_rows<C>(w, Q8KBlocks{x}, n_tokens, y, y_stride, row_begin, row_end);
    } else
      throw std::invalid_argument("matmul_q8k: " + std::string(C::kName) +
                                  " does not take Q8_K activations");
  });
}

}  // namespace brise::kernels::BRISE_ISA
