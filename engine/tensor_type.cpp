#include "brise/tensor_type.hpp"

#include <array>
#include <limits>

namespace brise {
namespace {

struct Entry {
  TensorType type;
  TensorTypeInfo info;
};

// Block layouts from the GGUF specification: Q8_0 = fp16 scale + 32 int8;
// Q4_0 = fp16 scale + 16 bytes holding 32 nibbles.
constexpr std::array<Entry, 5> kTypes{{
    {TensorType::F32, {"f32", 1, 4}},
    {TensorType::F16, {"f16", 1, 2}},
    {TensorType::BF16, {"bf16", 1, 2}},
    {TensorType::Q8_0, {"q8_0", 32, 34}},
    {TensorType::Q4_0, {"q4_0", 32, 18}},
}};

}  // namespace

std::optional<TensorType> tensor_type_from_id(uint32_t ggml_type_id) {
  for (const auto& e : kTypes)
    if (static_cast<uint32_t>(e.type) == ggml_type_id) return e.type;
  return std::nullopt;
}

std::optional<TensorType> tensor_type_from_name(std::string_view name) {
  for (const auto& e : kTypes)
    if (e.info.name == name) return e.type;
  return std::nullopt;
}

const TensorTypeInfo& tensor_type_info(TensorType type) {
  for (const auto& e : kTypes)
    if (e.type == type) return e.info;
  // Only reachable through a cast of an unchecked integer: callers validate ids first.
  static constexpr TensorTypeInfo kUnknown{"unknown", 1, 0};
  return kUnknown;
}

std::optional<uint64_t> tensor_row_bytes(TensorType type, uint64_t n_elems) {
  const auto& info = tensor_type_info(type);
  if (info.block_bytes == 0 || n_elems % info.block_elems != 0) return std::nullopt;
  const uint64_t blocks = n_elems / info.block_elems;
  if (blocks > std::numeric_limits<uint64_t>::max() / info.block_bytes) return std::nullopt;
  return blocks * info.block_bytes;
}

}  // namespace brise
