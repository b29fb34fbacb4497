// Q5_0 (ggml-common.h block_q5_0): blocks of 32 weights, an fp16 scale d, 4 bytes qh holding the
// fifth bit of each code (bit j for element j, little-endian) and 16 bytes qs of the low 4 bits
// (byte j: element j in its low nibble, element j + 16 in its high nibble); value = d * (q - 16).
// Quantized as ggml's quantize_row_q5_0_ref (what llama-quantize runs without an importance
// matrix: quantize_q5_0 falls back to it): d = m / -16 where m is the first element of largest
// magnitude, q = min(31, (int)(x / d + 16.5)), bit for bit on finite input.
#pragma once

#include "kernels/types/block32.hpp"
#include "kernels/types/codec.hpp"

namespace brise::kernels::BRISE_ISA {

struct Q5_0 : block32::Signed<5> {  // encode_row_ref, decode_row_ref, to_int8
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
  static_assert(sizeof(Block) == kBlockBytes && kBlockBytes == Signed::kBlockBytes);

  static void encode_row(const float* x, void* out, size_t n) { encode_row_ref(x, out, n); }
  static void decode_row(const void* in, float* out, size_t n) { decode_row_ref(in, out, n); }
};

}  // namespace brise::kernels::BRISE_ISA
