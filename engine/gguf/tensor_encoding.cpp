#include "engine/gguf/tensor_encoding.hpp"

#include <string>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "kernels/matmul.hpp"

namespace brise {

const kernels::TypeTraits& type_traits(TensorType type) {
  const kernels::TypeTraits* t = kernels::find_type(static_cast<uint32_t>(type));
  if (!t)
    throw Error("unsupported tensor type id " + std::to_string(static_cast<uint32_t>(type)) +
                " (brise computes with " + tensor_type_names() + ")");
  return *t;
}

void encode_row(const float* x, TensorType type, std::byte* out, size_t n) {
  kernels::encode_row(type_traits(type), x, out, n);
}

void decode_row(TensorType type, const std::byte* in, float* out, size_t n) {
  kernels::decode_row(type_traits(type), in, out, n);
}

void write_file_type(gguf::Writer& writer, TensorType matrices) {
  const kernels::TypeTraits& t = type_traits(matrices);
  writer.set("general.file_type", t.file_type);
  if (t.quantized) writer.set("general.quantization_version", uint32_t{2});
}

}  // namespace brise
