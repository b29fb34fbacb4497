// The generate, logits and chat subcommands, run as a user would: outputs against the stories260k
// references, exit codes 2 for usage errors and 1 for bad input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "support/json_text.hpp"
#include "support/json_validator.hpp"
#include "support/stories.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string cli() {
  return quote(test::cli_path().string());
}

nlohmann::json manifest(const fs::path& data, const std::string& name) {
  return test::parse_json(
      test::read_file_text(data / "reference/stories260k" / name / "manifest.json"));
}

class CliGenerate : public ::testing::Test {
 protected:
  void SetUp() override {
    BRISE_REQUIRE_TESTDATA(dir);
    data_ = dir;
    model_ = quote(test::converted_model(data_, "models/stories260k/hf").string());
  }
  // Commands pass -t 1: the model is tiny, and OpenMP spinning on a busy machine only slows it.
  test::CommandResult run(const std::string& args) { return test::run_command(cli() + " " + args); }
  fs::path data_;
  std::string model_;
};

TEST_F(CliGenerate, GenerateJsonReproducesTheReferenceAndStopsOnBos) {
  // full_gen09: run.c greedy from "The dog", 256 steps, stopped when the argmax was BOS.
  const auto m = manifest(data_, "full_gen09_the_dog_bos_stop");
  const Ids prompt = m.at("prompt_ids").get<Ids>();
  const Ids all = m.at("token_ids").get<Ids>();
  Ids expected(all.begin() + static_cast<ptrdiff_t>(prompt.size()), all.end());
  expected.push_back(1);  // the BOS that stopped it
  const auto r = run("generate -m " + model_ + " -p " + quote(m.at("prompt").get<std::string>()) +
                     " -n 256 --temp 0 --stop-id 1 -t 1 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = test::parse_json(r.out);
  EXPECT_EQ(j.at("prompt_ids").get<Ids>(), prompt);
  EXPECT_EQ(j.at("generated_ids").get<Ids>(), expected);
  EXPECT_EQ(j.at("stop_reason"), "stop_id");
  const std::string text = m.at("text").get<std::string>();
  EXPECT_EQ(m.at("prompt").get<std::string>() + j.at("text").get<std::string>(), text);
  EXPECT_GT(j.at("prefill_tok_s").get<double>(), 0.0);
  EXPECT_GT(j.at("decode_tok_s").get<double>(), 0.0);
}

TEST_F(CliGenerate, GenerateWithASlidingWindowOverride) {
  // swgen8: greedy under W = 8 from "Once upon a time", stopped on BOS. The model file has full
  // attention; --sliding-window 8 turns it into the reference's rolling cache.
  const auto m = manifest(data_, "swgen8_once_upon_a_time");
  const Ids prompt = m.at("prompt_ids").get<Ids>();
  const Ids all = m.at("token_ids").get<Ids>();
  Ids expected(all.begin() + static_cast<ptrdiff_t>(prompt.size()), all.end());
  expected.push_back(1);
  const auto r =
      run("generate -m " + model_ + " -p " + quote(m.at("prompt_text").get<std::string>()) +
          " -n 196 --temp 0 --stop-id 1 -t 1 --sliding-window 8 --chunk 3 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = test::parse_json(r.out);
  EXPECT_EQ(j.at("prompt_ids").get<Ids>(), prompt);
  EXPECT_EQ(j.at("generated_ids").get<Ids>(), expected);
}

TEST_F(CliGenerate, GenerateStreamsTextAndReportsSpeed) {
  // full_gen02: 200 steps from "Once upon a time" (5 prompt tokens) = 196 generated tokens.
  const auto m = manifest(data_, "full_gen02_once_upon_a_time");
  const std::string prompt = m.at("prompt").get<std::string>();
  const auto r = run("generate -m " + model_ + " -p " + quote(prompt) +
                     " -n 196 --temp 0 -t 1 --chunk 2 --seed 5");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(prompt + r.out, m.at("text").get<std::string>() + "\n");
  EXPECT_NE(r.err.find("tok/s"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("max_tokens"), std::string::npos) << r.err;
}

// --json-schema: stories260k, which knows no JSON, writes an object the schema allows (checked by
// the test's own validator); a keyword outside the subset is refused with its name and the file.
TEST_F(CliGenerate, GenerateJsonSchemaConstrainsTheOutput) {
  const fs::path dir = test::scratch_dir("cli_json_schema");
  const std::string schema =
      R"({"type": "object", "properties": {"name": {"type": "string"},
          "kind": {"enum": ["cat", "dog"]}}, "required": ["kind"], "additionalProperties": false})";
  test::write_file_text(dir / "schema.json", schema);
  test::write_file_text(dir / "bad.json", R"({"type": "string", "format": "date"})");
  for (const std::string seed : {"1", "2"}) {
    const auto r = run("generate -m " + model_ + " -p 'The dog' -n 48 --temp 1 --seed " + seed +
                       " -t 1 --json-schema " + quote((dir / "schema.json").string()));
    ASSERT_EQ(r.status, 0) << r.err;
    const auto violation =
        test::json_text_violation(r.out.substr(0, r.out.rfind('\n')), test::parse_json(schema));
    EXPECT_FALSE(violation) << *violation << " in " << r.out;
  }
  const auto bad = run("generate -m " + model_ + " -p hi -t 1 --json-schema " +
                       quote((dir / "bad.json").string()));
  EXPECT_EQ(bad.status, 1) << bad.err;
  EXPECT_NE(bad.err.find("'format'"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("bad.json"), std::string::npos) << bad.err;
  const auto both = run("generate -m " + model_ + " -p hi --json-object --json-schema " +
                        quote((dir / "schema.json").string()));
  EXPECT_EQ(both.status, 2) << both.err;
}

TEST_F(CliGenerate, LogitsMatchTheReference) {
  const auto m = manifest(data_, "full_short01_16tok");
  const Ids ids = m.at("token_ids").get<Ids>();
  std::string ids_text;
  for (int32_t id : ids) {
    if (!ids_text.empty()) ids_text += ' ';
    ids_text += std::to_string(id);
  }
  const fs::path out = test::scratch_dir("cli_logits") / "short01.f32";
  const auto r = run("logits -m " + model_ + " --ids " + quote(ids_text) + " -t 1 --chunk 5 -o " +
                     quote(out.string()));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("[16, 512]"), std::string::npos) << r.err;
  const auto got = test::read_f32_file(out);
  const auto want =
      test::read_f32_file(data_ / "reference/stories260k/full_short01_16tok/logits.f32");
  ASSERT_EQ(got.size(), 16u * 512u);
  ASSERT_EQ(want.size(), got.size());
  EXPECT_LE(test::max_abs_diff(got.data(), want.data(), got.size()), 1e-4f);
}

TEST_F(CliGenerate, ChatAnswersTwoTurnsFromAPipe) {
  const auto r = test::run_command("printf 'Hi\\nHow are you?\\n' | " + cli() + " chat -m " +
                                   model_ + " -n 12 --temp 0 -t 1 --system 'Tell a story.'");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.find("> "), std::string::npos);  // no prompt when stdin is not a terminal
  // Each answer ends with a newline; stories260k answers may hold newlines of their own.
  EXPECT_GE(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
  EXPECT_TRUE(r.err.empty()) << r.err;
  // Greedy and deterministic: the same conversation gives the same answers.
  const auto again = test::run_command("printf 'Hi\\nHow are you?\\n' | " + cli() + " chat -m " +
                                       model_ + " -n 12 --temp 0 -t 1 --system 'Tell a story.'");
  EXPECT_EQ(again.out, r.out);
  // The first turn alone answers the same, and the second turn added an answer of its own.
  const auto one = test::run_command("printf 'Hi\\n' | " + cli() + " chat -m " + model_ +
                                     " -n 12 --temp 0 -t 1 --system 'Tell a story.'");
  ASSERT_EQ(one.status, 0) << one.err;
  EXPECT_TRUE(r.out.starts_with(one.out)) << one.out << "\n---\n" << r.out;
  EXPECT_GT(r.out.size(), one.out.size() + 1);
}

TEST_F(CliGenerate, UsageErrorsExitWith2) {
  const std::vector<std::string> bad = {
      "generate -m " + model_ + " -p hi --chunk 0",
      "generate -m " + model_ + " -p hi --no-such-option",
      "generate -p hi",
      "generate -m " + model_ + " -p hi --temp -1",
      "generate -m " + model_ + " -p hi --top-p 0",
      "generate -m " + model_ + " -p hi --sliding-window 0",
      "generate -m " + model_ + " -p hi --kv-type q8",
      "generate -m " + model_ + " -p hi -n",
      "logits --ids 1 -o x.f32",
      "logits -m " + model_ + " -o x.f32",
      "logits -m " + model_ + " --ids 'one two' -o x.f32",
      "logits -m " + model_ + " --ids 1",
      "chat -m " + model_ + " --chunk 0",
      "chat",
  };
  for (const auto& args : bad) {
    const auto r = run(args + " < /dev/null");
    EXPECT_EQ(r.status, 2) << args << "\n" << r.err;
    EXPECT_FALSE(r.err.empty()) << args;
  }
  for (const std::string cmd : {"generate", "chat", "logits"}) {
    const auto r = run(cmd + " --help");
    EXPECT_EQ(r.status, 0) << cmd;
    EXPECT_NE(r.out.find("usage: brise " + cmd), std::string::npos) << r.out;
  }
}

TEST_F(CliGenerate, BadInputExitsWith1AndSaysWhy) {
  const fs::path dir = test::scratch_dir("cli_bad_input");
  {
    const fs::path out = dir / "bad.f32";
    const auto r = run("logits -m " + model_ + " --ids '1 403 600' -o " + quote(out.string()));
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("600"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("outside the vocabulary"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
  {
    const std::string missing = (dir / "no-such-model.gguf").string();
    const std::vector<std::string> commands = {
        "generate -p hi", "logits --ids 1 -o " + quote((dir / "x.f32").string()), "chat"};
    for (const std::string& cmd : commands) {
      const auto r = run(cmd + " -m " + quote(missing) + " < /dev/null");
      EXPECT_EQ(r.status, 1) << cmd << "\n" << r.err;
      EXPECT_NE(r.err.find("no-such-model.gguf"), std::string::npos) << r.err;
    }
  }
  {
    const auto r = run("generate -m " + model_ + " -p '' --no-bos");
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("empty"), std::string::npos) << r.err;
  }
  {
    // stories260k's heads are 8 wide: a q8_0 cache (blocks of 32 values of a head) is refused.
    const auto r = run("generate -m " + model_ + " -p hi --kv-type q8_0");
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("q8_0 KV cache needs head_dim a multiple of 32"), std::string::npos)
        << r.err;
  }
  {
    const auto r = run("generate -m " + model_ + " -p hi --stop-id 512");
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("512"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace brise
