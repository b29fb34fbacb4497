// Tensor element types as GGUF/ggml number them, and their block layouts. The facts come from
// the kernels' registry, one codec per type (kernels/types/).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace brise {

// Values are ggml's type ids, so they can be written to and read from GGUF unchanged. One
// enumerator per codec of the kernels' list of types (kernels/types/type_list.hpp), named as the
// codec: engine/gguf/tensor_type.cpp does not compile when the two differ.
enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  IQ4_NL = 20,
  IQ4_XS = 23,
  BF16 = 30,
};

struct TensorTypeInfo {
  std::string_view name;  // ggml's: "f32", "f16", "bf16", "q8_0", "q4_0", "q4_K", "iq4_xs", ...
  uint32_t block_elems;   // elements per block (1 for plain float types)
  uint32_t block_bytes;   // bytes per block
  // Blocks of integer codes with scales (q8_0, q4_K, ...): multiplied with int8 activations
  // unless a session is exact. Otherwise a float type.
  bool quantized;
};

// Returns nullopt for ids brise does not support (every other ggml type).
std::optional<TensorType> tensor_type_from_id(uint32_t ggml_type_id);
std::optional<TensorType> tensor_type_from_name(std::string_view name);
TensorTypeInfo tensor_type_info(TensorType type);
inline std::string_view tensor_type_name(TensorType type) {
  return tensor_type_info(type).name;
}

// "f32, f16, ..., iq4_nl or iq4_xs": every supported type's name, for help texts and messages.
std::string tensor_type_names();

// Bytes used by a row of `n_elems` elements, or nullopt when n_elems is not a whole number of
// blocks or the size overflows uint64.
std::optional<uint64_t> tensor_row_bytes(TensorType type, uint64_t n_elems);

}  // namespace brise
