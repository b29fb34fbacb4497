// mistral-common's request rules: JSON as Python writes it, the normalizer's merging (cases of its
// tests/test_normalization.py), the validator's refusals, and the parsing of OpenAI-shaped
// requests. Expected JSON texts are what Python 3.11's json.dumps(..., ensure_ascii=False) writes.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "engine/generate/python_json.hpp"

namespace brise {
namespace {

using Role = ChatMessage::Role;

ChatMessage msg(Role role, std::string content) {
  return {role, std::move(content)};
}
ChatMessage assistant_calls(std::vector<ToolCall> calls, std::string content = "") {
  ChatMessage m{Role::Assistant, std::move(content)};
  m.tool_calls = std::move(calls);
  return m;
}
ChatMessage result(std::string content, std::optional<std::string> id) {
  ChatMessage m{Role::Tool, std::move(content)};
  m.tool_call_id = std::move(id);
  return m;
}
ToolCall call(std::string id, std::string name = "f", std::string args = "{}") {
  return {std::move(id), std::move(name), std::move(args)};
}

// The error's message contains `part` (the place or the rule at fault).
void expect_error(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no error, expected one naming " << part;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

std::vector<std::string> contents(const NormalizedChat& chat) {
  std::vector<std::string> out;
  for (const ChatMessage& m : chat.messages) out.push_back(m.content);
  return out;
}

TEST(PythonJson, DumpsAsPython) {
  const auto v = python_json::parse(
      R"({"b": 1, "a": [1.0, 1e-5, 1E16, 1e15, 0.0001, 12345678901234567890123, -0, -0.0, 1e400, 2.5e-400, true, null, "\u00e9\n\u001f\u007f\ud83d\ude00"], "b": 2})",
      "test");
  // A repeated key keeps its first place and its last value, as a Python dict.
  EXPECT_EQ(python_json::dumps(v),
            "{\"b\": 2, \"a\": [1.0, 1e-05, 1e+16, 1000000000000000.0, 0.0001, "
            "12345678901234567890123, 0, -0.0, Infinity, 0.0, true, null, "
            "\"\xC3\xA9\\n\\u001f\x7F\xF0\x9F\x98\x80\"]}");
  EXPECT_EQ(python_json::dumps(python_json::parse(" [ 1.5 , 123456789.125 , 1e-7 ] ", "t")),
            "[1.5, 123456789.125, 1e-07]");
}

TEST(PythonJson, WhatIsNotJson) {
  for (const char* text : {"", "Email sent", "{\"a\": 1} x", "NaN", "\"\\ud800\"", "[1,]",
                           "{'a': 1}", "\xEF\xBB\xBF{}", "01", "\"a\nb\""})
    EXPECT_FALSE(python_json::try_parse(text)) << text;
  EXPECT_TRUE(python_json::try_parse(" \t\n{}\r\n"));
  expect_error([] { python_json::parse("{\"a\": ", "the file"); },
               "the file: invalid JSON at byte 6");
  expect_error([] { python_json::parse(std::string(300, '['), "deep"); }, "nested deeper");
}

TEST(ChatNormalize, MergesRunsOfARole) {
  // test_normalization.py test_message_aggregation and test_multiple_system.
  const ChatMessage s = msg(Role::System, "s"), u = msg(Role::User, "u"),
                    a = msg(Role::Assistant, "a");
  NormalizedChat n = normalize_chat(ChatTemplate::MistralV3, {{s, s, s, u, u, s, a, u}, {}});
  EXPECT_EQ(contents(n), (std::vector<std::string>{"u\n\nu", "a", "u"}));
  EXPECT_EQ(n.system_prompt, "s\n\ns\n\ns\n\ns");
  n = normalize_chat(ChatTemplate::MistralV3, {{s, s, s, u, u, a, a, u}, {}});
  EXPECT_EQ(contents(n), (std::vector<std::string>{"u\n\nu", "a\n\na", "u"}));
  // A conversation that starts otherwise starts with an empty user message (before v7).
  n = normalize_chat(ChatTemplate::MistralV3, {{s, a, u}, {}});
  EXPECT_EQ(contents(n), (std::vector<std::string>{"", "a", "u"}));
  EXPECT_EQ(n.messages[0].role, Role::User);
  // v7 keeps system messages in place, one by one, and adds no user message
  // (test_system_assistant_user_v7).
  n = normalize_chat(ChatTemplate::MistralV7, {{s, s, a, u}, {}});
  ASSERT_EQ(n.messages.size(), 4u);
  EXPECT_EQ(n.messages[0].role, Role::System);
  EXPECT_EQ(n.messages[1].role, Role::System);
  EXPECT_EQ(n.messages[2].role, Role::Assistant);
  EXPECT_TRUE(n.system_prompt.empty());
}

TEST(ChatNormalize, TextPartsJoinLikeMessages) {
  // test_normalize_chunks, test_many_chunks_in_user_message, test_system_prompt_chunks_aggregated
  // (OpenAI's text parts are mistral-common's TextChunks).
  const ChatRequest r = parse_chat_request(R"({"messages": [
      {"role": "user", "content": "foo"},
      {"role": "user", "content": [{"type": "text", "text": "chunk1"}, {"type": "text", "text": ""},
                                   {"type": "text", "text": "chunk2"}]},
      {"role": "system", "content": [{"type": "text", "text": "c1"}, {"type": "text", "text": "c2"}]}]})");
  const NormalizedChat n = normalize_chat(ChatTemplate::MistralV3, r);
  EXPECT_EQ(contents(n), (std::vector<std::string>{"foo\n\nchunk1\n\nchunk2"}));
  EXPECT_EQ(n.system_prompt, "c1\n\nc2");
}

TEST(ChatRequest, DeveloperIsOpenAIsNewerNameOfSystem) {
  const ChatRequest r = parse_chat_request(R"({"messages": [
      {"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
      "modalities": ["text"]})");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, Role::System);
  EXPECT_EQ(r.messages[0].content, "Be brief.");
}

TEST(ChatRequest, AKeyWithNullIsAbsentAsOpenAIReadsIt) {
  // An assistant message sent back as OpenAI's API returns it has "refusal": null; an unknown key
  // with a value is still refused by name.
  const ChatRequest r = parse_chat_request(R"({"messages": [{"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "Hello", "refusal": null},
      {"role": "user", "content": "Again"}]})");
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[1].content, "Hello");
  expect_error(
      [] {
        parse_chat_request(R"({"messages": [{"role": "user", "content": "Hi", "refusal": "no"}]})");
      },
      "messages[0].refusal");
}

TEST(ChatNormalize, ArgumentsAndResultsAsPythonWritesThem) {
  // test_normalize_funcalls: arguments always, tool results before v7 only; an empty result is {}.
  const ChatRequest r{
      {msg(Role::User, "a"),
       assistant_calls({call("123456789", "tool1", "\n\n{\n\"input\":\n      \"11\"\n}\n\n")}),
       result("{\n\"output\":\n      \"11\"\n}", "123456789"), msg(Role::Assistant, "b"),
       msg(Role::User, "c"), assistant_calls({call("123456789", "tool1", "")}),
       result("", "123456789")},
      {}};
  NormalizedChat n = normalize_chat(ChatTemplate::MistralV3, r);
  EXPECT_EQ(n.messages[1].tool_calls[0].arguments, R"({"input": "11"})");
  EXPECT_EQ(n.messages[2].content, R"({"output": "11"})");
  EXPECT_EQ(n.messages[5].tool_calls[0].arguments, "{}");
  EXPECT_EQ(n.messages[6].content, "{}");
  n = normalize_chat(ChatTemplate::MistralV7, r);
  EXPECT_EQ(n.messages[1].tool_calls[0].arguments, R"({"input": "11"})");
  EXPECT_EQ(n.messages[2].content, "{\n\"output\":\n      \"11\"\n}");
  EXPECT_EQ(n.messages[6].content, "");
}

TEST(ChatNormalize, V7MergesContentAndCalls) {
  // test_assistant_content_with_more_tool_calls.
  const ChatRequest r{
      {msg(Role::User, "A1"), msg(Role::Assistant, "B1"),
       assistant_calls({call("1", "tool1", R"({"input": "1"})")}, "B2"), msg(Role::Assistant, "B3"),
       assistant_calls({call("21", "tool21"), call("22", "tool22")}, "B4"),
       msg(Role::Assistant, "B5"), msg(Role::User, "C1")},
      {}};
  const NormalizedChat n = normalize_chat(ChatTemplate::MistralV7, r);
  ASSERT_EQ(n.messages.size(), 3u);
  EXPECT_EQ(n.messages[1].content, "B1\n\nB2\n\nB3\n\nB4\n\nB5");
  ASSERT_EQ(n.messages[1].tool_calls.size(), 3u);
  EXPECT_EQ(n.messages[1].tool_calls[2].name, "tool22");
}

TEST(ChatNormalize, V11AndLaterPutResultsInTheOrderOfTheirCalls) {
  // TestChatCompletionRequestNormalizationV13: reorder the last results, internal ones, extra
  // ones (no call: last), and only by the latest assistant message's calls.
  const auto order = [](std::vector<ChatMessage> messages, ChatTemplate tmpl) {
    std::string ids;
    for (const ChatMessage& m : normalize_chat(tmpl, {std::move(messages), {}}).messages)
      if (m.role == Role::Tool) ids += *m.tool_call_id;
    return ids;
  };
  const ChatMessage u = msg(Role::User, "A");
  const ChatMessage calls12 = assistant_calls({call("1"), call("2")}, "B");
  EXPECT_EQ(order({u, calls12, result("C", "1"), result("D", "2")}, ChatTemplate::MistralV13),
            "12");
  EXPECT_EQ(order({u, calls12, result("D", "2"), result("C", "1")}, ChatTemplate::MistralV13),
            "12");
  EXPECT_EQ(order({u, calls12, result("D", "2"), result("C", "1"), msg(Role::Assistant, "E")},
                  ChatTemplate::MistralV11),
            "12");
  EXPECT_EQ(order({u, assistant_calls({call("1")}, "B"), result("D", "2"), result("C", "1")},
                  ChatTemplate::MistralV13),
            "12");
  EXPECT_EQ(
      order({u, calls12, result("C", "1"), result("D", "2"),
             assistant_calls({call("2"), call("1")}, "E"), result("C", "1"), result("D", "2")},
            ChatTemplate::MistralV13),
      "1221");
  // Before v11 the order stays.
  EXPECT_EQ(order({u, calls12, result("D", "2"), result("C", "1")}, ChatTemplate::MistralV7), "21");
}

TEST(ChatValidate, RefusesWhatMistralCommonRefuses) {
  const ChatMessage u = msg(Role::User, "u"), a = msg(Role::Assistant, "a");
  const auto check = [](ChatTemplate tmpl, std::vector<ChatMessage> messages,
                        const std::string& part, std::vector<ChatTool> tools = {}) {
    expect_error([&] { validate_chat(tmpl, {messages, tools}); }, part);
  };
  const auto v3 = ChatTemplate::MistralV3, v7 = ChatTemplate::MistralV7,
             v11 = ChatTemplate::MistralV11, v13 = ChatTemplate::MistralV13;
  check(v3, {}, "no messages");
  check(v3, {a}, "messages[0]");
  check(v13, {u, a}, "messages[1]: the conversation ends with an assistant message");
  check(v3, {u, result("x", "123456789")}, "messages[1]: a tool message cannot follow a user");
  check(v7, {msg(Role::System, "s"), result("x", "123456789")}, "cannot follow a system");
  check(v3, {u, assistant_calls({call("123456789")}), a, u},
        "messages[2]: the tool calls before it");
  check(v3, {u, assistant_calls({call("12345")}), result("x", "12345")}, "9 letters or digits");
  check(v3, {u, assistant_calls({{std::nullopt, "f", "{}"}}), result("x", "123456789")},
        "needs a call id");
  check(v3, {u, assistant_calls({call("123456789")}), result("x", std::nullopt)},
        "messages[2].tool_call_id");
  check(v3, {u, assistant_calls({call("123456789")}, "and text"), result("x", "123456789")},
        "either content or tool calls, not both");
  check(v3, {u, assistant_calls({call("123456789", "get weather")}), result("x", "123456789")},
        "messages[1].tool_calls[0].function.name");
  check(v11, {u, assistant_calls({call("123456789")}), result("x", "987654321")},
        "messages[2]: tool result for call id '987654321'");
  check(
      v11,
      {u, assistant_calls({call("123456789")}), result("x", "123456789"), result("y", "123456789")},
      "messages[3]: a second tool result");
  check(v11, {u, assistant_calls({call("123456789"), call("123456789")}), result("x", "123456789")},
        "used twice");
  check(v13, {u, assistant_calls({call("")}), result("x", "")}, "needs a call id");
  ChatMessage early_prefix = a;
  early_prefix.prefix = true;
  check(v3, {u, early_prefix, u}, "only the last message may be an assistant prefix");
  check(ChatTemplate::MistralV1, {u}, "v1 template has no tools", {{"f", "", "{}"}});
  check(v3, {u}, "tools[0].function.name", {{"bad name", "", "{}"}});
  check(v3, {u}, "tools[0].function.parameters", {{"f", "", "[1]"}});
  // What passes (test mode): results still to come for some calls, a user message after results.
  validate_chat(
      v3,
      {{u, assistant_calls({call("123456789"), call("987654321")}), result("x", "123456789")}, {}});
  validate_chat(v3, {{u, assistant_calls({call("123456789")}), result("x", "123456789"), u}, {}});
}

TEST(ChatRequestJson, ParsesOpenAIShapesAndNamesWhatIsWrong) {
  const ChatRequest r = parse_chat_request(R"({"model": "m", "temperature": 0.5, "messages": [
      {"role": "user", "content": "hi"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "null", "type": "function",
        "function": {"name": "f", "arguments": {"b": 1.0, "a": [1e16]}}}]},
      {"role": "tool", "tool_call_id": "abc", "name": "f", "content": "22"},
      {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "closed": false},
                                        {"type": "text", "text": "ok"}]}],
      "tools": [{"type": "function", "function": {"name": "f", "parameters": {"z": 1, "a": 2},
                 "strict": true}}]})");
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_FALSE(r.messages[1].tool_calls[0].id);  // "null" is mistral-common's "no id"
  EXPECT_EQ(r.messages[1].tool_calls[0].arguments, R"({"b": 1.0, "a": [1e+16]})");
  EXPECT_EQ(*r.messages[2].tool_call_id, "abc");
  EXPECT_EQ(r.messages[2].name, "f");
  ASSERT_EQ(r.messages[3].parts.size(), 2u);
  EXPECT_FALSE(r.messages[3].parts[0].closed);
  ASSERT_EQ(r.tools.size(), 1u);
  EXPECT_EQ(r.tools[0].parameters, R"({"z": 1, "a": 2})");
  EXPECT_EQ(r.tools[0].description, "");

  const auto bad = [](const char* body, const std::string& part) {
    expect_error([&] { parse_chat_request(body); }, part);
  };
  bad(R"([])", "must be a JSON object");
  bad(R"({"tools": []})", "messages: missing");
  bad(R"({"messages": [], "tool": []})", "tool: unknown field");
  bad(R"({"messages": [{"role": "wizard", "content": "x"}]})", "messages[0].role");
  bad(R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content");
  bad(R"({"messages": [{"role": "user"}]})", "messages[0].content");
  bad(R"({"messages": [{"role": "user", "content": "x", "name": "bob"}]})", "messages[0].name");
  bad(R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]})",
      "messages[0].content[0].type");
  bad(R"({"messages": [{"role": "user", "content": [{"type": "thinking", "thinking": "x"}]}]})",
      "only assistant and system messages");
  bad(R"({"messages": [{"role": "assistant", "tool_calls": {}}]})", "messages[0].tool_calls");
  bad(R"({"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": 3}}]}]})",
      "messages[0].tool_calls[0].function.arguments");
  bad(R"({"messages": [{"role": "tool", "tool_call_id": "x"}]})", "messages[0].content");
  bad(R"({"messages": [], "tools": [{"type": "retrieval"}]})", "tools[0]");
  bad(R"({"messages": [], "tools": [{"function": {"name": "f", "parameters": []}}]})",
      "tools[0].function.parameters");
  bad(R"({"messages": [], "reasoning_effort": "high"})", "reasoning_effort");
  bad("{\"messages\": [{\"role\": \"user\", \"content\": \"\xFF\"}]}", "not valid UTF-8");
  EXPECT_EQ(parse_chat_tools(R"({"tools": [{"function": {"name": "g"}}]})")[0].name, "g");
  EXPECT_EQ(parse_chat_tools(R"([{"function": {"name": "g", "description": null}}])")[0].parameters,
            "{}");
}

TEST(ChatTemplateNames, RoundTripAndUnknownNames) {
  for (const auto tmpl :
       {ChatTemplate::MistralV1, ChatTemplate::MistralV2, ChatTemplate::MistralV3,
        ChatTemplate::MistralV7, ChatTemplate::MistralV11, ChatTemplate::MistralV13})
    EXPECT_EQ(chat_template_from_name(chat_template_name(tmpl)), tmpl);
  expect_error([] { chat_template_from_name("v4"); }, "v4");
}

}  // namespace
}  // namespace brise
