// Every tensor type brise computes with: one codec each. Adding a type means writing its codec
// (kernels/types/<type>.hpp, see codec.hpp for what it holds), listing it here, and testing it.
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

// X(Codec) for every codec, in registry order (kernels/type_traits.hpp).
// clang-format off
#define BRISE_TENSOR_TYPES(X) \
  X(F32) X(F16) X(BF16) X(Q8_0) X(Q4_0) \
  X(Q4_1) X(Q5_0) X(Q5_1) X(Q2_K) X(Q3_K) X(Q4_K) X(Q5_K) X(Q6_K) X(IQ4_NL) X(IQ4_XS)
// clang-format on

namespace brise::kernels::BRISE_ISA {

// Calls f.template operator()<Codec>() with the codec of `type` (std::invalid_argument for a type
// the registry does not know).
template <class Fn>
void with_codec(const TypeTraits& type, Fn&& f) {
  switch (type.ggml_id) {
#define BRISE_CODEC_CASE(Codec)     \
  case Codec::kGgmlId:              \
    f.template operator()<Codec>(); \
    return;
    BRISE_TENSOR_TYPES(BRISE_CODEC_CASE)
#undef BRISE_CODEC_CASE
  }
  throw std::invalid_argument("no codec for type " + std::string(type.name));
}

}  // namespace brise::kernels::BRISE_ISA
