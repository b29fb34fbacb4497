// A model's answer taken apart into thinking, content and tool calls, in the form each template
// writes tool calls (chat_render.cpp writes them the same way). Malformed call text is not an
// error: the answer then comes back whole, as content.
#include <algorithm>
#include <optional>
#include <string>

#include "brise/chat.hpp"
#include "engine/generate/chat_rules.hpp"
#include "engine/generate/python_json.hpp"

namespace brise {
namespace {

using Segments = std::span<const ChatSegment>;
using python_json::Value;

bool is_control(const ChatSegment& s, std::string_view name) {
  return s.kind == ChatSegment::Kind::Control && s.text == name;
}

std::string trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// The inverse of mistral-common's _parse_json_content: a JSON string stands for the text itself.
std::string arguments_text(const Value& v, std::string raw) {
  return v.is_string() ? v.text : raw;
}

// v2/v3/v7: [TOOL_CALLS] [{"name": ..., "arguments": {...}, "id": ...}, ...] (or one object).
std::optional<std::vector<ToolCall>> json_list_calls(Segments rest) {
  std::string text;
  for (const ChatSegment& s : rest) {
    if (s.kind != ChatSegment::Kind::Text) return std::nullopt;
    text += s.text;
  }
  const auto value = python_json::try_parse(trim(text));
  if (!value || (!value->is_array() && !value->is_object())) return std::nullopt;
  std::vector<Value> items = value->is_array() ? value->items : std::vector<Value>{*value};
  std::vector<ToolCall> calls;
  for (const Value& item : items) {
    if (!item.is_object()) return std::nullopt;
    const Value* name = item.find("name");
    if (!name || !name->is_string() || !chat_rules::is_function_name(name->text))
      return std::nullopt;
    ToolCall call;
    call.name = name->text;
    if (const Value* args = item.find("arguments"))
      call.arguments = arguments_text(*args, python_json::dumps(*args));
    if (const Value* id = item.find("id")) {
      if (!id->is_string()) return std::nullopt;
      call.id = id->text;
    }
    calls.push_back(std::move(call));
  }
  if (calls.empty()) return std::nullopt;
  return calls;
}

// v11: [TOOL_CALLS]name[CALL_ID]id[ARGS]{json} ...; v13: [TOOL_CALLS]name[ARGS]{json} ...
// (`rest` starts at the first [TOOL_CALLS]).
std::optional<std::vector<ToolCall>> tagged_calls(Segments rest, bool with_ids) {
  std::vector<ToolCall> calls;
  size_t i = 0;
  const auto text_at = [&](size_t k) -> std::optional<std::string> {
    if (k < rest.size() && rest[k].kind == ChatSegment::Kind::Text) return rest[k].text;
    return std::nullopt;
  };
  while (i < rest.size()) {
    if (!is_control(rest[i], "[TOOL_CALLS]")) return std::nullopt;
    ToolCall call;
    const auto name = text_at(i + 1);
    if (!name) return std::nullopt;
    call.name = trim(*name);
    if (!chat_rules::is_function_name(call.name)) return std::nullopt;
    i += 2;
    if (with_ids && i < rest.size() && is_control(rest[i], "[CALL_ID]")) {
      const auto id = text_at(i + 1);
      if (!id || trim(*id).empty()) return std::nullopt;
      call.id = trim(*id);
      i += 2;
    }
    if (i >= rest.size() || !is_control(rest[i], "[ARGS]")) return std::nullopt;
    const std::string args = trim(text_at(i + 1).value_or(""));
    const auto value = python_json::try_parse(args);
    if (!value) return std::nullopt;
    call.arguments = arguments_text(*value, args);
    i += text_at(i + 1) ? 2 : 1;
    calls.push_back(std::move(call));
  }
  return calls;
}

}  // namespace

AssistantReply parse_assistant_reply(ChatTemplate tmpl, std::span<const ChatSegment> output) {
  const int v = chat_rules::version(tmpl);
  if (!output.empty() && is_control(output.back(), "</s>"))
    output = output.first(output.size() - 1);
  AssistantReply reply;
  // v13 answers may open with their thinking.
  if (v >= 13 && !output.empty() && is_control(output.front(), "[THINK]")) {
    size_t end = 1;
    while (end < output.size() && !is_control(output[end], "[/THINK]")) ++end;
    reply.thinking = chat_segments_text(output.subspan(1, end - 1));
    output = output.subspan(std::min(end + 1, output.size()));
  }
  size_t calls_at = 0;
  while (calls_at < output.size() && !is_control(output[calls_at], "[TOOL_CALLS]")) ++calls_at;
  if (calls_at < output.size()) {
    const Segments rest = output.subspan(calls_at);
    const auto calls = v <= 7 ? json_list_calls(rest.subspan(1)) : tagged_calls(rest, v == 11);
    if (calls) {
      reply.content = chat_segments_text(output.first(calls_at));
      reply.tool_calls = *calls;
      return reply;
    }
  }
  reply.content = chat_segments_text(output);
  return reply;
}

AssistantReply parse_assistant_reply(const Tokenizer& tokenizer, ChatTemplate tmpl,
                                     std::span<const int32_t> ids) {
  std::vector<ChatSegment> segments;
  std::vector<int32_t> run;
  const auto flush = [&] {
    if (!run.empty()) segments.push_back({ChatSegment::Kind::Text, tokenizer.decode(run)});
    run.clear();
  };
  for (const int32_t id : ids) {
    if (tokenizer.kind(id) != TokenKind::Control) {
      run.push_back(id);
      continue;
    }
    flush();
    const std::string name = id == tokenizer.bos_id()   ? "<s>"
                             : id == tokenizer.eos_id() ? "</s>"
                                                        : std::string(tokenizer.piece(id));
    segments.push_back({ChatSegment::Kind::Control, name});
  }
  flush();
  return parse_assistant_reply(tmpl, segments);
}

}  // namespace brise
