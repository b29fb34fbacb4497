// Q4_0 (ggml-common.h block_q4_0): blocks of 32 weights, an fp16 scale d and 16 bytes of 4-bit
// codes q; value = d * (q - 8); byte j holds element j in its low nibble and element j + 16 in
// its high nibble. Quantized as ggml's quantize_row_q4_0_ref: d = m / -8 where m is the first
// element of largest magnitude, q = min(15, (int)(x / d + 8.5)), bit for bit on finite input.
#pragma once

#include "kernels/types/block32.hpp"
#include "kernels/types/codec.hpp"
#include "kernels/types/packed.hpp"
#include "kernels/types/rounding.hpp"

namespace brise::kernels::BRISE_ISA {

struct Q4_0 {
  static constexpr std::string_view kName = "q4_0";
  static constexpr uint32_t kBlockElems = 32;
  static constexpr uint32_t kBlockBytes = 18;
  static constexpr uint32_t kFileType = 2;  // LLAMA_FTYPE_MOSTLY_Q4_0
  static constexpr bool kQuantized = true;
  static constexpr ActivationFormat kActivations = ActivationFormat::Q8;

  struct Block {
    uint16_t d;  // fp16
    uint8_t qs[16];
  };
  static_assert(sizeof(Block) == kBlockBytes && kBlockBytes == block32::Signed<4>::kBlockBytes);

  // Packed (kernels/types/packed.hpp): the payload is qs, so unit u holds bytes 4u..4u+3 of each
  // row: their low nibbles are elements 4u..4u+3 (k-step u), their high nibbles elements
  // 16+4u..16+4u+3 (k-step u + 4). Codes are unsigned, value = code - 8.
  static constexpr size_t kPayloadBytes = 16;
  static constexpr bool kSignedCodes = false;
  static constexpr int kCodeOffset = 8;
  static constexpr size_t kStepsPerUnit = 2;
  static constexpr size_t step(size_t unit, size_t i) { return unit + 4 * i; }
  // Unit v's codes as k-steps step(u, 0) and step(u, 1).
  template <class Ops>
  static void decode_unit(typename Ops::I v, typename Ops::I* steps) {
    const typename Ops::I low = Ops::splat8(0x0F);
    steps[0] = Ops::and_(v, low);
    steps[1] = Ops::and_(Ops::template srl16<4>(v), low);
  }
  // The codes of k-step s (elements 4s..4s+3) of a packed block's payload.
  template <class Ops>
  static typename Ops::I decode_step(const uint8_t* payload, size_t s) {
    const typename Ops::I v = Ops::load(payload + (s % 4) * packed::kUnitBytes);
    const typename Ops::I low = Ops::splat8(0x0F);
    return s < 4 ? Ops::and_(v, low) : Ops::and_(Ops::template srl16<4>(v), low);
  }

  static float block_scale(const uint8_t* block) { return f16_to_f32(read_u16(block)); }
  static void block_codes(const uint8_t* block, int8_t* codes) {
    uint8_t q[32];
    block32::unpack_nibbles(block + 2, q);
    for (size_t j = 0; j < 32; ++j) codes[j] = static_cast<int8_t>(q[j] - 8);
  }

  static void encode_row_ref(const float* x, void* out, size_t n) {
    block32::Signed<4>::encode_row_ref(x, out, n);
  }
  static void decode_row_ref(const void* in, float* out, size_t n) {
    block32::Signed<4>::decode_row_ref(in, out, n);
  }

#if defined(BRISE_AVX512)
  static void encode_row(const float* x, void* out, size_t n) {
    auto* y = static_cast<Block*>(out);
    for (size_t b = 0; b < n / 32; ++b) {
      const float* xb = x + b * 32;
      const __m512 x0 = _mm512_loadu_ps(xb);
      const __m512 x1 = _mm512_loadu_ps(xb + 16);
      const __m512 a0 = abs_not_nan(x0);
      const __m512 a1 = abs_not_nan(x1);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
      float max = 0.0f;
      if (amax > 0.0f) {
        // The scalar scan keeps the first element reaching the largest magnitude.
        const __m512 va = _mm512_set1_ps(amax);
        const uint32_t hits = static_cast<uint32_t>(_mm512_cmp_ps_mask(a0, va, _CMP_EQ_OQ)) |
                              (static_cast<uint32_t>(_mm512_cmp_ps_mask(a1, va, _CMP_EQ_OQ)) << 16);
        max = xb[__builtin_ctz(hits)];
      }
      const float d = max / -8.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      y[b].d = f32_to_f16(d);
      const __m512 vid = _mm512_set1_ps(id);
      const __m512 half = _mm512_set1_ps(8.5f);
      const __m512i q0 = q4_codes_epi32(_mm512_add_ps(_mm512_mul_ps(x0, vid), half));
      const __m512i q1 = q4_codes_epi32(_mm512_add_ps(_mm512_mul_ps(x1, vid), half));
      const __m512i packed = _mm512_or_si512(q0, _mm512_slli_epi32(q1, 4));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs), _mm512_cvtepi32_epi8(packed));
    }
  }

  static void decode_row(const void* in, float* out, size_t n) {
    const auto* x = static_cast<const Block*>(in);
    const __m512i low = _mm512_set1_epi32(0x0F);
    const __m512i eight = _mm512_set1_epi32(8);
    for (size_t b = 0; b < n / 32; ++b) {
      const __m512 d = _mm512_set1_ps(f16_to_f32(read_u16(&x[b].d)));
      const __m512i q =
          _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs)));
      const __m512i q0 = _mm512_sub_epi32(_mm512_and_si512(q, low), eight);
      const __m512i q1 = _mm512_sub_epi32(_mm512_srli_epi32(q, 4), eight);
      _mm512_storeu_ps(out + b * 32, _mm512_mul_ps(_mm512_cvtepi32_ps(q0), d));
      _mm512_storeu_ps(out + b * 32 + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(q1), d));
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
