// mistral-common's request normalization (protocol/instruct/normalize.py,
// InstructRequestNormalizer, V7 and V13): runs of messages of one role become one message (tool
// messages stay one per result), and the JSON texts of calls and results are re-written as
// Python writes them.
#include <algorithm>
#include <limits>
#include <map>
#include <string>

#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "engine/generate/chat_rules.hpp"
#include "engine/generate/python_json.hpp"

namespace brise {
namespace {

using Role = ChatMessage::Role;
constexpr const char* kJoin = "\n\n";  // between messages and between text parts (before v15)

// _normalize_json_content: empty text is "{}", JSON is re-dumped, anything else stays.
std::string normalize_json_text(const std::string& text) {
  if (text.empty()) return "{}";
  const auto value = python_json::try_parse(text);
  return value ? python_json::dumps(*value) : text;
}

// _aggregate_content_chunks: the texts of a run of messages joined by "\n\n", empty ones
// skipped; thinking parts stay parts between the joined texts.
void aggregate_content(const ChatMessage* begin, const ChatMessage* end, ChatMessage& out) {
  std::vector<ContentPart> parts;
  std::string text;
  bool has_text = false;
  const auto flush = [&] {
    if (has_text) parts.push_back({ContentPart::Kind::Text, std::move(text), true});
    text.clear();
    has_text = false;
  };
  for (const ChatMessage* m = begin; m != end; ++m) {
    const bool new_message = has_text;
    if (m->parts.empty()) {
      if (m->content.empty()) continue;
      if (new_message) text += kJoin;
      text += m->content;
      has_text = true;
      continue;
    }
    for (const ContentPart& part : m->parts) {
      if (part.kind == ContentPart::Kind::Thinking) {
        flush();
        parts.push_back(part);
        continue;
      }
      if (part.text.empty()) continue;
      if (has_text) text += kJoin;  // between messages and between parts alike
      text += part.text;
      has_text = true;
    }
  }
  if (parts.empty()) {
    out.content = std::move(text);
    return;
  }
  flush();
  out.parts = std::move(parts);
}

// _inplace_sort_tool_messages (v11+): results in the order of the latest calls' ids, then in
// their own order; ids no call has go last. A repeated id counts at its last place, as in the
// dicts mistral-common builds.
void sort_tool_results(std::vector<ChatMessage>& results,
                       const std::vector<std::string>& call_ids) {
  std::map<std::string, size_t> call_index, result_index;
  for (size_t i = 0; i < call_ids.size(); ++i) call_index[call_ids[i]] = i;
  const auto result_key = [](const ChatMessage& m) {
    return m.tool_call_id ? *m.tool_call_id : std::string("\0None", 5);
  };
  for (size_t i = 0; i < results.size(); ++i) result_index[result_key(results[i])] = i;
  constexpr size_t kNone = std::numeric_limits<size_t>::max();
  const auto key = [&](const ChatMessage& m) {
    const std::string id = m.tool_call_id && !m.tool_call_id->empty() ? *m.tool_call_id : "null";
    const auto it = call_index.find(id);
    return std::pair(it == call_index.end() ? kNone : it->second, result_index[result_key(m)]);
  };
  std::stable_sort(results.begin(), results.end(),
                   [&](const ChatMessage& a, const ChatMessage& b) { return key(a) < key(b); });
}

}  // namespace

NormalizedChat normalize_chat(ChatTemplate tmpl, const ChatRequest& request) {
  const int v = chat_rules::version(tmpl);
  const auto& in = request.messages;
  NormalizedChat out;
  out.tools = request.tools;
  if (v < 7) {
    for (const ChatMessage& m : in) {
      if (m.role != Role::System || !chat_rules::has_content(m)) continue;
      if (!m.parts.empty()) throw Error("chat: a system message holds thinking (v13 only)");
      if (!out.system_prompt.empty()) out.system_prompt += kJoin;
      out.system_prompt += m.content;
    }
  }
  std::vector<std::string> latest_call_ids;
  for (size_t begin = 0; begin < in.size();) {
    size_t end = begin + 1;
    while (end < in.size() && in[end].role == in[begin].role) ++end;
    const Role role = in[begin].role;
    if (role == Role::Tool) {
      std::vector<ChatMessage> results;
      for (size_t i = begin; i < end; ++i) {
        ChatMessage r{Role::Tool, in[i].content};
        r.tool_call_id = in[i].tool_call_id;
        r.name = in[i].name;
        if (v < 7) r.content = normalize_json_text(r.content);
        results.push_back(std::move(r));
      }
      if (v >= 11) sort_tool_results(results, latest_call_ids);
      out.messages.insert(out.messages.end(), results.begin(), results.end());
      latest_call_ids.clear();
    } else if (role == Role::Assistant) {
      ChatMessage a{Role::Assistant, {}};
      aggregate_content(&in[begin], &in[0] + end, a);
      for (size_t i = begin; i < end; ++i) {
        if (v < 7 && !in[i].tool_calls.empty() && chat_rules::has_content(in[i]))
          throw Error(chat_rules::message_place(i) +
                      ": tool calls and content cannot be in one message before v7");
        for (const ToolCall& call : in[i].tool_calls) {
          a.tool_calls.push_back({call.id, call.name, normalize_json_text(call.arguments)});
          latest_call_ids.push_back(call.id ? *call.id : "null");
        }
        a.prefix = a.prefix || in[i].prefix;
      }
      out.messages.push_back(std::move(a));
    } else if (role == Role::User) {
      ChatMessage u{Role::User, {}};
      aggregate_content(&in[begin], &in[0] + end, u);
      out.messages.push_back(std::move(u));
    } else if (v >= 7) {  // system messages stay in place, one by one
      for (size_t i = begin; i < end; ++i) {
        ChatMessage s{Role::System, {}};
        aggregate_content(&in[i], &in[i] + 1, s);
        out.messages.push_back(std::move(s));
      }
    }
    begin = end;
  }
  // Before v7 the prompt starts with a user message: an empty one when the conversation does not.
  if (out.messages.empty() || (v < 7 && out.messages.front().role != Role::User))
    out.messages.insert(out.messages.begin(), ChatMessage{Role::User, {}});
  return out;
}

}  // namespace brise
