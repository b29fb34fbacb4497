// OpenAI-shaped chat requests (messages and tools) into brise::ChatRequest. Parsed with the
// Python-compatible reader so that tool parameters and arguments keep their exact JSON (key order,
// number text) on their way to the template.
#include <algorithm>
#include <array>
#include <string>
#include <string_view>

#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "engine/generate/python_json.hpp"

namespace brise {
namespace {

using python_json::Value;

// OpenAI chat completion request fields (and brise's sampling extensions) that do not change the
// prompt: a request body may carry them, the template does not use them.
constexpr std::array kRequestFieldsOutsideThePrompt = {"model",
                                                       "temperature",
                                                       "top_p",
                                                       "top_k",
                                                       "min_p",
                                                       "repeat_penalty",
                                                       "n",
                                                       "stream",
                                                       "stream_options",
                                                       "stop",
                                                       "max_tokens",
                                                       "max_completion_tokens",
                                                       "seed",
                                                       "presence_penalty",
                                                       "frequency_penalty",
                                                       "logit_bias",
                                                       "logprobs",
                                                       "top_logprobs",
                                                       "user",
                                                       "tool_choice",
                                                       "parallel_tool_calls",
                                                       "response_format",
                                                       "metadata",
                                                       "modalities",
                                                       "store",
                                                       "service_tier",
                                                       "random_seed",
                                                       "safe_prompt"};

const char* kind_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Null:
      return "null";
    case Value::Kind::Bool:
      return "a boolean";
    case Value::Kind::Int:
    case Value::Kind::Float:
      return "a number";
    case Value::Kind::String:
      return "a string";
    case Value::Kind::Array:
      return "an array";
    case Value::Kind::Object:
      return "an object";
  }
  return "?";
}

[[noreturn]] void bad(const std::string& where, const std::string& problem) {
  throw Error(where + ": " + problem);
}

// A key with a null value is absent, as OpenAI reads it (an assistant message sent back as the
// API returned it has "refusal": null).
void expect_keys(const Value& obj, const std::string& where,
                 std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : obj.members)
    if (!value.is_null() && std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      bad(where + "." + key, "unknown field (Mistral's chat format has no place for it)");
}

const Value& object(const Value& v, const std::string& where) {
  if (!v.is_object()) bad(where, std::string("must be an object, not ") + kind_name(v));
  return v;
}

std::string string_of(const Value& v, const std::string& where) {
  if (!v.is_string()) bad(where, std::string("must be a string, not ") + kind_name(v));
  return v.text;
}

// A member that is absent or null reads as nullptr.
const Value* member(const Value& obj, std::string_view key) {
  const Value* v = obj.find(key);
  return v && !v->is_null() ? v : nullptr;
}

// Content as a string, or as parts: text-only parts are joined by "\n\n" (empty ones skipped)
// into `content`, as mistral-common's normalizer joins them; parts with thinking stay parts.
void read_content(const Value& v, const std::string& where, ChatMessage& m) {
  if (v.is_string()) {
    m.content = v.text;
    return;
  }
  if (!v.is_array())
    bad(where, std::string("must be a string or an array of parts, not ") + kind_name(v));
  std::vector<ContentPart> parts;
  bool thinking = false;
  for (size_t i = 0; i < v.items.size(); ++i) {
    const std::string p = where + "[" + std::to_string(i) + "]";
    const Value& part = object(v.items[i], p);
    const Value* type = part.find("type");
    if (!type) bad(p + ".type", "missing (\"text\" or \"thinking\")");
    const std::string t = string_of(*type, p + ".type");
    if (t == "text") {
      expect_keys(part, p, {"type", "text"});
      const Value* text = part.find("text");
      if (!text) bad(p + ".text", "missing");
      parts.push_back({ContentPart::Kind::Text, string_of(*text, p + ".text"), true});
    } else if (t == "thinking") {
      expect_keys(part, p, {"type", "thinking", "closed"});
      const Value* text = part.find("thinking");
      if (!text) bad(p + ".thinking", "missing");
      bool closed = true;
      if (const Value* c = member(part, "closed")) {
        if (c->kind != Value::Kind::Bool) bad(p + ".closed", "must be a boolean");
        closed = c->boolean;
      }
      parts.push_back({ContentPart::Kind::Thinking, string_of(*text, p + ".thinking"), closed});
      thinking = true;
    } else {
      bad(p + ".type", "'" + t + "' parts are not supported (text and thinking only)");
    }
  }
  if (thinking) {
    m.parts = std::move(parts);
    return;
  }
  for (const ContentPart& part : parts) {
    if (part.text.empty()) continue;
    if (!m.content.empty()) m.content += "\n\n";
    m.content += part.text;
  }
}

ToolCall read_tool_call(const Value& v, const std::string& where) {
  object(v, where);
  expect_keys(v, where, {"id", "type", "function"});
  ToolCall call;
  if (const Value* id = member(v, "id")) {
    call.id = string_of(*id, where + ".id");
    if (*call.id == "null") call.id.reset();  // mistral-common's spelling of "no id"
  }
  if (const Value* type = member(v, "type"))
    if (string_of(*type, where + ".type") != "function")
      bad(where + ".type", "must be \"function\"");
  const Value* f = member(v, "function");
  if (!f) bad(where + ".function", "missing");
  const std::string fw = where + ".function";
  object(*f, fw);
  expect_keys(*f, fw, {"name", "arguments"});
  const Value* name = f->find("name");
  if (!name) bad(fw + ".name", "missing");
  call.name = string_of(*name, fw + ".name");
  // mistral-common's FunctionCall takes arguments as JSON text, an object (dumped) or null ({}).
  const Value* args = member(*f, "arguments");
  if (!args)
    call.arguments = "{}";
  else if (args->is_string())
    call.arguments = args->text;
  else if (args->is_object())
    call.arguments = python_json::dumps(*args);
  else
    bad(fw + ".arguments", std::string("must be JSON text or an object, not ") + kind_name(*args));
  return call;
}

ChatMessage read_message(const Value& v, const std::string& where) {
  object(v, where);
  const Value* role_value = v.find("role");
  if (!role_value) bad(where + ".role", "missing");
  const std::string role = string_of(*role_value, where + ".role");
  ChatMessage m{ChatMessage::Role::User, {}};
  const Value* content = member(v, "content");
  const std::string cw = where + ".content";
  if (role == "system" || role == "developer") {  // OpenAI's newer name of system
    m.role = ChatMessage::Role::System;
    expect_keys(v, where, {"role", "content"});
    if (!content) bad(cw, "a system message needs content");
  } else if (role == "user") {
    expect_keys(v, where, {"role", "content"});
    if (!content) bad(cw, "a user message needs content");
  } else if (role == "assistant") {
    m.role = ChatMessage::Role::Assistant;
    expect_keys(v, where, {"role", "content", "tool_calls", "prefix"});
    if (const Value* calls = member(v, "tool_calls")) {
      if (!calls->is_array()) bad(where + ".tool_calls", "must be an array");
      for (size_t i = 0; i < calls->items.size(); ++i)
        m.tool_calls.push_back(
            read_tool_call(calls->items[i], where + ".tool_calls[" + std::to_string(i) + "]"));
    }
    if (const Value* prefix = member(v, "prefix")) {
      if (prefix->kind != Value::Kind::Bool) bad(where + ".prefix", "must be a boolean");
      m.prefix = prefix->boolean;
    }
  } else if (role == "tool") {
    m.role = ChatMessage::Role::Tool;
    expect_keys(v, where, {"role", "content", "tool_call_id", "name"});
    if (!content) bad(cw, "a tool message needs content");
    if (const Value* id = member(v, "tool_call_id"))
      m.tool_call_id = string_of(*id, where + ".tool_call_id");
    if (const Value* name = member(v, "name")) m.name = string_of(*name, where + ".name");
  } else {
    bad(where + ".role",
        "must be system (or developer), user, assistant or tool, not '" + role + "'");
  }
  if (content) read_content(*content, cw, m);
  if (!m.parts.empty() && m.role != ChatMessage::Role::Assistant &&
      m.role != ChatMessage::Role::System)
    bad(cw, "only assistant and system messages may hold thinking");
  return m;
}

std::vector<ChatTool> read_tools(const Value& v, const std::string& where) {
  if (!v.is_array()) bad(where, std::string("must be an array, not ") + kind_name(v));
  std::vector<ChatTool> tools;
  for (size_t i = 0; i < v.items.size(); ++i) {
    const std::string tw = where + "[" + std::to_string(i) + "]";
    const Value& t = object(v.items[i], tw);
    expect_keys(t, tw, {"type", "function"});
    if (const Value* type = member(t, "type"))
      if (string_of(*type, tw + ".type") != "function") bad(tw + ".type", "must be \"function\"");
    const Value* f = member(t, "function");
    if (!f) bad(tw + ".function", "missing");
    const std::string fw = tw + ".function";
    object(*f, fw);
    expect_keys(*f, fw, {"name", "description", "parameters", "strict"});
    ChatTool tool;
    const Value* name = f->find("name");
    if (!name) bad(fw + ".name", "missing");
    tool.name = string_of(*name, fw + ".name");
    if (const Value* d = member(*f, "description"))
      tool.description = string_of(*d, fw + ".description");
    if (const Value* p = member(*f, "parameters")) {
      if (!p->is_object()) bad(fw + ".parameters", "must be a JSON Schema object");
      tool.parameters = python_json::dumps(*p);
    }
    if (const Value* s = member(*f, "strict"))
      if (s->kind != Value::Kind::Bool) bad(fw + ".strict", "must be a boolean");
    tools.push_back(std::move(tool));
  }
  return tools;
}

}  // namespace

ChatRequest parse_chat_request(std::string_view json_text) {
  const Value body = python_json::parse(json_text, "chat request");
  if (!body.is_object())
    bad("chat request", std::string("must be a JSON object, not ") + kind_name(body));
  ChatRequest request;
  bool has_messages = false;
  for (const auto& [key, value] : body.members) {
    if (key == "messages") {
      if (!value.is_array())
        bad("messages", std::string("must be an array, not ") + kind_name(value));
      for (size_t i = 0; i < value.items.size(); ++i)
        request.messages.push_back(
            read_message(value.items[i], "messages[" + std::to_string(i) + "]"));
      has_messages = true;
    } else if (key == "tools") {
      if (!value.is_null()) request.tools = read_tools(value, "tools");
    } else if (key == "reasoning_effort") {
      bad(key, "not supported by Mistral's chat templates before v15");
    } else if (std::find(kRequestFieldsOutsideThePrompt.begin(),
                         kRequestFieldsOutsideThePrompt.end(),
                         key) == kRequestFieldsOutsideThePrompt.end()) {
      bad(key, "unknown field of a chat request");
    }
  }
  if (!has_messages) bad("messages", "missing");
  return request;
}

std::vector<ChatTool> parse_chat_tools(std::string_view json_text) {
  const Value v = python_json::parse(json_text, "tools");
  if (v.is_object()) {
    expect_keys(v, "tools file", {"tools"});
    const Value* tools = v.find("tools");
    if (!tools) bad("tools", "missing");
    return read_tools(*tools, "tools");
  }
  return read_tools(v, "tools");
}

}  // namespace brise
