#include "engine/tensor_encoding.hpp"

#include <cstring>

#include "brise/gguf.hpp"
#include "kernels/fp16.hpp"
#include "kernels/quantize.hpp"

namespace brise {

void encode_row(const float* x, TensorType type, std::byte* out, size_t n) {
  switch (type) {
    case TensorType::F32:
      std::memcpy(out, x, n * sizeof(float));
      return;
    case TensorType::F16:
      kernels::convert_f32_to_f16(x, reinterpret_cast<uint16_t*>(out), n);
      return;
    case TensorType::BF16:
      kernels::convert_f32_to_bf16(x, reinterpret_cast<uint16_t*>(out), n);
      return;
    case TensorType::Q8_0:
      kernels::quantize_row_q8_0(x, reinterpret_cast<kernels::BlockQ8_0*>(out), n);
      return;
    case TensorType::Q4_0:
      kernels::quantize_row_q4_0(x, reinterpret_cast<kernels::BlockQ4_0*>(out), n);
      return;
  }
}

void decode_row(TensorType type, const std::byte* in, float* out, size_t n) {
  switch (type) {
    case TensorType::F32:
      std::memcpy(out, in, n * sizeof(float));
      return;
    case TensorType::F16:
      kernels::convert_f16_to_f32(reinterpret_cast<const uint16_t*>(in), out, n);
      return;
    case TensorType::BF16:
      kernels::convert_bf16_to_f32(reinterpret_cast<const uint16_t*>(in), out, n);
      return;
    case TensorType::Q8_0:
      kernels::dequantize_row_q8_0(reinterpret_cast<const kernels::BlockQ8_0*>(in), out, n);
      return;
    case TensorType::Q4_0:
      kernels::dequantize_row_q4_0(reinterpret_cast<const kernels::BlockQ4_0*>(in), out, n);
      return;
  }
}

void write_file_type(gguf::Writer& writer, TensorType matrices) {
  uint32_t id = 0;  // llama.cpp's enum llama_ftype
  switch (matrices) {
    case TensorType::F32:
      id = 0;
      break;
    case TensorType::F16:
      id = 1;
      break;
    case TensorType::Q4_0:
      id = 2;
      break;
    case TensorType::Q8_0:
      id = 7;
      break;
    case TensorType::BF16:
      id = 32;
      break;
  }
  writer.set("general.file_type", id);
  if (is_quantized(matrices)) writer.set("general.quantization_version", uint32_t{2});
}

}  // namespace brise
