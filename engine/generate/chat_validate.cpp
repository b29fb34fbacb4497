// mistral-common's request validation (protocol/instruct/validator.py, MistralRequestValidator,
// V3, V5, V11, V13, in its default "test" mode, which encode_chat_completion uses): the structure
// of the conversation first, then each message, then the tools, in that order as there.
#include <set>
#include <string>

#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "engine/generate/chat_rules.hpp"
#include "engine/generate/python_json.hpp"

namespace brise {
namespace {

using Role = ChatMessage::Role;
using chat_rules::message_place;
using chat_rules::role_name;

bool is_nine_alphanumerics(const std::string& id) {
  if (id.size() != 9) return false;
  for (const char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

// mistral-common's ToolCall.id and ToolMessage.tool_call_id: a missing call id is "null".
std::string call_id_key(const std::optional<std::string>& id) {
  return id ? *id : "null";
}

void check_order(const std::vector<ChatMessage>& messages) {
  for (size_t i = 1; i < messages.size(); ++i) {
    const Role before = messages[i - 1].role, now = messages[i].role;
    const bool ok = before == Role::Tool        ? now != Role::System
                    : before == Role::Assistant ? now != Role::System
                                                : now != Role::Tool;
    if (!ok)
      throw Error(message_place(i) + ": a " + role_name(now) + " message cannot follow a " +
                  role_name(before) + " message");
  }
}

// Every assistant message's calls are answered before the next assistant message (the first
// message is not looked at, as in mistral-common).
void check_results_by_count(const std::vector<ChatMessage>& messages) {
  long expected = 0;
  for (size_t i = 1; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == Role::Tool) {
      --expected;
    } else if (m.role == Role::Assistant) {
      if (expected != 0)
        throw Error(message_place(i) + ": the tool calls before it have " +
                    (expected > 0 ? "fewer" : "more") +
                    " tool results than calls (every call is answered by one tool message)");
      expected = static_cast<long>(m.tool_calls.size());
    }
  }
}

// v11+: the same by call id; ids are unique among an assistant message's calls and its results.
void check_results_by_id(const std::vector<ChatMessage>& messages) {
  std::set<std::string> expected, observed;
  for (size_t i = 1; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == Role::Tool) {
      // A result without an id matches no call (Python's None is not the call's "null").
      const std::string id = m.tool_call_id ? *m.tool_call_id : std::string("\0None", 5);
      const std::string shown = m.tool_call_id ? "'" + *m.tool_call_id + "'" : "(none)";
      if (observed.count(id))
        throw Error(message_place(i) + ": a second tool result for call id " + shown);
      if (!expected.count(id))
        throw Error(message_place(i) + ": tool result for call id " + shown +
                    ", which no tool call of the assistant message before it has");
      observed.insert(id);
    } else if (m.role == Role::Assistant) {
      if (expected.size() != observed.size())
        throw Error(message_place(i) +
                    ": the tool calls before it are not all answered by tool results");
      expected.clear();
      observed.clear();
      for (size_t c = 0; c < m.tool_calls.size(); ++c)
        if (!expected.insert(call_id_key(m.tool_calls[c].id)).second)
          throw Error(message_place(i) + ".tool_calls[" + std::to_string(c) + "]: the call id '" +
                      call_id_key(m.tool_calls[c].id) + "' is used twice in this message");
    }
  }
}

void check_structure(ChatTemplate tmpl, const ChatRequest& request) {
  const auto& messages = request.messages;
  if (messages.empty()) throw Error("chat: the conversation has no messages");
  if (messages.size() == 1 && messages[0].role != Role::User && messages[0].role != Role::System)
    throw Error(message_place(0) +
                ": a conversation of one message must be a user or system message");
  if (messages.size() > 1) {
    const ChatMessage& last = messages.back();
    if (last.role == Role::Assistant && !last.prefix)
      throw Error(message_place(messages.size() - 1) +
                  ": the conversation ends with an assistant message; it must end with a user "
                  "or tool message (or an assistant message with \"prefix\": true, to be "
                  "continued)");
  }
  check_order(messages);
  if (chat_rules::version(tmpl) >= 11)
    check_results_by_id(messages);
  else
    check_results_by_count(messages);
}

void check_call_id(ChatTemplate tmpl, const std::optional<std::string>& id,
                   const std::string& place) {
  const int v = chat_rules::version(tmpl);
  if (v < 3) return;
  if (v >= 13) {
    if (!id || id->empty())
      throw Error(place + ": the v13 template needs a call id (any text but \"null\")");
    return;
  }
  if (!id)
    throw Error(place + ": the " + std::string(chat_template_name(tmpl)) +
                " template needs a call id (9 letters or digits)");
  if (!is_nine_alphanumerics(*id))
    throw Error(place + ": the call id '" + *id +
                "' must be 9 letters or digits (a-z, A-Z, "
                "0-9) for the " +
                std::string(chat_template_name(tmpl)) + " template");
}

void check_function_name(const std::string& name, const std::string& place) {
  if (!chat_rules::is_function_name(name))
    throw Error(place + ": the function name '" + name +
                "' must be 1 to 64 of a-z, A-Z, 0-9, '_' and '-'");
}

void check_message(ChatTemplate tmpl, const ChatMessage& m, size_t index, bool last) {
  const std::string place = message_place(index);
  const int v = chat_rules::version(tmpl);
  if (!m.parts.empty() && v < 13)
    throw Error(place + ".content: thinking parts need the v13 template, not " +
                std::string(chat_template_name(tmpl)));
  if (m.role == Role::Assistant) {
    const bool content = chat_rules::has_content(m), calls = !m.tool_calls.empty();
    if (v < 7 && content == calls)
      throw Error(place + ": an assistant message of the " + std::string(chat_template_name(tmpl)) +
                  " template has " +
                  (content ? "either content or tool calls, not both"
                           : "content or tool calls (this one has neither)"));
    for (size_t c = 0; c < m.tool_calls.size(); ++c) {
      const std::string cp = place + ".tool_calls[" + std::to_string(c) + "]";
      check_call_id(tmpl, m.tool_calls[c].id, cp + ".id");
      check_function_name(m.tool_calls[c].name, cp + ".function.name");
    }
    if (m.prefix && !last)
      throw Error(place + ": only the last message may be an assistant prefix");
  } else if (m.role == Role::Tool) {
    if (!m.name.empty()) check_function_name(m.name, place + ".name");
    check_call_id(tmpl, m.tool_call_id, place + ".tool_call_id");
  }
}

}  // namespace

void validate_chat(ChatTemplate tmpl, const ChatRequest& request) {
  check_structure(tmpl, request);
  for (size_t i = 0; i < request.messages.size(); ++i)
    check_message(tmpl, request.messages[i], i, i + 1 == request.messages.size());
  if (!request.tools.empty() && tmpl == ChatTemplate::MistralV1)
    throw Error("tools: the v1 template has no tools");
  for (size_t t = 0; t < request.tools.size(); ++t) {
    const std::string place = "tools[" + std::to_string(t) + "].function";
    check_function_name(request.tools[t].name, place + ".name");
    if (!python_json::parse(request.tools[t].parameters, place + ".parameters").is_object())
      throw Error(place + ".parameters: must be a JSON Schema object");
  }
}

}  // namespace brise
