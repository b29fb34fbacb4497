// Q5_0 (ggml-common.h block_q5_0): blocks of 32 weights, an fp16 scale d, 4 bytes qh holding the
// fifth bit of each code (bit j for element j, little-endian) and 16 bytes qs of the low 4 bits
// (byte j: element j in its low nibble, element j + 16 in its high nibble); value = d * (q - 16).
// Quantized as ggml's quantize_row_q5_0_ref (what llama-quantize runs without an importance
// matrix: quantize_q5_0 falls back to it): d = m / -16 where m is the first element of largest
// magnitude, q = min(31, (int)(x / d + 16.5)), bit for bit on finite input.
#pragma once

#include "kernels/types/codec.hpp"
#include "kernels/types/int8_block.hpp"
#include "kernels/types/rounding.hpp"

namespace brise::kernels::BRISE_ISA {

// v truncated to [0, 31] as ggml's MIN(31, (int8_t)v) (Q5_0) and (uint8_t)v (Q5_1, whose v stays
// below 32); negative or NaN gives 0.
inline uint8_t q5_code(float v) {
  if (!(v >= 0.0f)) return 0;
  if (v >= 31.0f) return 31;
  return static_cast<uint8_t>(v);
}

struct Q5_0 {
  static constexpr std::string_view kName = "q5_0";
  static constexpr uint32_t kBlockElems = 32;
  static constexpr uint32_t kBlockBytes = 22;
  static constexpr uint32_t kFileType = 8;  // LLAMA_FTYPE_MOSTLY_Q5_0
  static constexpr bool kQuantized = true;
  static constexpr ActivationFormat kActivations = ActivationFormat::Q8;
  static constexpr bool kRowMajor = true;  // multiplied in the file's layout (int8_block.hpp)

  struct Block {
    uint16_t d;  // fp16
    uint8_t qh[4];
    uint8_t qs[16];
  };
  static_assert(sizeof(Block) == kBlockBytes);

  // The 32 five-bit codes of a block: low nibbles from qs, fifth bits from qh.
  static void codes(const uint8_t* qh_bytes, const uint8_t* qs, uint8_t* q) {
    uint32_t qh;
    std::memcpy(&qh, qh_bytes, sizeof qh);
    for (size_t j = 0; j < 16; ++j) {
      q[j] = static_cast<uint8_t>((qs[j] & 0x0F) | (((qh >> j) & 1u) << 4));
      q[j + 16] = static_cast<uint8_t>((qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4));
    }
  }

  static void encode_row_ref(const float* x, void* out, size_t n) {
    auto* y = static_cast<Block*>(out);
    for (size_t b = 0; b < n / 32; ++b) {
      const float* xb = x + b * 32;
      float amax = 0.0f;
      float max = 0.0f;  // the first element of largest magnitude, with its sign
      for (size_t j = 0; j < 32; ++j) {
        const float a = std::fabs(xb[j]);
        if (amax < a) {
          amax = a;
          max = xb[j];
        }
      }
      const float d = max / -16.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      y[b].d = f32_to_f16(d);
      uint32_t qh = 0;
      for (size_t j = 0; j < 16; ++j) {
        // Two roundings (x * id, then + 16.5) as ggml: kernels are built without FMA contraction.
        const float x0 = xb[j] * id;
        const float x1 = xb[j + 16] * id;
        const uint8_t q0 = q5_code(x0 + 16.5f);
        const uint8_t q1 = q5_code(x1 + 16.5f);
        y[b].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
        qh |= static_cast<uint32_t>(q0 >> 4) << j;
        qh |= static_cast<uint32_t>(q1 >> 4) << (j + 16);
      }
      std::memcpy(y[b].qh, &qh, sizeof qh);
    }
  }

  static void decode_row_ref(const void* in, float* out, size_t n) {
    const auto* x = static_cast<const uint8_t*>(in);
    uint8_t q[32];
    for (size_t b = 0; b < n / 32; ++b) {
      const uint8_t* block = x + b * kBlockBytes;
      const float d = f16_to_f32(read_u16(block));
      codes(block + 2, block + 6, q);
      for (size_t j = 0; j < 32; ++j) out[b * 32 + j] = static_cast<float>(q[j] - 16) * d;
    }
  }

  static void encode_row(const float* x, void* out, size_t n) { encode_row_ref(x, out, n); }
  static void decode_row(const void* in, float* out, size_t n) { decode_row_ref(in, out, n); }

  // One block (kBlockBytes at `block`) in the int8 matmul's form (int8_block.hpp): the five-bit
  // codes with offset 16, no minimum.
  static void to_int8(const uint8_t* block, Int8Block& out) {
    codes(block + 2, block + 6, out.code);
    out.scale[0] = out.scale[1] = 1;
    out.min[0] = out.min[1] = 0;
    out.offset = 16;
    out.d = f16_to_f32(read_u16(block));
    out.dmin = 0.0f;
  }
};

}  // namespace brise::kernels::BRISE_ISA
