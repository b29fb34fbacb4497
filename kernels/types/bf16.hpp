// BF16: the top 16 bits of an f32. Encoding rounds to nearest even (NaN stays NaN).
#pragma once

#include "kernels/kernel_set.hpp"
#include "kernels/types/codec.hpp"

namespace brise::kernels::BRISE_ISA {

struct BF16 {
  static constexpr uint32_t kGgmlId = 30;
  static constexpr std::string_view kName = "bf16";
  static constexpr uint32_t kBlockElems = 1;
  static constexpr uint32_t kBlockBytes = 2;
  static constexpr uint32_t kFileType = 32;  // LLAMA_FTYPE_MOSTLY_BF16
  static constexpr bool kQuantized = false;

  static void encode_row_ref(const float* x, void* out, size_t n) {
    auto* y = static_cast<uint16_t*>(out);
    for (size_t i = 0; i < n; ++i) y[i] = f32_to_bf16(x[i]);
  }
  static void decode_row_ref(const void* in, float* out, size_t n) {
    for (size_t i = 0; i < n; ++i)
      out[i] = bf16_to_f32(read_u16(static_cast<const uint16_t*>(in) + i));
  }
  static void encode_row(const float* x, void* out, size_t n) {
    convert_f32_to_bf16(x, static_cast<uint16_t*>(out), n);
  }
  static void decode_row(const void* in, float* out, size_t n) {
    convert_bf16_to_f32(static_cast<const uint16_t*>(in), out, n);
  }

  static constexpr size_t kChunk = kLanes;
  static constexpr size_t kChunkBytes = kChunk * sizeof(uint16_t);
  static constexpr size_t kPrefetchBytes = 1024;
  static constexpr size_t kSteps = 1;
  static void load(const uint8_t* row, size_t k, Batch* out) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row) + k;
#if defined(BRISE_AVX512)
    const __m512i w =
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    out[0] = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
#elif defined(BRISE_AVX2)
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
#if defined(BRISE_AVX512)
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

}  // namespace brise::kernels::BRISE_ISA
