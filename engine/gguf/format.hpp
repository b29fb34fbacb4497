// Layout constants and helpers shared by the GGUF reader and writer. Internal to the engine.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "brise/gguf.hpp"

namespace brise::gguf {

// magic + version + tensor_count + metadata_kv_count.
inline constexpr uint64_t kHeaderBytes = 4 + 4 + 8 + 8;
// The smallest metadata pair: empty key (u64 length), value type, a one-byte value.
inline constexpr uint64_t kMinMetadataBytes = 8 + 4 + 1;
// The smallest tensor info: empty name, n_dims = 1, one dimension, type, offset.
inline constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;
// The specification limits keys to 65535 bytes.
inline constexpr uint64_t kMaxKeyBytes = 65535;
// llama.cpp stores tensor names in 64-byte buffers including the terminating NUL, so the writer
// keeps names to 63 bytes to stay loadable there.
inline constexpr uint64_t kMaxTensorNameBytes = 63;
// Power-of-two alignments above this are rejected as absurd (16 MiB).
inline constexpr uint32_t kMaxAlignment = 1u << 24;
inline constexpr std::string_view kAlignmentKey = "general.alignment";

inline std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline bool is_valid_value_type(uint32_t id) {
  return id <= static_cast<uint32_t>(ValueType::F64);
}

// Fewest bytes one value of `type` occupies inside an array (no type tag per element).
inline uint64_t min_encoded_bytes(ValueType type) {
  switch (type) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::BOOL:
      return 1;
    case ValueType::U16:
    case ValueType::I16:
      return 2;
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::F32:
      return 4;
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64:
      return 8;
    case ValueType::STRING:
      return 8;  // u64 length
    case ValueType::ARRAY:
      return 4 + 8;  // element type + count
  }
  return 1;
}

// Block layouts of the ggml tensor types brise does not compute with (ggml-common.h; gguf-py's
// GGML_QUANT_SIZES), so that inspection tools can size their tensors; the types brise computes
// with are the kernels' registry (kernels/type_traits.hpp). Ids 4, 5, 31-33 and 36-38 were
// removed from ggml and are absent.
struct GgmlTypeLayout {
  uint32_t id;
  std::string_view name;
  uint32_t block_elems;
  uint32_t block_bytes;
};

inline constexpr std::array<GgmlTypeLayout, 27> kForeignGgmlTypes{{
    {3, "q4_1", 32, 20},      {6, "q5_0", 32, 22},      {7, "q5_1", 32, 24},
    {9, "q8_1", 32, 36},      {10, "q2_K", 256, 84},    {11, "q3_K", 256, 110},
    {12, "q4_K", 256, 144},   {13, "q5_K", 256, 176},   {14, "q6_K", 256, 210},
    {15, "q8_K", 256, 292},   {16, "iq2_xxs", 256, 66}, {17, "iq2_xs", 256, 74},
    {18, "iq3_xxs", 256, 98}, {19, "iq1_s", 256, 50},   {20, "iq4_nl", 32, 18},
    {21, "iq3_s", 256, 110},  {22, "iq2_s", 256, 82},   {23, "iq4_xs", 256, 136},
    {24, "i8", 1, 1},         {25, "i16", 1, 2},        {26, "i32", 1, 4},
    {27, "i64", 1, 8},        {28, "f64", 1, 8},        {29, "iq1_m", 256, 56},
    {34, "tq1_0", 256, 54},   {35, "tq2_0", 256, 66},   {39, "mxfp4", 32, 17},
}};

inline const GgmlTypeLayout* find_foreign_ggml_type(uint32_t id) {
  for (const auto& t : kForeignGgmlTypes)
    if (t.id == id && t.block_bytes != 0) return &t;
  return nullptr;
}

}  // namespace brise::gguf
