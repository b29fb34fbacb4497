// OpenAI's API as brise serve speaks it: request bodies parsed and validated into ApiRequest,
// errors as OpenAI's error object, and the response and stream-chunk objects. No I/O: the HTTP
// layer (server.cpp) and the libFuzzer target (tests/fuzz) call these on raw bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "brise/chat.hpp"
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

struct ApiRequest {
  Endpoint endpoint = Endpoint::ChatCompletions;
  std::string model;                   // as sent ("" when absent)
  std::vector<ChatMessage> messages;   // chat completions
  std::string prompt;                  // completions
  std::optional<uint32_t> max_tokens;  // nullopt: the endpoint's default
  SamplingParams sampling;
  bool seeded = false;  // `seed` was given (otherwise the server draws one)
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

struct ParseLimits {
  size_t max_depth = 32;  // JSON nesting
  size_t max_messages = 4096;
  size_t max_stop = 4;  // as OpenAI
  uint32_t max_tokens_limit = 1u << 20;
};

// Parses a request body (any bytes). Throws ApiError (400) naming the field on malformed JSON,
// invalid UTF-8, nesting deeper than the limit, wrong types, out-of-range values, n != 1 and the
// like; never anything else but std::bad_alloc.
ApiRequest parse_request(Endpoint endpoint, std::string_view body, const ParseLimits& limits = {});

// OpenAI's finish_reason for a brise stop reason: "length" for max_tokens and a full context,
// else "stop".
std::string_view finish_reason_name(StopReason reason);

}  // namespace brise::serve
