// Q4_1 (ggml-common.h block_q4_1): blocks of 32 weights, an fp16 scale d, an fp16 minimum m and 16
// bytes of 4-bit codes q; value = q * d + m; byte j holds element j in its low nibble and element
// j + 16 in its high nibble. Quantized as ggml's quantize_row_q4_1_ref (what llama-quantize runs
// without an importance matrix: quantize_q4_1 falls back to it): min and max of the block,
// d = (max - min) / 15, q = min(15, (int)((x - min) / d + 0.5)), bit for bit on finite input.
#pragma once

#include <cfloat>

#include "kernels/types/codec.hpp"
#include "kernels/types/int8_block.hpp"
#include "kernels/types/rounding.hpp"

namespace brise::kernels::BRISE_ISA {

struct Q4_1 {
  static constexpr std::string_view kName = "q4_1";
  static constexpr uint32_t kBlockElems = 32;
  static constexpr uint32_t kBlockBytes = 20;
  static constexpr uint32_t kFileType = 3;  // LLAMA_FTYPE_MOSTLY_Q4_1
  static constexpr bool kQuantized = true;
  static constexpr ActivationFormat kActivations = ActivationFormat::Q8;
  static constexpr bool kRowMajor = true;  // multiplied in the file's layout (int8_block.hpp)

  struct Block {
    uint16_t d;  // fp16
    uint16_t m;  // fp16
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
      const float d = (max - min) / 15.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      y[b].d = f32_to_f16(d);
      y[b].m = f32_to_f16(min);
      for (size_t j = 0; j < 16; ++j) {
        // (x - min) * id, then + 0.5 and truncation: separate roundings, as ggml's.
        const float x0 = (xb[j] - min) * id;
        const float x1 = (xb[j + 16] - min) * id;
        const uint8_t q0 = q4_code(x0 + 0.5f);
        const uint8_t q1 = q4_code(x1 + 0.5f);
        y[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
      }
    }
  }

  static void decode_row_ref(const void* in, float* out, size_t n) {
    const auto* x = static_cast<const uint8_t*>(in);
    for (size_t b = 0; b < n / 32; ++b) {
      const uint8_t* block = x + b * kBlockBytes;
      const float d = f16_to_f32(read_u16(block));
      const float m = f16_to_f32(read_u16(block + 2));
      const uint8_t* qs = block + 4;
      for (size_t j = 0; j < 16; ++j) {
        out[b * 32 + j] = static_cast<float>(qs[j] & 0x0F) * d + m;
        out[b * 32 + j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
      }
    }
  }

  static void encode_row(const float* x, void* out, size_t n) { encode_row_ref(x, out, n); }
  static void decode_row(const void* in, float* out, size_t n) { decode_row_ref(in, out, n); }

  // One block (kBlockBytes at `block`) in the int8 matmul's form (int8_block.hpp): codes q with
  // no offset, d * q - dmin * 1 with dmin = -m.
  static void to_int8(const uint8_t* block, Int8Block& out) {
    const uint8_t* qs = block + 4;
    for (size_t j = 0; j < 16; ++j) {
      out.code[j] = static_cast<uint8_t>(qs[j] & 0x0F);
      out.code[j + 16] = static_cast<uint8_t>(qs[j] >> 4);
    }
    out.scale[0] = out.scale[1] = 1;
    out.min[0] = out.min[1] = 1;
    out.offset = 0;
    out.d = f16_to_f32(read_u16(block));
    out.dmin = -f16_to_f32(read_u16(block + 2));
  }
};

}  // namespace brise::kernels::BRISE_ISA
