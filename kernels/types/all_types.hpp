// Every tensor type brise computes with: one codec each. Adding a type means writing its codec
// (kernels/types/<type>.hpp, see codec.hpp for what it holds), listing it here, and testing it.
#pragma once

#include "kernels/types/bf16.hpp"
#include "kernels/types/f16.hpp"
#include "kernels/types/f32.hpp"
#include "kernels/types/q4_0.hpp"
#include "kernels/types/q8_0.hpp"

// X(Codec) for every codec, in registry order (kernels/type_traits.hpp).
#define BRISE_TENSOR_TYPES(X) X(F32) X(F16) X(BF16) X(Q8_0) X(Q4_0)
