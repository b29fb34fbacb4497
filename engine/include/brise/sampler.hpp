// Turning logits into the next token: greedy or seeded random sampling with the usual filters.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

namespace brise {

// A logit_bias of this or less bans its token (OpenAI: "-100 should result in a ban").
inline constexpr float kLogitBiasBan = -100.0f;

struct SamplingParams {
  float temperature = 0.0f;     // 0: greedy (argmax)
  int32_t top_k = 0;            // keep the k most likely (0: off)
  float top_p = 1.0f;           // nucleus: smallest set with probability >= p (1: off)
  float min_p = 0.0f;           // drop tokens with p < min_p * p_max (0: off)
  float repeat_penalty = 1.0f;  // CTRL-style penalty on recent tokens (1: off)
  int32_t repeat_last_n = 64;   // how many recent tokens the penalty looks at
  // OpenAI's penalties over the tokens generated so far (not the prompt): a token generated c
  // times has c * frequency_penalty, and presence_penalty once c > 0, taken from its logit.
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  // (token id, bias) added to that token's logit; a bias of -100 or less bans the token (it is
  // never chosen). An id listed twice gets both biases.
  std::vector<std::pair<int32_t, float>> logit_bias;
  uint64_t seed = 0;  // seeds the generator once, in the constructor
};

// Order of operations: logit_bias (banned tokens leave the candidates), repetition penalty (each
// distinct token of the last repeat_last_n of the history once: logit > 0 ? logit / penalty :
// logit * penalty), frequency and presence penalties, then greedy argmax (first index on ties)
// when temperature is 0; otherwise temperature, top-k, softmax, top-p, min-p, and one draw u in
// [0, 1) from the top 53 bits of mt19937_64 (no std:: distribution, whose output differs between
// standard libraries) over the candidates sorted by logit, then id.
// Deterministic: the same params, seed, logits and history give the same tokens everywhere.
// With a mask (constrained decoding, brise/constraint.hpp) only the allowed tokens are
// candidates: logit_bias and the penalties apply by id, then every later step runs on the allowed
// tokens alone, in the same order.
class Sampler {
 public:
  // Throws brise::Error on invalid params (negative temperature, top_p outside (0, 1], ...).
  explicit Sampler(SamplingParams params);
  // `history`: the tokens so far (for the repetition penalty), of which the last `generated` were
  // generated (for the frequency and presence penalties). Throws on non-finite logits, a
  // logit_bias id outside the logits, and when logit_bias bans every token.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history,
                 size_t generated = 0);
  // The same among the tokens whose bit is set in `allowed` (bit id % 64 of word id / 64; ids
  // beyond its words are not allowed). Throws brise::Error when no token is allowed, or
  // logit_bias bans every allowed one.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history, size_t generated,
                 std::span<const uint64_t> allowed);
  const SamplingParams& params() const { return params_; }

 private:
  int32_t sample_among(std::span<const float> logits, std::span<const int32_t> history,
                       size_t generated, const std::span<const uint64_t>* mask);

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;    // scratch: (logit, id)
  std::vector<double> probs_;                            // scratch: probabilities of candidates_
  std::vector<std::pair<float, int32_t>> sort_scratch_;  // scratch of the candidates' sort
  std::vector<uint32_t> sort_keys_, sort_scratch_keys_;
  std::unordered_map<int32_t, uint32_t> counts_;  // scratch: generated tokens' counts
};

}  // namespace brise
