// `brise tokenize` / `brise detokenize` as processes on Tekken vocabularies (tekken.json and
// llama.cpp's GGUF form), checked against ../shared/reference/tekken-mini/encode.json.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/cli_text.hpp"
#include "support/json_text.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;
using test::cli;
using test::quote;

json reference(const fs::path& data) {
  return test::parse_json(test::read_file_text(data / "reference/tekken-mini/encode.json"));
}

TEST(TekkenCli, TokenizeEveryCaseFromAFile) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path dir = test::scratch_dir("TekkenCli_Tokenize");
  const json ref = reference(data);
  // Every case with tekken.json, every fifth with the GGUF form.
  for (const auto& [file, step] : {std::pair{"tekken.json", 1}, std::pair{"nemo-mini.gguf", 5}}) {
    const std::string model = quote((data / "models/tekken-mini" / file).string());
    for (size_t i = 0; i < ref["cases"].size(); i += step) {
      const json& c = ref["cases"][i];
      const fs::path text = dir / ("case" + std::to_string(i) + ".txt");
      test::write_file(text, c["text"].get<std::string>());
      const auto r =
          test::run_command(cli() + " tokenize -m " + model + " -f " + quote(text.string()));
      ASSERT_EQ(r.status, 0) << r.err;
      EXPECT_EQ(r.out, test::ids_line(c["ids"].get<std::vector<int32_t>>()))
          << file << " " << c["name"];
    }
  }
}

TEST(TekkenCli, PromptBosSpecialAndJson) {
  BRISE_REQUIRE_TESTDATA(data);
  const std::string model = quote((data / "models/tekken-mini/tekken.json").string());
  auto run = [&](const std::string& args) {
    const auto r = test::run_command(cli() + " tokenize -m " + model + " " + args);
    EXPECT_EQ(r.status, 0) << args << "\n" << r.err;
    return r.out;
  };
  // hello_world in encode.json: [1072, 1303, 1381, 1313, 1272, 1720].
  EXPECT_EQ(run("-p 'Hello world'"), "1072 1303 1381 1313 1272 1720\n");
  EXPECT_EQ(run("--bos -p 'Hello world'"), "1 1072 1303 1381 1313 1272 1720\n");
  // Control tokens' texts stay text unless --special asks for them.
  std::istringstream as_text(run("-p '[INST]Hello world[/INST]'"));
  for (int32_t id; as_text >> id;) EXPECT_GE(id, 1000);
  EXPECT_EQ(run("--special -p '[INST]Hello world[/INST]'"), "3 1072 1303 1381 1313 1272 1720 4\n");
  const json out = test::parse_json(run("--json -p 'Hello'"));
  EXPECT_EQ(out["ids"], test::parse_json("[1072, 1303, 1381]"));
  EXPECT_EQ(out["pieces"], test::parse_json(R"(["H", "el", "lo"])"));
  // A piece that is only part of a character shows as U+FFFD in the JSON.
  const json partial = test::parse_json(run("--json -p '\xF0\x93\x82\x80'"));  // lone_rare_char
  EXPECT_EQ(partial["ids"], test::parse_json("[1240, 1147, 1130, 1128]"));
  EXPECT_EQ(partial["pieces"][0], "\xEF\xBF\xBD");
}

TEST(TekkenCli, DetokenizeEveryDecodeCase) {
  BRISE_REQUIRE_TESTDATA(data);
  const json ref = reference(data);
  for (const char* file : {"tekken.json", "tekken-v13.json", "ministral-mini.gguf"}) {
    const std::string model = quote((data / "models/tekken-mini" / file).string());
    for (const auto& c : ref["decode_cases"]) {
      const auto r = test::run_command(cli() + " detokenize -m " + model + " --ids " +
                                       quote(test::join_ids(c["ids"].get<std::vector<int32_t>>())));
      ASSERT_EQ(r.status, 0) << r.err;
      EXPECT_EQ(r.out, c["decoded"].get<std::string>() + "\n") << file << " " << c["name"];
    }
  }
}

TEST(TekkenCli, Errors) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path dir = test::scratch_dir("TekkenCli_Errors");
  const fs::path bad = dir / "tekken.json";
  test::write_file(bad, R"({"config": {"pattern": "x"}, "vocab": []})");
  const std::string model = quote((data / "models/tekken-mini/tekken.json").string());
  struct Case {
    std::string args;
    int status;
    const char* in_stderr;
  };
  const Case cases[] = {
      {"tokenize -m " + quote(bad.string()) + " -p a", 1, "config: missing key 'version'"},
      {"detokenize -m " + model + " --ids '1072 7256'", 1, "token id 7256 is out of range"},
      {"detokenize -m " + model + " --ids '99999'", 1, "token id 99999 is out of range"},
      {"tokenize -m " + model + " -p $'\\xff'", 1, "invalid UTF-8 at byte 0"},
  };
  for (const Case& c : cases) {
    const auto r = test::run_command("bash -c " + quote(cli() + " " + c.args));
    EXPECT_EQ(r.status, c.status) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.in_stderr), std::string::npos) << c.args << "\nstderr: " << r.err;
  }
}

}  // namespace
}  // namespace brise
