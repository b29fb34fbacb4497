// OpenAI's API as brise serve speaks it: request bodies parsed and validated into ApiRequest, and
// errors as OpenAI's error object. No I/O: the HTTP layer (server.cpp) and the libFuzzer target
// (tests/fuzz) call these on raw bytes. Every field of a request is either honoured or refused
// with a 400 that names it (README, "Serving").
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "brise/sampler.hpp"
#include "brise/scheduler.hpp"

namespace brise::serve {

// An error answered with OpenAI's error object and an HTTP status.
struct ApiError : std::runtime_error {
  int status;
  std::string type;   // invalid_request_error, authentication_error, ...
  std::string param;  // the offending field, or empty
  std::string code;   // e.g. context_length_exceeded, or empty
  ApiError(int status, std::string message, std::string param = {}, std::string code = {},
           std::string type = {});
};

// {"error": {"message", "type", "param", "code"}} (param/code null when empty).
nlohmann::json error_body(const ApiError& e);

// The answer to a job the scheduler refused or ended (brise/scheduler.hpp): 429 queue_full, 503
// while shutting down, 400 for an invalid request, 400 context_length_exceeded naming
// `prompt_param` (the field that held the prompt), 499 when cancelled, 500 for the rest.
ApiError job_api_error(JobError error, const std::string& message,
                       const std::string& prompt_param = {});

enum class Endpoint { ChatCompletions, Completions };

// One prompt of a completions request: text (BOS is added when it is encoded) or token ids, used
// as they are.
struct PromptInput {
  std::string text;
  std::vector<int32_t> ids;
  bool is_ids = false;
};

// tool_choice: "auto" (the default with tools: the model may call), "none" (it may not),
// "required" (at least one call), or {"type": "function", "function": {"name"}} (that one).
enum class ToolChoice { Auto, None, Required, Function };
// response_format: {"type": "text"}, {"type": "json_object"}, {"type": "json_schema", ...}.
enum class ResponseFormat { Text, JsonObject, JsonSchema };

struct ApiRequest {
  Endpoint endpoint = Endpoint::ChatCompletions;
  std::string model;  // as sent ("" when absent)
  // Chat completions: messages and tools as brise::parse_chat_request reads them (their JSON
  // kept as sent, for the template).
  ChatRequest chat;
  ToolChoice tool_choice = ToolChoice::Auto;
  std::string tool_function;        // ToolChoice::Function: its name
  bool parallel_tool_calls = true;  // false: at most one call
  ResponseFormat response_format = ResponseFormat::Text;
  std::string json_schema;  // ResponseFormat::JsonSchema: the schema, as JSON text
  // Completions: one or more prompts (one choice each, times n).
  std::vector<PromptInput> prompts;
  bool echo = false;                   // completions: the prompt's text before each choice's
  std::optional<uint32_t> max_tokens;  // nullopt: the endpoint's default
  SamplingParams sampling;
  bool seeded = false;  // `seed` was given (otherwise the server draws one)
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  uint32_t n = 1;              // choices per prompt
  // Log-probabilities of the generated tokens, with this many alternatives (chat: `logprobs`
  // true and `top_logprobs`; completions: `logprobs` N); nullopt: none.
  std::optional<uint32_t> logprobs;
};

struct ParseLimits {
  size_t max_depth = 32;  // JSON nesting
  size_t max_messages = 4096;
  size_t max_stop = 4;  // as OpenAI
  uint32_t max_tokens_limit = 1u << 20;
  uint32_t max_n = 128;            // as OpenAI
  size_t max_prompts = 128;        // completions: prompts in a list
  size_t max_logit_bias = 1024;    // entries
  uint32_t max_top_logprobs = 20;  // as OpenAI (chat; completions: 5 there, 20 here)
};

// Parses a request body (any bytes). Throws ApiError (400) naming the field on malformed JSON,
// invalid UTF-8, nesting deeper than the limit, wrong types, out-of-range values, a field brise
// serve does not know or does not support, a conversation the chat template refuses; never
// anything else but std::bad_alloc.
ApiRequest parse_request(Endpoint endpoint, std::string_view body, const ParseLimits& limits = {});

// A 400 for a brise::Error of the chat functions, which name their place first
// ("messages[2].content: ...", "tools: ..."): that place is the param, else `fallback_param`.
ApiError chat_error(const Error& e, const std::string& fallback_param);

// OpenAI's finish_reason for a brise stop reason: "length" for max_tokens and a full context,
// else "stop".
std::string_view finish_reason_name(StopReason reason);

}  // namespace brise::serve
