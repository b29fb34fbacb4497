// Q5_1 (ggml-common.h block_q5_1): blocks of 32 weights, an fp16 scale d, an fp16 minimum m, 4
// bytes qh of fifth bits and 16 bytes qs of low nibbles, laid out as Q5_0's; value = q * d + m.
// Quantized as ggml's quantize_row_q5_1_ref (what llama-quantize runs without an importance
// matrix: quantize_q5_1 falls back to it): min and max of the block, d = (max - min) / 31,
// q = (int)((x - min) / d + 0.5), bit for bit on finite input.
#pragma once

#include <cfloat>

#include "kernels/types/codec.hpp"
#include "kernels/types/int8_block.hpp"
#include "kernels/types/q5_0.hpp"
#include "kernels/types/rounding.hpp"

namespace brise::kernels::BRISE_ISA {

struct Q5_1 {
  static constexpr std::string_view kName = "q5_1";
  static constexpr uint32_t kBlockElems = 32;
  static constexpr uint32_t kBlockBytes = 24;
  static constexpr uint32_t kFileType = 9;  // LLAMA_FTYPE_MOSTLY_Q5_1
  static constexpr bool kQuantized = true;
  static constexpr ActivationFormat kActivations = ActivationFormat::Q8;
  static constexpr bool kRowMajor = true;  // multiplied in the file's layout (int8_block.hpp)

  struct Block {
    uint16_t d;  // fp16
    uint16_t m;  // fp16
    uint8_t qh[4];
    uint8_t qs[16];
  };
  static_assert(sizeof(Block) == kBlockBytes);

  static void encode_row_ref(const float* x, void* out, size_t n) {
    auto* y = static_cast<Block*>(out);
    for (size_t b = 0; b < n / 32; ++b) {
      const float* xb = x + b * 32;
      float min = FLT_MAX;
      float max = -FLT_MAX;
      for (size_t j = 0; j < 32; ++j) {
        if (xb[j] < min) min = xb[j];
        if (xb[j] > max) max = xb[j];
      }
      const float d = (max - min) / 31.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      y[b].d = f32_to_f16(d);
      y[b].m = f32_to_f16(min);
      uint32_t qh = 0;
      for (size_t j = 0; j < 16; ++j) {
        // (x - min) * id, then + 0.5 and truncation: separate roundings, as ggml's.
        const float x0 = (xb[j] - min) * id;
        const float x1 = (xb[j + 16] - min) * id;
        const uint8_t q0 = q5_code(x0 + 0.5f);
        const uint8_t q1 = q5_code(x1 + 0.5f);
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
      const float m = f16_to_f32(read_u16(block + 2));
      Q5_0::codes(block + 4, block + 8, q);
      for (size_t j = 0; j < 32; ++j) out[b * 32 + j] = static_cast<float>(q[j]) * d + m;
    }
  }

  static void encode_row(const float* x, void* out, size_t n) { encode_row_ref(x, out, n); }
  static void decode_row(const void* in, float* out, size_t n) { decode_row_ref(in, out, n); }

  // One block (kBlockBytes at `block`) in the int8 matmul's form (int8_block.hpp): codes q with
  // no offset, d * q - dmin * 1 with dmin = -m.
  static void to_int8(const uint8_t* block, Int8Block& out) {
    Q5_0::codes(block + 4, block + 8, out.code);
    out.scale[0] = out.scale[1] = 1;
    out.min[0] = out.min[1] = 1;
    out.offset = 0;
    out.d = f16_to_f32(read_u16(block));
    out.dmin = -f16_to_f32(read_u16(block + 2));
  }
};

}  // namespace brise::kernels::BRISE_ISA
