// Rows of f32 values to and from any tensor type, the registry entry of a type, and the GGUF
// file-type facts that go with the type of a model's matrices. Shared by the converter, the
// synthetic-model writer, the model loader and the embedding lookup.
#pragma once

#include <cstddef>
#include <cstdint>

#include "brise/tensor_type.hpp"
#include "kernels/type_traits.hpp"

namespace brise {

namespace gguf {
class Writer;
}

// The kernels' registry entry of a supported type (brise::Error for an unsupported id).
const kernels::TypeTraits& type_traits(TensorType type);

// Blocks of integer codes with scales (q8_0, q4_0, ...), as opposed to plain floats.
inline bool is_quantized(TensorType t) {
  return type_traits(t).quantized;
}

// `n` f32 values into `type` (f16/bf16 round to nearest even; quantized types as ggml quantizes,
// n a whole number of blocks), and back.
void encode_row(const float* x, TensorType type, std::byte* out, size_t n);
void decode_row(TensorType type, const std::byte* in, float* out, size_t n);

// general.file_type (llama.cpp's enum llama_ftype) and, for quantized models,
// general.quantization_version.
void write_file_type(gguf::Writer& writer, TensorType matrices);

}  // namespace brise
