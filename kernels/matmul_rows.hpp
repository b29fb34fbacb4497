// y = W x for the row-major quantized types (kernels/types/int8_block.hpp): the K-quants, Q4_1,
// Q5_0, Q5_1, IQ4_NL and IQ4_XS, each row in the file's layout (or packed in word units for a set
// with a 16-row decode, kernels/types/packed.hpp: block_at copies a block out), a block at a
// time. The per-row kernels of every set are here; the faster paths of matmul_group_decode.hpp
// (AVX-512 VNNI) and matmul_byte_gemm.hpp (AVX-512 VNNI, AVX2) give the same integers.
// kernels/matmul.cpp chooses among them.
//
// Determinism (kernels/matmul.hpp): y[t][r] depends only on row r and token t. Int8: per block an
// exact integer dot product (any instruction order gives the same integer), then add_block's two
// f32 FMAs in block order. Exact: 16 lane sums in k order and a fixed tree. The references
// (matmul_reference.cpp) do the same in scalar code, so every kernel set equals them bit for bit.
#pragma once

#include "kernels/isa.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/matmul.hpp"
#include "kernels/prefetch.hpp"
#include "kernels/types/codec.hpp"
#include "kernels/types/int8_block.hpp"
#include "kernels/types/k_quants.hpp"
#include "kernels/types/packed.hpp"

namespace brise::kernels::BRISE_ISA::row_matmul {

constexpr size_t kTokenTile = 32;  // tokens whose accumulators a row's pass over its blocks updates

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

inline const uint8_t* row_of(const WeightMatrix& w, size_t r) {
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

// Rows [row_begin, row_end) for n_tokens tokens, a row at a time: each block turned once into
// 16-bit weights (block_to_weights16) that every token of the tile meets in exact integer sums.
template <class C, class Blocks>
void int8_rows(const WeightMatrix& w, const Blocks& act, size_t n_tokens, float* y, size_t y_stride,
               size_t row_begin, size_t row_end) {
  constexpr size_t kElems = C::kBlockElems;
  const size_t n_blocks = w.cols / kElems;
  Int8Block ib;
  alignas(64) int16_t w16[kElems];
  alignas(64) uint8_t scratch[C::kBlockBytes];
  float acc[kTokenTile];
  for (size_t t0 = 0; t0 < n_tokens; t0 += kTokenTile) {
    const size_t nt = std::min(kTokenTile, n_tokens - t0);
    for (size_t r = row_begin; r < row_end; ++r) {
      std::fill(acc, acc + nt, 0.0f);
      for (size_t b = 0; b < n_blocks; ++b) {
        if (nt == 1 && !w.packed)  // a lone token streams the rows once
          prefetch_ahead(row_of(w, r) + b * C::kBlockBytes, kStreamPrefetchBytes, C::kBlockBytes);
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
// Whether the codec has a fused one-token block dot product with Q8_K activations (dot_q8k).
template <class C>
inline constexpr bool kHasFusedDot = requires(__m512i i, float f) {
  C::dot_q8k(nullptr, nullptr, nullptr, i, i, f, f);
};

// Decode of a matrix as stored: per row and block the codec's fused dot product gives the block's
// integer sums straight from its bytes (no 16-bit weights), then add_block in block order. The
// rows are streamed once, each block prefetched ahead. Token by token (it is chosen for one).
template <class C>
void fused_decode(const WeightMatrix& w, const Q8KBlocks& act, size_t n_tokens, float* y,
                  size_t y_stride, size_t row_begin, size_t row_end) {
  const size_t n_blocks = w.cols / C::kBlockElems;
  for (size_t t = 0; t < n_tokens; ++t)
    for (size_t r = row_begin; r < row_end; ++r) {
      const uint8_t* row = row_of(w, r);
      float sum = 0.0f;
      for (size_t b = 0; b < n_blocks; ++b) {
        __m512i sumi, summ;
        float d, dmin;
        prefetch_ahead(row + b * C::kBlockBytes, kStreamPrefetchBytes, C::kBlockBytes);
        C::dot_q8k(row + b * C::kBlockBytes, act.codes(t, b), act.sums16(t, b), sumi, summ, d,
                   dmin);
        sum = add_block(sum, _mm512_reduce_add_epi32(sumi), _mm512_reduce_add_epi32(summ), d, dmin,
                        act.scale(t, b));
      }
      y[t * y_stride + r] = sum;
    }
}
#endif

// The exact mode: each block decoded to f32 (the codec's SIMD decode), 16 lane sums per token in
// k order (fma_lanes16), then the fixed tree of sum_lanes16.
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

// The kernels (MatmulFn), on the activations of the type's format.
template <class C>
void exact(const WeightMatrix& w, const MatmulInput& x, float* y, size_t y_stride, size_t row_begin,
           size_t row_end) {
  exact_rows<C>(w, x.x, x.x_stride, x.n_tokens, y, y_stride, row_begin, row_end);
}

template <class C>
void int8(const WeightMatrix& w, const MatmulInput& x, float* y, size_t y_stride, size_t row_begin,
          size_t row_end) {
  if constexpr (C::kActivations == ActivationFormat::Q8)
    int8_rows<C>(w, Q8Blocks{x.q8}, x.n_tokens, y, y_stride, row_begin, row_end);
  else
    int8_rows<C>(w, Q8KBlocks{x.q8k}, x.n_tokens, y, y_stride, row_begin, row_end);
}

#if defined(BRISE_AVX512_VNNI)
template <class C>
void fused_dot_decode(const WeightMatrix& w, const MatmulInput& x, float* y, size_t y_stride,
                      size_t row_begin, size_t row_end) {
  fused_decode<C>(w, Q8KBlocks{x.q8k}, x.n_tokens, y, y_stride, row_begin, row_end);
}
#endif

}  // namespace brise::kernels::BRISE_ISA::row_matmul
