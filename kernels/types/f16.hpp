// F16: IEEE half precision. Encoding rounds to nearest even (NaN stays NaN, overflow gives Inf).
#pragma once

#include "kernels/kernel_set.hpp"
#include "kernels/types/codec.hpp"

namespace brise::kernels::BRISE_ISA {

struct F16 {
  static constexpr uint32_t kGgmlId = 1;
  static constexpr std::string_view kName = "f16";
  static constexpr uint32_t kBlockElems = 1;
  static constexpr uint32_t kBlockBytes = 2;
  static constexpr uint32_t kFileType = 1;  // LLAMA_FTYPE_MOSTLY_F16
  static constexpr bool kQuantized = false;

  static void encode_row_ref(const float* x, void* out, size_t n) {
    auto* y = static_cast<uint16_t*>(out);
    for (size_t i = 0; i < n; ++i) y[i] = f32_to_f16(x[i]);
  }
  static void decode_row_ref(const void* in, float* out, size_t n) {
    for (size_t i = 0; i < n; ++i)
      out[i] = f16_to_f32(read_u16(static_cast<const uint16_t*>(in) + i));
  }
  static void encode_row(const float* x, void* out, size_t n) {
    convert_f32_to_f16(x, static_cast<uint16_t*>(out), n);
  }
  static void decode_row(const void* in, float* out, size_t n) {
    convert_f16_to_f32(static_cast<const uint16_t*>(in), out, n);
  }

  static constexpr size_t kChunk = kLanes;
  static constexpr size_t kChunkBytes = kChunk * sizeof(uint16_t);
  static constexpr size_t kPrefetchBytes = 1024;
  static constexpr size_t kSteps = 1;
  static void load(const uint8_t* row, size_t k, Batch* out) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row) + k;
#if defined(BRISE_AVX512)
    out[0] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#elif defined(BRISE_AVX2)
    out[0] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#else
    alignas(64) float buf[kLanes];
    for (size_t i = 0; i < kLanes; ++i) buf[i] = f16_to_f32(p[i]);
    out[0] = Batch::load_aligned(buf);
#endif
  }
  static Batch load_tail(const uint8_t* row, size_t k, size_t n) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row) + k;
#if defined(BRISE_AVX512)
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(static_cast<__mmask16>((1u << n) - 1u), p));
#else
    alignas(64) float buf[kLanes] = {};
    for (size_t i = 0; i < n; ++i) buf[i] = f16_to_f32(p[i]);
    return Batch::load_aligned(buf);
#endif
  }
};

}  // namespace brise::kernels::BRISE_ISA
