// Rows of f32 values to and from any tensor type, and the GGUF file-type facts that go with the
// type of a model's matrices. Shared by the converter, the synthetic-model writer and the
// embedding lookup.
#pragma once

#include <cstddef>
#include <cstdint>

#include "brise/tensor_type.hpp"

namespace brise {

namespace gguf {
class Writer;
}

inline bool is_quantized(TensorType t) {
  return t == TensorType::Q8_0 || t == TensorType::Q4_0;
}

// `n` f32 values into `type` (f16/bf16 round to nearest even; q8_0/q4_0 as ggml quantizes,
// n a multiple of 32).
void encode_row(const float* x, TensorType type, std::byte* out, size_t n);
// `n` values of `type` widened to f32.
void decode_row(TensorType type, const std::byte* in, float* out, size_t n);

// general.file_type (llama.cpp's enum llama_ftype) and, for quantized models,
// general.quantization_version.
void write_file_type(gguf::Writer& writer, TensorType matrices);

}  // namespace brise
