// Log-probabilities of generated tokens (GenerateOptions::logprobs).
#pragma once

#include <cstdint>
#include <span>

#include "brise/generate.hpp"

namespace brise {

// The log-softmax of `logits` in double at `chosen`, and the `top` most likely tokens (fewer when
// the vocabulary is smaller), as TokenLogprob documents.
TokenLogprobs token_logprobs(std::span<const float> logits, int32_t chosen, uint32_t top);

}  // namespace brise
