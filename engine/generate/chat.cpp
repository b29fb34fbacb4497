// Mistral's chat templates: choosing one, and the path from a request to token ids (validate,
// normalize, render: chat_validate.cpp, chat_normalize.cpp, chat_render.cpp), as mistral-common's
// MistralTokenizer.encode_chat_completion takes it.
#include "brise/chat.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

#include "brise/error.hpp"
#include "engine/generate/chat_rules.hpp"

namespace brise {
namespace {

struct TemplateName {
  ChatTemplate tmpl;
  std::string_view name;
  int version;
};
constexpr std::array<TemplateName, 6> kTemplates = {{{ChatTemplate::MistralV1, "v1", 1},
                                                     {ChatTemplate::MistralV2, "v2", 2},
                                                     {ChatTemplate::MistralV3, "v3", 3},
                                                     {ChatTemplate::MistralV7, "v7", 7},
                                                     {ChatTemplate::MistralV11, "v11", 11},
                                                     {ChatTemplate::MistralV13, "v13", 13}}};

const TemplateName& entry(ChatTemplate tmpl) {
  for (const auto& t : kTemplates)
    if (t.tmpl == tmpl) return t;
  throw Error("chat: unknown template");
}

bool has_controls(const Tokenizer& tokenizer, std::initializer_list<std::string_view> names) {
  return std::all_of(names.begin(), names.end(),
                     [&](std::string_view n) { return tokenizer.find_special(n) >= 0; });
}

}  // namespace

namespace chat_rules {

int version(ChatTemplate tmpl) {
  return entry(tmpl).version;
}

const char* role_name(ChatMessage::Role role) {
  switch (role) {
    case ChatMessage::Role::System:
      return "system";
    case ChatMessage::Role::User:
      return "user";
    case ChatMessage::Role::Assistant:
      return "assistant";
    case ChatMessage::Role::Tool:
      return "tool";
  }
  return "?";
}

std::string message_place(size_t index) {
  return "messages[" + std::to_string(index) + "]";
}

bool is_function_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

}  // namespace chat_rules

std::string_view chat_template_name(ChatTemplate tmpl) {
  return entry(tmpl).name;
}

ChatTemplate chat_template_from_name(std::string_view name) {
  for (const auto& t : kTemplates)
    if (t.name == name) return t.tmpl;
  throw Error("unknown chat template '" + std::string(name) +
              "' (the templates are v1, v2, v3, v7, v11 and v13)");
}

ChatTemplate detect_chat_template(const Tokenizer& tokenizer) {
  if (tokenizer.model() == TokenizerModel::Tekken && !tokenizer.version().empty()) {
    try {
      return chat_template_from_name(tokenizer.version());
    } catch (const Error&) {
      throw Error("chat: the vocabulary is Tekken " + tokenizer.version() +
                  ", whose chat template brise does not know (it knows v3, v7, v11 and v13)");
    }
  }
  if (has_controls(tokenizer, {"[THINK]", "[/THINK]", "[ARGS]"})) return ChatTemplate::MistralV13;
  if (has_controls(tokenizer, {"[ARGS]", "[CALL_ID]"})) return ChatTemplate::MistralV11;
  // Tekken v3 and v7 vocabularies have the same control tokens: without a version, the older.
  if (tokenizer.model() == TokenizerModel::Tekken) return ChatTemplate::MistralV3;
  if (has_controls(tokenizer, {"[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]"}))
    return ChatTemplate::MistralV7;
  if (has_controls(tokenizer, {"[INST]", "[/INST]"})) return ChatTemplate::MistralV3;
  return ChatTemplate::MistralV1;
}

std::vector<int32_t> encode_chat_segments(const Tokenizer& tokenizer,
                                          std::span<const ChatSegment> segments) {
  std::vector<int32_t> ids;
  for (const ChatSegment& s : segments) {
    if (s.kind == ChatSegment::Kind::Text) {
      const std::vector<int32_t> text = tokenizer.encode(s.text);
      ids.insert(ids.end(), text.begin(), text.end());
      continue;
    }
    int32_t id = s.text == "<s>"    ? tokenizer.bos_id()
                 : s.text == "</s>" ? tokenizer.eos_id()
                                    : tokenizer.find_special(s.text);
    if (id < 0)
      throw Error("chat: the template needs the token " + s.text +
                  ", which the vocabulary does not have as a control token (is the template "
                  "right for this model?)");
    ids.push_back(id);
  }
  return ids;
}

std::string chat_segments_text(std::span<const ChatSegment> segments) {
  std::string text;
  for (const ChatSegment& s : segments) text += s.text;
  return text;
}

std::vector<int32_t> format_chat(const Tokenizer& tokenizer, ChatTemplate tmpl,
                                 const ChatRequest& request) {
  validate_chat(tmpl, request);
  const std::vector<ChatSegment> segments = render_chat(tmpl, normalize_chat(tmpl, request));
  return encode_chat_segments(tokenizer, segments);
}

std::vector<int32_t> format_chat(const Tokenizer& tokenizer, ChatTemplate tmpl,
                                 const std::vector<ChatMessage>& messages) {
  return format_chat(tokenizer, tmpl, ChatRequest{messages, {}});
}

}  // namespace brise
