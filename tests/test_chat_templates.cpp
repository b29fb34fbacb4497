// The templates against the expected texts of mistral-common's own tests (its repository
// mistralai/mistral-common, each source named beside its case). Those tests compare the text of
// the ids with control tokens by name; on a Tekken vocabulary (and the byte-transparent test
// vocabularies they build) that is the texts and control names one after the other, which is
// chat_segments_text here; on SentencePiece each text is its pieces, "▁" + the text with spaces
// as "▁" (spm_text below, for texts without newlines), or, on the real v3 vocabulary, the pieces
// of brise's own ids. Tests that call encode_instruct (no validation or normalization) render a
// NormalizedChat; tests that call encode_chat_completion go through validate and normalize too.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "brise/tokenizer.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

using Role = ChatMessage::Role;
const std::string kSp = "\xE2\x96\x81";  // "▁"

ChatMessage user(std::string s) {
  return {Role::User, std::move(s)};
}
ChatMessage assistant(std::string s, std::vector<ToolCall> calls = {}) {
  ChatMessage m{Role::Assistant, std::move(s)};
  m.tool_calls = std::move(calls);
  return m;
}
ChatMessage system(std::string s) {
  return {Role::System, std::move(s)};
}
ChatMessage tool_result(std::string content, std::optional<std::string> id, std::string name = "") {
  ChatMessage m{Role::Tool, std::move(content)};
  m.tool_call_id = std::move(id);
  m.name = std::move(name);
  return m;
}
ToolCall call(std::optional<std::string> id, std::string name, std::string args) {
  return {std::move(id), std::move(name), std::move(args)};
}

// encode_chat_completion's segments for a ChatCompletionRequest.
std::vector<ChatSegment> completion(ChatTemplate tmpl, const ChatRequest& request) {
  validate_chat(tmpl, request);
  return render_chat(tmpl, normalize_chat(tmpl, request));
}
// The pieces SentencePiece gives each text segment (dummy prefix, spaces as "▁"); texts here
// have no newline or other byte-fallback character.
std::string spm_text(const std::vector<ChatSegment>& segments) {
  std::string out;
  for (const ChatSegment& s : segments) {
    if (s.kind == ChatSegment::Kind::Control || s.text.empty()) {
      out += s.text;
      continue;
    }
    out += kSp;
    for (const char c : s.text) out += c == ' ' ? kSp : std::string(1, c);
  }
  return out;
}
// Replaces {S} (the space after a control token) and {W} (a space in text) in a
// test_tokenize_v3.py f-string.
std::string spaces(std::string text, const std::string& s, const std::string& w) {
  for (const auto& [key, value] :
       {std::pair{std::string("{S}"), s}, std::pair{std::string("{W}"), w}})
    for (size_t at = text.find(key); at != std::string::npos;
         at = text.find(key, at + value.size()))
      text.replace(at, key.size(), value);
  return text;
}

// The tekken-mini vocabularies (README-tekken): tekken.json ("v3", mistral-common's deprecated
// special tokens, [SYSTEM_PROMPT] and [TOOL_CONTENT] among them) for v3 and v7, tekken-v13.json
// ([ARGS], [CALL_ID], [THINK] too) for v11 and v13; nullptr without the test data.
const Tokenizer* tekken_mini(ChatTemplate tmpl) {
  static const auto load = [](const char* file) -> std::unique_ptr<Tokenizer> {
    std::string why;
    const auto dir = test::testdata_dir(&why);
    if (!dir) return nullptr;
    return std::make_unique<Tokenizer>(load_vocabulary(*dir / "models/tekken-mini" / file));
  };
  static const auto v3 = load("tekken.json"), v13 = load("tekken-v13.json");
  return tmpl == ChatTemplate::MistralV11 || tmpl == ChatTemplate::MistralV13 ? v13.get()
                                                                              : v3.get();
}

// The control tokens' ids in tekken-mini (README-tekken section 2).
int32_t tekken_control_id(const std::string& name) {
  static const std::map<std::string, int32_t> ids = {{"<s>", 1},
                                                     {"</s>", 2},
                                                     {"[INST]", 3},
                                                     {"[/INST]", 4},
                                                     {"[AVAILABLE_TOOLS]", 5},
                                                     {"[/AVAILABLE_TOOLS]", 6},
                                                     {"[TOOL_RESULTS]", 7},
                                                     {"[/TOOL_RESULTS]", 8},
                                                     {"[TOOL_CALLS]", 9},
                                                     {"[SYSTEM_PROMPT]", 17},
                                                     {"[/SYSTEM_PROMPT]", 18},
                                                     {"[TOOL_CONTENT]", 19},
                                                     {"[ARGS]", 32},
                                                     {"[CALL_ID]", 33},
                                                     {"[THINK]", 35},
                                                     {"[/THINK]", 36}};
  return ids.at(name);
}

// A Tekken-form expected text, checked as text and, on tekken-mini, as ids: the control tokens
// at their ids, and every id's bytes (control tokens by name) giving the text back, which is
// what mistral-common's Tokenized.text is.
void expect_tekken_text(ChatTemplate tmpl, const std::vector<ChatSegment>& segments,
                        const std::string& expected) {
  EXPECT_EQ(chat_segments_text(segments), expected);
  const Tokenizer* tokenizer = tekken_mini(tmpl);
  if (!tokenizer) return;
  const std::vector<int32_t> ids = encode_chat_segments(*tokenizer, segments);
  std::string text;
  std::vector<int32_t> controls, expected_controls;
  for (const int32_t id : ids) {
    text += tokenizer->piece(id);
    if (tokenizer->kind(id) == TokenKind::Control) controls.push_back(id);
  }
  for (const ChatSegment& s : segments)
    if (s.kind == ChatSegment::Kind::Control)
      expected_controls.push_back(tekken_control_id(s.text));
  EXPECT_EQ(text, expected) << "tekken-mini";
  EXPECT_EQ(controls, expected_controls) << "tekken-mini";
}

// tests/test_tokenize_v3.py: each case on "v3 Tekken" (no space after control tokens) and on the
// real v3 SentencePiece vocabulary (pieces of brise's ids).
struct V3Case {
  const char* name;
  NormalizedChat chat;
  std::string expected;  // with {S} and {W}
};

std::vector<V3Case> v3_cases() {
  const ChatTool tool1{"tool1", "1", "{}"}, tool2{"tool2", "2", "{}"};
  std::vector<V3Case> cases;
  cases.push_back(
      {"test_tools_singleturn",
       {{user("a")}, "", {tool1}},
       R"(<s>[AVAILABLE_TOOLS]{S}[{"type":{W}"function",{W}"function":{W}{"name":{W}"tool1",{W}"description":{W}"1",{W}"parameters":{W}{}}}][/AVAILABLE_TOOLS][INST]{S}a[/INST])"});
  cases.push_back(
      {"test_tools_multiturn",
       {{user("a"), assistant("b"), user("c"), assistant("d")}, "", {tool1, tool2}},
       R"(<s>[INST]{S}a[/INST]{S}b</s>[AVAILABLE_TOOLS]{S}[{"type":{W}"function",{W}"function":{W}{"name":{W}"tool1",{W}"description":{W}"1",{W}"parameters":{W}{}}},{W}{"type":{W}"function",{W}"function":{W}{"name":{W}"tool2",{W}"description":{W}"2",{W}"parameters":{W}{}}}][/AVAILABLE_TOOLS][INST]{S}c[/INST]{S}d</s>)"});
  cases.push_back(
      {"test_tool_message",
       {{user("a"), assistant("", {call("123456789", "b", "{}")}),
         tool_result("d", "123456789", "b")},
        "",
        {}},
       R"(<s>[INST]{S}a[/INST][TOOL_CALLS]{S}[{"name":{W}"b",{W}"arguments":{W}{},{W}"id":{W}"123456789"}]</s>[TOOL_RESULTS]{S}{"content":{W}"d",{W}"call_id":{W}"123456789"}[/TOOL_RESULTS])"});
  cases.push_back(
      {"test_tool_message (JSON content)",
       {{user("a"), assistant("", {call("123456789", "b", "{}")}),
         tool_result(R"({"a": 1})", "123456789", "b")},
        "",
        {}},
       R"(<s>[INST]{S}a[/INST][TOOL_CALLS]{S}[{"name":{W}"b",{W}"arguments":{W}{},{W}"id":{W}"123456789"}]</s>[TOOL_RESULTS]{S}{"content":{W}{"a":{W}1},{W}"call_id":{W}"123456789"}[/TOOL_RESULTS])"});
  // ToolCall(id="null") and ToolCall() alike: no id (parse_chat_request reads "null" as none).
  cases.push_back(
      {"test_tool_message_no_id_fine_tuning_ok",
       {{user("a"), assistant("", {call(std::nullopt, "b", "{}")})}, "", {}},
       R"(<s>[INST]{S}a[/INST][TOOL_CALLS]{S}[{"name":{W}"b",{W}"arguments":{W}{}}]</s>)"});
  cases.push_back(
      {"test_tool_message_multiple_shots_with_history",
       {{user("a"), assistant("", {call("0", "b", "{}")}), tool_result("d", "0", "b"),
         assistant("e"), user("f"), assistant("", {call("1", "b", "{}")}),
         tool_result("d", "1", "b")},
        "",
        {}},
       R"(<s>[INST]{S}a[/INST][TOOL_CALLS]{S}[{"name":{W}"b",{W}"arguments":{W}{},{W}"id":{W}"0"}]</s>[TOOL_RESULTS]{S}{"content":{W}"d",{W}"call_id":{W}"0"}[/TOOL_RESULTS]{S}e</s>[INST]{S}f[/INST][TOOL_CALLS]{S}[{"name":{W}"b",{W}"arguments":{W}{},{W}"id":{W}"1"}]</s>[TOOL_RESULTS]{S}{"content":{W}"d",{W}"call_id":{W}"1"}[/TOOL_RESULTS])"});
  cases.push_back(
      {"test_tool_message_multiple_calls",
       {{user("a"), assistant("", {call("0", "b", "{}"), call("1", "q", "{}")}),
         tool_result("d", "0", "b"), tool_result("d", "1", "q"), assistant("e"), user("f"),
         assistant("", {call("2", "b", "{}"), call("3", "q", "{}")}), tool_result("d", "2", "b"),
         tool_result("d", "3", "q")},
        "",
        {}},
       R"(<s>[INST]{S}a[/INST][TOOL_CALLS]{S}[{"name":{W}"b",{W}"arguments":{W}{},{W}"id":{W}"0"},{W}{"name":{W}"q",{W}"arguments":{W}{},{W}"id":{W}"1"}]</s>[TOOL_RESULTS]{S}{"content":{W}"d",{W}"call_id":{W}"0"}[/TOOL_RESULTS][TOOL_RESULTS]{S}{"content":{W}"d",{W}"call_id":{W}"1"}[/TOOL_RESULTS]{S}e</s>[INST]{S}f[/INST][TOOL_CALLS]{S}[{"name":{W}"b",{W}"arguments":{W}{},{W}"id":{W}"2"},{W}{"name":{W}"q",{W}"arguments":{W}{},{W}"id":{W}"3"}]</s>[TOOL_RESULTS]{S}{"content":{W}"d",{W}"call_id":{W}"2"}[/TOOL_RESULTS][TOOL_RESULTS]{S}{"content":{W}"d",{W}"call_id":{W}"3"}[/TOOL_RESULTS])"});
  return cases;
}

TEST(ChatTemplates, V3TekkenTextsOfTestTokenizeV3) {
  for (const V3Case& c : v3_cases()) {
    SCOPED_TRACE(c.name);
    expect_tekken_text(ChatTemplate::MistralV3, render_chat(ChatTemplate::MistralV3, c.chat),
                       spaces(c.expected, "", " "));
  }
}

TEST(ChatTemplates, V3SentencePieceTextsAndIdsOfTestTokenizeV3) {
  BRISE_REQUIRE_TESTDATA(data);
  const Tokenizer tokenizer(
      read_sentencepiece_model(data / "tokenizers/mistral-v3/tokenizer.model"));
  for (const V3Case& c : v3_cases()) {
    const std::vector<int32_t> ids =
        encode_chat_segments(tokenizer, render_chat(ChatTemplate::MistralV3, c.chat));
    std::string text;
    for (const int32_t id : ids) text += tokenizer.piece(id);
    EXPECT_EQ(text, spaces(c.expected, kSp, kSp)) << c.name;
  }
  // test_tools_multiturn's ids around the tools block ([AVAILABLE_TOOLS]=6 ...
  // [/AVAILABLE_TOOLS]=7).
  const std::vector<int32_t> ids =
      encode_chat_segments(tokenizer, render_chat(ChatTemplate::MistralV3, v3_cases()[1].chat));
  const auto begin = std::find(ids.begin(), ids.end(), 6),
             end = std::find(ids.begin(), ids.end(), 7);
  ASSERT_LT(begin, end);
  std::vector<int32_t> outside(ids.begin(), begin);
  outside.insert(outside.end(), end + 1, ids.end());
  EXPECT_EQ(outside, (std::vector<int32_t>{1, 3, 1032, 4, 1055, 2, 3, 1045, 4, 1049, 2}));
}

TEST(ChatTemplates, V3SystemPromptJoinsTheLastUserMessage) {
  // test_tokenize_v3.py test_system_tools_multiturn (Tekken form; "\n\n" inside the text).
  const NormalizedChat chat{
      {user("a"), assistant("b"), user("c"), assistant("d")}, "SYSTEM", {{"tool1", "1", "{}"}}};
  expect_tekken_text(
      ChatTemplate::MistralV3, render_chat(ChatTemplate::MistralV3, chat),
      "<s>[INST]a[/INST]b</s>[AVAILABLE_TOOLS][{\"type\": \"function\", \"function\": {\"name\": "
      "\"tool1\", \"description\": \"1\", \"parameters\": {}}}][/AVAILABLE_TOOLS][INST]SYSTEM\n\nc"
      "[/INST]d</s>");
}

const ChatTool kToolT{
    "t", "",
    R"({"type": "object", "properties": {"g": {"type": "string"}, "h": {"type": "string"}}})"};

TEST(ChatTemplates, V7TextsOfTestTokenizerV7) {
  // test_tokenizer_v7.py test_encode_spm (a SentencePiece v7 vocabulary: spm_text).
  const ToolCall t_call = call(std::nullopt, "t", R"({"g": "h"})");
  const NormalizedChat first{{system("a"), user("a"), assistant("b", {t_call})}, "", {kToolT}};
  EXPECT_EQ(
      spm_text(render_chat(ChatTemplate::MistralV7, first)),
      R"(<s>[SYSTEM_PROMPT]▁a[/SYSTEM_PROMPT][AVAILABLE_TOOLS]▁[{"type":▁"function",▁"function":▁{"name":▁"t",▁"description":▁"",▁"parameters":▁{"type":▁"object",▁"properties":▁{"g":▁{"type":▁"string"},▁"h":▁{"type":▁"string"}}}}}][/AVAILABLE_TOOLS][INST]▁a[/INST]▁b[TOOL_CALLS]▁[{"name":▁"t",▁"arguments":▁{"g":▁"h"}}]</s>)");
  const NormalizedChat second{
      {system("a"), user("a"), user("c"), assistant("b", {t_call}), tool_result("b", "1234")},
      "",
      {kToolT}};
  EXPECT_EQ(
      spm_text(render_chat(ChatTemplate::MistralV7, second)),
      R"(<s>[SYSTEM_PROMPT]▁a[/SYSTEM_PROMPT][INST]▁a[/INST][AVAILABLE_TOOLS]▁[{"type":▁"function",▁"function":▁{"name":▁"t",▁"description":▁"",▁"parameters":▁{"type":▁"object",▁"properties":▁{"g":▁{"type":▁"string"},▁"h":▁{"type":▁"string"}}}}}][/AVAILABLE_TOOLS][INST]▁c[/INST]▁b[TOOL_CALLS]▁[{"name":▁"t",▁"arguments":▁{"g":▁"h"}}]</s>[TOOL_RESULTS]▁1234[TOOL_CONTENT]▁b[/TOOL_RESULTS])");

  // test_tokenize_empty_content_assistant_message: a prefix answer of tool calls alone (content
  // None or ""), and nothing at all refused.
  ChatMessage calls_only = assistant("", {call(std::nullopt, "test_fn", "{}")});
  calls_only.prefix = true;
  EXPECT_EQ(spm_text(render_chat(ChatTemplate::MistralV7, {{calls_only}, "", {}})),
            R"(<s>[TOOL_CALLS]▁[{"name":▁"test_fn",▁"arguments":▁{}}])");
  ChatMessage nothing = assistant("");
  nothing.prefix = true;
  EXPECT_THROW(render_chat(ChatTemplate::MistralV7, {{nothing}, "", {}}), Error);

  // test_assistant_tool_call_and_content (Tekken): content and calls in one message.
  const NormalizedChat both{{user("a"), assistant("b1b2", {call("000000000", "t1", "{}"),
                                                           call("111111111", "t2", "{}")})},
                            "",
                            {{"t1", "", "{}"}, {"t2", "", "{}"}}};
  expect_tekken_text(
      ChatTemplate::MistralV7, render_chat(ChatTemplate::MistralV7, both),
      R"(<s>[AVAILABLE_TOOLS][{"type": "function", "function": {"name": "t1", "description": "", "parameters": {}}}, {"type": "function", "function": {"name": "t2", "description": "", "parameters": {}}}][/AVAILABLE_TOOLS][INST]a[/INST]b1b2[TOOL_CALLS][{"name": "t1", "arguments": {}, "id": "000000000"}, {"name": "t2", "arguments": {}, "id": "111111111"}]</s>)");
}

TEST(ChatTemplates, V11TextsOfTestTokenizerV11) {
  // test_tokenizer_v11.py: encode_assistant_message alone (here after the BOS of a prompt).
  // Arguments that are not JSON are passed on as a JSON string.
  const auto text = [](std::vector<ToolCall> calls) {
    return render_chat(ChatTemplate::MistralV11, {{assistant("", std::move(calls))}, "", {}});
  };
  expect_tekken_text(
      ChatTemplate::MistralV11, text({call(std::nullopt, "a_a_a", "blabla")}),
      R"(<s>[TOOL_CALLS]a_a_a[ARGS]"blabla"</s>)");  // test_tokenize_assistant_message
  expect_tekken_text(
      ChatTemplate::MistralV11,
      text({call(std::nullopt, "a_a_a", "blabla"), call(std::nullopt, "b", "blu")}),
      R"(<s>[TOOL_CALLS]a_a_a[ARGS]"blabla"[TOOL_CALLS]b[ARGS]"blu"</s>)");  // ..._messages
  expect_tekken_text(ChatTemplate::MistralV11, text({call("ABC", "a_a_a", "blabla")}),
                     R"(<s>[TOOL_CALLS]a_a_a[CALL_ID]ABC[ARGS]"blabla"</s>)");  // ..._message_train
}

const std::vector<ChatTool> kMathTool = {
    {"math_interpreter", "Get the value of an arithmetic expression.",
     R"({"type": "object", "properties": {"expression": {"type": "string", "description": "Math expression."}}})"}};
const std::string kMathToolText =
    R"([AVAILABLE_TOOLS][{"type": "function", "function": {"name": "math_interpreter", "description": "Get the value of an arithmetic expression.", "parameters": {"type": "object", "properties": {"expression": {"type": "string", "description": "Math expression."}}}}}][/AVAILABLE_TOOLS])";

TEST(ChatTemplates, V13EndToEndReordersResultsOfTestTokenizerV13) {
  // test_tokenizer_v13.py test_end_to_end_v13: the results come in the wrong order and are put
  // in the order of their calls; tools go before the first user message.
  const ChatRequest request{
      {system("S"), user("U1"),
       assistant("A1", {call("123456789", "F1", "{}"), call("999999999", "F2", "{}")}),
       tool_result("R2", "999999999"), tool_result("R1", "123456789"), assistant("A2"), user("U2")},
      kMathTool};
  expect_tekken_text(
      ChatTemplate::MistralV13, completion(ChatTemplate::MistralV13, request),
      "<s>[SYSTEM_PROMPT]S[/SYSTEM_PROMPT]" + kMathToolText +
          "[INST]U1[/INST]A1[TOOL_CALLS]F1[ARGS]{}[TOOL_CALLS]F2[ARGS]{}</s>[TOOL_RESULTS]"
          "R1[/TOOL_RESULTS][TOOL_RESULTS]R2[/TOOL_RESULTS]A2</s>[INST]U2[/INST]");
}

TEST(ChatTemplates, V13ThinkingOfExpectedChatV13ThinkOrder) {
  // tests/data/expected/chat-v13-think-order/expected.json (recipe in
  // tests/integration/chat_v13_cases.py): thinking in the system prompt and in an answer.
  ChatMessage sys{Role::System, ""};
  sys.parts = {{ContentPart::Kind::Text, "S1"},
               {ContentPart::Kind::Thinking, "TS"},
               {ContentPart::Kind::Text, "S2"}};
  ChatMessage answer{Role::Assistant, ""};
  answer.parts = {{ContentPart::Kind::Thinking, "T1"}, {ContentPart::Kind::Text, "A2"}};
  const ChatRequest request{
      {sys, user("U1"),
       assistant("A1", {call("123456789", "F1", "{}"), call("999999999", "F2", "{}")}),
       tool_result("R1", "123456789"), tool_result("R2", "999999999"), answer, user("U2")},
      kMathTool};
  expect_tekken_text(
      ChatTemplate::MistralV13, completion(ChatTemplate::MistralV13, request),
      "<s>[SYSTEM_PROMPT]S1[THINK]TS[/THINK]S2[/SYSTEM_PROMPT]" + kMathToolText +
          "[INST]U1[/INST]A1[TOOL_CALLS]F1[ARGS]{}[TOOL_CALLS]F2[ARGS]{}</s>[TOOL_RESULTS]"
          "R1[/TOOL_RESULTS][TOOL_RESULTS]R2[/TOOL_RESULTS][THINK]T1[/THINK]A2</s>[INST]U2"
          "[/INST]");
  // Thinking needs v13.
  EXPECT_THROW(completion(ChatTemplate::MistralV11, request), Error);
}

TEST(ChatTemplates, V13CallIdsAndPrefixOfExpectedChatV13) {
  // chat-v13-call-id-slash and chat-v13-call-id-x: v13 takes any call id (and does not show it).
  for (const char* id : {"call/id-1", "x"}) {
    const ChatRequest request{
        {user("a"), assistant("", {call(id, "f", "{}")}), tool_result("b", id)}, {}};
    expect_tekken_text(ChatTemplate::MistralV13, completion(ChatTemplate::MistralV13, request),
                       "<s>[INST]a[/INST][TOOL_CALLS]f[ARGS]{}</s>[TOOL_RESULTS]b[/TOOL_RESULTS]");
    EXPECT_THROW(completion(ChatTemplate::MistralV11, request), Error) << id;
  }
  // chat-v13-prefixed-final: an answer to continue has no EOS.
  ChatMessage prefix = assistant("b");
  prefix.prefix = true;
  expect_tekken_text(ChatTemplate::MistralV13,
                     completion(ChatTemplate::MistralV13, {{user("a"), prefix}, {}}),
                     "<s>[INST]a[/INST]b");
}

// tests/data/expected/chat-sample-weather-full-released-p{7i,11i,13t}/expected.json: the
// get_weather_full sample (reference/chat-tools) on released v7, v11 and v13 tokenizers.
const std::string kWeatherTools =
    R"([AVAILABLE_TOOLS][{"type": "function", "function": {"name": "get_current_weather", "description": "Get the current weather", "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"}, "format": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "The temperature unit to use. Infer this from the users location."}}, "required": ["location", "format"]}}}, {"type": "function", "function": {"name": "get_n_day_weather_forecast", "description": "Get an N-day weather forecast", "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"}, "format": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "The temperature unit to use. Infer this from the users location."}, "num_days": {"type": "integer", "description": "The number of days to forecast"}}, "required": ["location", "format", "num_days"]}}}][/AVAILABLE_TOOLS])";
const std::string kWeatherSystem =
    "<s>[SYSTEM_PROMPT]Don't make assumptions about what values to plug into functions."
    "[/SYSTEM_PROMPT][SYSTEM_PROMPT]Ask for clarification if a user request is ambiguous."
    "[/SYSTEM_PROMPT]";
const std::string kForecast =
    R"({"2024-05-22":"22","2024-05-23":"23","2024-05-24":"24","2024-05-25":"25","2024-05-26":"26"})";

TEST(ChatTemplates, WeatherSampleOnV7V11V13OfMistralCommonsExpectedData) {
  BRISE_REQUIRE_TESTDATA(data);
  ASSERT_NE(tekken_mini(ChatTemplate::MistralV13), nullptr);  // the ids are checked too
  const ChatRequest request = parse_chat_request(
      test::read_file_text(data / "reference/chat-tools/get_weather_full/sample.json"));
  const std::string turn1 =
      "[INST]What's the weather like today[/INST]Sure, can you please provide me with your "
      "location?</s>[INST]I'm in Paris, France.[/INST]";
  const std::string turn2 =
      "The current temperature in Paris, France is 22 degrees Celsius.</s>[INST]what is the "
      "weather going to be like in Paris, France over the next x days[/INST]Please tell me the "
      "number of days you want the weather forecast for.</s>";
  const std::string args1 = R"({"location": "Paris, France", "format": "celsius"})";
  const std::string args2 = R"({"location": "Paris, France", "format": "celsius", "num_days": 5})";
  expect_tekken_text(
      ChatTemplate::MistralV7, completion(ChatTemplate::MistralV7, request),
      kWeatherSystem + turn1 + R"([TOOL_CALLS][{"name": "get_current_weather", "arguments": )" +
          args1 +
          R"(, "id": "123456789"}]</s>[TOOL_RESULTS]123456789[TOOL_CONTENT]22[/TOOL_RESULTS])" +
          turn2 + kWeatherTools +
          R"([INST]5 days[/INST][TOOL_CALLS][{"name": "get_n_day_weather_forecast", "arguments": )" +
          args2 + R"(, "id": "123456789"}]</s>[TOOL_RESULTS]123456789[TOOL_CONTENT])" + kForecast +
          "[/TOOL_RESULTS]");
  expect_tekken_text(
      ChatTemplate::MistralV11, completion(ChatTemplate::MistralV11, request),
      kWeatherSystem + turn1 + "[TOOL_CALLS]get_current_weather[CALL_ID]123456789[ARGS]" + args1 +
          "</s>[TOOL_RESULTS]123456789[TOOL_CONTENT]22[/TOOL_RESULTS]" + turn2 + kWeatherTools +
          "[INST]5 days[/INST][TOOL_CALLS]get_n_day_weather_forecast[CALL_ID]123456789[ARGS]" +
          args2 + "</s>[TOOL_RESULTS]123456789[TOOL_CONTENT]" + kForecast + "[/TOOL_RESULTS]");
  expect_tekken_text(ChatTemplate::MistralV13, completion(ChatTemplate::MistralV13, request),
                     kWeatherSystem + kWeatherTools + turn1 +
                         "[TOOL_CALLS]get_current_weather[ARGS]" + args1 +
                         "</s>[TOOL_RESULTS]22[/TOOL_RESULTS]" + turn2 +
                         "[INST]5 days[/INST][TOOL_CALLS]get_n_day_weather_forecast[ARGS]" + args2 +
                         "</s>[TOOL_RESULTS]" + kForecast + "[/TOOL_RESULTS]");
}

TEST(ChatTemplates, TekkenVocabulariesChooseTheirVersion) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto dir = data / "models/tekken-mini";
  EXPECT_EQ(detect_chat_template(Tokenizer(load_vocabulary(dir / "tekken.json"))),
            ChatTemplate::MistralV3);
  EXPECT_EQ(detect_chat_template(Tokenizer(load_vocabulary(dir / "tekken-v13.json"))),
            ChatTemplate::MistralV13);
  // llama.cpp's GGUF form keeps no version; the control tokens are those of v3 and v7 alike.
  EXPECT_EQ(detect_chat_template(Tokenizer(load_vocabulary(dir / "nemo-mini.gguf"))),
            ChatTemplate::MistralV3);
}

}  // namespace
}  // namespace brise
