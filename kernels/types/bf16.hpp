// BF16: the top 16 bits of an f32. Encoding rounds to nearest even (NaN stays NaN).
#pragma once

#include "kernels/fp16.hpp"
#include "kernels/types/codec.hpp"

namespace brise::kernels::BRISE_ISA {

struct BF16 {
  static constexpr std::string_view kName = "bf16";
  static constexpr uint32_t kBlockElems = 1;
  static constexpr uint32_t kBlockBytes = 2;
  static constexpr uint32_t kFileType = 32;  // LLAMA_FTYPE_MOSTLY_BF16
  static constexpr bool kQuantized = false;
  static constexpr ActivationFormat kActivations = ActivationFormat::F32;

  static void encode_row_ref(const float* x, void* out, size_t n) {
    auto* y = static_cast<uint16_t*>(out);
    for (size_t i = 0; i < n; ++i) y[i] = f32_to_bf16(x[i]);
  }
  static void decode_row_ref(const void* in, float* out, size_t n) {
    for (size_t i = 0; i < n; ++i)
      out[i] = bf16_to_f32(read_u16(static_cast<const uint16_t*>(in) + i));
  }
  static void encode_row(const float* x, void* out, size_t n) {
    convert_f32_to_bf16(x, static_cast<uint16_t*>(out), n);
  }
  static void decode_row(const void* in, float* out, size_t n) {
    convert_bf16_to_f32(static_cast<const uint16_t*>(in), out, n);
  }

  // Packed (kernels/types/packed.hpp): kRows consecutive values (one per row of a group) as f32.
  template <class Ops>
  static typename Ops::F load_packed(const uint8_t* p) {
    return Ops::load_bf16(p);
  }
};

}  // namespace brise::kernels::BRISE_ISA
