// A synthetic model wide enough that matmuls and attention really split across threads, with a
// sliding window (300) that a 512-token chunk wraps: the model of the determinism and batch
// invariance tests.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>

#include "brise/model.hpp"
#include "brise/tensor_type.hpp"
#include "kernels/type_traits.hpp"

namespace brise::test {

// Writes it (2 layers, dim 256, 4/2 heads of 64, ffn 768, vocab 512, context 1024) with every
// matrix of `type` into `dir`, returning the path.
std::filesystem::path write_wide_model(const std::filesystem::path& dir, TensorType type);

// The grid of the end-to-end tests: for each end-to-end type (support/end_to_end_types.hpp),
// loads its wide model (written into `dir`) and calls `run` once with int8 activations and, for a
// quantized type, once more with exact ones.
void for_each_wide_model(
    const std::filesystem::path& dir,
    const std::function<void(const kernels::TypeTraits& type,
                             const std::shared_ptr<const Model>& model, bool exact)>& run);

// The same with Nemo's and Ministral's shapes in small: 4/2 heads of 128 (q_dim 512, twice dim),
// and per-layer windows: layer 0 windowed (300), layer 1 full attention.
std::filesystem::path write_wide_interleaved_model(const std::filesystem::path& dir,
                                                   TensorType type);

}  // namespace brise::test
