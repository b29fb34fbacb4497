// The one list of the tensor types brise computes with. Everything else about a type is in its
// codec (kernels/types/<type>.hpp); what names the set of types comes from here: the registry and
// its order (kernels/type_traits.hpp), the dispatch to a codec (all_types.hpp), the ids below, and
// brise::TensorType, which engine/gguf/tensor_type.cpp checks against this list when it compiles
// (the public header cannot include a kernels header: it is installed on its own).
#pragma once

#include <cstdint>

// X(Codec, ggml_id) for every type, in registry order: the codec's struct name, which is also
// the TensorType enumerator, and ggml's enum ggml_type value, the number GGUF files store.
// clang-format off
#define BRISE_TENSOR_TYPES(X) \
  X(F32, 0) X(F16, 1) X(BF16, 30) X(Q8_0, 8) X(Q4_0, 2) X(Q4_1, 3) X(Q5_0, 6) X(Q5_1, 7) \
  X(Q2_K, 10) X(Q3_K, 11) X(Q4_K, 12) X(Q5_K, 13) X(Q6_K, 14) X(IQ4_NL, 20) X(IQ4_XS, 23)
// clang-format on

namespace brise::kernels::ggml_type {

// ggml's id of a type by its codec's name (ggml_type::F16 == 1), for code outside the codecs.
#define BRISE_GGML_TYPE_ID(Codec, ggml_id) inline constexpr uint32_t Codec = ggml_id;
BRISE_TENSOR_TYPES(BRISE_GGML_TYPE_ID)
#undef BRISE_GGML_TYPE_ID

}  // namespace brise::kernels::ggml_type
