// Which activations a weight type is multiplied with, as ggml's vec_dot_type: a fact of the type,
// declared by its codec (kActivations, kernels/types/codec.hpp) and carried by its registry entry
// (TypeTraits::activation). The matmul's input is quantized to the formats of the matrices that
// read it (kernels/matmul_input.hpp), once per input.
#pragma once

#include <cstddef>
#include <cstdint>

namespace brise::kernels {

enum class ActivationFormat : uint8_t {
  // f32 values: the float types' only format, and every type's in the exact mode.
  F32,
  // Int8 codes in blocks of kQ8Block with an f32 scale and the block's code sum: the types of
  // 32-element blocks (q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl), one activation block per weight
  // block.
  Q8,
  // Int8 codes in blocks of kQ8KBlock with an f32 scale and a sum per 16 codes (llama.cpp's
  // Q8_K): the types of 256-element blocks (the K-quants, iq4_xs), whose scales and mins change
  // every 16 or 32 elements.
  Q8K,
};

inline constexpr size_t kQ8Block = 32;
inline constexpr size_t kQ8KBlock = 256;

}  // namespace brise::kernels
