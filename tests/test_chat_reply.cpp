// Tool calls taken out of a model's answer, in each template's form (the forms of mistral-common's
// expected texts: test_chat_templates.cpp), and malformed call text given back as content.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "brise/chat.hpp"
#include "brise/tokenizer.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

using Kind = ChatSegment::Kind;

ChatSegment c(const char* name) {
  return {Kind::Control, name};
}
ChatSegment t(std::string text) {
  return {Kind::Text, std::move(text)};
}

void expect_call(const ToolCall& call, std::optional<std::string> id, const std::string& name,
                 const std::string& arguments) {
  EXPECT_EQ(call.id, id);
  EXPECT_EQ(call.name, name);
  EXPECT_EQ(call.arguments, arguments);
}

TEST(ChatReply, JsonListFormOfV2V3V7) {
  const std::vector<ChatSegment> out = {
      t("Let me look."), c("[TOOL_CALLS]"),
      t(R"( [{"name": "get_weather", "arguments": {"city": "Paris", "days": [1, 2]}, "id": "abcDEF123"}, {"name": "echo", "arguments": "blabla"}])"),
      c("</s>")};
  for (const auto tmpl :
       {ChatTemplate::MistralV2, ChatTemplate::MistralV3, ChatTemplate::MistralV7}) {
    const AssistantReply r = parse_assistant_reply(tmpl, out);
    EXPECT_EQ(r.content, "Let me look.");
    ASSERT_EQ(r.tool_calls.size(), 2u);
    expect_call(r.tool_calls[0], "abcDEF123", "get_weather",
                R"({"city": "Paris", "days": [1, 2]})");
    // A JSON string stands for arguments that were not JSON (mistral-common writes them so).
    expect_call(r.tool_calls[1], std::nullopt, "echo", "blabla");
  }
  // One object instead of a list.
  const AssistantReply one =
      parse_assistant_reply(ChatTemplate::MistralV3,
                            std::vector{c("[TOOL_CALLS]"), t(R"({"name": "f", "arguments": {}})")});
  ASSERT_EQ(one.tool_calls.size(), 1u);
  expect_call(one.tool_calls[0], std::nullopt, "f", "{}");
}

TEST(ChatReply, TaggedFormsOfV11AndV13) {
  const AssistantReply v11 = parse_assistant_reply(
      ChatTemplate::MistralV11, std::vector{c("[TOOL_CALLS]"), t("a_a_a"), c("[CALL_ID]"), t("ABC"),
                                            c("[ARGS]"), t("\"blabla\""), c("[TOOL_CALLS]"), t("b"),
                                            c("[ARGS]"), t(R"({"x": 1})"), c("</s>")});
  EXPECT_EQ(v11.content, "");
  ASSERT_EQ(v11.tool_calls.size(), 2u);
  expect_call(v11.tool_calls[0], "ABC", "a_a_a", "blabla");
  expect_call(v11.tool_calls[1], std::nullopt, "b", R"({"x": 1})");

  const AssistantReply v13 = parse_assistant_reply(
      ChatTemplate::MistralV13,
      std::vector{c("[THINK]"), t("Two calls."), c("[/THINK]"), t("On it."), c("[TOOL_CALLS]"),
                  t("f"), c("[ARGS]"), t("{}"), c("[TOOL_CALLS]"), t("g"), c("[ARGS]"),
                  t(R"({"a": [1, 2]})"), c("</s>")});
  EXPECT_EQ(v13.thinking, "Two calls.");
  EXPECT_EQ(v13.content, "On it.");
  ASSERT_EQ(v13.tool_calls.size(), 2u);
  expect_call(v13.tool_calls[0], std::nullopt, "f", "{}");
  expect_call(v13.tool_calls[1], std::nullopt, "g", R"({"a": [1, 2]})");
}

TEST(ChatReply, PlainAnswersAndMalformedCallsAreContent) {
  const AssistantReply plain =
      parse_assistant_reply(ChatTemplate::MistralV13, std::vector{t("Hello."), c("</s>")});
  EXPECT_EQ(plain.content, "Hello.");
  EXPECT_TRUE(plain.tool_calls.empty());
  const std::vector<std::pair<ChatTemplate, std::vector<ChatSegment>>> malformed = {
      {ChatTemplate::MistralV3, {c("[TOOL_CALLS]"), t(R"([{"name": "f", "arguments": {})")}},
      {ChatTemplate::MistralV3, {c("[TOOL_CALLS]"), t("[1, 2]")}},
      {ChatTemplate::MistralV3, {c("[TOOL_CALLS]"), t("[]")}},
      {ChatTemplate::MistralV3,
       {c("[TOOL_CALLS]"), t(R"([{"name": "get weather", "arguments": {}}])")}},
      {ChatTemplate::MistralV3, {c("[TOOL_CALLS]"), t(R"([{"arguments": {}}])")}},
      {ChatTemplate::MistralV11, {c("[TOOL_CALLS]"), t("f"), t("{}")}},
      {ChatTemplate::MistralV11, {c("[TOOL_CALLS]"), t("f"), c("[CALL_ID]"), c("[ARGS]"), t("{}")}},
      {ChatTemplate::MistralV13, {c("[TOOL_CALLS]"), t("f"), c("[ARGS]"), t("{oops")}},
      {ChatTemplate::MistralV13, {c("[TOOL_CALLS]"), t("f"), c("[ARGS]")}},
      {ChatTemplate::MistralV13, {c("[TOOL_CALLS]")}},
      {ChatTemplate::MistralV13, {t("x"), c("[TOOL_CALLS]"), c("[ARGS]"), t("{}")}},
  };
  for (size_t i = 0; i < malformed.size(); ++i) {
    const auto& [tmpl, segments] = malformed[i];
    std::vector<ChatSegment> with_eos = segments;
    with_eos.push_back(c("</s>"));
    const AssistantReply r = parse_assistant_reply(tmpl, with_eos);
    EXPECT_TRUE(r.tool_calls.empty()) << i;
    EXPECT_EQ(r.content, chat_segments_text(segments)) << i;
  }
}

TEST(ChatReply, WhatATemplateWritesParsesBack) {
  ChatMessage answer{ChatMessage::Role::Assistant, ""};
  answer.tool_calls = {{"123456789", "get_weather", R"({"city": "Paris", "n": 1.5e300})"},
                       {"987654321", "echo", "not json"}};
  for (const auto tmpl : {ChatTemplate::MistralV3, ChatTemplate::MistralV7,
                          ChatTemplate::MistralV11, ChatTemplate::MistralV13}) {
    const NormalizedChat chat{{{ChatMessage::Role::User, "hi"}, answer}, "", {}};
    const std::vector<ChatSegment> prompt = render_chat(tmpl, chat);
    // The answer: what follows [/INST].
    size_t at = 0;
    while (prompt[at].text != "[/INST]") ++at;
    const AssistantReply r = parse_assistant_reply(tmpl, std::span(prompt).subspan(at + 1));
    ASSERT_EQ(r.tool_calls.size(), 2u) << chat_template_name(tmpl);
    const bool ids = tmpl != ChatTemplate::MistralV13;
    expect_call(r.tool_calls[0], ids ? std::optional<std::string>("123456789") : std::nullopt,
                "get_weather", R"({"city": "Paris", "n": 1.5e+300})");
    expect_call(r.tool_calls[1], ids ? std::optional<std::string>("987654321") : std::nullopt,
                "echo", "not json");
  }
}

TEST(ChatReply, GeneratedIdsOnTheV3Vocabulary) {
  BRISE_REQUIRE_TESTDATA(data);
  const Tokenizer tokenizer(
      read_sentencepiece_model(data / "tokenizers/mistral-v3/tokenizer.model"));
  // A model's answer as ids: [TOOL_CALLS] (a control id) then the JSON text, then EOS.
  const std::vector<int32_t> ids = encode_chat_segments(
      tokenizer,
      std::vector{c("[TOOL_CALLS]"),
                  t(R"([{"name": "send_email", "arguments": {"to": "a@b.c"}, "id": "123456789"}])"),
                  c("</s>")});
  ASSERT_EQ(ids.front(), 5);
  const AssistantReply r = parse_assistant_reply(tokenizer, ChatTemplate::MistralV3, ids);
  ASSERT_EQ(r.tool_calls.size(), 1u);
  expect_call(r.tool_calls[0], "123456789", "send_email", R"({"to": "a@b.c"})");
  EXPECT_EQ(r.content, "");
  const std::vector<int32_t> plain = tokenizer.encode("Hello there.");
  EXPECT_EQ(parse_assistant_reply(tokenizer, ChatTemplate::MistralV3, plain).content,
            "Hello there.");
}

TEST(ChatReply, GeneratedIdsOnTheTekkenV13Vocabulary) {
  BRISE_REQUIRE_TESTDATA(data);
  const Tokenizer tokenizer(load_vocabulary(data / "models/tekken-mini/tekken-v13.json"));
  const std::vector<int32_t> ids = encode_chat_segments(
      tokenizer,
      std::vector{c("[THINK]"), t("Paris, then Lyon."), c("[/THINK]"), c("[TOOL_CALLS]"),
                  t("get_weather"), c("[ARGS]"), t(R"({"city": "Paris"})"), c("[TOOL_CALLS]"),
                  t("get_weather"), c("[ARGS]"), t(R"({"city": "Lyon"})"), c("</s>")});
  ASSERT_EQ(ids.front(), 35);  // [THINK]
  const AssistantReply r = parse_assistant_reply(tokenizer, ChatTemplate::MistralV13, ids);
  EXPECT_EQ(r.thinking, "Paris, then Lyon.");
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.tool_calls.size(), 2u);
  expect_call(r.tool_calls[0], std::nullopt, "get_weather", R"({"city": "Paris"})");
  expect_call(r.tool_calls[1], std::nullopt, "get_weather", R"({"city": "Lyon"})");
}

}  // namespace
}  // namespace brise
