// Turning logits into the next token: greedy or seeded random sampling with the usual filters.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace brise {

struct SamplingParams {
  float temperature = 0.0f;     // 0: greedy (argmax)
  int32_t top_k = 0;            // keep the k most likely (0: off)
  float top_p = 1.0f;           // nucleus: smallest set with probability >= p (1: off)
  float min_p = 0.0f;           // drop tokens with p < min_p * p_max (0: off)
  float repeat_penalty = 1.0f;  // CTRL-style penalty on recent tokens (1: off)
  int32_t repeat_last_n = 64;   // how many recent tokens the penalty looks at
  uint64_t seed = 0;            // seeds the generator once, in the constructor
};

// Order of operations: repetition penalty (each distinct token of the last repeat_last_n of the
// history once: logit > 0 ? logit / penalty : logit * penalty), then greedy argmax (first index
// on ties) when temperature is 0; otherwise temperature, top-k, softmax, top-p, min-p, and one
// draw u in [0, 1) from the top 53 bits of mt19937_64 (no std:: distribution, whose output
// differs between standard libraries) over the candidates sorted by logit, then id.
// Deterministic: the same params, seed, logits and history give the same tokens everywhere.
// With a mask (constrained decoding, brise/constraint.hpp) only the allowed tokens are
// candidates, and every step above runs on them alone, in the same order.
class Sampler {
 public:
  // Throws brise::Error on invalid params (negative temperature, top_p outside (0, 1], ...).
  explicit Sampler(SamplingParams params);
  // `history`: the tokens so far (for the repetition penalty). Throws on non-finite logits.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);
  // The same among the tokens whose bit is set in `allowed` (bit id % 64 of word id / 64; ids
  // beyond its words are not allowed). Throws brise::Error when no token is allowed.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history,
                 std::span<const uint64_t> allowed);
  const SamplingParams& params() const { return params_; }

 private:
  int32_t sample_among(std::span<const float> logits, std::span<const int32_t> history,
                       const std::span<const uint64_t>* allowed);

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;    // scratch: (logit, id)
  std::vector<double> probs_;                            // scratch: probabilities of candidates_
  std::vector<std::pair<float, int32_t>> sort_scratch_;  // scratch of the candidates' sort
  std::vector<uint32_t> sort_keys_, sort_scratch_keys_;
};

}  // namespace brise
