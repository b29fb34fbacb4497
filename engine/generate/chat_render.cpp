// mistral-common's instruct tokenizers (tokens/tokenizers/instruct.py, InstructTokenizerV1, V2,
// V3, V7, V11, V13 encode_instruct) as segments: each control token by name, each text that
// mistral-common encodes on its own as one segment, so that encoding them one by one gives its ids.
#include <string>

#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "engine/generate/chat_rules.hpp"
#include "engine/generate/python_json.hpp"

namespace brise {
namespace {

using Role = ChatMessage::Role;
using python_json::Value;

class Renderer {
 public:
  Renderer(ChatTemplate tmpl, const NormalizedChat& chat)
      : v_(chat_rules::version(tmpl)), chat_(chat) {}

  std::vector<ChatSegment> run() {
    const auto& messages = chat_.messages;
    size_t first_user = messages.size(), last_user = messages.size();
    for (size_t i = 0; i < messages.size(); ++i)
      if (messages[i].role == Role::User) {
        if (first_user == messages.size()) first_user = i;
        last_user = i;
      }
    // "before the last user message" is false everywhere when there is no user message.
    const auto before_last_user = [&](size_t i) {
      return last_user != messages.size() && i < last_user;
    };
    control("<s>");
    for (size_t i = 0; i < messages.size(); ++i) {
      const ChatMessage& m = messages[i];
      place_ = chat_rules::message_place(i) + " (after normalization)";
      switch (m.role) {
        case Role::User:
          user(m, i == first_user, i == last_user);
          break;
        case Role::Assistant:
          assistant(m, before_last_user(i));
          break;
        case Role::Tool:
          tool(m, before_last_user(i));
          break;
        case Role::System:
          system(m);
          break;
      }
    }
    return std::move(out_);
  }

 private:
  void control(const char* name) { out_.push_back({ChatSegment::Kind::Control, name}); }
  void text(std::string t) { out_.push_back({ChatSegment::Kind::Text, std::move(t)}); }
  [[noreturn]] void fail(const std::string& problem) const { throw Error(place_ + ": " + problem); }

  // _parse_json_content: the value of JSON text, or the text itself as a JSON string.
  static Value json_or_string(const std::string& text) {
    auto value = python_json::try_parse(text);
    return value ? std::move(*value) : Value::string(text);
  }

  void user(const ChatMessage& m, bool is_first, bool is_last) {
    const std::string& sp = chat_.system_prompt;
    if (v_ == 1) {
      const std::string content = is_first && !sp.empty() ? sp + "\n\n" + m.content : m.content;
      text("[INST] " + content + " [/INST]");
      return;
    }
    const bool tools_here = v_ >= 13 ? is_first : is_last;
    if (tools_here && !chat_.tools.empty()) {
      Value tools = Value::array();
      for (const ChatTool& t : chat_.tools) {
        Value function = Value::object();
        function.set("name", Value::string(t.name));
        function.set("description", Value::string(t.description));
        function.set("parameters", python_json::parse(t.parameters, "tool " + t.name));
        Value tool = Value::object();
        tool.set("type", Value::string("function"));
        tool.set("function", std::move(function));
        tools.items.push_back(std::move(tool));
      }
      control("[AVAILABLE_TOOLS]");
      text(python_json::dumps(tools));
      control("[/AVAILABLE_TOOLS]");
    }
    control("[INST]");
    text(is_last && !sp.empty() ? sp + "\n\n" + m.content : m.content);
    control("[/INST]");
  }

  void system(const ChatMessage& m) {
    if (v_ < 7) fail("system messages are in the system prompt before v7");
    control("[SYSTEM_PROMPT]");
    content(m);
    control("[/SYSTEM_PROMPT]");
  }

  // Content given as parts: each on its own (text not stripped), thinking as [THINK]...
  void content(const ChatMessage& m) {
    if (m.parts.empty()) {
      text(m.content);
      return;
    }
    for (const ContentPart& part : m.parts) {
      if (part.kind == ContentPart::Kind::Text) {
        text(part.text);
        continue;
      }
      if (v_ < 13) fail("thinking parts need the v13 template");
      control("[THINK]");
      text(part.text);
      if (part.closed) control("[/THINK]");
    }
  }

  // v2/v3/v7: [TOOL_CALLS] and a JSON list of {"name", "arguments"(, "id" from v3)}.
  void calls_as_json_list(const ChatMessage& m) {
    Value list = Value::array();
    for (const ToolCall& call : m.tool_calls) {
      Value c = Value::object();
      c.set("name", Value::string(call.name));
      c.set("arguments", json_or_string(call.arguments));
      if (v_ >= 3 && call.id && !call.id->empty()) c.set("id", Value::string(*call.id));
      list.items.push_back(std::move(c));
    }
    control("[TOOL_CALLS]");
    text(python_json::dumps(list));
  }

  // v11: [TOOL_CALLS]name[CALL_ID]id[ARGS]{json} per call; v13: without the id.
  void calls_one_by_one(const ChatMessage& m) {
    for (const ToolCall& call : m.tool_calls) {
      control("[TOOL_CALLS]");
      text(call.name);
      if (v_ < 13 && call.id && !call.id->empty()) {
        control("[CALL_ID]");
        text(*call.id);
      }
      if (v_ >= 13 && (!call.id || call.id->empty()))
        fail("a v13 tool call needs an id (mistral-common asserts it)");
      control("[ARGS]");
      text(python_json::dumps(json_or_string(call.arguments)));
    }
  }

  // The answer's text without its trailing spaces (mistral-common's rstrip(" ")).
  void answer_text(const std::string& content) {
    text(content.substr(0, content.find_last_not_of(' ') + 1));  // npos + 1 == 0
  }

  void assistant(const ChatMessage& m, bool before_last_user) {
    const bool has_content = chat_rules::has_content(m), has_calls = !m.tool_calls.empty();
    if (v_ == 1) {
      if (has_calls) fail("the v1 template has no tool calls");
      if (!has_content) fail("an assistant message without content");
      text(m.content);
    } else if (v_ < 7) {
      if (has_calls && has_content) fail("tool calls and content in one message before v7");
      if (has_calls) {
        // v2 leaves out the tool calls (and their EOS) that come before the last user message.
        if (v_ == 2 && before_last_user) return;
        calls_as_json_list(m);
      } else if (has_content) {
        answer_text(m.content);
      } else {
        fail("an assistant message without content or tool calls");
      }
    } else {
      if (!has_content && !has_calls) fail("an assistant message without content or tool calls");
      if (has_content) {
        if (m.parts.empty())
          answer_text(m.content);
        else
          content(m);
      }
      if (has_calls) {
        if (v_ == 7)
          calls_as_json_list(m);
        else
          calls_one_by_one(m);
      }
    }
    if (!m.prefix) control("</s>");
  }

  void tool(const ChatMessage& m, bool before_last_user) {
    if (v_ == 1) fail("the v1 template has no tool messages");
    if (v_ == 2) {
      if (before_last_user) return;  // v2 keeps only the results after the last user message
      Value result = Value::object();
      result.set("name", m.name.empty() ? Value() : Value::string(m.name));
      result.set("content", json_or_string(m.content));
      Value list = Value::array();
      list.items.push_back(std::move(result));
      control("[TOOL_RESULTS]");
      text(python_json::dumps(list));
      control("[/TOOL_RESULTS]");
      return;
    }
    if (v_ < 13 && !m.tool_call_id) fail("a tool message needs the id of its call");
    control("[TOOL_RESULTS]");
    if (v_ == 3) {
      Value result = Value::object();
      result.set("content", json_or_string(m.content));
      result.set("call_id", Value::string(*m.tool_call_id));
      text(python_json::dumps(result));
    } else if (v_ < 13) {
      text(*m.tool_call_id);
      control("[TOOL_CONTENT]");
      text(m.content);
    } else {
      text(m.content);
    }
    control("[/TOOL_RESULTS]");
  }

  int v_;
  const NormalizedChat& chat_;
  std::string place_;
  std::vector<ChatSegment> out_;
};

}  // namespace

std::vector<ChatSegment> render_chat(ChatTemplate tmpl, const NormalizedChat& chat) {
  return Renderer(tmpl, chat).run();
}

}  // namespace brise
