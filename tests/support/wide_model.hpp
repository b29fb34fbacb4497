// A synthetic model wide enough that matmuls and attention really split across threads, with a
// sliding window (300) that a 512-token chunk wraps: the model of the determinism and batch
// invariance tests.
#pragma once

#include <filesystem>

#include "brise/tensor_type.hpp"

namespace brise::test {

// Writes it (2 layers, dim 256, 4/2 heads of 64, ffn 768, vocab 512, context 1024) with every
// matrix of `type` into `dir`, returning the path.
std::filesystem::path write_wide_model(const std::filesystem::path& dir, TensorType type);

// The same with Nemo's and Ministral's shapes in small: 4/2 heads of 128 (q_dim 512, twice dim),
// and per-layer windows: layer 0 windowed (300), layer 1 full attention.
std::filesystem::path write_wide_interleaved_model(const std::filesystem::path& dir,
                                                   TensorType type);

}  // namespace brise::test
