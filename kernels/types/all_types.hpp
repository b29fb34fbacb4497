// Every codec of kernels/types/type_list.hpp, and the dispatch from a type to its codec. Adding a
// type means writing its codec (kernels/types/<type>.hpp, see codec.hpp for what it holds),
// including it here, listing it in type_list.hpp with an enumerator of brise::TensorType, and
// testing it.
#pragma once

#include <stdexcept>
#include <string>

#include "kernels/type_traits.hpp"
#include "kernels/types/bf16.hpp"
#include "kernels/types/f16.hpp"
#include "kernels/types/f32.hpp"
#include "kernels/types/iq4_nl.hpp"
#include "kernels/types/iq4_xs.hpp"
#include "kernels/types/q2_k.hpp"
#include "kernels/types/q3_k.hpp"
#include "kernels/types/q4_0.hpp"
#include "kernels/types/q4_1.hpp"
#include "kernels/types/q4_k.hpp"
#include "kernels/types/q5_0.hpp"
#include "kernels/types/q5_1.hpp"
#include "kernels/types/q5_k.hpp"
#include "kernels/types/q6_k.hpp"
#include "kernels/types/q8_0.hpp"
#include "kernels/types/type_list.hpp"

namespace brise::kernels::BRISE_ISA {

// Calls f.template operator()<Codec>() with the codec of `type` (std::invalid_argument for a type
// the registry does not know).
template <class Fn>
void with_codec(const TypeTraits& type, Fn&& f) {
  switch (type.ggml_id) {
#define BRISE_CODEC_CASE(Codec, ggml_id) \
  case ggml_id:                          \
    f.template operator()<Codec>();      \
    return;
    BRISE_TENSOR_TYPES(BRISE_CODEC_CASE)
#undef BRISE_CODEC_CASE
  }
  throw std::invalid_argument("no codec for type " + std::string(type.name));
}

}  // namespace brise::kernels::BRISE_ISA
