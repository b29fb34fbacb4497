// Internal to kernels/matmul.cpp: per-type weight loaders that turn stored weights into f32
// batches in registers.
//
// Every loader delivers a "chunk" of kChunk consecutive elements of one row as kSteps batches of
// kLanes floats: chunk elements [s * kLanes, (s + 1) * kLanes) in batch s. Quantized types
// dequantize as f32(q) * d, the same value as dequantize_row_*. kChunkBytes is a chunk's size in
// the row; kPrefetchBytes how far ahead of each row decode prefetches. Measured on Zen 5 (one
// thread, 32000x4096): float rows stream best 1 KiB ahead; quantized rows, which take more
// instructions per byte, need ~32 KiB (several tiles) ahead to keep enough lines in flight
// (Q8_0 16 -> 23 GB/s, Q4_0 10 -> 15 GB/s).
#pragma once

// Before the intrinsics headers (GCC 12 false positives, see there).
#include "kernels/simd.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/fp16.hpp"
#include "kernels/quantize.hpp"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define BRISE_MATMUL_AVX512 1
#include <immintrin.h>
#elif defined(__AVX2__) && defined(__F16C__)
#define BRISE_MATMUL_AVX2 1
#include <immintrin.h>
#endif

namespace brise::kernels::matmul_detail {

using Batch = xsimd::batch<float>;
inline constexpr size_t kLanes = Batch::size;

#if defined(BRISE_MATMUL_AVX512)
static_assert(kLanes == 16, "AVX-512 loaders expect 16-lane batches");
#elif defined(BRISE_MATMUL_AVX2)
static_assert(kLanes == 8, "AVX2 loaders expect 8-lane batches");
#endif

// a * b + c with one rounding. xsimd 8.1's fma for AVX-512 is a plain a * b + c that only fuses
// if the compiler contracts it, so the instruction is spelled out where the ISA has it.
inline Batch fmadd(Batch a, Batch b, Batch c) {
#if defined(BRISE_MATMUL_AVX512)
  return _mm512_fmadd_ps(a, b, c);
#elif defined(BRISE_MATMUL_AVX2) && defined(__FMA__)
  return _mm256_fmadd_ps(a, b, c);
#else
  return xsimd::fma(a, b, c);
#endif
}

// An unaligned load kept in a register: the empty asm hides where the value came from, so the
// compiler cannot re-read memory at every use (folding the load into each FMA), which costs a
// load per use and two when the address straddles cache lines.
inline Batch load_pinned(const float* p) {
#if defined(BRISE_MATMUL_AVX512) && defined(__GNUC__)
  __m512 v = _mm512_loadu_ps(p);
  __asm__("" : "+v"(v));
  return v;
#else
  return Batch::load_unaligned(p);
#endif
}

// First `n` (< kLanes) floats of p, the rest zero. Never reads past p + n.
inline Batch load_partial(const float* p, size_t n) {
#if defined(BRISE_MATMUL_AVX512)
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1u), p);
#else
  alignas(64) float buf[kLanes] = {};
  std::memcpy(buf, p, n * sizeof(float));
  return Batch::load_aligned(buf);
#endif
}

struct F32Weights {
  static constexpr size_t kChunk = kLanes;
  static constexpr size_t kChunkBytes = kChunk * sizeof(float);
  static constexpr size_t kPrefetchBytes = 1024;
  static constexpr size_t kSteps = 1;
  static void load(const uint8_t* row, size_t k, Batch* out) {
    out[0] = load_pinned(reinterpret_cast<const float*>(row) + k);
  }
  // Elements [k, k + n), n < kLanes, zero-padded.
  static Batch load_tail(const uint8_t* row, size_t k, size_t n) {
    return load_partial(reinterpret_cast<const float*>(row) + k, n);
  }
};

struct F16Weights {
  static constexpr size_t kChunk = kLanes;
  static constexpr size_t kChunkBytes = kChunk * sizeof(uint16_t);
  static constexpr size_t kPrefetchBytes = 1024;
  static constexpr size_t kSteps = 1;
  static void load(const uint8_t* row, size_t k, Batch* out) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row) + k;
#if defined(BRISE_MATMUL_AVX512)
    out[0] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#elif defined(BRISE_MATMUL_AVX2)
    out[0] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#else
    alignas(64) float buf[kLanes];
    for (size_t i = 0; i < kLanes; ++i) buf[i] = f16_to_f32(p[i]);
    out[0] = Batch::load_aligned(buf);
#endif
  }
  static Batch load_tail(const uint8_t* row, size_t k, size_t n) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row) + k;
#if defined(BRISE_MATMUL_AVX512)
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(static_cast<__mmask16>((1u << n) - 1u), p));
#else
    alignas(64) float buf[kLanes] = {};
    for (size_t i = 0; i < n; ++i) buf[i] = f16_to_f32(p[i]);
    return Batch::load_aligned(buf);
#endif
  }
};

struct BF16Weights {
  static constexpr size_t kChunk = kLanes;
  static constexpr size_t kChunkBytes = kChunk * sizeof(uint16_t);
  static constexpr size_t kPrefetchBytes = 1024;
  static constexpr size_t kSteps = 1;
  static void load(const uint8_t* row, size_t k, Batch* out) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row) + k;
#if defined(BRISE_MATMUL_AVX512)
    const __m512i w =
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    out[0] = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
#elif defined(BRISE_MATMUL_AVX2)
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    out[0] = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
#else
    alignas(64) float buf[kLanes];
    for (size_t i = 0; i < kLanes; ++i) buf[i] = bf16_to_f32(p[i]);
    out[0] = Batch::load_aligned(buf);
#endif
  }
  static Batch load_tail(const uint8_t* row, size_t k, size_t n) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row) + k;
#if defined(BRISE_MATMUL_AVX512)
    const __m512i w =
        _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(static_cast<__mmask16>((1u << n) - 1u), p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
#else
    alignas(64) float buf[kLanes] = {};
    for (size_t i = 0; i < n; ++i) buf[i] = bf16_to_f32(p[i]);
    return Batch::load_aligned(buf);
#endif
  }
};

// Quantized blocks are at best 2-byte aligned (34 and 18 bytes): they are read through byte
// pointers, the fp16 scale with memcpy.
inline uint16_t block_scale(const uint8_t* block) {
  uint16_t d;
  std::memcpy(&d, block, sizeof d);  // d is the first field of both block types
  return d;
}

// What the two quantized formats share: one chunk is one block of 32 weights (fp16 scale d, then
// the codes qs), and rows are whole blocks.
template <typename Block>
struct QuantizedWeights {
  static_assert(offsetof(Block, d) == 0 && offsetof(Block, qs) == 2);
  static constexpr size_t kChunk = kQuantBlock;
  static constexpr size_t kChunkBytes = sizeof(Block);
  static constexpr size_t kPrefetchBytes = 32768;
  static constexpr size_t kSteps = kQuantBlock / kLanes;
  // The block holding weight k of a row.
  static const uint8_t* block_at(const uint8_t* row, size_t k) {
    return row + k / kQuantBlock * sizeof(Block);
  }
  static const uint8_t* codes(const uint8_t* block) { return block + offsetof(Block, qs); }
  // Never called: quantized rows are whole blocks, so there is no tail.
  static Batch load_tail(const uint8_t*, size_t, size_t) { return Batch(0.0f); }
};

struct Q8_0Weights : QuantizedWeights<BlockQ8_0> {
  static void load(const uint8_t* row, size_t k, Batch* out) {
    const uint8_t* block = block_at(row, k);
    const uint16_t dh = block_scale(block);
    const uint8_t* qs = codes(block);
#if defined(BRISE_MATMUL_AVX512)
    const __m512 d = _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<short>(dh)));
    for (size_t s = 0; s < kSteps; ++s) {
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + s * kLanes));
      out[s] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), d);
    }
#elif defined(BRISE_MATMUL_AVX2)
    const __m256 d = _mm256_cvtph_ps(_mm_set1_epi16(static_cast<short>(dh)));
    for (size_t s = 0; s < kSteps; ++s) {
      const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(qs + s * kLanes));
      out[s] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d);
    }
#else
    const float d = f16_to_f32(dh);
    alignas(64) float buf[kQuantBlock];
    for (size_t i = 0; i < kQuantBlock; ++i)
      buf[i] = static_cast<float>(static_cast<int8_t>(qs[i])) * d;
    for (size_t s = 0; s < kSteps; ++s) out[s] = Batch::load_aligned(buf + s * kLanes);
#endif
  }
};

struct Q4_0Weights : QuantizedWeights<BlockQ4_0> {
  static void load(const uint8_t* row, size_t k, Batch* out) {
    const uint8_t* block = block_at(row, k);
    const uint16_t dh = block_scale(block);
    const uint8_t* qs = codes(block);
#if defined(BRISE_MATMUL_AVX512)
    static_assert(kSteps == 2);
    const __m512 d = _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<short>(dh)));
    // Table lane i holds f32(i - 8) * d, the same rounding as converting the code and scaling;
    // vpermps picks lanes by the low 4 bits of each index, which is exactly the nibble.
    const __m512 levels = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
    const __m512 table = _mm512_mul_ps(levels, d);
    const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
    out[0] = _mm512_permutexvar_ps(q, table);
    out[1] = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table);
#else
    const float d = f16_to_f32(dh);
    alignas(64) float buf[kQuantBlock];
    for (size_t i = 0; i < kQuantBlock / 2; ++i) {
      buf[i] = static_cast<float>((qs[i] & 0x0F) - 8) * d;
      buf[i + kQuantBlock / 2] = static_cast<float>((qs[i] >> 4) - 8) * d;
    }
    for (size_t s = 0; s < kSteps; ++s) out[s] = Batch::load_aligned(buf + s * kLanes);
#endif
  }
};

}  // namespace brise::kernels::matmul_detail
