// brise serve's request fields, each honoured or refused with a 400 that names it: sampling fields
// against brise::generate with the same parameters, n samples and the prompt forms, echo,
// log-probabilities against a log-softmax of Session logits computed here, model names and
// aliases, tool calls on a scripted model (whole and streamed, and the agent's next turn), and
// constrained decoding: response_format and forced tool calls, checked by an independent
// validator (support/json_validator).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "brise/chat.hpp"
#include "brise/generate.hpp"
#include "brise/model.hpp"
#include "brise/session.hpp"
#include "serve/server.hpp"
#include "support/json_text.hpp"
#include "support/json_validator.hpp"
#include "support/regex_text.hpp"
#include "support/scripted_model.hpp"
#include "support/serve_client.hpp"
#include "support/testdata.hpp"

namespace brise::serve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using test::Client;
using test::Reply;
using test::Serve;
using test::stream;
using test::Streamed;
using test::text_of;
using Ids = std::vector<int32_t>;

// generate() alone on a fresh session, the whole result.
GenerateResult alone(const std::shared_ptr<const Model>& model, const Ids& prompt,
                     const GenerateOptions& o) {
  Session session(model);
  return generate(session, prompt, o);
}

GenerateOptions options(uint32_t max_tokens, float temperature = 0, uint64_t seed = 0) {
  GenerateOptions o;
  o.max_tokens = max_tokens;
  o.sampling.temperature = temperature;
  o.sampling.seed = seed;
  return o;
}

// An error reply: its status and the field it names.
void expect_refused(const Reply& r, int status, const std::string& param, const std::string& what) {
  EXPECT_EQ(r.status, status) << what << " -> " << r.body.substr(0, 300);
  if (r.status != status) return;
  const json j = test::parse_json(r.body);
  EXPECT_EQ(j["error"]["param"], param) << what;
  const std::string message = j["error"]["message"];
  const std::string field = param.substr(0, param.find_first_of(".["));
  EXPECT_NE(message.find(field), std::string::npos) << what << ": " << message;
}

TEST_F(Serve, EveryFieldBriseDoesNotTakeIsRefusedByName) {
  SchedulerOptions s;
  s.queue_limit = 8;
  auto server = start(2, {}, s);
  Client c(server->port());
  const json user = {{{"role", "user"}, {"content", "Hi"}}};
  struct Case {
    const char* path;
    json body;
    int status;
    std::string param;
  };
  const std::string chat = "/v1/chat/completions", comp = "/v1/completions";
  const auto with = [&](json body, const char* key, json value) {
    body[key] = std::move(value);
    return body;
  };
  const json chat_body = {{"messages", user}, {"max_tokens", 2}};
  const json comp_body = {{"prompt", "Once"}, {"max_tokens", 2}};
  const std::vector<Case> cases = {
      {"chat", with(chat_body, "foo", 1), 400, "foo"},
      {"chat", with(chat_body, "functions", json::array()), 400, "functions"},
      {"chat", with(chat_body, "function_call", "auto"), 400, "function_call"},
      {"chat", with(chat_body, "reasoning_effort", "low"), 400, "reasoning_effort"},
      {"chat", with(chat_body, "audio", json::object()), 400, "audio"},
      {"chat", with(chat_body, "echo", true), 400, "echo"},
      {"chat", with(chat_body, "store", true), 400, "store"},
      {"chat", with(chat_body, "modalities", {"text", "audio"}), 400, "modalities"},
      {"chat", with(chat_body, "response_format", {{"type", "xml"}}), 400, "response_format.type"},
      {"chat", with(chat_body, "tool_choice", "required"), 400, "tool_choice"},
      {"chat", with(chat_body, "tool_choice", "sometimes"), 400, "tool_choice"},
      {"chat", with(chat_body, "top_logprobs", 3), 400, "top_logprobs"},
      {"chat", with(with(chat_body, "logprobs", true), "top_logprobs", 21), 400, "top_logprobs"},
      {"chat", with(chat_body, "logprobs", 2), 400, "logprobs"},
      {"chat", with(chat_body, "logit_bias", {{"abc", 1}}), 400, "logit_bias"},
      {"chat", with(chat_body, "logit_bias", {{"5", 101}}), 400, "logit_bias.5"},
      {"chat", with(chat_body, "logit_bias", {{"99999", 1}}), 400, "logit_bias"},
      {"chat", with(chat_body, "frequency_penalty", 2.5), 400, "frequency_penalty"},
      {"chat", with(chat_body, "presence_penalty", "high"), 400, "presence_penalty"},
      {"chat", with(with(chat_body, "stream", true), "stream_options", {{"obfuscate", true}}), 400,
       "stream_options.obfuscate"},
      {"chat", with(chat_body, "n", 129), 400, "n"},
      {"chat", with(chat_body, "n", 11), 400, "n"},  // more than 2 slots and 8 places
      {"chat", with(chat_body, "messages", {{{"role", "user"}}}), 400, "messages[0].content"},
      {"chat", with(chat_body, "messages", {{{"role", "user"}, {"content", nullptr}}}), 400,
       "messages[0].content"},
      {"chat", with(chat_body, "messages", {{{"role", "user"}, {"content", "x"}, {"name", "a"}}}),
       400, "messages[0].name"},
      {"chat", with(chat_body, "tools", {{{"type", "function"}, {"function", {{"name", "f"}}}}}),
       400, "tools"},  // stories260k's template (v1) has no tools
      {"comp", with(comp_body, "messages", user), 400, "messages"},
      {"comp", with(comp_body, "suffix", "The end."), 400, "suffix"},
      {"comp", with(comp_body, "best_of", 2), 400, "best_of"},
      {"comp", with(comp_body, "prompt", json::array()), 400, "prompt"},
      {"comp", with(comp_body, "prompt", {1, "a"}), 400, "prompt[1]"},
      {"comp", with(comp_body, "prompt", {{1, 2}, json::array()}), 400, "prompt"},
      {"comp", with(comp_body, "prompt", {1, 99999}), 400, "prompt"},
      {"comp", with(comp_body, "prompt", {1, -1}), 400, "prompt[1]"},
      {"comp", with(with(comp_body, "echo", true), "logprobs", 1), 400, "echo"},
      {"comp", with(comp_body, "logprobs", true), 400, "logprobs"},
      {"comp", with(comp_body, "logprobs", 21), 400, "logprobs"},
      {"comp", with(comp_body, "top_logprobs", 2), 400, "top_logprobs"},
      {"comp", with(comp_body, "tools", json::array()), 400, "tools"},
  };
  for (const Case& k : cases)
    expect_refused(c.post(k.path == std::string("chat") ? chat : comp, k.body.dump()), k.status,
                   k.param, k.body.dump().substr(0, 120));
  // Accepted as OpenAI sends them: null for absent, an empty suffix, best_of = n, "text" and
  // "auto", the user's id, modalities ["text"], store false.
  for (const auto& [path, body] : std::vector<std::pair<std::string, json>>{
           {comp, with(with(with(comp_body, "suffix", ""), "best_of", 1), "user", "u1")},
           {comp, with(with(comp_body, "logit_bias", nullptr), "stop", nullptr)},
           {chat, with(with(with(chat_body, "response_format", {{"type", "text"}}), "tool_choice",
                            "auto"),
                       "modalities", {"text"})},
           {chat, with(with(chat_body, "store", false), "parallel_tool_calls", true)},
       }) {
    const Reply r = c.post(path, body.dump());
    EXPECT_EQ(r.status, 200) << body.dump() << " -> " << r.body;
  }
}

TEST_F(Serve, SamplingFieldsAreHonouredAsTheLibraryHonoursThem) {
  auto server = start(2);
  Client c(server->port());
  const Ids prompt = model_->tokenizer().encode("Once upon a time", true);
  const GenerateResult greedy = alone(model_, prompt, options(30));
  const auto run = [&](const json& fields, const GenerateOptions& o, const std::string& what) {
    json body = {{"prompt", "Once upon a time"}, {"max_tokens", 30}, {"temperature", 0}};
    body.update(fields);
    const Reply r = c.post("/v1/completions", body.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    SCOPED_TRACE(what);
    const GenerateResult ref = alone(model_, prompt, o);
    EXPECT_EQ(text_of(r.j()), ref.text);
    // The field changed the output: a server that ignored it would fail here.
    EXPECT_NE(ref.text, greedy.text) << what << " leaves greedy as it is: a test that cannot fail";
  };
  GenerateOptions o = options(30);
  o.sampling.frequency_penalty = 1.5f;
  run({{"frequency_penalty", 1.5}}, o, "frequency_penalty");
  o = options(30);
  o.sampling.presence_penalty = 2.0f;
  run({{"presence_penalty", 2.0}}, o, "presence_penalty");
  o = options(30);  // ban the greedy first token; favour another
  o.sampling.logit_bias = {{greedy.generated_ids[0], -100.0f}, {300, 3.5f}};
  run({{"logit_bias", {{std::to_string(greedy.generated_ids[0]), -100}, {"300", 3.5}}}}, o,
      "logit_bias");
  o = options(30, 1.5f, 77);
  run({{"temperature", 1.5}, {"seed", 77}}, o, "seed");
  o = options(30);
  o.sampling.repeat_penalty = 1.8f;
  o.sampling.top_k = 5;
  run({{"repeat_penalty", 1.8}, {"top_k", 5}}, o, "repeat_penalty");
}

TEST_F(Serve, NSamplesAndEveryPromptFormGetAChoiceEach) {
  auto server = start(3);
  Client c(server->port());
  const Tokenizer& t = model_->tokenizer();
  const std::vector<std::string> texts = {"Once upon a time", "The dog"};
  // n = 3 of one prompt: choice j samples with seed + j, each what generate() gives alone.
  const Reply three = c.post(
      "/v1/completions",
      json{{"prompt", texts[0]}, {"n", 3}, {"max_tokens", 12}, {"temperature", 1.0}, {"seed", 40}}
          .dump());
  ASSERT_EQ(three.status, 200) << three.body;
  const json j = three.j();
  ASSERT_EQ(j["choices"].size(), 3u);
  uint64_t completion = 0;
  std::set<std::string> distinct;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(j["choices"][i]["index"], i);
    const GenerateResult ref = alone(model_, t.encode(texts[0], true), options(12, 1.0f, 40 + i));
    EXPECT_EQ(j["choices"][i]["text"], ref.text) << "choice " << i;
    completion += ref.generated_ids.size();
    distinct.insert(ref.text);
  }
  EXPECT_EQ(distinct.size(), 3u) << "the samples should differ";
  EXPECT_EQ(j["usage"]["prompt_tokens"], t.encode(texts[0], true).size());  // counted once
  EXPECT_EQ(j["usage"]["completion_tokens"], completion);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 0);

  // Streamed: every choice's chunks add up to its text, each ends with its finish_reason.
  const Streamed s = stream(
      server->port(), "/v1/completions",
      {{"prompt", texts[0]}, {"n", 3}, {"max_tokens", 12}, {"temperature", 1.0}, {"seed", 40}});
  ASSERT_TRUE(s.done);
  std::map<int, std::string> by_index;
  std::map<int, int> finishes;
  for (const json& chunk : s.chunks) {
    const json& choice = chunk["choices"][0];
    by_index[choice["index"]] += choice["text"].get<std::string>();
    if (!choice["finish_reason"].is_null()) ++finishes[choice["index"]];
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(by_index[i], j["choices"][i]["text"]) << "streamed choice " << i;
    EXPECT_EQ(finishes[i], 1);
  }

  // A list of prompts (strings, token ids, lists of ids), times n = 2: index = prompt * n + j.
  const Ids dog = t.encode(texts[1], true);
  for (const json& prompt :
       {json(texts), json::array({texts[0], dog}), json::array({t.encode(texts[0], true), dog})}) {
    const Reply r =
        c.post("/v1/completions",
               json{{"prompt", prompt}, {"n", 2}, {"max_tokens", 8}, {"seed", 3}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(r.j()["choices"].size(), 4u);
    for (int p = 0; p < 2; ++p)
      for (int k = 0; k < 2; ++k) {
        const json choice = r.j()["choices"][p * 2 + k];
        EXPECT_EQ(choice["index"], p * 2 + k);
        EXPECT_EQ(choice["text"],
                  alone(model_, t.encode(texts[p], true), options(8, 1.0f, 3 + k)).text)
            << prompt.dump() << " prompt " << p << " sample " << k;
      }
  }
  // One list of token ids is one prompt, used as it is (here without BOS).
  const Ids no_bos = t.encode("The cat", false);
  const Reply ids = c.post("/v1/completions",
                           json{{"prompt", no_bos}, {"max_tokens", 8}, {"temperature", 0}}.dump());
  ASSERT_EQ(ids.status, 200) << ids.body;
  EXPECT_EQ(text_of(ids.j()), alone(model_, no_bos, options(8)).text);
  EXPECT_EQ(ids.j()["usage"]["prompt_tokens"], no_bos.size());

  // echo: the prompt's text, then the completion's.
  const Reply echo = c.post(
      "/v1/completions",
      json{{"prompt", texts[1]}, {"echo", true}, {"max_tokens", 8}, {"temperature", 0}}.dump());
  ASSERT_EQ(echo.status, 200) << echo.body;
  EXPECT_EQ(text_of(echo.j()), texts[1] + alone(model_, dog, options(8)).text);
  const Streamed echoed =
      stream(server->port(), "/v1/completions",
             {{"prompt", texts[1]}, {"echo", true}, {"max_tokens", 8}, {"temperature", 0}});
  EXPECT_EQ(echoed.text, text_of(echo.j()));

  // Chat: n choices too, each a message.
  const Reply chat =
      c.post("/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                                          {"n", 2},
                                          {"max_tokens", 6},
                                          {"seed", 9}}
                                         .dump());
  ASSERT_EQ(chat.status, 200) << chat.body;
  ASSERT_EQ(chat.j()["choices"].size(), 2u);
  const Ids chat_prompt =
      format_chat(t, detect_chat_template(t), {{ChatMessage::Role::User, "Hi"}});
  for (int k = 0; k < 2; ++k)
    EXPECT_EQ(chat.j()["choices"][k]["message"]["content"],
              alone(model_, chat_prompt, options(6, 1.0f, 9 + k)).text);
}

// The log-softmax of a logits row in long double: the reference for every logprob.
std::vector<long double> log_softmax(std::span<const float> row) {
  long double max = row[0], sum = 0;
  for (const float x : row) max = std::max<long double>(max, x);
  for (const float x : row) sum += std::exp(static_cast<long double>(x) - max);
  std::vector<long double> out;
  for (const float x : row) out.push_back(static_cast<long double>(x) - max - std::log(sum));
  return out;
}

// Each generated token's row of logprobs: a fresh session fed the prompt and the answer at once.
std::vector<std::vector<long double>> answer_logprobs(const std::shared_ptr<const Model>& model,
                                                      const Ids& prompt, const Ids& answer) {
  Ids all = prompt;
  all.insert(all.end(), answer.begin(), answer.end());
  all.pop_back();  // the last token's own logits are not needed
  std::vector<std::vector<long double>> rows;
  Session session(model);
  session.prefill_all_logits(all, [&](size_t t, std::span<const float> row) {
    if (t + 1 >= prompt.size()) rows.push_back(log_softmax(row));
  });
  return rows;
}

// The ids of the k largest entries, larger first, lower id first on ties.
Ids top_ids(const std::vector<long double>& row, size_t k) {
  Ids ids(row.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  ids.resize(k);
  return ids;
}

TEST_F(Serve, LogprobsAreTheLogSoftmaxOfTheModelsLogits) {
  auto server = start(2);
  Client c(server->port());
  const Tokenizer& t = model_->tokenizer();
  const auto piece = [&](int32_t id) {  // the token's text, as the answer shows it
    std::string text(t.piece(id));
    for (size_t at; (at = text.find("\xE2\x96\x81")) != std::string::npos;)
      text.replace(at, 3, " ");
    return text;
  };
  for (const double temperature : {0.0, 1.0}) {
    SCOPED_TRACE("temperature " + std::to_string(temperature));
    const json body = {{"messages", {{{"role", "user"}, {"content", "Tell me a story."}}}},
                       {"max_tokens", 16},
                       {"temperature", temperature},
                       {"seed", 5},
                       {"logprobs", true},
                       {"top_logprobs", 3}};
    const Reply r = c.post("/v1/chat/completions", body.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    const Ids prompt =
        format_chat(t, detect_chat_template(t), {{ChatMessage::Role::User, "Tell me a story."}});
    const GenerateResult ref =
        alone(model_, prompt, options(16, static_cast<float>(temperature), 5));
    const json content = r.j()["choices"][0]["logprobs"]["content"];
    Ids shown = ref.generated_ids;
    if (ref.stop_reason == StopReason::Eos) shown.pop_back();  // EOS has no entry
    ASSERT_EQ(content.size(), shown.size());
    const auto rows = answer_logprobs(model_, prompt, ref.generated_ids);
    for (size_t i = 0; i < shown.size(); ++i) {
      const json& e = content[i];
      EXPECT_EQ(e["token"], piece(shown[i])) << i;
      EXPECT_NEAR(e["logprob"].get<double>(), static_cast<double>(rows[i][shown[i]]), 1e-12) << i;
      std::string bytes;
      for (const json& b : e["bytes"]) bytes += static_cast<char>(b.get<int>());
      EXPECT_EQ(bytes, e["token"].get<std::string>());
      const Ids top = top_ids(rows[i], 3);
      ASSERT_EQ(e["top_logprobs"].size(), 3u);
      for (size_t k = 0; k < 3; ++k) {
        EXPECT_EQ(e["top_logprobs"][k]["token"], piece(top[k]));
        EXPECT_NEAR(e["top_logprobs"][k]["logprob"].get<double>(),
                    static_cast<double>(rows[i][top[k]]), 1e-12);
      }
    }
    // Streamed: the same entries, chunk by chunk.
    const Streamed s = stream(server->port(), "/v1/chat/completions", body);
    json streamed = json::array();
    for (const json& chunk : s.chunks)
      if (!chunk["choices"].empty() && !chunk["choices"][0]["logprobs"].is_null())
        for (const json& e : chunk["choices"][0]["logprobs"]["content"]) streamed.push_back(e);
    EXPECT_EQ(streamed, content);
  }
  // Completions: logprobs N, the legacy object.
  const Ids prompt = t.encode("The dog", true);
  const Reply r = c.post(
      "/v1/completions",
      json{{"prompt", "The dog"}, {"max_tokens", 10}, {"temperature", 0}, {"logprobs", 2}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const GenerateResult ref = alone(model_, prompt, options(10));
  const json lp = r.j()["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), ref.generated_ids.size());
  const auto rows = answer_logprobs(model_, prompt, ref.generated_ids);
  size_t offset = 0;
  for (size_t i = 0; i < ref.generated_ids.size(); ++i) {
    const int32_t id = ref.generated_ids[i];
    EXPECT_EQ(lp["tokens"][i], piece(id));
    EXPECT_NEAR(lp["token_logprobs"][i].get<double>(), static_cast<double>(rows[i][id]), 1e-12);
    const Ids top = top_ids(rows[i], 2);
    EXPECT_EQ(lp["top_logprobs"][i].size(), 2u);
    EXPECT_NEAR(lp["top_logprobs"][i][piece(top[0])].get<double>(),
                static_cast<double>(rows[i][top[0]]), 1e-12);
    EXPECT_EQ(lp["text_offset"][i], offset);
    offset += piece(id).size();
  }
}

TEST_F(Serve, ModelNamesAliasesAndTemplates) {
  ServerOptions o;
  o.aliases = {"gpt-4o-mini", "tiny"};
  auto server = start(1, o);
  Client c(server->port());
  const Reply unknown =
      c.post("/v1/chat/completions",
             R"({"model": "gpt-5", "messages": [{"role": "user", "content": "Hi"}]})");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.j()["error"]["code"], "model_not_found");
  EXPECT_EQ(unknown.j()["error"]["param"], "model");
  const Reply aliased =
      c.post("/v1/completions", R"({"model": "tiny", "prompt": "Once", "max_tokens": 2})");
  ASSERT_EQ(aliased.status, 200) << aliased.body;
  EXPECT_EQ(aliased.j()["model"], "tiny");
  const json models = c.get("/v1/models").j();
  ASSERT_EQ(models["data"].size(), 3u);
  std::vector<std::string> ids;
  for (const json& m : models["data"]) {
    ids.push_back(m["id"]);
    EXPECT_EQ(m["chat_template"], "v1");  // stories260k's vocabulary has no control tokens
    EXPECT_EQ(m["chat_template_source"], "detected");
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"stories260k", "gpt-4o-mini", "tiny"}));
  EXPECT_EQ(c.get("/v1/models/tiny").status, 200);
  EXPECT_EQ(c.get("/v1/models/gpt-5").status, 404);

  ServerOptions chosen;
  chosen.chat_template = ChatTemplate::MistralV1;
  chosen.max_tokens_default = 5;
  auto v3 = start(1, chosen);
  Client c3(v3->port());
  EXPECT_EQ(c3.get("/v1/models").j()["data"][0]["chat_template_source"], "chosen");
  EXPECT_EQ(c3.get("/v1/models").j()["data"][0]["chat_template"], "v1");
  // A chat request without max_tokens gets --max-tokens-default.
  const Reply bounded = c3.post("/v1/chat/completions",
                                R"({"messages": [{"role": "user", "content": "Hi"}],
                                    "temperature": 0})");
  ASSERT_EQ(bounded.status, 200) << bounded.body;
  EXPECT_LE(bounded.j()["usage"]["completion_tokens"], 5);
  const Ids v3_prompt =
      format_chat(model_->tokenizer(), ChatTemplate::MistralV1, {{ChatMessage::Role::User, "Hi"}});
  EXPECT_EQ(bounded.j()["usage"]["prompt_tokens"], v3_prompt.size());
  EXPECT_EQ(text_of(bounded.j()), alone(model_, v3_prompt, options(5)).text);
}

TEST_F(Serve, ConversationsAreReadAsMistralCommonReadsThem) {
  auto server = start(1);
  Client c(server->port());
  const Tokenizer& t = model_->tokenizer();
  const auto answer = [&](const json& messages) {
    const Reply r =
        c.post("/v1/chat/completions",
               json{{"messages", messages}, {"max_tokens", 8}, {"temperature", 0}}.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? text_of(r.j()) : r.body;
  };
  // Two user messages in a row are one ("\n\n" between them); text parts are a string; developer
  // is system.
  const std::string merged = alone(model_,
                                   format_chat(t, detect_chat_template(t),
                                               {{ChatMessage::Role::System, "Be brief."},
                                                {ChatMessage::Role::User, "Hello\n\nA story?"}}),
                                   options(8))
                                 .text;
  EXPECT_EQ(answer({{{"role", "system"}, {"content", "Be brief."}},
                    {{"role", "user"}, {"content", "Hello"}},
                    {{"role", "user"}, {"content", "A story?"}}}),
            merged);
  EXPECT_EQ(
      answer(
          {{{"role", "developer"}, {"content", {{{"type", "text"}, {"text", "Be brief."}}}}},
           {{"role", "user"},
            {"content",
             {{{"type", "text"}, {"text", "Hello"}}, {{"type", "text"}, {"text", "A story?"}}}}}}),
      merged);
}

// A tekken-v13 model scripted to call f({"city": "Paris"}) after [/INST] and to answer "ok"
// after [/TOOL_RESULTS].
class ServeTools : public Serve {
 protected:
  void SetUp() override {
    Serve::SetUp();
    if (IsSkipped()) return;
    vocab_ = load_vocabulary(data_ / "models/tekken-mini/tekken-v13.json");
    Ids call = {4, 9};  // [/INST] [TOOL_CALLS]
    append(call, "f");
    call.push_back(32);  // [ARGS]
    append(call, kArguments);
    call.push_back(2);
    Ids answer = {8};  // [/TOOL_RESULTS]
    append(answer, "ok");
    answer.push_back(2);
    tools_model_ = scripted_model("scripted", {call, answer});
  }
  void append(Ids& ids, const char* text) const {
    for (const int32_t id : Tokenizer(vocab_).encode(text)) ids.push_back(id);
  }
  // A model that follows each token of each chain with the next one (a token may lead to one
  // token only: met twice as a source, the test fails).
  std::shared_ptr<const Model> scripted_model(const std::string& name,
                                              const std::vector<Ids>& chains) const {
    std::vector<std::pair<int32_t, int32_t>> next;
    for (const Ids& tokens : chains)
      for (size_t i = 0; i + 1 < tokens.size(); ++i) {
        for (const auto& [in, out] : next)
          if (in == tokens[i]) throw Error("scripted model: token met twice");
        next.emplace_back(tokens[i], tokens[i + 1]);
      }
    const auto path = test::scratch_dir("ServeTools") / (name + ".gguf");
    test::write_scripted_model(path, vocab_, next);
    return Model::load(path);
  }
  static constexpr const char* kArguments = R"({"q": 7})";  // no token twice
  json request(json extra = json::object()) const {
    json body = {{"messages", {{{"role", "user"}, {"content", "Weather in Paris?"}}}},
                 {"tools",
                  {{{"type", "function"},
                    {"function",
                     {{"name", "f"},
                      {"description", "the weather"},
                      {"parameters",
                       {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}}}}}}}},
                 {"max_tokens", 30},
                 {"temperature", 0}};
    body.update(extra);
    return body;
  }
  // A server of the scripted model (or `model`) that formats chats with `tmpl`.
  std::unique_ptr<Server> start_scripted(ChatTemplate tmpl,
                                         std::shared_ptr<const Model> model = nullptr) {
    ServerOptions o;
    o.chat_template = tmpl;
    return start(2, o, {}, model ? model : tools_model_, "scripted");
  }
  Vocabulary vocab_;
  std::shared_ptr<const Model> tools_model_;
};

bool is_call_id(const std::string& id) {
  return test::fully_matches_regex(id, "[a-zA-Z0-9]{9}");
}

// One call as a stream gives it: OpenAI's form, index 0, id, type and name in one delta (heads
// counts them), then the arguments.
struct StreamedCall {
  std::string id, name, arguments, finish;
  size_t heads = 0;
};
StreamedCall streamed_call(const Streamed& s) {
  StreamedCall out;
  for (const json& chunk : s.chunks) {
    const json& ch = chunk["choices"][0];
    if (!ch["finish_reason"].is_null()) out.finish = ch["finish_reason"];
    if (!ch["delta"].contains("tool_calls")) continue;
    const json& d = ch["delta"]["tool_calls"][0];
    EXPECT_EQ(d["index"], 0);
    if (d.contains("id")) {
      ++out.heads;
      out.id = d["id"];
      EXPECT_EQ(d["type"], "function");
      out.name = d["function"]["name"];
    }
    out.arguments += d["function"]["arguments"].get<std::string>();
  }
  return out;
}

// The agent's next turn after `message` (one call): the call's result as role "tool", and the
// scripted model answers "ok".
void expect_ok_after_result(Client& c, json next, const json& message) {
  next["messages"].push_back(message);
  next["messages"].push_back(
      {{"role", "tool"}, {"tool_call_id", message["tool_calls"][0]["id"]}, {"content", "sunny"}});
  const Reply answer = c.post("/v1/chat/completions", next.dump());
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(text_of(answer.j()), "ok");
  EXPECT_EQ(answer.j()["choices"][0]["finish_reason"], "stop");
  EXPECT_FALSE(answer.j()["choices"][0]["message"].contains("tool_calls"));
}

TEST_F(ServeTools, CallsComeBackAsToolCallsWholeAndStreamed) {
  for (const auto tmpl : {ChatTemplate::MistralV13, ChatTemplate::MistralV11}) {
    SCOPED_TRACE(std::string(chat_template_name(tmpl)));
    auto server = start_scripted(tmpl);
    Client c(server->port());
    const Reply r = c.post("/v1/chat/completions", request().dump());
    ASSERT_EQ(r.status, 200) << r.body;
    const json choice = r.j()["choices"][0];
    EXPECT_EQ(choice["finish_reason"], "tool_calls");
    EXPECT_TRUE(choice["message"]["content"].is_null());
    ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u);
    const json& call = choice["message"]["tool_calls"][0];
    EXPECT_TRUE(is_call_id(call["id"])) << call["id"];
    EXPECT_EQ(call["type"], "function");
    EXPECT_EQ(call["function"]["name"], "f");
    EXPECT_EQ(test::parse_json(call["function"]["arguments"].get<std::string>()),
              test::parse_json(kArguments));

    // Streamed as OpenAI streams calls: index, id, type and name first, then the arguments.
    const Streamed s = stream(server->port(), "/v1/chat/completions", request());
    ASSERT_TRUE(s.done);
    const StreamedCall streamed = streamed_call(s);
    EXPECT_EQ(streamed.heads, 1u) << "the id comes once";
    EXPECT_TRUE(is_call_id(streamed.id));
    EXPECT_EQ(streamed.name, "f");
    EXPECT_EQ(test::parse_json(streamed.arguments), test::parse_json(kArguments));
    EXPECT_EQ(streamed.finish, "tool_calls");
    EXPECT_EQ(s.text, "") << "a call is not content";

    // The agent's next turn: the call, its result as role "tool", and the model answers.
    expect_ok_after_result(c, request(), choice["message"]);

    // tool_choice "none": the model may not call ([TOOL_CALLS] is never sampled).
    const Reply none = c.post("/v1/chat/completions", request({{"tool_choice", "none"}}).dump());
    ASSERT_EQ(none.status, 200) << none.body;
    EXPECT_NE(none.j()["choices"][0]["finish_reason"], "tool_calls");
    EXPECT_FALSE(none.j()["choices"][0]["message"].contains("tool_calls"));
    // A named function that is not a tool.
    const Reply unknown = c.post(
        "/v1/chat/completions",
        request({{"tool_choice", {{"type", "function"}, {"function", {{"name", "g"}}}}}}).dump());
    expect_refused(unknown, 400, "tool_choice.function.name", "unknown function");
    // A result for a call that was never made is the template's 400.
    json orphan = request();
    orphan["messages"].push_back(
        {{"role", "tool"}, {"tool_call_id", "abcdefghi"}, {"content", "x"}});
    EXPECT_EQ(c.post("/v1/chat/completions", orphan.dump()).status, 400);
  }
}

// response_format: the content always satisfies the schema (the test's own validator), on
// stories260k, which knows no JSON; a keyword outside the subset is a 400 that names it, and so
// are bounds that leave nothing. "n" is bounded as zod 4 bounds z.number().int().
TEST_F(Serve, ResponseFormatConstrainsTheContent) {
  auto server = start(2);
  Client c(server->port());
  const json schema = test::parse_json(R"({"type": "object",
      "properties": {"name": {"type": "string"},
                     "n": {"type": "integer", "minimum": -9007199254740991,
                           "maximum": 9007199254740991},
                     "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2}},
      "required": ["name", "n"], "additionalProperties": false})");
  for (uint64_t seed = 0; seed < 4; ++seed) {
    const json body = {
        {"messages", {{{"role", "user"}, {"content", "A story as JSON"}}}},
        {"max_tokens", 60},
        {"temperature", 1},
        {"seed", seed},
        {"response_format",
         {{"type", "json_schema"},
          {"json_schema", {{"name", "story"}, {"schema", schema}, {"strict", true}}}}}};
    const Reply r = c.post("/v1/chat/completions", body.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string content = text_of(r.j());
    const auto violation = test::json_text_violation(content, schema);
    EXPECT_FALSE(violation) << *violation << " in " << content;
    EXPECT_EQ(r.j()["choices"][0]["finish_reason"], "stop") << r.body;
    json object_body = body;
    object_body["response_format"] = {{"type", "json_object"}};
    const Reply o = c.post("/v1/chat/completions", object_body.dump());
    ASSERT_EQ(o.status, 200) << o.body;
    EXPECT_TRUE(test::parse_json(text_of(o.j())).is_object()) << text_of(o.j());
  }
  // The shortest answer, {"name":"","n":0}, is 17 bytes: 18 tokens (EOS too) steer the model to
  // a whole answer, which is no cut ("stop"); 5 cannot hold one, and the answer is cut ("length").
  for (const auto& [max_tokens, finish] : {std::pair{18, "stop"}, std::pair{5, "length"}}) {
    const json body = {
        {"messages", {{{"role", "user"}, {"content", "A story as JSON"}}}},
        {"max_tokens", max_tokens},
        {"temperature", 1},
        {"seed", 3},
        {"response_format",
         {{"type", "json_schema"}, {"json_schema", {{"name", "story"}, {"schema", schema}}}}}};
    const Reply r = c.post("/v1/chat/completions", body.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.j()["choices"][0]["finish_reason"], finish) << r.body;
    const auto violation = test::json_text_violation(text_of(r.j()), schema);
    EXPECT_EQ(violation.has_value(), max_tokens == 5) << r.body;
  }
  json bad = {{"messages", {{{"role", "user"}, {"content", "x"}}}},
              {"response_format",
               {{"type", "json_schema"},
                {"json_schema",
                 {{"name", "s"},
                  {"schema",
                   {{"type", "object"},
                    {"properties", {{"id", {{"type", "string"}, {"pattern", "^[a-z]+$"}}}}}}}}}}}};
  const Reply refused = c.post("/v1/chat/completions", bad.dump());
  expect_refused(refused, 400, "response_format.json_schema.schema", "pattern");
  EXPECT_NE(refused.body.find("pattern"), std::string::npos) << refused.body;
  EXPECT_NE(refused.body.find("/properties/id"), std::string::npos) << refused.body;
  bad["response_format"]["json_schema"]["schema"] = {
      {"type", "object"},
      {"properties", {{"n", {{"type", "integer"}, {"minimum", 5}, {"maximum", 3}}}}}};
  const Reply empty_range = c.post("/v1/chat/completions", bad.dump());
  expect_refused(empty_range, 400, "response_format.json_schema.schema", "maximum");
  EXPECT_NE(empty_range.body.find("'maximum'"), std::string::npos) << empty_range.body;
  EXPECT_NE(empty_range.body.find("/properties/n"), std::string::npos) << empty_range.body;
}

// tool_choice "required" or a named function: the scripted model would call f with arguments
// its parameters do not allow ({"q": 7}); the grammar makes it a call of f with arguments that
// satisfy them, parsed into tool_calls as under "auto".
TEST_F(ServeTools, RequiredToolChoiceForcesAValidCall) {
  const json parameters = request()["tools"][0]["function"]["parameters"];
  for (const auto tmpl : {ChatTemplate::MistralV13, ChatTemplate::MistralV11}) {
    SCOPED_TRACE(std::string(chat_template_name(tmpl)));
    auto server = start_scripted(tmpl);
    Client c(server->port());
    const json named = {{"type", "function"}, {"function", {{"name", "f"}}}};
    for (const json& extra : {json{{"tool_choice", "required"}},
                              json{{"tool_choice", named}, {"parallel_tool_calls", false}}}) {
      const Reply r = c.post("/v1/chat/completions", request(extra).dump());
      ASSERT_EQ(r.status, 200) << r.body;
      const json choice = r.j()["choices"][0];
      // max_tokens steered the call to its end (this model pads with whitespace): the call is
      // whole, so the finish is "tool_calls", not "length".
      EXPECT_EQ(choice["finish_reason"], "tool_calls") << r.body;
      ASSERT_FALSE(choice["message"]["tool_calls"].empty()) << r.body;
      if (extra.contains("parallel_tool_calls")) {
        EXPECT_EQ(choice["message"]["tool_calls"].size(), 1u);
      }
      for (const json& call : choice["message"]["tool_calls"]) {
        EXPECT_TRUE(is_call_id(call["id"])) << call["id"];
        EXPECT_EQ(call["function"]["name"], "f");
        const std::string arguments = call["function"]["arguments"];
        const auto violation = test::json_text_violation(arguments, parameters);
        EXPECT_FALSE(violation) << *violation << " in " << arguments;
      }
    }
  }
}

// parallel_tool_calls false under "auto": a model scripted to write "Hm" and then call f over
// and over makes two calls when it may (the test's premise), and exactly one, after its text,
// when it may not (streamed too); a plain answer stays as it is.
TEST_F(ServeTools, NoParallelCallsUnderAutoMakesAtMostOne) {
  Ids looping = {4};  // [/INST]
  append(looping, "Hm");
  const size_t text_tokens = looping.size() - 1;
  looping.push_back(9);  // [TOOL_CALLS]
  append(looping, "f");
  looping.push_back(32);  // [ARGS]
  append(looping, kArguments);
  const size_t call_tokens = looping.size() - 1 - text_tokens;
  looping.push_back(9);  // and the next call
  Ids answer = {8};      // [/TOOL_RESULTS]
  append(answer, "ok");
  answer.push_back(2);
  const auto model = scripted_model("looping", {looping, answer});
  const json any_object = {{"type", "object"}};  // {"q": 7} is a valid argument
  const auto body = [&](bool parallel) {
    json b =
        request({{"parallel_tool_calls", parallel}, {"max_tokens", text_tokens + 2 * call_tokens}});
    b["tools"][0]["function"]["parameters"] = any_object;
    return b;
  };
  for (const auto tmpl : {ChatTemplate::MistralV13, ChatTemplate::MistralV11}) {
    SCOPED_TRACE(std::string(chat_template_name(tmpl)));
    auto server = start_scripted(tmpl, model);
    Client c(server->port());
    const Reply two = c.post("/v1/chat/completions", body(true).dump());
    ASSERT_EQ(two.status, 200) << two.body;
    EXPECT_EQ(two.j()["choices"][0]["message"]["tool_calls"].size(), 2u) << two.body;

    const Reply one = c.post("/v1/chat/completions", body(false).dump());
    ASSERT_EQ(one.status, 200) << one.body;
    const json choice = one.j()["choices"][0];
    EXPECT_EQ(choice["finish_reason"], "tool_calls") << one.body;
    EXPECT_EQ(choice["message"]["content"], "Hm") << one.body;
    ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u) << one.body;
    const json& call = choice["message"]["tool_calls"][0];
    EXPECT_TRUE(is_call_id(call["id"])) << call["id"];
    EXPECT_EQ(call["function"]["name"], "f");
    EXPECT_EQ(test::parse_json(call["function"]["arguments"].get<std::string>()),
              test::parse_json(kArguments));
    EXPECT_EQ(one.j()["usage"]["completion_tokens"], text_tokens + call_tokens + 1) << "and EOS";

    const Streamed s = stream(server->port(), "/v1/chat/completions", body(false));
    ASSERT_TRUE(s.done);
    EXPECT_EQ(s.text, "Hm");
    const StreamedCall streamed = streamed_call(s);
    EXPECT_EQ(streamed.heads, 1u);
    EXPECT_EQ(streamed.name, "f");
    EXPECT_EQ(test::parse_json(streamed.arguments), test::parse_json(kArguments));
    EXPECT_EQ(streamed.finish, "tool_calls");

    // The next turn: a plain answer, untouched.
    expect_ok_after_result(c, body(false), choice["message"]);
  }
}

}  // namespace
}  // namespace brise::serve
