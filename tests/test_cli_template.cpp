// `brise template` and `brise chat --tools` run as a user would. `brise template` on
// mistral-common's chat samples (reference/chat-tools) gives their ids and text; `brise chat
// --tools` runs a whole tool round trip on a scripted model: a tekken-v13 model whose greedy answer
// to each token is fixed (all layers zero, so the last token alone decides the logits), answering a
// prompt that ends with [/INST] by [TOOL_CALLS]f[ARGS]{}</s> and one that ends with [/TOOL_RESULTS]
// by "ok</s>".
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "brise/chat.hpp"
#include "brise/tokenizer.hpp"
#include "support/cli_text.hpp"
#include "support/json_text.hpp"
#include "support/scripted_model.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using test::cli;
using test::ids_line;
using test::quote;
using test::write_file;

TEST(CliTemplate, SamplesGiveMistralCommonsIdsAndText) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path model = data / "tokenizers/mistral-v3/tokenizer.model";
  for (const char* name : {"get_weather_full", "several_calls", "no_tools"}) {
    const fs::path dir = data / "reference/chat-tools" / name;
    for (const char* version : {"v2", "v3"}) {
      SCOPED_TRACE(std::string(name) + " " + version);
      const auto ids = test::parse_json(test::read_file_text(
          dir / ("tokens_" + std::string(version) + ".json")))["tokens"]
                           .get<std::vector<int32_t>>();
      const std::string text =
          test::read_file_text(dir / ("text_" + std::string(version) + ".txt"));
      // v3 is the vocabulary's own; v2 is asked for.
      const std::string option = std::string(version) == "v2" ? " --template v2" : "";
      const auto r = test::run_command(cli() + " template -m " + quote(model.string()) + " " +
                                       quote((dir / "sample.json").string()) + option);
      ASSERT_EQ(r.status, 0) << r.err;
      EXPECT_EQ(r.out, ids_line(ids) + text + "\n");
      const auto j = test::run_command(cli() + " template --json -m " + quote(model.string()) +
                                       " " + quote((dir / "sample.json").string()) + option);
      ASSERT_EQ(j.status, 0) << j.err;
      const json out = test::parse_json(j.out);
      EXPECT_EQ(out["ids"].get<std::vector<int32_t>>(), ids);
      std::string pieces;
      for (const auto& p : out["pieces"]) pieces += p.get<std::string>();
      EXPECT_EQ(pieces, text);
    }
  }
}

TEST(CliTemplate, TekkenJsonChoosesItsVersion) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path sample = data / "reference/chat-tools/get_weather_full/sample.json";
  for (const char* file : {"tekken.json", "tekken-v13.json"}) {
    const fs::path model = data / "models/tekken-mini" / file;
    const Tokenizer tokenizer(load_vocabulary(model));
    const ChatTemplate tmpl =
        std::string(file) == "tekken.json" ? ChatTemplate::MistralV3 : ChatTemplate::MistralV13;
    const auto expected =
        format_chat(tokenizer, tmpl, parse_chat_request(test::read_file_text(sample)));
    const auto r = test::run_command(cli() + " template --json -m " + quote(model.string()) + " " +
                                     quote(sample.string()));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(test::parse_json(r.out)["ids"].get<std::vector<int32_t>>(), expected) << file;
  }
}

TEST(CliTemplate, BadConversationsAndUsage) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path dir = test::scratch_dir("CliTemplate_Bad");
  const std::string model = quote((data / "tokenizers/mistral-v3/tokenizer.model").string());
  const fs::path ends_with_answer = dir / "answer_last.json";
  write_file(ends_with_answer, R"({"messages": [{"role": "user", "content": "a"},
                                                {"role": "assistant", "content": "b"}]})");
  const fs::path broken = dir / "broken.json";
  write_file(broken, R"({"messages": [)");
  const fs::path needs_id = dir / "needs_id.json";
  write_file(needs_id, R"({"messages": [{"role": "user", "content": "a"},
      {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
      {"role": "tool", "content": "22"}]})");
  const std::vector<std::pair<std::string, std::string>> errors = {
      {" template -m " + model + " " + quote(ends_with_answer.string()), "messages[1]"},
      {" template -m " + model + " " + quote(broken.string()),
       "broken.json: chat request: invalid JSON"},
      {" template -m " + model + " " + quote(needs_id.string()), "needs a call id"},
      {" template -m " + model + " " + quote((dir / "missing.json").string()), "cannot open"},
  };
  for (const auto& [args, message] : errors) {
    const auto r = test::run_command(cli() + args);
    EXPECT_EQ(r.status, 1) << args;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
  }
  // The same conversation that v3 refuses for its missing id, v2 takes.
  EXPECT_EQ(test::run_command(cli() + " template --template v2 -m " + model + " " +
                              quote(needs_id.string()))
                .status,
            0);
  for (const std::string& args : {" template " + quote(broken.string()), " template -m " + model,
                                  " template -m " + model + " x.json --template v4"}) {
    EXPECT_EQ(test::run_command(cli() + args).status, 2) << args;
  }
}

TEST(CliChat, ToolRoundTripOnAScriptedModel) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path dir = test::scratch_dir("CliChat_ToolRoundTrip");
  const Vocabulary vocab = load_vocabulary(data / "models/tekken-mini/tekken-v13.json");
  const Tokenizer tokenizer(vocab);
  const int32_t end_inst = 4, tool_calls = 9, args = 32, end_results = 8, eos = 2;
  // Each answer a chain of tokens, every token in them met once (its successor is fixed).
  std::vector<std::pair<int32_t, int32_t>> next;
  const auto chain = [&](std::vector<int32_t> tokens) {
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      for (const auto& [in, out] : next) ASSERT_NE(in, tokens[i]) << "token met twice";
      next.emplace_back(tokens[i], tokens[i + 1]);
    }
  };
  std::vector<int32_t> call = {end_inst, tool_calls};
  for (const int32_t id : tokenizer.encode("f")) call.push_back(id);
  call.push_back(args);
  for (const int32_t id : tokenizer.encode("{}")) call.push_back(id);
  call.push_back(eos);
  chain(call);
  std::vector<int32_t> answer = {end_results};
  for (const int32_t id : tokenizer.encode("ok")) answer.push_back(id);
  answer.push_back(eos);
  chain(answer);
  const fs::path model = dir / "scripted.gguf";
  test::write_scripted_model(model, vocab, next);
  const fs::path tools = dir / "tools.json";
  write_file(tools, R"([{"type": "function", "function": {"name": "f", "description": "weather",
                         "parameters": {"type": "object", "properties": {}}}}])");
  // The user asks; the model calls f; the next line is f's result; the model answers "ok".
  for (const char* tmpl : {"", " --template v11"}) {
    const auto r = test::run_command("printf 'weather?\\nsunny\\n' | " + cli() + " chat -m " +
                                     quote(model.string()) + " --tools " + quote(tools.string()) +
                                     " --temp 0 -n 8 -t 1" + tmpl);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "[tool call] f call00001 {}\nok\n") << tmpl;
  }
  // Without the result the chat ends at the end of input.
  const auto r =
      test::run_command("printf 'weather?\\n' | " + cli() + " chat -m " + quote(model.string()) +
                        " --tools " + quote(tools.string()) + " --temp 0 -n 8 -t 1");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "[tool call] f call00001 {}\n");
}

TEST(CliChat, ToolsNeedATemplateWithTools) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path dir = test::scratch_dir("CliChat_ToolsRefused");
  const fs::path tools = dir / "tools.json", bad = dir / "bad.json";
  write_file(tools, R"([{"type": "function", "function": {"name": "f"}}])");
  write_file(bad, R"([{"type": "function", "function": {"name": "f", "parameters": 3}}])");
  // stories260k's vocabulary has no control tokens: the v1 template, which has no tools.
  const std::string model =
      quote((test::scratch_dir("CliChat_ToolsRefused_model") / "stories.gguf").string());
  ASSERT_EQ(test::run_command(cli() + " convert " +
                              quote((data / "models/stories260k/hf").string()) + " -o " + model)
                .status,
            0);
  auto r = test::run_command("printf 'hi\\n' | " + cli() + " chat -m " + model + " --tools " +
                             quote(tools.string()));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("v1 template has no tools"), std::string::npos) << r.err;
  r = test::run_command("printf 'hi\\n' | " + cli() + " chat -m " + model + " --tools " +
                        quote(bad.string()));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("bad.json: tools[0].function.parameters"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace brise
