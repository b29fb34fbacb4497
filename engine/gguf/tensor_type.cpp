// The public view of the kernels' type registry (kernels/type_traits.hpp).
#include "brise/tensor_type.hpp"

#include "kernels/type_traits.hpp"

namespace brise {

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
  const kernels::TypeTraits* t = kernels::find_type(static_cast<uint32_t>(type));
  // Only reachable through a cast of an unchecked integer: callers validate ids first.
  if (!t) return {"unknown", 1, 0, false};
  return {t->name, t->block_elems, t->block_bytes, t->quantized};
}

std::optional<uint64_t> tensor_row_bytes(TensorType type, uint64_t n_elems) {
  const kernels::TypeTraits* t = kernels::find_type(static_cast<uint32_t>(type));
  if (!t) return std::nullopt;
  return kernels::row_bytes(*t, n_elems);
}

std::string tensor_type_names() {
  return kernels::type_names_text();
}

}  // namespace brise
