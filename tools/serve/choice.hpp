// One choice of a response as its job's events arrive: the text shown so far, the tool calls of a
// chat answer, log-probabilities, and the stream chunks (choice objects) each event makes. A whole
// (non-streamed) response is built from the same state once the job is done, so the two never
// differ.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "brise/chat.hpp"
#include "brise/scheduler.hpp"
#include "brise/tokenizer.hpp"
#include "responses.hpp"

namespace brise::serve {

struct ChoiceSetup {
  bool chat = true;
  size_t index = 0;                  // OpenAI's choice index
  std::string echo;                  // completions with echo: the prompt's text, shown first
  std::optional<uint32_t> logprobs;  // as requested
  // Chat with tools the model may call: from the first [TOOL_CALLS] on, the answer is taken
  // apart by parse_assistant_reply (template `tmpl`) instead of being shown as text.
  int32_t tool_calls_id = -1;
  ChatTemplate tmpl = ChatTemplate::MistralV1;
  // Constrained with room for the grammar's shortest output: an end at max_tokens is the budget
  // steering the answer to a complete end (brise/constraint.hpp), not a cut, so the finish_reason
  // is "stop" or "tool_calls" rather than "length" (which OpenAI's SDKs take as a truncation).
  bool length_is_complete = false;
  // Constrained: tool calls that parse are whole (the grammar closed them within the budget),
  // so their finish_reason is "tool_calls" even at max_tokens.
  bool calls_are_whole = false;
};

class ChoiceState {
 public:
  ChoiceState(const Tokenizer& tokenizer, ChoiceSetup setup);

  // The first chunk of a stream: chat's role delta, completions' echoed prompt (or none).
  std::optional<json> opening() const;
  // A Text event: appends the chunks it makes (none while a tool call is being written).
  void on_text(const JobEvent& e, std::vector<json>& chunks);
  // The Done event: appends the last chunks (the tool calls, the finish reason).
  void on_done(const JobEvent& e, std::vector<json>& chunks);
  bool done() const { return done_; }

  // The choice object of a whole response (after on_done).
  json whole() const;
  const JobUsage& usage() const { return usage_; }

 private:
  json chunk_choice(json delta_or_text, const json& logprobs, const char* finish) const;
  json logprobs_json(std::span<const TokenLogprobs> tokens);

  const Tokenizer& tokenizer_;
  ChoiceSetup setup_;
  std::string content_;                  // the text shown (chat: content; completions: text)
  std::vector<int32_t> tail_;            // ids from the first [TOOL_CALLS] on
  std::vector<TokenLogprobs> logprobs_;  // every token's
  std::vector<TokenLogprobs> held_;      // of tool-call tokens, not streamed yet
  size_t offset_ = 0;                    // completions: the text offset of the next token
  json whole_logprobs_;                  // completions: the legacy object, built as tokens come
  std::vector<ToolCall> calls_;
  std::string finish_;
  JobUsage usage_;
  bool done_ = false;
};

}  // namespace brise::serve
