// Everything about a tensor element type in one row, derived from its codec
// (kernels/types/<type>.hpp, listed in kernels/types/all_types.hpp): the rest of brise asks this
// registry instead of switching on types. Types are identified by their ggml type id, the number
// GGUF files store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "kernels/types/activation_format.hpp"
#include "kernels/types/int8_block.hpp"

namespace brise::kernels {

struct TypeTraits {
  uint32_t ggml_id;       // ggml's enum ggml_type
  std::string_view name;  // "f32", "q4_0", ... as ggml and GGUF tools name it
  uint32_t block_elems;   // elements per block (1 for plain float types)
  uint32_t block_bytes;   // bytes per block
  uint32_t file_type;     // llama.cpp's llama_ftype for a model whose matrices are all this type
  // Blocks of integer codes with a scale: multiplied with int8 dot products, or with f32
  // activations in the exact mode (kernels/matmul.hpp). Otherwise a float type.
  bool quantized;
  // The activations the type is multiplied with (ggml's vec_dot_type): f32 for the float types,
  // one of the int8 formats for the quantized ones (which the exact mode multiplies with f32).
  ActivationFormat activation;
  // Quantized and multiplied in the file's row-major layout, a block at a time
  // (kernels/types/int8_block.hpp), rather than packed in groups of 16 rows.
  bool row_major;
  size_t index;  // position in all_types()
  // Scalar references straight from the block layout: n values (a whole number of blocks)
  // encoded (rounded/quantized as ggml does) or decoded to f32.
  void (*encode_row_ref)(const float* x, void* out, size_t n);
  void (*decode_row_ref)(const void* in, float* out, size_t n);
  // Row-major types: one block in the int8 matmul's form (kernels/types/int8_block.hpp); else null.
  void (*to_int8)(const uint8_t* block, Int8Block& out);
};

// Every type brise computes with, in a fixed order (TypeTraits::index).
std::span<const TypeTraits> all_types();
// nullptr for ids/names brise does not support. Names match whatever their case ("q4_k", "Q4_K").
const TypeTraits* find_type(uint32_t ggml_id);
const TypeTraits* find_type(std::string_view name);
// "f32, f16, bf16, q8_0 or q4_0": the names of all_types() for help texts and messages.
std::string type_names_text();

// Bytes of a row of n_elems elements, or nullopt when n_elems is not a whole number of blocks or
// the size overflows uint64.
std::optional<uint64_t> row_bytes(const TypeTraits& type, uint64_t n_elems);

}  // namespace brise::kernels
