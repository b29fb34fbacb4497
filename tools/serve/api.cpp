#include "api.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <span>
#include <utility>

#include "brise/error.hpp"
#include "brise/tokenizer.hpp"

namespace brise::serve {
namespace {

// Objects keep their keys' order: a JSON Schema's properties are generated in the order given.
using json = nlohmann::ordered_json;

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

std::string text(const json& v, const std::string& param) {
  if (!v.is_string()) throw bad(param, "'" + param + "' must be a string, not " + kind(v));
  return v.get<std::string>();
}

const json& object(const json& v, const std::string& param) {
  if (!v.is_object()) throw bad(param, "'" + param + "' must be an object, not " + kind(v));
  return v;
}

// Only these keys in an object (null values count as absent).
void only_keys(const json& obj, const std::string& param,
               std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : obj.items())
    if (!value.is_null() && std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      throw bad(param + "." + key, "'" + param + "." + key + "' is not a field brise serve knows");
}

json parse_json(std::string_view body, size_t max_depth) {
  if (body.empty()) throw ApiError(400, "the request body is empty: a JSON object is expected");
  if (const size_t at = find_invalid_utf8(body); at != std::string_view::npos)
    throw ApiError(400, "the body is not valid UTF-8 (byte " + std::to_string(at) + ")");
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

// The fields of each endpoint that brise serve honours (README, "Serving").
constexpr std::array kCommonFields = {"model",
                                      "max_tokens",
                                      "n",
                                      "temperature",
                                      "top_p",
                                      "top_k",
                                      "min_p",
                                      "repeat_penalty",
                                      "seed",
                                      "stop",
                                      "stream",
                                      "stream_options",
                                      "frequency_penalty",
                                      "presence_penalty",
                                      "logit_bias",
                                      "logprobs",
                                      "user"};
constexpr std::array kChatFields = {"messages",
                                    "tools",
                                    "tool_choice",
                                    "parallel_tool_calls",
                                    "response_format",
                                    "max_completion_tokens",
                                    "top_logprobs",
                                    "modalities",
                                    "store"};
constexpr std::array kCompletionFields = {"prompt", "suffix", "echo", "best_of"};

// OpenAI fields brise serve does not take, and why.
constexpr std::array<std::pair<const char*, const char*>, 11> kRefusedFields = {{
    {"functions", "is deprecated by OpenAI: use 'tools'"},
    {"function_call", "is deprecated by OpenAI: use 'tool_choice'"},
    {"audio", "is not supported: brise serve answers with text"},
    {"prediction", "(predicted outputs) is not supported"},
    {"web_search_options", "is not supported: brise serve has no web search"},
    {"reasoning_effort", "is not supported by Mistral's chat templates"},
    {"metadata", "is not supported: brise serve does not store completions"},
    {"service_tier", "is not supported: brise serve has one tier"},
    {"verbosity", "is not supported"},
    {"prompt_cache_key", "is not supported (brise reuses cached prompts on its own)"},
    {"safety_identifier", "is not supported"},
}};

bool listed(std::span<const char* const> fields, std::string_view key) {
  return std::find_if(fields.begin(), fields.end(), [&](const char* f) { return key == f; }) !=
         fields.end();
}

void check_field_known(Endpoint endpoint, const std::string& key) {
  const bool chat = endpoint == Endpoint::ChatCompletions;
  const std::span<const char* const> own = chat ? std::span<const char* const>(kChatFields)
                                                : std::span<const char* const>(kCompletionFields);
  const std::span<const char* const> other = chat ? std::span<const char* const>(kCompletionFields)
                                                  : std::span<const char* const>(kChatFields);
  if (listed(kCommonFields, key) || listed(own, key)) return;
  for (const auto& [name, why] : kRefusedFields)
    if (key == name) throw bad(key, "'" + key + "' " + why);
  if (listed(other, key))
    throw bad(key, "'" + key + "' is a field of " +
                       (chat ? "/v1/completions" : "/v1/chat/completions") +
                       ", not of this endpoint");
  throw bad(key, "unrecognized request argument '" + key + "'");
}

// A completions prompt: a string, a list of strings, a list of token ids, or a list of lists.
std::vector<PromptInput> prompts_of(const json& v, const ParseLimits& limits) {
  const auto ids_of = [](const json& list, const std::string& param) {
    PromptInput p;
    p.is_ids = true;
    if (list.empty()) throw bad("prompt", "'" + param + "' holds no token ids");
    for (size_t i = 0; i < list.size(); ++i)
      p.ids.push_back(static_cast<int32_t>(integer(list[i], param + "[" + std::to_string(i) + "]",
                                                   0, std::numeric_limits<int32_t>::max())));
    return p;
  };
  if (v.is_string()) return {PromptInput{v.get<std::string>(), {}, false}};
  if (!v.is_array())
    throw bad("prompt", std::string("'prompt' must be a string, a list of strings, a list of "
                                    "token ids or a list of such lists, not ") +
                            kind(v));
  if (v.empty()) throw bad("prompt", "'prompt' must not be an empty list");
  if (v[0].is_number()) return {ids_of(v, "prompt")};
  if (v.size() > limits.max_prompts)
    throw bad("prompt",
              "'prompt' holds more than " + std::to_string(limits.max_prompts) + " prompts");
  std::vector<PromptInput> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = "prompt[" + std::to_string(i) + "]";
    if (v[i].is_string())
      out.push_back({v[i].get<std::string>(), {}, false});
    else if (v[i].is_array())
      out.push_back(ids_of(v[i], p));
    else
      throw bad("prompt", "'" + p + "' must be a string or a list of token ids, not " + kind(v[i]));
  }
  return out;
}

std::vector<std::pair<int32_t, float>> logit_bias_of(const json& v, const ParseLimits& limits) {
  object(v, "logit_bias");
  if (v.size() > limits.max_logit_bias)
    throw bad("logit_bias",
              "'logit_bias' holds more than " + std::to_string(limits.max_logit_bias) + " entries");
  std::vector<std::pair<int32_t, float>> out;
  for (const auto& [key, value] : v.items()) {
    const std::string p = "logit_bias." + key;
    const bool digits =
        !key.empty() && key.size() <= 9 &&
        std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) throw bad("logit_bias", "'logit_bias' keys are token ids, not '" + key + "'");
    out.emplace_back(std::stoi(key), static_cast<float>(number(value, p, -100, 100)));
  }
  return out;
}

void read_tool_choice(const json& v, ApiRequest& r) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "auto")
      r.tool_choice = ToolChoice::Auto;
    else if (s == "none")
      r.tool_choice = ToolChoice::None;
    else if (s == "required")
      r.tool_choice = ToolChoice::Required;
    else
      throw bad("tool_choice",
                "'tool_choice' must be \"none\", \"auto\", \"required\" or "
                "{\"type\": \"function\", \"function\": {\"name\": ...}}, got '" +
                    s + "'");
    return;
  }
  object(v, "tool_choice");
  only_keys(v, "tool_choice", {"type", "function"});
  if (!v.contains("type") || v["type"] != "function")
    throw bad("tool_choice.type", "'tool_choice.type' must be \"function\"");
  if (!v.contains("function"))
    throw bad("tool_choice.function", "'tool_choice.function' is required");
  const json& f = object(v["function"], "tool_choice.function");
  only_keys(f, "tool_choice.function", {"name"});
  if (!f.contains("name"))
    throw bad("tool_choice.function.name", "'tool_choice.function.name' is required");
  r.tool_function = text(f["name"], "tool_choice.function.name");
  r.tool_choice = ToolChoice::Function;
}

void read_response_format(const json& v, ApiRequest& r) {
  object(v, "response_format");
  only_keys(v, "response_format", {"type", "json_schema"});
  if (!v.contains("type")) throw bad("response_format.type", "'response_format.type' is required");
  const std::string type = text(v["type"], "response_format.type");
  if (type == "text") {
    r.response_format = ResponseFormat::Text;
  } else if (type == "json_object") {
    r.response_format = ResponseFormat::JsonObject;
  } else if (type == "json_schema") {
    if (!v.contains("json_schema") || v["json_schema"].is_null())
      throw bad("response_format.json_schema", "'response_format.json_schema' is required");
    const std::string p = "response_format.json_schema";
    const json& s = object(v["json_schema"], p);
    only_keys(s, p, {"name", "schema", "strict", "description"});
    if (!s.contains("name")) throw bad(p + ".name", "'" + p + ".name' is required");
    text(s["name"], p + ".name");
    if (s.contains("description") && !s["description"].is_null())
      text(s["description"], p + ".description");
    if (s.contains("strict") && !s["strict"].is_null()) boolean(s["strict"], p + ".strict");
    // Without a schema OpenAI takes any JSON object.
    r.json_schema = s.contains("schema") && !s["schema"].is_null() ? s["schema"].dump()
                                                                   : "{\"type\": \"object\"}";
    if (!s.contains("schema") || s["schema"].is_null()) {
      r.response_format = ResponseFormat::JsonObject;
    } else {
      if (!s["schema"].is_object() && !s["schema"].is_boolean())
        throw bad(p + ".schema", "'" + p + ".schema' must be a JSON Schema object");
      r.response_format = ResponseFormat::JsonSchema;
    }
  } else {
    throw bad("response_format.type",
              "'response_format.type' must be \"text\", \"json_object\" or \"json_schema\", got '" +
                  type + "'");
  }
}

// What tool_choice and response_format ask for must be possible with the tools given.
void check_tools(const ApiRequest& r) {
  const auto& tools = r.chat.tools;
  if ((r.tool_choice == ToolChoice::Required || r.tool_choice == ToolChoice::Function) &&
      tools.empty())
    throw bad("tool_choice", "'tool_choice' requires a call, but there are no 'tools'");
  if (r.tool_choice == ToolChoice::Function &&
      std::none_of(tools.begin(), tools.end(),
                   [&](const ChatTool& t) { return t.name == r.tool_function; }))
    throw bad("tool_choice.function.name", "'tool_choice' names the function '" + r.tool_function +
                                               "', which is not in 'tools'");
  const bool may_call = !tools.empty() && r.tool_choice != ToolChoice::None;
  if (r.response_format != ResponseFormat::Text && may_call)
    throw bad("response_format",
              "a JSON 'response_format' with 'tools' needs 'tool_choice': \"none\" (an answer is "
              "either tool calls or JSON)");
}

}  // namespace

ApiError::ApiError(int s, std::string message, std::string p, std::string c, std::string t)
    : std::runtime_error(std::move(message)),
      status(s),
      type(t.empty() ? default_type(s) : std::move(t)),
      param(std::move(p)),
      code(std::move(c)) {}

nlohmann::json error_body(const ApiError& e) {
  nlohmann::json err = {
      {"message", e.what()}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
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

ApiError chat_error(const Error& e, const std::string& fallback_param) {
  const std::string what = e.what();
  const size_t colon = what.find(": ");
  const std::string place = colon == std::string::npos ? "" : what.substr(0, colon);
  const bool is_place = !place.empty() && place.find(' ') == std::string::npos;
  return ApiError(400, what, is_place ? place : fallback_param);
}

std::string_view finish_reason_name(StopReason reason) {
  return reason == StopReason::MaxTokens || reason == StopReason::ContextFull ? "length" : "stop";
}

ApiRequest parse_request(Endpoint endpoint, std::string_view body, const ParseLimits& limits) {
  const json j = parse_json(body, limits.max_depth);
  if (!j.is_object())
    throw ApiError(400, std::string("the body must be a JSON object, not ") + kind(j));
  const bool chat = endpoint == Endpoint::ChatCompletions;
  // OpenAI reads null as absent.
  for (const auto& [key, value] : j.items())
    if (!value.is_null()) check_field_known(endpoint, key);
  ApiRequest r;
  r.endpoint = endpoint;
  r.sampling.temperature = 1.0f;  // OpenAI's defaults: temperature 1, no other filter
  const auto field = [&](const char* name) -> const json* {
    const auto it = j.find(name);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  };

  if (const json* v = field("model")) r.model = text(*v, "model");
  if (const json* v = field("user")) text(*v, "user");  // for OpenAI's abuse monitoring: no effect
  if (chat) {
    const json* m = field("messages");
    if (!m) throw bad("messages", "'messages' is required");
    if (!m->is_array())
      throw bad("messages", std::string("'messages' must be an array, not ") + kind(*m));
    if (m->empty()) throw bad("messages", "'messages' must not be empty");
    if (m->size() > limits.max_messages)
      throw bad("messages",
                "'messages' has more than " + std::to_string(limits.max_messages) + " entries");
    try {
      r.chat = parse_chat_request(body);  // messages and tools, their JSON text as sent
    } catch (const Error& e) {
      throw chat_error(e, "messages");
    }
    if (const json* v = field("tool_choice")) read_tool_choice(*v, r);
    if (const json* v = field("parallel_tool_calls"))
      r.parallel_tool_calls = boolean(*v, "parallel_tool_calls");
    if (const json* v = field("response_format")) read_response_format(*v, r);
    if (const json* v = field("modalities")) {
      if (!v->is_array() || v->size() != 1 || (*v)[0] != "text")
        throw bad("modalities", "'modalities' must be [\"text\"]: brise serve answers with text");
    }
    if (const json* v = field("store"); v && boolean(*v, "store"))
      throw bad("store", "'store' must be false: brise serve does not store completions");
  } else {
    const json* p = field("prompt");
    if (!p) throw bad("prompt", "'prompt' is required");
    r.prompts = prompts_of(*p, limits);
    if (const json* v = field("suffix"); v && !text(*v, "suffix").empty())
      throw bad("suffix", "'suffix' (insertion after the completion) is not supported");
    if (const json* v = field("echo")) r.echo = boolean(*v, "echo");
  }

  if (const json* v = field("max_completion_tokens"))
    r.max_tokens =
        static_cast<uint32_t>(integer(*v, "max_completion_tokens", 1, limits.max_tokens_limit));
  if (const json* v = field("max_tokens"))
    r.max_tokens = static_cast<uint32_t>(integer(*v, "max_tokens", 1, limits.max_tokens_limit));
  if (const json* v = field("n")) r.n = static_cast<uint32_t>(integer(*v, "n", 1, limits.max_n));
  if (const json* v = field("best_of"); v && integer(*v, "best_of", 1, limits.max_n) != r.n)
    throw bad("best_of", "'best_of' must equal 'n': brise serve returns every choice it generates");
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
  if (const json* v = field("frequency_penalty"))
    r.sampling.frequency_penalty = static_cast<float>(number(*v, "frequency_penalty", -2, 2));
  if (const json* v = field("presence_penalty"))
    r.sampling.presence_penalty = static_cast<float>(number(*v, "presence_penalty", -2, 2));
  if (const json* v = field("logit_bias")) r.sampling.logit_bias = logit_bias_of(*v, limits);
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
    object(*v, "stream_options");
    only_keys(*v, "stream_options", {"include_usage"});
    if (!r.stream)
      throw bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
    if (v->contains("include_usage") && !(*v)["include_usage"].is_null())
      r.include_usage = boolean((*v)["include_usage"], "stream_options.include_usage");
  }
  // logprobs: chat's is a boolean with top_logprobs beside it, completions' a count.
  if (chat) {
    const json* top = field("top_logprobs");
    const json* lp = field("logprobs");
    if (lp && boolean(*lp, "logprobs"))
      r.logprobs =
          top ? static_cast<uint32_t>(integer(*top, "top_logprobs", 0, limits.max_top_logprobs))
              : 0u;
    else if (top)
      throw bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  } else if (const json* lp = field("logprobs")) {
    r.logprobs = static_cast<uint32_t>(integer(*lp, "logprobs", 0, limits.max_top_logprobs));
    if (r.echo)
      throw bad("echo", "'echo' with 'logprobs' (the prompt's log-probabilities) is not supported");
  }
  check_tools(r);
  return r;
}

}  // namespace brise::serve
