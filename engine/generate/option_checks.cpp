#include "engine/generate/option_checks.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "brise/error.hpp"

namespace brise {

void check_sampling_params(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0)
    throw Error("sampling: temperature must be a finite number >= 0, got " +
                std::to_string(p.temperature));
  if (p.top_k < 0) throw Error("sampling: top_k must be >= 0, got " + std::to_string(p.top_k));
  if (!(p.top_p > 0 && p.top_p <= 1))
    throw Error("sampling: top_p must be in (0, 1], got " + std::to_string(p.top_p));
  if (!(p.min_p >= 0 && p.min_p <= 1))
    throw Error("sampling: min_p must be in [0, 1], got " + std::to_string(p.min_p));
  if (!std::isfinite(p.repeat_penalty) || p.repeat_penalty <= 0)
    throw Error("sampling: repeat_penalty must be a finite number > 0, got " +
                std::to_string(p.repeat_penalty));
  if (p.repeat_last_n < 0)
    throw Error("sampling: repeat_last_n must be >= 0, got " + std::to_string(p.repeat_last_n));
  if (!std::isfinite(p.frequency_penalty))
    throw Error("sampling: frequency_penalty must be a finite number");
  if (!std::isfinite(p.presence_penalty))
    throw Error("sampling: presence_penalty must be a finite number");
  for (const auto& [id, bias] : p.logit_bias) {
    if (id < 0) throw Error("sampling: logit_bias token id " + std::to_string(id) + " is negative");
    if (std::isnan(bias) || bias == std::numeric_limits<float>::infinity())
      throw Error("sampling: the logit_bias of token " + std::to_string(id) +
                  " must be a number below infinity");
  }
}

void check_generate_options(const GenerateOptions& options, const Model& model) {
  check_sampling_params(options.sampling);
  const uint32_t vocab = model.config().vocab_size;
  for (const auto& [id, bias] : options.sampling.logit_bias)
    if (static_cast<uint32_t>(id) >= vocab)
      throw Error("sampling: logit_bias token id " + std::to_string(id) +
                  " is outside the vocabulary (0.." + std::to_string(vocab - 1) + ")");
  for (const auto& s : options.stop_strings)
    if (s.empty()) throw Error("generate: a stop string must not be empty");
  if (!options.stop_strings.empty() && !model.has_tokenizer())
    throw Error("generate: stop strings need a model with a tokenizer");
  if (options.constraint) {
    if (!model.has_tokenizer())
      throw Error("generate: a constraint needs a model with a tokenizer");
    if (!options.constraint->compatible_with(model.tokenizer()))
      throw Error("generate: the constraint was made for another vocabulary than the model's");
    if (!options.stop_at_eos)
      throw Error("generate: a constraint ends with EOS, so it needs stop_at_eos");
  }
}

}  // namespace brise
