// Inline SIMD helpers that widen IEEE fp16 values to f32 batches (exact), for kernels that read
// f16 data on the fly (attention over an f16 KV cache). xsimd 8.1 has no fp16 type, so this uses
// the F16C / AVX-512 conversion instructions where the build enables them, and the scalar
// converter of kernels/fp16.hpp otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/isa.hpp"

#include "kernels/fp16.hpp"

namespace brise::kernels::BRISE_ISA {

// One f16 value to f32 (exact).
inline float load_f16_scalar(const uint16_t* p) {
#if defined(__F16C__)
  return _cvtsh_ss(*p);
#else
  return f16_to_f32(*p);
#endif
}

// Batch::size consecutive f16 values (no alignment needed) widened to f32. A template so that
// only the branch for the build's batch width is instantiated.
template <class Batch = xsimd::batch<float>>
inline Batch load_f16_batch(const uint16_t* p) {
  constexpr size_t kWidth = Batch::size;
#if defined(__AVX512F__)
  if constexpr (kWidth == 16) {
    return Batch(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
  }
#endif
#if defined(__F16C__)
  if constexpr (kWidth == 8) {
    return Batch(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  if constexpr (kWidth == 4) {
    return Batch(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
#endif
  // Portable path (and the dead tail of the branches above).
  alignas(64) float widened[kWidth];
  for (size_t i = 0; i < kWidth; ++i) widened[i] = load_f16_scalar(p + i);
  return Batch::load_aligned(widened);
}

}  // namespace brise::kernels::BRISE_ISA
