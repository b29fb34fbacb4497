// The public view of the kernels' type registry (kernels/type_traits.hpp), and the check that
// brise::TensorType and the kernels' list of types (kernels/types/type_list.hpp) are one list.
#include "brise/tensor_type.hpp"

#include "kernels/type_traits.hpp"
#include "kernels/types/type_list.hpp"

namespace brise {
namespace {

// This file does not compile when TensorType and the kernels' list disagree. Every listed codec
// has the enumerator of its name, whose value is the codec's ggml id...
#define BRISE_CHECK_ENUMERATOR(Codec, ggml_id)                       \
  static_assert(static_cast<uint32_t>(TensorType::Codec) == ggml_id, \
                "TensorType::" #Codec " must be ggml type " #ggml_id);
BRISE_TENSOR_TYPES(BRISE_CHECK_ENUMERATOR)
#undef BRISE_CHECK_ENUMERATOR

// ...and every enumerator is listed: this switch has a case per listed codec and no default, so
// -Wswitch (an error here) names an enumerator without a codec. With the asserts above, the
// enumerators and the codecs are the same types, as many of each.
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wswitch"
[[maybe_unused]] constexpr bool listed(TensorType type) {
  switch (type) {
#define BRISE_LISTED_CASE(Codec, ggml_id) case TensorType::Codec:
    BRISE_TENSOR_TYPES(BRISE_LISTED_CASE)
#undef BRISE_LISTED_CASE
    return true;
  }
  return false;
}
#pragma GCC diagnostic pop

// The registry's entry of `type`; nullptr only for a value cast from an unchecked integer.
const kernels::TypeTraits* traits_of(TensorType type) {
  return kernels::find_type(static_cast<uint32_t>(type));
}

}  // namespace

std::optional<TensorType> tensor_type_from_id(uint32_t ggml_type_id) {
  if (!kernels::find_type(ggml_type_id)) return std::nullopt;
  return static_cast<TensorType>(ggml_type_id);
}

std::optional<TensorType> tensor_type_from_name(std::string_view name) {
  const kernels::TypeTraits* t = kernels::find_type(name);
  if (!t) return std::nullopt;
  return static_cast<TensorType>(t->ggml_id);
}

TensorTypeInfo tensor_type_info(TensorType type) {
  const kernels::TypeTraits* t = traits_of(type);
  // Only reachable through a cast of an unchecked integer: callers validate ids first.
  if (!t) return {"unknown", 1, 0, false};
  return {t->name, t->block_elems, t->block_bytes, t->quantized};
}

std::optional<uint64_t> tensor_row_bytes(TensorType type, uint64_t n_elems) {
  const kernels::TypeTraits* t = traits_of(type);
  if (!t) return std::nullopt;
  return kernels::row_bytes(*t, n_elems);
}

std::string tensor_type_names() {
  return kernels::type_names_text();
}

}  // namespace brise
