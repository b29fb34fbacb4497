// Replays every input checked into tests/fuzz/regressions/<target>/ through the same target
// function the fuzzer ran (tests/fuzz/fuzz_targets.hpp), in the normal build. Each of these
// inputs once crashed brise or broke an invariant; now each must be handled (accepted or
// rejected with brise::Error) without any other exception. Under tests/sanitize.sh the replay
// also runs with ASan/UBSan.
#include <gtest/gtest.h>

#include <algorithm>

#include "fuzz/fuzz_targets.hpp"
#include "support/testdata.hpp"

namespace brise::fuzz {
namespace {

namespace fs = std::filesystem;

const fs::path kRegressions = fs::path(BRISE_SOURCE_DIR) / "tests/fuzz/regressions";

std::vector<fs::path> inputs_of(const std::string& target) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (!fs::is_directory(kRegressions / target, ec)) return files;
  for (const auto& entry : fs::directory_iterator(kRegressions / target))
    if (entry.is_regular_file() && entry.path().filename().string()[0] != '.')
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

void replay(const Target& target) {
  for (const auto& path : inputs_of(target.name)) {
    SCOPED_TRACE(path.string());
    const auto bytes = test::read_file_bytes(path);
    const Bytes data(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    try {
      target.run(data);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "escaped the target: " << e.what();
    }
  }
}

TEST(FuzzRegressions, EveryFolderNamesATarget) {
  std::error_code ec;
  if (!fs::is_directory(kRegressions, ec)) GTEST_SKIP() << "no regression inputs";
  for (const auto& entry : fs::directory_iterator(kRegressions)) {
    if (entry.is_directory()) {
      EXPECT_NE(find_target(entry.path().filename().string()), nullptr)
          << entry.path() << " is not the name of a fuzz target";
    }
  }
}

TEST(FuzzRegressions, TargetsWithoutTestData) {
  for (const auto& target : kTargets)
    if (!target.needs_testdata) replay(target);
}

TEST(FuzzRegressions, TokenizerTargets) {
  BRISE_REQUIRE_TESTDATA(data);
  load_fixed_tokenizers(data);
  for (const auto& target : kTargets)
    if (target.needs_testdata) replay(target);
}

// The harness itself: its UTF-8 oracle and its invariants hold on known inputs, so that a
// regression input that passes does so because brise handles it.
TEST(FuzzRegressions, HarnessOracles) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("caf\xC3\xA9 \xF0\x9F\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xC0\x80"));          // overlong NUL
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(valid_utf8("\xE2\x82"));          // truncated
  EXPECT_THROW(require(false, "x"), InvariantViolation);
}

TEST(FuzzRegressions, TokenizerTargetsAcceptOrdinaryInputs) {
  BRISE_REQUIRE_TESTDATA(data);
  load_fixed_tokenizers(data);
  // Selector byte 0 (Mistral v3), then a text with a NUL, runs of spaces, a tab, 2- and 4-byte
  // UTF-8: it must round-trip.
  std::string text("\x00", 1);
  text += "Hello  world\n\tcaf\xC3\xA9 \xF0\x9F\x98\x80";
  EXPECT_NO_THROW(encode_target({reinterpret_cast<const uint8_t*>(text.data()), text.size()}));
  // Ids 1, 0x110 and 0x20 with an out-of-range one (0xFFFF) before the last: decode and the
  // stream decoder must both reject it.
  const uint8_t ids[] = {0, 1, 0, 0x10, 0x01, 0xFF, 0xFF, 0x20, 0x00};
  EXPECT_NO_THROW(decode_target(ids));
}

// The Tekken target's three modes on ordinary inputs: a text (plain and with parse_special), ids
// including control ones, the real tekken.json, and a JSON that is not a vocabulary.
TEST(FuzzRegressions, TekkenTargetAcceptsOrdinaryInputs) {
  BRISE_REQUIRE_TESTDATA(data);
  load_fixed_tokenizers(data);
  auto run = [](uint8_t mode, const std::string& rest) {
    std::string input(1, static_cast<char>(mode));
    input += rest;
    EXPECT_NO_THROW(tekken_target({reinterpret_cast<const uint8_t*>(input.data()), input.size()}))
        << "mode " << int(mode);
  };
  const std::string text =
      "[INST] Caf\xC3\xA9  \xD9\xA3\xE0\xA4\xA8\xE0\xA5\x8D \xF0\x9F\x98\x80\n\n x";
  run(2, text);
  run(3, text);
  run(4, std::string("\x03\x00\x30\x04\x31\x04\xE7\x03", 8));  // ids 3, 1072, 1073, 999
  run(0, test::read_file_text(data / "models/tekken-mini/tekken.json"));
  run(1, "{\"config\": {}, \"vocab\": [1, 2]}");
}

// The chat target on mistral-common's samples, with every template on both vocabularies.
TEST(FuzzRegressions, ChatTargetAcceptsOrdinaryInputs) {
  BRISE_REQUIRE_TESTDATA(data);
  load_fixed_tokenizers(data);
  const std::string body =
      test::read_file_text(data / "reference/chat-tools/get_weather_full/sample.json");
  for (const uint8_t first : {0, 1, 2, 3, 4, 5, 0x82, 0x83}) {
    const std::string input = std::string(1, static_cast<char>(first)) + body;
    EXPECT_NO_THROW(chat_target({reinterpret_cast<const uint8_t*>(input.data()), input.size()}))
        << int(first);
  }
}

// The schema target on ordinary schemas in each mode; the tool-call modes do compile there (the
// target's vocabularies hold the templates' control tokens), so the walk is exercised.
TEST(FuzzRegressions, SchemaTargetAcceptsOrdinarySchemas) {
  BRISE_REQUIRE_TESTDATA(data);
  load_fixed_tokenizers(data);
  const std::string schema =
      R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"enum":["x",null]}},"required":["a"]})";
  for (const uint8_t first : {0, 1, 2, 3}) {
    const std::string input = std::string(1, static_cast<char>(first)) + schema;
    EXPECT_NO_THROW(schema_target({reinterpret_cast<const uint8_t*>(input.data()), input.size()}))
        << int(first);
  }
  const ChatTool tool{"f", "", schema};
  EXPECT_NO_THROW(
      Constraint::tool_calls(*fixed_tokenizers().mistral_v3, ChatTemplate::MistralV3, {&tool, 1}));
  EXPECT_NO_THROW(
      Constraint::tool_calls(*fixed_tokenizers().tekken_v13, ChatTemplate::MistralV13, {&tool, 1}));
}

}  // namespace
}  // namespace brise::fuzz
