// mistral-common's chat samples with tools (reference/chat-tools/: its tests/data/samples, the
// OpenAI-shaped request bodies and the ids and text its MistralTokenizer.v2()/.v3()
// encode_chat_completion gives for them, on the real v3 SentencePiece vocabulary): brise's ids
// must be those ids, and the pieces of its ids that text.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "brise/chat.hpp"
#include "brise/tokenizer.hpp"
#include "support/json_text.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

namespace fs = std::filesystem;

const char* const kSamples[] = {"get_weather_full", "several_calls", "no_tools"};

std::string pieces_text(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  std::string text;
  for (const int32_t id : ids) text += tokenizer.piece(id);
  return text;
}

void check_samples(ChatTemplate tmpl, const std::string& suffix) {
  BRISE_REQUIRE_TESTDATA(data);
  const Tokenizer tokenizer(
      read_sentencepiece_model(data / "tokenizers/mistral-v3/tokenizer.model"));
  for (const char* name : kSamples) {
    SCOPED_TRACE(name);
    const fs::path dir = data / "reference/chat-tools" / name;
    const ChatRequest request = parse_chat_request(test::read_file_text(dir / "sample.json"));
    const std::vector<int32_t> ids = format_chat(tokenizer, tmpl, request);
    const auto expected =
        test::parse_json(test::read_file_text(dir / ("tokens_" + suffix + ".json")))["tokens"];
    EXPECT_EQ(ids, expected.get<std::vector<int32_t>>());
    EXPECT_EQ(pieces_text(tokenizer, ids), test::read_file_text(dir / ("text_" + suffix + ".txt")));
  }
}

TEST(ChatSamples, V2IdsAndTextAreMistralCommons) {
  check_samples(ChatTemplate::MistralV2, "v2");
}

TEST(ChatSamples, V3IdsAndTextAreMistralCommons) {
  check_samples(ChatTemplate::MistralV3, "v3");
}

TEST(ChatSamples, TheV3VocabularyChoosesV3) {
  BRISE_REQUIRE_TESTDATA(data);
  const Tokenizer tokenizer(
      read_sentencepiece_model(data / "tokenizers/mistral-v3/tokenizer.model"));
  EXPECT_EQ(detect_chat_template(tokenizer), ChatTemplate::MistralV3);
}

}  // namespace
}  // namespace brise
