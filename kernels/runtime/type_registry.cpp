// The registry of kernels/type_traits.hpp, one row per type of kernels/types/type_list.hpp.
#include <algorithm>
#include <array>
#include <cctype>
#include <limits>

#include "kernels/type_traits.hpp"
#include "kernels/types/all_types.hpp"

namespace brise::kernels {
namespace {

template <class Codec>
constexpr auto to_int8_of() -> void (*)(const uint8_t*, Int8Block&) {
  if constexpr (BRISE_ISA::kIsRowMajor<Codec>)
    return &Codec::to_int8;
  else
    return nullptr;
}

template <class Codec>
constexpr TypeTraits row(uint32_t ggml_id, size_t index) {
  // The int8 formats are made for these block sizes: one activation block per weight block (Q8),
  // or per super-block (Q8_K).
  constexpr ActivationFormat kFormat = Codec::kActivations;
  static_assert(Codec::kQuantized == (kFormat != ActivationFormat::F32));
  static_assert(kFormat != ActivationFormat::Q8 || Codec::kBlockElems == kQ8Block);
  static_assert(kFormat != ActivationFormat::Q8K || Codec::kBlockElems == kQ8KBlock);
  return TypeTraits{ggml_id,
                    Codec::kName,
                    Codec::kBlockElems,
                    Codec::kBlockBytes,
                    Codec::kFileType,
                    Codec::kQuantized,
                    kFormat,
                    BRISE_ISA::kIsRowMajor<Codec>,
                    index,
                    &Codec::encode_row_ref,
                    &Codec::decode_row_ref,
                    to_int8_of<Codec>()};
}

constexpr auto make_registry() {
  using namespace BRISE_ISA;
  size_t index = 0;
#define BRISE_TYPE_ROW(Codec, ggml_id) row<Codec>(ggml_id, index++),
  return std::array{BRISE_TENSOR_TYPES(BRISE_TYPE_ROW)};
#undef BRISE_TYPE_ROW
}

const auto kRegistry = make_registry();

}  // namespace

std::span<const TypeTraits> all_types() {
  return kRegistry;
}

const TypeTraits* find_type(uint32_t ggml_id) {
  for (const auto& t : kRegistry)
    if (t.ggml_id == ggml_id) return &t;
  return nullptr;
}

const TypeTraits* find_type(std::string_view name) {
  const auto same = [](std::string_view a, std::string_view b) {
    return std::ranges::equal(a, b, [](char x, char y) {
      return std::tolower(static_cast<unsigned char>(x)) ==
             std::tolower(static_cast<unsigned char>(y));
    });
  };
  for (const auto& t : kRegistry)
    if (same(t.name, name)) return &t;
  return nullptr;
}

std::string type_names_text() {
  std::string s;
  for (size_t i = 0; i < kRegistry.size(); ++i) {
    if (i > 0) s += i + 1 == kRegistry.size() ? " or " : ", ";
    s += kRegistry[i].name;
  }
  return s;
}

std::optional<uint64_t> row_bytes(const TypeTraits& type, uint64_t n_elems) {
  if (n_elems % type.block_elems != 0) return std::nullopt;
  const uint64_t blocks = n_elems / type.block_elems;
  if (blocks > std::numeric_limits<uint64_t>::max() / type.block_bytes) return std::nullopt;
  return blocks * type.block_bytes;
}

}  // namespace brise::kernels
