// The JSON of brise serve's answers, in OpenAI's shapes: completion and chunk objects, usage,
// log-probabilities (chat's and the legacy completions' form) and tool calls.
#pragma once

#include <cstdint>
#include <ctime>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "brise/chat.hpp"
#include "brise/generate.hpp"
#include "brise/tokenizer.hpp"

namespace brise::serve {

using nlohmann::json;

// Token counts of a response: each prompt once, every choice's tokens.
struct Usage {
  uint64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
};
json usage_json(const Usage& u);

// One request's response objects.
struct Shapes {
  bool chat = true;
  std::string id, model;
  int64_t created = static_cast<int64_t>(std::time(nullptr));
  bool usage_field = false;  // streams with include_usage: every chunk has "usage": null

  json base(const char* object) const;
  // A whole response: the choices, then usage.
  json whole(json choices, const Usage& u) const;
  // A stream chunk holding one choice object.
  json chunk(json choice) const;
  // The last chunk of a stream with include_usage: no choices, the usage.
  json usage_chunk(const Usage& u) const;
};

// The bytes a token adds to a text (a SentencePiece piece's U+2581 as a space, a byte piece as
// its byte, a Tekken rank's bytes; nothing for a control token).
std::string token_text(const Tokenizer& tokenizer, int32_t id);

// Chat's logprobs object: {"content": [{"token", "logprob", "bytes", "top_logprobs"}],
// "refusal": null}.
json chat_logprobs(const Tokenizer& tokenizer, std::span<const TokenLogprobs> tokens);
// The legacy completions' logprobs object: {"tokens", "token_logprobs", "top_logprobs",
// "text_offset"}, offsets counted in bytes from `offset` (advanced past these tokens).
json completion_logprobs(const Tokenizer& tokenizer, std::span<const TokenLogprobs> tokens,
                         size_t& offset);

// OpenAI's tool_calls array: [{"id", "type": "function", "function": {"name", "arguments"}}]
// (with "index" for stream deltas).
json tool_call_json(const ToolCall& call, const std::string& id);

// A call id in the form Mistral's templates need: 9 letters or digits.
std::string random_call_id();
// A fresh id for every call. Not the model's own (v11 writes one): a weak model may write one
// that is malformed or that an earlier call of the conversation has, which the next turn's
// template would refuse; the client sends back whatever id it got, and the model sees that one.
void assign_call_ids(std::vector<ToolCall>& calls);

}  // namespace brise::serve
