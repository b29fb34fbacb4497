// Q4_1 (ggml-common.h block_q4_1): blocks of 32 weights, an fp16 scale d, an fp16 minimum m and 16
// bytes of 4-bit codes q; value = q * d + m; byte j holds element j in its low nibble and element
// j + 16 in its high nibble. Quantized as ggml's quantize_row_q4_1_ref (what llama-quantize runs
// without an importance matrix: quantize_q4_1 falls back to it): min and max of the block,
// d = (max - min) / 15, q = min(15, (int)((x - min) / d + 0.5)), bit for bit on finite input.
#pragma once

#include "kernels/types/block32.hpp"
#include "kernels/types/codec.hpp"

namespace brise::kernels::BRISE_ISA {

struct Q4_1 : block32::WithMin<4> {  // encode_row_ref, decode_row_ref, to_int8
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
  static_assert(sizeof(Block) == kBlockBytes && kBlockBytes == WithMin::kBlockBytes);

  static void encode_row(const float* x, void* out, size_t n) { encode_row_ref(x, out, n); }
  static void decode_row(const void* in, float* out, size_t n) { decode_row_ref(in, out, n); }
};

}  // namespace brise::kernels::BRISE_ISA
