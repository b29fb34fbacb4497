#include "api.hpp"

#include <cmath>
#include <limits>

#include "brise/tokenizer.hpp"

namespace brise::serve {
namespace {

using nlohmann::json;

std::string default_type(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 404:
      return "not_found_error";
    case 429:
      return "rate_limit_error";
    case 500:
    case 503:
      return "server_error";
    default:
      return "invalid_request_error";
  }
}

ApiError bad(const std::string& param, const std::string& message) {
  return ApiError(400, message, param);
}

const char* kind(const json& v) {
  return v.type_name();
}

double number(const json& v, const std::string& param, double lo, double hi) {
  if (!v.is_number()) throw bad(param, "'" + param + "' must be a number, not " + kind(v));
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    throw bad(param, "'" + param + "' must be between " + json(lo).dump() + " and " +
                         json(hi).dump() + ", got " + v.dump());
  return x;
}

int64_t integer(const json& v, const std::string& param, int64_t lo, int64_t hi) {
  if (!v.is_number_integer())
    throw bad(param, "'" + param + "' must be an integer, not " +
                         (v.is_number() ? v.dump() : std::string(kind(v))));
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
    throw bad(param, "'" + param + "' must be at most " + std::to_string(hi) + ", got " + v.dump());
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    throw bad(param, "'" + param + "' must be between " + std::to_string(lo) + " and " +
                         std::to_string(hi) + ", got " + v.dump());
  return x;
}

bool boolean(const json& v, const std::string& param) {
  if (!v.is_boolean()) throw bad(param, "'" + param + "' must be a boolean, not " + kind(v));
  return v.get<bool>();
}

// Text fields must be valid UTF-8 (the JSON parser passes any bytes through).
std::string valid_text(std::string s, const std::string& param) {
  const size_t at = find_invalid_utf8(s);
  if (at != std::string::npos)
    throw bad(param, "'" + param + "' is not valid UTF-8 (byte " + std::to_string(at) + ")");
  return s;
}

std::string text(const json& v, const std::string& param) {
  if (!v.is_string()) throw bad(param, "'" + param + "' must be a string, not " + kind(v));
  return valid_text(v.get<std::string>(), param);
}

// A message's content: a string, or an array of {"type": "text", "text": ...} parts.
std::string content_of(const json& v, const std::string& param) {
  if (v.is_string()) return valid_text(v.get<std::string>(), param);
  if (v.is_null()) return {};
  if (!v.is_array())
    throw bad(param, "'" + param + "' must be a string or an array of text parts, not " + kind(v));
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = param + "[" + std::to_string(i) + "]";
    const json& part = v[i];
    if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
        !part.contains("text"))
      throw bad(p, "'" + p + "' must be a text part {\"type\": \"text\", \"text\": ...}");
    out += text(part["text"], p + ".text");
  }
  return out;
}

ChatMessage::Role role_of(const json& v, const std::string& param) {
  const std::string r = text(v, param);
  if (r == "system" || r == "developer") return ChatMessage::Role::System;
  if (r == "user") return ChatMessage::Role::User;
  if (r == "assistant") return ChatMessage::Role::Assistant;
  throw bad(param, "'" + param + "' must be system, developer, user or assistant, got '" + r + "'");
}

json parse_json(std::string_view body, size_t max_depth) {
  if (body.empty()) throw ApiError(400, "the request body is empty: a JSON object is expected");
  try {
    // The callback sees every nesting level as it opens: refuse deep nesting before building it.
    return json::parse(body.begin(), body.end(),
                       [max_depth](int depth, json::parse_event_t event, json&) {
                         if ((event == json::parse_event_t::object_start ||
                              event == json::parse_event_t::array_start) &&
                             static_cast<size_t>(depth) >= max_depth)
                           throw ApiError(400, "the JSON body is nested deeper than " +
                                                   std::to_string(max_depth) + " levels");
                         return true;
                       });
  } catch (const json::exception& e) {
    throw ApiError(400, std::string("the body is not valid JSON: ") + e.what());
  }
}

}  // namespace

ApiError::ApiError(int s, std::string message, std::string p, std::string c, std::string t)
    : std::runtime_error(std::move(message)),
      status(s),
      type(t.empty() ? default_type(s) : std::move(t)),
      param(std::move(p)),
      code(std::move(c)) {}

nlohmann::json error_body(const ApiError& e) {
  json err = {{"message", e.what()}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return {{"error", err}};
}

ApiError job_api_error(JobError error, const std::string& message,
                       const std::string& prompt_param) {
  switch (error) {
    case JobError::QueueFull:
      return ApiError(429, "too many requests are waiting: try again shortly", {}, "queue_full");
    case JobError::ShuttingDown:
      return ApiError(503, "the server is shutting down");
    case JobError::InvalidRequest:
      return ApiError(400, message);
    case JobError::ContextExceeded:
      return ApiError(400, message, prompt_param, "context_length_exceeded");
    case JobError::Cancelled:
      return ApiError(499, message);
    case JobError::Internal:
      break;
  }
  return ApiError(500, message);
}

std::string_view finish_reason_name(StopReason reason) {
  return reason == StopReason::MaxTokens || reason == StopReason::ContextFull ? "length" : "stop";
}

ApiRequest parse_request(Endpoint endpoint, std::string_view body, const ParseLimits& limits) {
  const json j = parse_json(body, limits.max_depth);
  if (!j.is_object())
    throw ApiError(400, std::string("the body must be a JSON object, not ") + kind(j));
  ApiRequest r;
  r.endpoint = endpoint;
  r.sampling.temperature = 1.0f;  // OpenAI's defaults: temperature 1, no other filter
  const auto field = [&](const char* name) -> const json* {
    const auto it = j.find(name);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  };

  if (const json* v = field("model")) r.model = text(*v, "model");
  if (endpoint == Endpoint::ChatCompletions) {
    const json* m = field("messages");
    if (!m) throw bad("messages", "'messages' is required");
    if (!m->is_array())
      throw bad("messages", std::string("'messages' must be an array, not ") + kind(*m));
    if (m->empty()) throw bad("messages", "'messages' must not be empty");
    if (m->size() > limits.max_messages)
      throw bad("messages",
                "'messages' has more than " + std::to_string(limits.max_messages) + " entries");
    for (size_t i = 0; i < m->size(); ++i) {
      const std::string p = "messages[" + std::to_string(i) + "]";
      const json& msg = (*m)[i];
      if (!msg.is_object()) throw bad(p, "'" + p + "' must be an object, not " + kind(msg));
      if (!msg.contains("role")) throw bad(p + ".role", "'" + p + ".role' is required");
      const auto role = role_of(msg["role"], p + ".role");
      const std::string content =
          msg.contains("content") ? content_of(msg["content"], p + ".content") : "";
      r.messages.push_back({role, content});
    }
  } else {
    const json* p = field("prompt");
    if (!p) throw bad("prompt", "'prompt' is required");
    if (p->is_array()) {  // OpenAI also takes a list of prompts: one is what n = 1 serves
      if (p->size() != 1 || !(*p)[0].is_string())
        throw bad("prompt", "'prompt' must be a string (or an array of exactly one string)");
      r.prompt = valid_text((*p)[0].get<std::string>(), "prompt");
    } else {
      r.prompt = text(*p, "prompt");
    }
  }

  if (const json* v = field("max_completion_tokens"))
    r.max_tokens =
        static_cast<uint32_t>(integer(*v, "max_completion_tokens", 1, limits.max_tokens_limit));
  if (const json* v = field("max_tokens"))
    r.max_tokens = static_cast<uint32_t>(integer(*v, "max_tokens", 1, limits.max_tokens_limit));
  if (const json* v = field("n"); v && integer(*v, "n", 1, 128) != 1)
    throw bad("n", "'n' must be 1: brise serve returns one choice per request");
  if (const json* v = field("temperature"))
    r.sampling.temperature = static_cast<float>(number(*v, "temperature", 0, 2));
  if (const json* v = field("top_p")) {
    r.sampling.top_p = static_cast<float>(number(*v, "top_p", 0, 1));
    if (r.sampling.top_p <= 0) throw bad("top_p", "'top_p' must be greater than 0");
  }
  if (const json* v = field("top_k"))
    r.sampling.top_k = static_cast<int32_t>(integer(*v, "top_k", 0, 1 << 20));
  if (const json* v = field("min_p"))
    r.sampling.min_p = static_cast<float>(number(*v, "min_p", 0, 1));
  if (const json* v = field("repeat_penalty")) {
    r.sampling.repeat_penalty = static_cast<float>(number(*v, "repeat_penalty", 0, 100));
    if (r.sampling.repeat_penalty <= 0)
      throw bad("repeat_penalty", "'repeat_penalty' must be greater than 0");
  }
  if (const json* v = field("seed")) {
    r.sampling.seed = static_cast<uint64_t>(integer(*v, "seed", std::numeric_limits<int64_t>::min(),
                                                    std::numeric_limits<int64_t>::max()));
    r.seeded = true;
  }
  if (const json* v = field("stop")) {
    if (v->is_string()) {
      r.stop.push_back(text(*v, "stop"));
    } else if (v->is_array()) {
      if (v->size() > limits.max_stop)
        throw bad("stop", "'stop' holds at most " + std::to_string(limits.max_stop) + " strings");
      for (size_t i = 0; i < v->size(); ++i)
        r.stop.push_back(text((*v)[i], "stop[" + std::to_string(i) + "]"));
    } else {
      throw bad("stop",
                std::string("'stop' must be a string or an array of strings, not ") + kind(*v));
    }
    for (const auto& s : r.stop)
      if (s.empty()) throw bad("stop", "'stop' strings must not be empty");
  }
  if (const json* v = field("stream")) r.stream = boolean(*v, "stream");
  if (const json* v = field("stream_options")) {
    if (!v->is_object())
      throw bad("stream_options",
                std::string("'stream_options' must be an object, not ") + kind(*v));
    if (!r.stream)
      throw bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
    if (v->contains("include_usage") && !(*v)["include_usage"].is_null())
      r.include_usage = boolean((*v)["include_usage"], "stream_options.include_usage");
  }
  // logprobs: a boolean for chat, a count for completions; brise serve returns none.
  if (const json* v = field("logprobs");
      v && ((v->is_boolean() && v->get<bool>()) || (v->is_number() && *v != 0) ||
            !(v->is_boolean() || v->is_number())))
    throw bad("logprobs", "'logprobs' is not supported by brise serve");
  return r;
}

}  // namespace brise::serve
