// Mistral chat formats with the real v1 and v3 tokenizers. Expected ids are put together from
// the documented formats (mistral-common's InstructTokenizerV1 / V3) and SentencePiece's own
// encodings in tokenizers/vectors/*.json, never from brise's encoder:
// SentencePiece BPE encodes each whitespace-separated word on its own ("▁What", "▁is", ...), so
// the encoding of a text made of whole words of a vector case is the matching slice of that
// case's ids. Newlines are byte pieces and do not start words.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "brise/tokenizer.hpp"
#include "support/json_text.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

using Ids = std::vector<int32_t>;
using Role = ChatMessage::Role;

const std::string kInstText = "[INST] What is the capital of France? [/INST] Paris.</s>";
const std::string kLinesText = "Line one.\nLine two.\n\nLine four, after a blank line.\n";
const std::string kSystem = "Line one.\nLine two.";                 // kLinesText up to "\n\n"
const std::string kUserLines = "Line four, after a blank line.\n";  // kLinesText after "\n\n"
const std::string kQuestion = "What is the capital of France?";

struct Vectors {
  nlohmann::json json;
  // ids and pieces of the case whose text is `text`.
  std::pair<Ids, std::vector<std::string>> find(const std::string& text) const {
    for (const auto& c : json["cases"])
      if (c["text"] == text)
        return {c["ids"].get<Ids>(), c["pieces"].get<std::vector<std::string>>()};
    ADD_FAILURE() << "no vector case for " << text;
    return {};
  }
};

Ids slice(const Ids& ids, size_t begin, size_t end) {
  return Ids(ids.begin() + static_cast<ptrdiff_t>(begin),
             ids.begin() + static_cast<ptrdiff_t>(end));
}

Ids concat(std::initializer_list<Ids> parts) {
  Ids out;
  for (const Ids& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

struct Fixture {
  Tokenizer tokenizer;
  Vectors vectors;
  // Slices of the "[INST] ... [/INST] Paris.</s>" case, checked against its pieces.
  Ids inst, question, end_inst, paris, lines, user_lines;
};

Fixture load(const std::filesystem::path& data, const std::string& name) {
  const auto dir = data / "tokenizers";
  Fixture f{Tokenizer(read_sentencepiece_model(dir / name / "tokenizer.model")),
            Vectors{test::parse_json(test::read_file_text(dir / "vectors" / (name + ".json")))},
            {},
            {},
            {},
            {},
            {},
            {}};
  const auto [ids, pieces] = f.vectors.find(kInstText);
  // The derivation below relies on this segmentation of the vector case.
  const std::string sp = "\xE2\x96\x81";  // "▁"
  const std::vector<std::string> expected_pieces = {
      sp + "[",       "INST",    "]",           sp + "What", sp + "is", sp + "the",
      sp + "capital", sp + "of", sp + "France", "?",         sp + "[",  "/",
      "INST",         "]",       sp + "Paris"};
  EXPECT_EQ(std::vector<std::string>(pieces.begin(), pieces.begin() + 15), expected_pieces);
  f.inst = slice(ids, 0, 3);        // "▁[INST]", a whole word
  f.question = slice(ids, 3, 10);   // "What is the capital of France?", whole words
  f.end_inst = slice(ids, 10, 14);  // "▁[/INST]", a whole word
  // "Paris" alone: the case's word "▁Paris.</s>" splits into "▁Paris" + ".</" + ..., and BPE
  // only ever merges, so no merge crossed that boundary and "Paris" encodes as "▁Paris".
  f.paris = slice(ids, 14, 15);
  const auto [line_ids, line_pieces] = f.vectors.find(kLinesText);
  f.lines = line_ids;
  // "Line four, after a blank line.\n" on its own starts with the dummy prefix: "▁Line", then
  // the same words as in the case after "\n\n" ("Line" there has no "▁").
  EXPECT_EQ(line_pieces[0], "\xE2\x96\x81Line");
  EXPECT_EQ(line_pieces[9], "Line");
  f.user_lines = concat({slice(line_ids, 0, 1), slice(line_ids, 10, line_ids.size())});
  return f;
}

TEST(Chat, DetectsTheTemplateFromTheVocabulary) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto dir = data / "tokenizers";
  EXPECT_EQ(
      detect_chat_template(Tokenizer(read_sentencepiece_model(dir / "mistral-v1/tokenizer.model"))),
      ChatTemplate::MistralV1);
  EXPECT_EQ(
      detect_chat_template(Tokenizer(read_sentencepiece_model(dir / "mistral-v3/tokenizer.model"))),
      ChatTemplate::MistralV3);
  EXPECT_EQ(
      detect_chat_template(Tokenizer(read_sentencepiece_model(dir / "tok512/tokenizer.model"))),
      ChatTemplate::MistralV1);
}

TEST(Chat, V1MultiTurnWithSystemPrompt) {
  BRISE_REQUIRE_TESTDATA(data);
  const Fixture f = load(data, "mistral-v1");
  ASSERT_EQ(f.tokenizer.bos_id(), 1);
  ASSERT_EQ(f.tokenizer.eos_id(), 2);
  // v1 puts the system prompt before the FIRST user message:
  //   BOS encode("[INST] {system}\n\n{user1} [/INST]") encode("Paris") EOS
  //   encode("[INST] {user2} [/INST]")
  // "[INST] Line one.\nLine two.\n\nLine four, after a blank line.\n [/INST]" is the words
  // "▁[INST]", then exactly the words of the lines case, then "▁[/INST]".
  const std::vector<ChatMessage> messages = {
      {Role::System, kSystem},
      {Role::User, kUserLines},
      {Role::Assistant, "Paris"},
      {Role::User, kQuestion},
  };
  const Ids expected =
      concat({{1}, f.inst, f.lines, f.end_inst, f.paris, {2}, f.inst, f.question, f.end_inst});
  EXPECT_EQ(format_chat(f.tokenizer, ChatTemplate::MistralV1, messages), expected);
}

TEST(Chat, V1SingleTurnWithoutSystem) {
  BRISE_REQUIRE_TESTDATA(data);
  const Fixture f = load(data, "mistral-v1");
  const Ids expected = concat({{1}, f.inst, f.question, f.end_inst});
  EXPECT_EQ(format_chat(f.tokenizer, ChatTemplate::MistralV1, {{Role::User, kQuestion}}), expected);
}

TEST(Chat, V3MultiTurnWithSystemPrompt) {
  BRISE_REQUIRE_TESTDATA(data);
  const Fixture f = load(data, "mistral-v3");
  ASSERT_EQ(f.tokenizer.find_piece("[INST]"), 3);
  ASSERT_EQ(f.tokenizer.find_piece("[/INST]"), 4);
  // v3 puts the system prompt before the LAST user message and inserts [INST]=3 / [/INST]=4 by
  // id; the answer loses its trailing spaces:
  //   BOS 3 encode(user1) 4 encode("Paris") EOS 3 encode("{system}\n\n{user2}") 4
  // and "{system}\n\n{user2}" is exactly the lines case.
  const std::vector<ChatMessage> messages = {
      {Role::System, kSystem},
      {Role::User, kQuestion},
      {Role::Assistant, "Paris  "},
      {Role::User, kUserLines},
  };
  const Ids expected = concat({{1, 3}, f.question, {4}, f.paris, {2, 3}, f.lines, {4}});
  EXPECT_EQ(format_chat(f.tokenizer, ChatTemplate::MistralV3, messages), expected);
}

TEST(Chat, V3ControlTokensAreNeverProducedFromText) {
  BRISE_REQUIRE_TESTDATA(data);
  const Fixture f = load(data, "mistral-v3");
  // The user literally types "[INST] ... </s>": that text is encoded like any other (the whole
  // vector case), and only the template's own [INST]/[/INST] are control ids.
  const auto [case_ids, pieces] = f.vectors.find(kInstText);
  const Ids expected = concat({{1, 3}, case_ids, {4}});
  EXPECT_EQ(format_chat(f.tokenizer, ChatTemplate::MistralV3, {{Role::User, kInstText}}), expected);
}

TEST(Chat, ConsecutiveUserMessagesAreMergedAndSystemOnlyStartsEmpty) {
  BRISE_REQUIRE_TESTDATA(data);
  for (const char* name : {"mistral-v1", "mistral-v3"}) {
    const Fixture f = load(data, name);
    const bool v3 = std::string(name) == "mistral-v3";
    const ChatTemplate tmpl = v3 ? ChatTemplate::MistralV3 : ChatTemplate::MistralV1;
    // mistral-common's normalizer joins a run of user messages with "\n\n": here exactly the
    // lines case.
    const std::vector<ChatMessage> two_users = {{Role::User, kSystem}, {Role::User, kUserLines}};
    const Ids merged =
        v3 ? concat({{1, 3}, f.lines, {4}}) : concat({{1}, f.inst, f.lines, f.end_inst});
    EXPECT_EQ(format_chat(f.tokenizer, tmpl, two_users), merged) << name;
    // A conversation that does not start with a user message gets an empty one first, which
    // takes the system prompt ("{system}\n\n" + ""): the lines case cut after "\n\n" (byte
    // pieces, which no merge crosses).
    const Ids system_only = format_chat(f.tokenizer, tmpl, {{Role::System, kSystem}});
    const Ids system_words = slice(f.lines, 0, 9);  // "Line one.\nLine two.\n\n"
    ASSERT_EQ(f.tokenizer.piece(f.lines[7]), "<0x0A>");
    ASSERT_EQ(f.tokenizer.piece(f.lines[8]), "<0x0A>");
    EXPECT_EQ(system_only, v3 ? concat({{1, 3}, system_words, {4}})
                              : concat({{1}, f.inst, system_words, f.end_inst}))
        << name;
  }
}

TEST(Chat, APrefixAnswerHasNoEos) {
  BRISE_REQUIRE_TESTDATA(data);
  const Fixture f = load(data, "mistral-v3");
  ChatRequest request{{{Role::User, kQuestion}, {Role::Assistant, "Paris"}}, {}};
  request.messages[1].prefix = true;
  EXPECT_EQ(format_chat(f.tokenizer, ChatTemplate::MistralV3, request),
            concat({{1, 3}, f.question, {4}, f.paris}));
}

TEST(Chat, ConversationsMistralCommonRefusesAreErrors) {
  BRISE_REQUIRE_TESTDATA(data);
  const Fixture f = load(data, "mistral-v3");
  ChatMessage tool_result{Role::Tool, "22"};
  tool_result.tool_call_id = "123456789";
  const std::vector<std::vector<ChatMessage>> bad = {
      {},                                           // nothing
      {{Role::Assistant, "hello"}},                 // one message, not user/system
      {{Role::User, "a"}, {Role::Assistant, "b"}},  // ends with an answer
      {{Role::User, "a"}, tool_result},             // a result after a user message
      {{Role::System, "s"}, tool_result},           // ... after a system message
      {{Role::User, "a"}, {Role::Assistant, ""}, {Role::User, "b"}},  // an empty answer
  };
  for (const auto tmpl : {ChatTemplate::MistralV1, ChatTemplate::MistralV3})
    for (size_t i = 0; i < bad.size(); ++i)
      EXPECT_THROW(format_chat(f.tokenizer, tmpl, bad[i]), Error) << i;
}

TEST(Chat, V3NeedsTheControlPieces) {
  BRISE_REQUIRE_TESTDATA(data);
  const Fixture f = load(data, "mistral-v1");
  EXPECT_THROW(format_chat(f.tokenizer, ChatTemplate::MistralV3, {{Role::User, "hi"}}), Error);
}

}  // namespace
}  // namespace brise
