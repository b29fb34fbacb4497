// Q2_K (ggml-common.h block_q2_K): super-blocks of 256 weights in 16 sub-blocks of 16. Each
// sub-block has a 4-bit scale and a 4-bit min (byte `scales[s]`: scale in the low nibble, min in
// the high one), the super-block an fp16 d and dmin; value = d * scale * q - dmin * min, q 2-bit
// (0..3) packed four to a byte (kquant::pack_2bit: in each half of 128, byte l holds elements l,
// l + 32, l + 64, l + 96). Quantized as ggml's quantize_row_q2_K_ref (llama-quantize's path
// without an importance matrix): each sub-block's scale and min by make_qkx2_quants weighted by
// |x|, both sets rounded to 4 bits against their maximum, then the codes recomputed from the
// rounded scales; bit for bit on finite input.
#pragma once

#include <cstddef>
#include <cstring>

#include "kernels/types/byte_group.hpp"
#include "kernels/types/codec.hpp"
#include "kernels/types/int8_block.hpp"
#include "kernels/types/k_quants.hpp"

namespace brise::kernels::BRISE_ISA {

struct Q2_K {
  static constexpr std::string_view kName = "q2_K";
  static constexpr uint32_t kBlockElems = 256;
  static constexpr uint32_t kBlockBytes = 84;
  static constexpr uint32_t kFileType = 10;  // LLAMA_FTYPE_MOSTLY_Q2_K
  static constexpr bool kQuantized = true;
  static constexpr ActivationFormat kActivations = ActivationFormat::Q8K;
  static constexpr bool kRowMajor = true;  // multiplied in the file's layout (int8_block.hpp)

  struct Block {
    uint8_t scales[16];  // 4-bit scale | 4-bit min << 4
    uint8_t qs[64];
    uint16_t d;     // fp16
    uint16_t dmin;  // fp16
  };
  static_assert(sizeof(Block) == kBlockBytes);

  static void encode_row_ref(const float* x, void* out, size_t n) {
    auto* y = static_cast<uint8_t*>(out);
    constexpr float kQ4Scale = 15.0f;
    for (size_t b = 0; b < n / 256; ++b, x += 256) {
      Block blk{};
      uint8_t L[256];
      uint8_t Laux[16];
      float weights[16];
      float scales[16];
      float mins[16];
      // Scales are positive (the min is taken off), so their maximum is what is rounded against.
      float max_scale = 0;
      float max_min = 0;
      for (size_t j = 0; j < 16; ++j) {
        for (size_t l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
        scales[j] = kquant::make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                             -0.5f, 0.1f, 15, true);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
      }
      // ggml stores the rounded int into the byte as it is (no clamp: it is 0..15 for finite x).
      if (max_scale > 0) {
        const float iscale = kQ4Scale / max_scale;
        for (size_t j = 0; j < 16; ++j)
          blk.scales[j] = static_cast<uint8_t>(kquant::nearest_int(iscale * scales[j]));
        blk.d = f32_to_f16(max_scale / kQ4Scale);
      } else {
        blk.d = f32_to_f16(0.0f);
      }
      if (max_min > 0) {
        const float iscale = kQ4Scale / max_min;
        for (size_t j = 0; j < 16; ++j)
          blk.scales[j] =
              static_cast<uint8_t>(blk.scales[j] | (kquant::nearest_int(iscale * mins[j]) << 4));
        blk.dmin = f32_to_f16(max_min / kQ4Scale);
      } else {
        blk.dmin = f32_to_f16(0.0f);
      }
      // The codes again, against the scales and mins as stored (a sub-block whose scale rounded
      // to 0 keeps make_qkx2_quants' codes, as in ggml).
      const float d_all = f16_to_f32(blk.d);
      const float dmin_all = f16_to_f32(blk.dmin);
      for (size_t j = 0; j < 16; ++j) {
        const float d = d_all * static_cast<float>(blk.scales[j] & 0x0F);
        if (d == 0) continue;
        const float dm = dmin_all * static_cast<float>(blk.scales[j] >> 4);
        for (size_t i = 0; i < 16; ++i) {
          const int l = kquant::nearest_int((x[16 * j + i] + dm) / d);
          L[16 * j + i] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
        }
      }
      kquant::pack_2bit(L, blk.qs);
      std::memcpy(y + b * kBlockBytes, &blk, kBlockBytes);
    }
  }

  // ggml's dequantize_row_q2_K: (d * scale) * q - (dmin * min), in that order.
  static void decode_row_ref(const void* in, float* out, size_t n) {
    const auto* x = static_cast<const uint8_t*>(in);
    for (size_t b = 0; b < n / 256; ++b, out += 256) {
      const uint8_t* block = x + b * kBlockBytes;
      const uint8_t* sc = block + offsetof(Block, scales);
      const uint8_t* qs = block + offsetof(Block, qs);
      const float d = f16_to_f32(read_u16(block + offsetof(Block, d)));
      const float dmin = f16_to_f32(read_u16(block + offsetof(Block, dmin)));
      for (size_t s = 0; s < 16; ++s) {
        const float dl = d * static_cast<float>(sc[s] & 0x0F);
        const float ml = dmin * static_cast<float>(sc[s] >> 4);
        for (size_t e = 16 * s; e < 16 * s + 16; ++e)
          out[e] = dl * static_cast<float>(kquant::code_2bit(qs, e)) - ml;
      }
    }
  }

  static void encode_row(const float* x, void* out, size_t n) { encode_row_ref(x, out, n); }
  static void decode_row(const void* in, float* out, size_t n) { decode_row_ref(in, out, n); }

  // One block (kBlockBytes at `block`) in the int8 matmul's form (int8_block.hpp): codes 0..3,
  // offset 0, the sub-block's scale and min nibbles.
  static void to_int8(const uint8_t* block, Int8Block& out) {
    const uint8_t* sc = block + offsetof(Block, scales);
    const uint8_t* qs = block + offsetof(Block, qs);
    for (size_t h = 0; h < 2; ++h)
      for (size_t k = 0; k < 4; ++k)
        for (size_t l = 0; l < 32; ++l)
          out.code[128 * h + 32 * k + l] = (qs[32 * h + l] >> (2 * k)) & 3;
    for (size_t s = 0; s < 16; ++s) {
      out.scale[s] = sc[s] & 0x0F;
      out.min[s] = sc[s] >> 4;
    }
    out.offset = 0;
    out.d = f16_to_f32(read_u16(block + offsetof(Block, d)));
    out.dmin = f16_to_f32(read_u16(block + offsetof(Block, dmin)));
  }

#if defined(BRISE_AVX2)
  // to_int8 + block_weights16 (codec.hpp) with SIMD: in each half h of 128, the 32 qs bytes
  // widened to 16-bit words give run k of 32 codes as (q >> 2 k) & 3, times the scales (the low
  // nibbles of `scales`; offset 0). The mins are the high nibbles, widened to int32.
  static void to_weights16(const uint8_t* block, int16_t* w16, Int8Block& meta) {
    const uint8_t* sc = block + offsetof(Block, scales);
    const uint8_t* qs = block + offsetof(Block, qs);
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sc));
#if defined(BRISE_AVX512)
    const __m512i scales = _mm512_castsi256_si512(
        _mm256_and_si256(_mm256_cvtepu8_epi16(sc8), _mm256_set1_epi16(0x0F)));
    const __m512i low = _mm512_set1_epi16(3);
    for (unsigned h = 0; h < 2; ++h) {
      const __m512i q =
          _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * h)));
      for (unsigned k = 0; k < 4; ++k)
        _mm512_store_si512(
            w16 + 128 * h + 32 * k,
            _mm512_mullo_epi16(_mm512_and_si512(_mm512_srli_epi16(q, 2 * k), low),
                               kquant::pair_scales(scales, static_cast<int>(4 * h + k))));
    }
    _mm512_storeu_si512(meta.min, _mm512_srli_epi32(_mm512_cvtepu8_epi32(sc8), 4));
#else
    const __m256i low = _mm256_set1_epi16(3);
    for (int i = 0; i < 2; ++i)  // the halves of 16: sub-blocks 8 h + 2 k + i
      for (int h = 0; h < 2; ++h) {
        const __m256i q = _mm256_cvtepu8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 32 * h + 16 * i)));
        for (int k = 0; k < 4; ++k)
          _mm256_store_si256(reinterpret_cast<__m256i*>(w16 + 128 * h + 32 * k + 16 * i),
                             _mm256_mullo_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 2 * k), low),
                                                _mm256_set1_epi16(sc[8 * h + 2 * k + i] & 0x0F)));
      }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(meta.min),
                        _mm256_srli_epi32(_mm256_cvtepu8_epi32(sc8), 4));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(meta.min + 8),
                        _mm256_srli_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(sc8, 8)), 4));
#endif
    // vcvtph2ps: exactly f16_to_f32, without its call.
    meta.d = _cvtsh_ss(read_u16(block + offsetof(Block, d)));
    meta.dmin = _cvtsh_ss(read_u16(block + offsetof(Block, dmin)));
  }
#endif
#if defined(BRISE_AVX2)
  // The prefill's form (byte_group.hpp): codes 0..3, a 4-bit scale and min per 16; the pairs are
  // the mins per 16, into summ. AVX-512 VNNI: each code times its scale (0..45, a byte), so that
  // a block's sum is one vpdpbusd chain.
  static constexpr int kCodeMax = 3;
#if defined(BRISE_AVX512_VNNI)
  static constexpr bool kScaledCodes = true;
#else
  static constexpr bool kScaledCodes = false;
#endif
  static constexpr size_t kScaleElems = 16;
  static constexpr bool kPairsAreMins = true;
  static constexpr size_t kPairElems = 16;
  template <class Rows>
  static void to_byte_group(const Rows& blocks, ByteGroup& g) {
    using namespace lanes;
    using byte_group::lane_bytes;
    Lanes16 s[4];  // scale | min << 4 of sub-blocks 4 j .. 4 j + 3 in the bytes of s[j]
    blocks.words(offsetof(Block, scales), s);
    Lanes16 sc[16];
    byte_group::lane_bytes_each<false>(s, sc);
    const Lanes16 nibble = set1_32(0x0F), high = set1_32(static_cast<int32_t>(0xF0F0F0F0));
    // Scaled codes: mullo16 of 2 codes by the scale in both 16-bit words, no carry between the
    // bytes (each product is 0..45).
    Lanes16 scale16[16];
    for (size_t h = 0; h < 16; ++h) {
      store(g.scale[h], and_(sc[h], nibble));
      scale16[h] = mullo32(and_(sc[h], nibble), set1_32(0x10001));
    }
    for (size_t j = 0; j < 4; ++j) {
      store(g.pairs[2 * j], srli16(lane_bytes<0, -1, 1, -1>(s[j]), 4));
      store(g.pairs[2 * j + 1], srli16(lane_bytes<2, -1, 3, -1>(s[j]), 4));
    }
    g.any_pairs = any(and_(or_(or_(s[0], s[1]), or_(s[2], s[3])), high));
    Lanes16 tail[4];  // the 16 bytes at 68 end with d | dmin << 16
    blocks.words(offsetof(Block, d) - 12, tail);
    low_f16_to_f32(tail[3], g.d);
    low_f16_to_f32(srli32(tail[3], 16), g.dmin);
    byte_group::two_bit_codes(
        blocks, offsetof(Block, qs), [&](size_t half, unsigned, size_t, size_t j, Lanes16 code) {
          store(g.code[half][j], kScaledCodes ? mullo16(code, scale16[half]) : code);
        });
  }
#endif
};

}  // namespace brise::kernels::BRISE_ISA
