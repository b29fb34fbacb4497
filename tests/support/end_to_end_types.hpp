// The tensor types the end-to-end tests (determinism, batches, fast vs reference) run a whole
// model in. Every packed type (f32, f16, bf16, q8_0, q4_0), and two of the row-major ones: they all
// share one matmul (kernels/matmul_rows.hpp) and differ only in how a block decodes, which
// test_kernels_matmul checks bit for bit against the references for every type, token count and
// row split, and test_tensor_types / test_quantized_accuracy against llama.cpp's files. q4_K
// stands for the 256-element blocks with Q8_K activations and mins, q5_0 for the 32-element ones.
// Their matmul is per row (no packed copy), and these tests decode every weight for every token
// of a 530-token prompt in a dozen configurations: they run once, not again under each kernel set
// (the isa:<set>: copies, BRISE_ISA set), where test_kernels_matmul checks them.
#pragma once

#include <cstdlib>
#include <string_view>

#include "kernels/type_traits.hpp"

namespace brise::test {

inline bool end_to_end_type(const kernels::TypeTraits& t) {
  if (!t.row_major) return true;
  if (std::getenv("BRISE_ISA")) return false;
  return t.name == std::string_view("q4_K") || t.name == std::string_view("q5_0");
}

}  // namespace brise::test
