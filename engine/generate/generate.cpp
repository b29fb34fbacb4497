// The generation loop: prefill, then sample / check stops / stream text / decode one token.
#include "brise/generate.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "brise/error.hpp"
#include "engine/generate/logprobs.hpp"
#include "engine/generate/option_checks.hpp"

namespace brise {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Holds back generated text while it may still turn out to be the start of a stop string, and
// cuts the text before the first stop string that completes.
class StopStrings {
 public:
  // The stop strings are not empty (check_generate_options).
  explicit StopStrings(const std::vector<std::string>& stops) : stops_(stops) {
    for (const auto& s : stops_) longest_ = std::max(longest_, s.size());
  }

  // Adds text; returns what is certain to be output.
  std::string push(std::string_view text) {
    held_ += text;
    if (stops_.empty()) return std::exchange(held_, {});
    size_t cut = std::string::npos;
    for (const auto& s : stops_) cut = std::min(cut, held_.find(s));
    if (cut != std::string::npos) {
      stopped_ = true;
      std::string out = held_.substr(0, cut);
      held_.clear();
      return out;
    }
    // Keep the longest tail that is a proper prefix of some stop string. Stop strings are valid
    // UTF-8, so that tail starts on a character boundary.
    size_t keep = std::min(held_.size(), longest_ - 1);
    for (; keep > 0; --keep) {
      const std::string_view tail = std::string_view(held_).substr(held_.size() - keep);
      if (std::any_of(stops_.begin(), stops_.end(),
                      [&](const std::string& s) { return s.compare(0, keep, tail) == 0; }))
        break;
    }
    std::string out = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    return out;
  }

  // Generation ended for another reason: what was held back is plain text after all.
  std::string finish() { return std::exchange(held_, {}); }
  bool stopped() const { return stopped_; }

 private:
  const std::vector<std::string>& stops_;
  size_t longest_ = 0;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace

std::string_view stop_reason_name(StopReason reason) {
  // In the enumerators' order.
  static constexpr std::string_view kNames[] = {"eos",        "stop_id",  "stop_string",
                                                "max_tokens", "callback", "context_full"};
  const auto i = static_cast<size_t>(reason);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

double GenerateResult::prefill_tok_s() const {
  return prefill_seconds > 0 ? static_cast<double>(prompt_ids.size()) / prefill_seconds : 0.0;
}

double GenerateResult::decode_tok_s() const {
  return decode_seconds > 0 ? static_cast<double>(decoded_tokens) / decode_seconds : 0.0;
}

struct Generation::State {
  const Session& session;
  const GenerateOptions& options;
  Sampler sampler;
  StopStrings stop_strings;
  std::optional<Tokenizer::StreamDecoder> decoder;
  std::optional<ConstraintMatcher> matcher;
  std::vector<int32_t> history;  // for the repetition penalty
  int32_t eos = -1;
  std::vector<int32_t> generated;
  std::vector<TokenLogprobs> logprobs;
  std::string text;
  bool listening = true;
  bool done = false;
  StopReason reason = StopReason::MaxTokens;

  // The options, once checked: before any member is built from them.
  static const GenerateOptions& checked(const GenerateOptions& o, const Session& s) {
    check_generate_options(o, s.model());
    return o;
  }

  State(const Session& s, const GenerateOptions& o)
      : session(s), options(checked(o, s)), sampler(o.sampling), stop_strings(o.stop_strings) {
    const Model& model = session.model();
    const Tokenizer* tokenizer = model.has_tokenizer() ? &model.tokenizer() : nullptr;
    // The decoder sees everything fed so far, so the first generated piece keeps its leading
    // space exactly when it continues earlier text (not after BOS alone).
    if (tokenizer) {
      decoder.emplace(*tokenizer, /*at_start=*/true);
      for (int32_t id : session.tokens()) decoder->push(id);
      eos = tokenizer->eos_id();
    }
    history = session.tokens();
    if (options.constraint) matcher.emplace(options.constraint);
  }

  // Tokens that may still be generated, the next one included: what max_tokens leaves, and with
  // full attention what the context leaves (the token sampled when it is full is still returned).
  uint32_t budget() const {
    uint64_t left = options.max_tokens - generated.size();
    if (const auto limit = session.position_limit())
      left = std::min<uint64_t>(left, *limit - std::min<uint64_t>(*limit, session.position()) + 1);
    return static_cast<uint32_t>(left);
  }

  int32_t sample(std::span<const float> logits) {
    if (!matcher) return sampler.sample(logits, history, generated.size());
    const int32_t id =
        sampler.sample(logits, history, generated.size(), matcher->allowed(budget()));
    if (!matcher->accept(id))
      throw Error("generate: the constraint refused token " + std::to_string(id) +
                  " that its mask allowed");
    return id;
  }

  // When the budget steered the constraint, the end is max_tokens' doing: the EOS that closed the
  // grammar is dropped and the reason is MaxTokens (brise/constraint.hpp).
  void end_steered() {
    if (reason != StopReason::Eos || !matcher || !matcher->steered()) return;
    generated.pop_back();
    history.pop_back();
    reason = StopReason::MaxTokens;
  }

  void emit(const std::string& piece, const std::function<bool(std::string_view)>& on_text) {
    if (piece.empty()) return;
    text += piece;
    if (listening && on_text) listening = on_text(piece);
  }

  // Why `id` ends generation, if it does; streams its text.
  std::optional<StopReason> stop_after(int32_t id,
                                       const std::function<bool(std::string_view)>& on_text) {
    if (options.stop_at_eos && id == eos) return StopReason::Eos;
    const auto& ids = options.stop_ids;
    if (std::find(ids.begin(), ids.end(), id) != ids.end()) return StopReason::StopId;
    if (decoder) {
      emit(stop_strings.push(decoder->push(id)), on_text);
      if (stop_strings.stopped()) return StopReason::StopString;
      if (!listening) return StopReason::Callback;
    }
    if (generated.size() >= options.max_tokens) return StopReason::MaxTokens;
    if (const auto limit = session.position_limit(); limit && session.position() >= *limit)
      return StopReason::ContextFull;
    return std::nullopt;
  }

  void finish(const std::function<bool(std::string_view)>& on_text) {
    done = true;
    if (decoder && reason != StopReason::StopString) {
      emit(stop_strings.push(decoder->flush()), on_text);
      if (!stop_strings.stopped()) emit(stop_strings.finish(), on_text);
      if (stop_strings.stopped()) reason = StopReason::StopString;
    }
  }
};

Generation::Generation(const Session& session, const GenerateOptions& options)
    : state_(std::make_unique<State>(session, options)) {}
Generation::~Generation() = default;
Generation::Generation(Generation&&) noexcept = default;
Generation& Generation::operator=(Generation&&) noexcept = default;

bool Generation::advance(std::span<const float> logits,
                         const std::function<bool(std::string_view)>& on_text) {
  State& g = *state_;
  if (g.done) throw Error("generate: advance() after generation ended");
  if (g.generated.size() >= g.options.max_tokens) {  // max_tokens 0
    g.finish(on_text);
    return false;
  }
  const int32_t id = g.sample(logits);
  g.generated.push_back(id);
  g.history.push_back(id);
  if (g.options.logprobs) g.logprobs.push_back(token_logprobs(logits, id, *g.options.logprobs));
  if (const auto reason = g.stop_after(id, on_text)) {
    // A stop token is not part of the answer: it has no log-probability entry.
    if (g.options.logprobs && (*reason == StopReason::Eos || *reason == StopReason::StopId))
      g.logprobs.pop_back();
    g.reason = *reason;
    g.end_steered();
    g.finish(on_text);
    return false;
  }
  if (g.matcher && g.matcher->finished()) {
    // Nothing but EOS may follow: it is taken without another forward pass (and, as a stop
    // token, has no log-probability entry).
    g.generated.push_back(g.eos);
    g.history.push_back(g.eos);
    g.reason = StopReason::Eos;
    g.end_steered();
    g.finish(on_text);
    return false;
  }
  return true;
}

int32_t Generation::last_token() const {
  return state_->generated.empty() ? -1 : state_->generated.back();
}
bool Generation::done() const {
  return state_->done;
}
StopReason Generation::stop_reason() const {
  return state_->reason;
}
const std::vector<int32_t>& Generation::generated_ids() const {
  return state_->generated;
}
const std::string& Generation::text() const {
  return state_->text;
}
const std::vector<TokenLogprobs>& Generation::logprobs() const {
  return state_->logprobs;
}

GenerateResult generate(Session& session, std::span<const int32_t> prompt,
                        const GenerateOptions& options,
                        const std::function<bool(std::string_view)>& on_text) {
  check_generate_options(options, session.model());  // before any work
  if (prompt.empty() && session.position() == 0)
    throw Error("generate: the prompt is empty (it needs at least BOS)");

  GenerateResult result;
  result.prompt_ids.assign(prompt.begin(), prompt.end());
  std::span<const float> logits;
  if (prompt.empty()) {
    logits = session.logits();  // continue where the session stands
    if (logits.empty())
      throw Error("generate: the prompt is empty and the session has no logits to continue from");
  } else {
    const auto start = Clock::now();
    logits = session.prefill(prompt);
    result.prefill_seconds = seconds_since(start);
  }

  Generation generation(session, options);
  while (generation.advance(logits, on_text)) {
    const auto start = Clock::now();
    logits = session.decode(generation.last_token());
    result.decode_seconds += seconds_since(start);
    ++result.decoded_tokens;
  }
  result.generated_ids = generation.generated_ids();
  result.text = generation.text();
  result.logprobs = generation.logprobs();
  result.stop_reason = generation.stop_reason();
  return result;
}

}  // namespace brise
