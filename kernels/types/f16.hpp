// F16: IEEE half precision. Encoding rounds to nearest even (NaN stays NaN, overflow gives Inf).
#pragma once

#include "kernels/fp16.hpp"
#include "kernels/types/codec.hpp"

namespace brise::kernels::BRISE_ISA {

struct F16 {
  static constexpr std::string_view kName = "f16";
  static constexpr uint32_t kBlockElems = 1;
  static constexpr uint32_t kBlockBytes = 2;
  static constexpr uint32_t kFileType = 1;  // LLAMA_FTYPE_MOSTLY_F16
  static constexpr bool kQuantized = false;
  static constexpr ActivationFormat kActivations = ActivationFormat::F32;

  static void encode_row_ref(const float* x, void* out, size_t n) {
    auto* y = static_cast<uint16_t*>(out);
    for (size_t i = 0; i < n; ++i) y[i] = f32_to_f16(x[i]);
  }
  static void decode_row_ref(const void* in, float* out, size_t n) {
    for (size_t i = 0; i < n; ++i)
      out[i] = f16_to_f32(read_u16(static_cast<const uint16_t*>(in) + i));
  }
  static void encode_row(const float* x, void* out, size_t n) {
    convert_f32_to_f16(x, static_cast<uint16_t*>(out), n);
  }
  static void decode_row(const void* in, float* out, size_t n) {
    convert_f16_to_f32(static_cast<const uint16_t*>(in), out, n);
  }

  // Packed (kernels/types/packed.hpp): kRows consecutive values (one per row of a group) as f32.
  template <class Ops>
  static typename Ops::F load_packed(const uint8_t* p) {
    return Ops::load_f16(p);
  }
};

}  // namespace brise::kernels::BRISE_ISA
