// F32: IEEE single precision, one element per "block".
#pragma once

#include "kernels/types/codec.hpp"

namespace brise::kernels::BRISE_ISA {

struct F32 {
  static constexpr std::string_view kName = "f32";
  static constexpr uint32_t kBlockElems = 1;
  static constexpr uint32_t kBlockBytes = 4;
  static constexpr uint32_t kFileType = 0;  // LLAMA_FTYPE_ALL_F32
  static constexpr bool kQuantized = false;
  static constexpr ActivationFormat kActivations = ActivationFormat::F32;

  static void encode_row_ref(const float* x, void* out, size_t n) {
    std::memcpy(out, x, n * sizeof(float));
  }
  static void decode_row_ref(const void* in, float* out, size_t n) {
    std::memcpy(out, in, n * sizeof(float));
  }
  static void encode_row(const float* x, void* out, size_t n) { encode_row_ref(x, out, n); }
  static void decode_row(const void* in, float* out, size_t n) { decode_row_ref(in, out, n); }

  // Packed (kernels/types/packed.hpp): kRows consecutive values (one per row of a group) as f32.
  template <class Ops>
  static typename Ops::F load_packed(const uint8_t* p) {
    return Ops::load_f32(p);
  }
};

}  // namespace brise::kernels::BRISE_ISA
