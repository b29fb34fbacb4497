// F32: IEEE single precision, one element per "block".
#pragma once

#include "kernels/types/codec.hpp"

namespace brise::kernels::BRISE_ISA {

struct F32 {
  static constexpr uint32_t kGgmlId = 0;
  static constexpr std::string_view kName = "f32";
  static constexpr uint32_t kBlockElems = 1;
  static constexpr uint32_t kBlockBytes = 4;
  static constexpr uint32_t kFileType = 0;  // LLAMA_FTYPE_ALL_F32
  static constexpr bool kQuantized = false;

  static void encode_row_ref(const float* x, void* out, size_t n) {
    std::memcpy(out, x, n * sizeof(float));
  }
  static void decode_row_ref(const void* in, float* out, size_t n) {
    std::memcpy(out, in, n * sizeof(float));
  }
  static void encode_row(const float* x, void* out, size_t n) { encode_row_ref(x, out, n); }
  static void decode_row(const void* in, float* out, size_t n) { decode_row_ref(in, out, n); }

  // The f32-activation matmul's loader: chunk k of a row as one batch.
  static constexpr size_t kChunk = kLanes;
  static constexpr size_t kChunkBytes = kChunk * sizeof(float);
  static constexpr size_t kPrefetchBytes = 1024;
  static constexpr size_t kSteps = 1;
  static void load(const uint8_t* row, size_t k, Batch* out) {
    out[0] = load_pinned(reinterpret_cast<const float*>(row) + k);
  }
  // Elements [k, k + n), n < kLanes, zero-padded.
  static Batch load_tail(const uint8_t* row, size_t k, size_t n) {
    return load_partial(reinterpret_cast<const float*>(row) + k, n);
  }
};

}  // namespace brise::kernels::BRISE_ISA
