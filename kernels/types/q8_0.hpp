// Q8_0 (ggml-common.h block_q8_0): blocks of 32 weights, an fp16 scale d and 32 int8 codes q;
// value = d * q. Quantized as ggml's quantize_row_q8_0_ref: d = max|x| / 127, q = round(x / d),
// bit for bit on finite input (NaN and Inf: see kernels/types/rounding.hpp; a block holding an
// Inf gets d = Inf and q = 0, so it decodes to NaN/Inf, never crashes).
#pragma once

#include "kernels/types/codec.hpp"
#include "kernels/types/packed.hpp"
#include "kernels/types/rounding.hpp"

namespace brise::kernels::BRISE_ISA {

struct Q8_0 {
  static constexpr std::string_view kName = "q8_0";
  static constexpr uint32_t kBlockElems = 32;
  static constexpr uint32_t kBlockBytes = 34;
  static constexpr uint32_t kFileType = 7;  // LLAMA_FTYPE_MOSTLY_Q8_0
  static constexpr bool kQuantized = true;
  static constexpr ActivationFormat kActivations = ActivationFormat::Q8;

  struct Block {
    uint16_t d;  // fp16
    int8_t qs[32];
  };
  static_assert(sizeof(Block) == kBlockBytes);

  // Packed (kernels/types/packed.hpp): the payload is qs, and unit u holds codes 4u..4u+3 of
  // each row, signed, so it is k-step u (4 elements) as it is.
  static constexpr size_t kPayloadBytes = 32;
  static constexpr bool kSignedCodes = true;
  static constexpr int kCodeOffset = 0;
  static constexpr size_t kStepsPerUnit = 1;
  static constexpr size_t step(size_t unit, size_t) { return unit; }
  template <class Ops>
  static void decode_unit(typename Ops::I v, typename Ops::I* steps) {
    steps[0] = v;
  }
  template <class Ops>
  static typename Ops::I decode_step(const uint8_t* payload, size_t s) {
    return Ops::load(payload + s * packed::kUnitBytes);
  }

  static float block_scale(const uint8_t* block) { return f16_to_f32(read_u16(block)); }
  // The 32 integer codes of a block (value = scale * code).
  static void block_codes(const uint8_t* block, int8_t* codes) {
    std::memcpy(codes, block + 2, 32);
  }

  static void encode_row_ref(const float* x, void* out, size_t n) {
    auto* y = static_cast<Block*>(out);
    for (size_t b = 0; b < n / 32; ++b) {
      const float* xb = x + b * 32;
      const float d = largest_magnitude(xb, 32).amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      y[b].d = f32_to_f16(d);
      for (size_t j = 0; j < 32; ++j) y[b].qs[j] = q8_code(xb[j] * id);
    }
  }

  static void decode_row_ref(const void* in, float* out, size_t n) {
    const auto* x = static_cast<const uint8_t*>(in);
    for (size_t b = 0; b < n / 32; ++b) {
      const float d = block_scale(x + b * kBlockBytes);
      for (size_t j = 0; j < 32; ++j)
        out[b * 32 + j] = static_cast<float>(static_cast<int8_t>(x[b * kBlockBytes + 2 + j])) * d;
    }
  }

#if defined(BRISE_AVX512)
  static void encode_row(const float* x, void* out, size_t n) {
    auto* y = static_cast<Block*>(out);
    for (size_t b = 0; b < n / 32; ++b) {
      const float* xb = x + b * 32;
      const __m512 x0 = _mm512_loadu_ps(xb);
      const __m512 x1 = _mm512_loadu_ps(xb + 16);
      // max is exact and order-free on non-NaN values, so this equals the sequential scan.
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(abs_not_nan(x0), abs_not_nan(x1)));
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      y[b].d = f32_to_f16(d);
      const __m512 vid = _mm512_set1_ps(id);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs),
                       _mm512_cvtepi32_epi8(q8_codes_epi32(_mm512_mul_ps(x0, vid))));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + 16),
                       _mm512_cvtepi32_epi8(q8_codes_epi32(_mm512_mul_ps(x1, vid))));
    }
  }

  static void decode_row(const void* in, float* out, size_t n) {
    const auto* x = static_cast<const Block*>(in);
    for (size_t b = 0; b < n / 32; ++b) {
      const __m512 d = _mm512_set1_ps(f16_to_f32(read_u16(&x[b].d)));
      for (size_t h = 0; h < 2; ++h) {
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs + 16 * h));
        const __m512 qf = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
        _mm512_storeu_ps(out + b * 32 + 16 * h, _mm512_mul_ps(qf, d));
      }
    }
  }
#else
  static void encode_row(const float* x, void* out, size_t n) {
    encode_row_ref(x, out, n);
  }
  static void decode_row(const void* in, float* out, size_t n) {
    decode_row_ref(in, out, n);
  }
#endif
};

}  // namespace brise::kernels::BRISE_ISA
