// `brise tokenize` / `brise detokenize` run as processes on the real tokenizer.model files (and a
// GGUF holding the same vocabulary), checked against the SentencePiece vectors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "brise/gguf.hpp"
#include "brise/tokenizer.hpp"
#include "support/cli_text.hpp"
#include "support/json_text.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

using test::cli;
using test::ids_line;
using test::join_ids;
using test::quote;
using test::write_file;

TEST(CliTokenize, EveryVectorCaseFromAFile) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path dir = test::scratch_dir("CliTokenize_EveryVectorCaseFromAFile");
  // Every tok512 case, and every fourth mistral-v1 case (loading its 32000 pieces dominates the
  // run time of each process).
  for (const auto& [name, step] : {std::pair{"tok512", 1}, std::pair{"mistral-v1", 4}}) {
    const fs::path model = data / "tokenizers" / name / "tokenizer.model";
    const json v = test::parse_json(
        test::read_file_text(data / "tokenizers/vectors" / (std::string(name) + ".json")));
    for (size_t index = 0; index < v["cases"].size(); index += step) {
      const json& c = v["cases"][index];
      const fs::path text = dir / ("case" + std::to_string(index) + ".txt");
      test::write_file_text(text, c["text"].get<std::string>());
      const auto r = test::run_command(cli() + " tokenize -m " + quote(model.string()) + " -f " +
                                       quote(text.string()));
      ASSERT_EQ(r.status, 0) << r.err;
      EXPECT_EQ(r.out, ids_line(c["ids"].get<std::vector<int32_t>>())) << name << " " << c["name"];
    }
    // --bos on one case, and detokenize of the same ids.
    const auto& c = v["cases"][4];
    const auto r = test::run_command(cli() + " tokenize --bos -m " + quote(model.string()) +
                                     " -p " + quote(c["text"].get<std::string>()));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, ids_line(c["ids_with_bos"].get<std::vector<int32_t>>()));
    const auto d =
        test::run_command(cli() + " detokenize -m " + quote(model.string()) + " --ids " +
                          quote(join_ids(c["ids_with_bos"].get<std::vector<int32_t>>())));
    ASSERT_EQ(d.status, 0) << d.err;
    EXPECT_EQ(d.out, c["decoded"].get<std::string>() + "\n");
  }
}

TEST(CliTokenize, JsonOutput) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path model = data / "tokenizers/mistral-v3/tokenizer.model";
  const json v =
      test::parse_json(test::read_file_text(data / "tokenizers/vectors/mistral-v3.json"));
  // The [INST] case: the markers are text here, not control ids.
  const json* inst = nullptr;
  for (const auto& c : v["cases"])
    if (c["text"].get<std::string>().rfind("[INST]", 0) == 0) inst = &c;
  ASSERT_NE(inst, nullptr);
  const auto r = test::run_command(cli() + " tokenize --json -m " + quote(model.string()) + " -p " +
                                   quote((*inst)["text"].get<std::string>()));
  ASSERT_EQ(r.status, 0) << r.err;
  const json out = test::parse_json(r.out);
  EXPECT_EQ(out["ids"], (*inst)["ids"]);
  EXPECT_EQ(out["pieces"], (*inst)["pieces"]);
  EXPECT_EQ(out.size(), 2u);
}

TEST(CliTokenize, GgufModelGivesTheSameIds) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path dir = test::scratch_dir("CliTokenize_Gguf");
  const Vocabulary vocab = read_sentencepiece_model(data / "tokenizers/mistral-v1/tokenizer.model");
  gguf::Writer writer;
  write_vocabulary(writer, vocab);
  const auto image = writer.header_bytes();
  const fs::path gguf_path = dir / "vocab.gguf";
  test::write_file_text(gguf_path,
                        std::string(reinterpret_cast<const char*>(image.data()), image.size()));
  const auto r =
      test::run_command(cli() + " tokenize -m " + quote(gguf_path.string()) + " -p 'Hello world'");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "22557 1526\n");  // mistral-v1.json, case "plain" of decode_cases
  const auto d = test::run_command(cli() + " detokenize -m " + quote(gguf_path.string()) +
                                   " --ids '1 22557 1526 2'");
  ASSERT_EQ(d.status, 0) << d.err;
  EXPECT_EQ(d.out, "Hello world\n");
}

TEST(CliTokenize, UsageAndErrorsExitCodes) {
  BRISE_REQUIRE_TESTDATA(data);
  const std::string model = quote((data / "tokenizers/tok512/tokenizer.model").string());
  const fs::path dir = test::scratch_dir("CliTokenize_Errors");
  const fs::path bad_utf8 = dir / "bad.txt";
  test::write_file_text(bad_utf8, "ok \xFF");

  struct Case {
    std::string args;
    int status;
    const char* in_stderr;
  };
  const Case cases[] = {
      {"tokenize -m " + model, 2, "exactly one of -p and -f"},
      {"tokenize -m " + model + " -p a -f " + quote(bad_utf8.string()), 2, "exactly one"},
      {"tokenize -p a", 2, "-m"},
      {"tokenize -m " + model + " -p a --bogus", 2, "--bogus"},
      {"tokenize -m /nonexistent/tokenizer.model -p a", 1, "/nonexistent/tokenizer.model"},
      {"tokenize -m " + model + " -f /nonexistent/text.txt", 1, "/nonexistent/text.txt"},
      {"tokenize -m " + model + " -f " + quote(bad_utf8.string()), 1, "invalid UTF-8 at byte 3"},
      {"tokenize -m " + quote(bad_utf8.string()) + " -p a", 1, "bad.txt"},
      {"detokenize -m " + model + " --ids '1 512'", 1, "512"},
      {"detokenize -m " + model + " --ids '1 x'", 2, "--ids"},
      {"detokenize -m " + model, 2, "--ids"},
  };
  for (const Case& c : cases) {
    const auto r = test::run_command(cli() + " " + c.args);
    EXPECT_EQ(r.status, c.status) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.in_stderr), std::string::npos) << c.args << "\nstderr: " << r.err;
  }
  for (const char* command : {"tokenize", "detokenize"}) {
    const auto r = test::run_command(cli() + " " + command + " --help");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("usage: brise " + std::string(command)), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace brise
