// Generation loop: prefill a prompt, then sample and decode until a stop condition, streaming
// UTF-8-complete text.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "brise/constraint.hpp"
#include "brise/sampler.hpp"
#include "brise/session.hpp"

namespace brise {

struct GenerateOptions {
  SamplingParams sampling;
  uint32_t max_tokens = 256;
  bool stop_at_eos = true;
  std::vector<int32_t> stop_ids;          // e.g. BOS for stories260k
  std::vector<std::string> stop_strings;  // generation ends when the text contains one (it is cut)
  // Constrained decoding (brise/constraint.hpp): only tokens the constraint allows are sampled,
  // and generation ends when it is complete (EOS appended, StopReason::Eos; MaxTokens and no EOS
  // when the token budget had to steer it). It must be made for the model's vocabulary and needs
  // stop_at_eos. Stop ids and strings still apply (and may cut the output short).
  std::shared_ptr<const Constraint> constraint;
  // Each generated token's log-probability, with this many of the most likely tokens beside it
  // (Generation::logprobs, GenerateResult::logprobs); nullopt: none are computed.
  std::optional<uint32_t> logprobs;
};

// A token's log-probability under the model: the log-softmax of the raw logits it was sampled
// from, in double (max + log of the sum of exp(logit - max), summed in id order), before
// temperature, penalties, logit_bias or any other change the sampler makes. This is the model's
// own distribution, as OpenAI reports it; greedy and sampled tokens get the same numbers.
struct TokenLogprob {
  int32_t id = -1;
  double logprob = 0;
};
struct TokenLogprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;  // the most likely tokens, most likely first (ties: lower id)
};

enum class StopReason { Eos, StopId, StopString, MaxTokens, Callback, ContextFull };
// "eos", "stop_id", "stop_string", "max_tokens", "callback", "context_full".
std::string_view stop_reason_name(StopReason reason);

struct GenerateResult {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> generated_ids;  // including the stop token when one ended generation
  std::string text;                    // the generated text (stop token/string excluded)
  // With options.logprobs: one entry per generated token, a final stop token (EOS, a stop id)
  // excepted.
  std::vector<TokenLogprobs> logprobs;
  StopReason stop_reason = StopReason::MaxTokens;
  double prefill_seconds = 0;  // in Session::prefill of the prompt (steady_clock)
  double decode_seconds = 0;   // in Session::decode calls
  // One-token forward passes: the last generated token is not fed (generation ends there).
  uint32_t decoded_tokens = 0;
  double prefill_tok_s() const;  // prompt tokens per second (0 when nothing was timed)
  double decode_tok_s() const;   // decoded_tokens per second (0 when nothing was timed)
};

// One generation taken a token at a time, for callers that feed the session themselves (a server
// batching many sessions, brise/batch.hpp); generate() below is this loop with Session::decode.
// Construct it once the prompt has been fed (the session holds the prompt and its logits).
// Each advance() samples a token from the logits after the last fed token, applies the same stop
// checks in the same order as generate(), streams the text that became complete to `on_text`,
// and says whether that token is to be fed next (then call advance again with the new logits).
// Given the same session state and logits, it produces exactly generate()'s tokens and text.
class Generation {
 public:
  // Throws brise::Error on invalid options (as generate()). `session` and `options` must
  // outlive this.
  Generation(const Session& session, const GenerateOptions& options);
  ~Generation();
  Generation(Generation&&) noexcept;
  Generation& operator=(Generation&&) noexcept;

  // Returns true when last_token() must be fed; false when generation ended (stop_reason()),
  // after the held-back text was flushed to `on_text`.
  bool advance(std::span<const float> logits,
               const std::function<bool(std::string_view)>& on_text = {});
  int32_t last_token() const;
  bool done() const;
  StopReason stop_reason() const;
  const std::vector<int32_t>& generated_ids() const;
  const std::string& text() const;
  // With options.logprobs: the generated tokens' log-probabilities, as GenerateResult::logprobs
  // (a final stop token has none).
  const std::vector<TokenLogprobs>& logprobs() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// `on_text` receives text as it becomes complete; returning false stops generation.
// The session continues from its current position (so chat turns accumulate): the prompt is
// prefilled after what the session holds. An empty prompt is an error on an empty session (pass
// at least BOS); on a session that has logits it continues from them. The first generated
// piece keeps its leading space only when it continues text (not after BOS alone). Text that
// could still be the start of a stop string is held back until it is known not to be one.
// Generation stops, in this order of checks after each sampled token: EOS (stop_at_eos), a stop
// id, a completed stop string, the callback, max_tokens, and a full context (full attention
// only: the token that does not fit is still returned, not fed). Throws brise::Error on invalid
// options, a prompt that does not fit the context, or non-finite logits.
GenerateResult generate(Session& session, std::span<const int32_t> prompt,
                        const GenerateOptions& options,
                        const std::function<bool(std::string_view)>& on_text = {});

}  // namespace brise
