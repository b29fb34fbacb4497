// A tiny model with random weights over any vocabulary (Mistral v3's tokenizer.model, tekken-mini's
// tekken-v13.json, ...): a model that knows nothing, whose every next token is a guess. What
// constrained decoding's tests run where no trained model of that vocabulary exists.
#pragma once

#include <cstdint>
#include <filesystem>

#include "brise/tokenizer.hpp"

namespace brise::test {

// Writes it to `path` (2 layers, dim 64, 2/1 heads of 32, ffn 128, context 1024, f32 weights
// uniform in +-0.5 from `seed`). The logits' spread is a few units, so sampling at temperature 1
// picks tokens of very different kinds.
void write_random_model(const std::filesystem::path& path, const Vocabulary& vocab, uint64_t seed);

}  // namespace brise::test
