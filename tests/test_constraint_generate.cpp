// Constrained generation end to end (brise/constraint.hpp through brise::generate and
// brise::Scheduler): models with random weights, which know nothing and so try every kind of
// token, sample at temperature 1 under a JSON Schema, a JSON object or forced tool calls, over
// many seeds. Every output must parse as JSON (nlohmann) and satisfy the schema by the test's own
// validator (support/json_validator, which shares no code with the engine); tool calls must come
// out of brise::parse_assistant_reply as calls of the allowed functions with valid arguments. A
// constrained job gives the same tokens alone and beside other jobs in the scheduler.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "brise/chat.hpp"
#include "brise/constraint.hpp"
#include "brise/generate.hpp"
#include "brise/model.hpp"
#include "brise/scheduler.hpp"
#include "brise/session.hpp"
#include "support/json_text.hpp"
#include "support/json_validator.hpp"
#include "support/random_model.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// The schemas of the tests: each exercises a part of the subset.
const char* const kSchemas[] = {
    // A form: required and optional properties, an enum, a bounded array, a nested object.
    R"({"type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                       "role": {"enum": ["admin", "editor", "viewer"]},
                       "scores": {"type": "array", "items": {"type": "number"}, "maxItems": 3},
                       "address": {"type": "object", "properties": {"city": {"type": "string"}},
                                   "required": ["city"], "additionalProperties": false}},
        "required": ["age", "role"], "additionalProperties": false})",
    // Recursion through $defs, anyOf, null and boolean.
    R"({"$defs": {"node": {"type": "object",
                           "properties": {"v": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
                                          "kids": {"type": "array", "items": {"$ref": "#/$defs/node"},
                                                   "maxItems": 2}},
                           "required": ["v"]}},
        "$ref": "#/$defs/node"})",
    // Arrays with both bounds, const, a list of types.
    R"({"type": "array", "minItems": 2, "maxItems": 4,
        "items": {"anyOf": [{"const": "x"}, {"type": ["integer", "null"]}]}})",
    // A free-form object: any keys, string values.
    R"({"type": "object", "additionalProperties": {"type": "string"}})",
    // Bounds and lengths as zod 4 and pydantic write them.
    R"({"type": "object",
        "properties": {"id": {"type": "integer", "minimum": -9007199254740991,
                              "maximum": 9007199254740991},
                       "age": {"type": "integer", "minimum": 0, "exclusiveMaximum": 130},
                       "ratio": {"type": "number", "exclusiveMinimum": -1, "maximum": 2.5},
                       "code": {"type": "string", "minLength": 2, "maxLength": 5},
                       "name": {"type": "string", "minLength": 1}},
        "required": ["id", "age", "ratio", "code", "name"], "additionalProperties": false})",
};

class ConstraintGenerate : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    const auto dir = test::testdata_dir(&why);
    if (!dir) GTEST_SKIP() << why;
    const auto scratch = test::scratch_dir("ConstraintGenerate");
    // Tekken v13 (7256 tokens, byte-level) and Mistral v3 (SentencePiece with byte fallback and a
    // leading space on words): both kinds of vocabulary.
    test::write_random_model(scratch / "tekken.gguf",
                             load_vocabulary(*dir / "models/tekken-mini/tekken-v13.json"), 3);
    test::write_random_model(scratch / "v3.gguf",
                             load_vocabulary(*dir / "tokenizers/mistral-v3/tokenizer.model"), 5);
    tekken_ = Model::load(scratch / "tekken.gguf");
    v3_ = Model::load(scratch / "v3.gguf");
  }

  static GenerateOptions sampled(uint64_t seed, uint32_t max_tokens,
                                 std::shared_ptr<const Constraint> c) {
    GenerateOptions o;
    o.sampling.temperature = 1.0f;
    o.sampling.seed = seed;
    o.max_tokens = max_tokens;
    o.constraint = std::move(c);
    return o;
  }

  static GenerateResult run(const std::shared_ptr<const Model>& model, const GenerateOptions& o) {
    Session session(model);
    const auto prompt = model->tokenizer().encode("Answer in JSON:", true);
    return generate(session, prompt, o);
  }

  std::shared_ptr<const Model> tekken_, v3_;
};

TEST_F(ConstraintGenerate, EveryOutputParsesAndSatisfiesTheSchema) {
  for (const auto& model : {tekken_, v3_}) {
    const Tokenizer& tok = model->tokenizer();
    for (size_t s = 0; s < std::size(kSchemas); ++s) {
      const json schema = test::parse_json(kSchemas[s]);
      const auto c = Constraint::json_schema(tok, kSchemas[s]);
      for (uint64_t seed = 0; seed < 6; ++seed) {
        // Budgets from tight (the shortest output and EOS: the model is steered to close what is
        // open) to loose.
        const uint32_t max_tokens = c->min_length() + 1 + static_cast<uint32_t>(seed % 3) * 20;
        const GenerateResult r = run(model, sampled(seed, max_tokens, c));
        SCOPED_TRACE("vocab " + std::to_string(tok.vocab_size()) + " schema " + std::to_string(s) +
                     " seed " + std::to_string(seed) + ": " + r.text);
        EXPECT_LE(r.generated_ids.size(), max_tokens);
        EXPECT_TRUE(r.stop_reason == StopReason::Eos || r.stop_reason == StopReason::MaxTokens)
            << stop_reason_name(r.stop_reason);
        // EOS ends the ids when the grammar ended freely; when the budget steered it, no EOS.
        ASSERT_FALSE(r.generated_ids.empty());
        EXPECT_EQ(r.generated_ids.back() == tok.eos_id(), r.stop_reason == StopReason::Eos);
        const auto violation = test::json_text_violation(r.text, schema);
        EXPECT_FALSE(violation) << *violation;
      }
    }
    // Any JSON object.
    const auto object = Constraint::json_object(tok);
    for (uint64_t seed = 0; seed < 6; ++seed) {
      const GenerateResult r = run(model, sampled(seed, 40, object));
      SCOPED_TRACE("json_object seed " + std::to_string(seed) + ": " + r.text);
      const auto violation =
          test::json_text_violation(r.text, test::parse_json(R"({"type": "object"})"));
      EXPECT_FALSE(violation) << *violation;
    }
  }
}

// The output ends where the grammar does: EOS is the last id, and the text is one JSON value.
TEST_F(ConstraintGenerate, AFinishedGrammarEndsWithEos) {
  const auto c = Constraint::json_schema(tekken_->tokenizer(), R"({"enum": [true, false]})");
  for (uint64_t seed = 0; seed < 4; ++seed) {
    const GenerateResult r = run(tekken_, sampled(seed, 100, c));
    EXPECT_EQ(r.stop_reason, StopReason::Eos);
    ASSERT_FALSE(r.generated_ids.empty());
    EXPECT_EQ(r.generated_ids.back(), tekken_->tokenizer().eos_id());
    const json v = test::parse_json(r.text);
    EXPECT_TRUE(v.is_boolean()) << r.text;
  }
}

const json kWeather = {
    {"type", "object"},
    {"properties",
     {{"city", {{"type", "string"}}}, {"unit", {{"enum", {"celsius", "fahrenheit"}}}}}},
    {"required", {"city"}},
    {"additionalProperties", false}};
// Bounds as pydantic writes Field(ge=-1000, le=1000) and conint(ge=0).
const json kAdd = {{"type", "object"},
                   {"properties",
                    {{"a", {{"type", "integer"}, {"minimum", -1000}, {"maximum", 1000}}},
                     {"b", {{"type", "integer"}, {"minimum", 0}}}}},
                   {"required", {"a", "b"}}};

TEST_F(ConstraintGenerate, ForcedToolCallsParseAsCallsOfTheAllowedFunctions) {
  const std::vector<ChatTool> tools = {{"get_weather", "the weather", kWeather.dump()},
                                       {"add", "a sum", kAdd.dump()}};
  const auto schema_of = [&](const std::string& name) { return name == "add" ? kAdd : kWeather; };
  struct Case {
    std::shared_ptr<const Model> model;
    ChatTemplate tmpl;
  };
  const Case cases[] = {{tekken_, ChatTemplate::MistralV13},
                        {tekken_, ChatTemplate::MistralV11},
                        {v3_, ChatTemplate::MistralV3},
                        {v3_, ChatTemplate::MistralV7}};
  for (const Case& k : cases) {
    const Tokenizer& tok = k.model->tokenizer();
    for (const ToolCallOptions& calls :
         {ToolCallOptions{}, ToolCallOptions{"add", 0}, ToolCallOptions{"", 1}}) {
      const auto c = Constraint::tool_calls(tok, k.tmpl, tools, calls);
      for (uint64_t seed = 0; seed < 3; ++seed) {
        const GenerateResult r = run(k.model, sampled(seed, c->min_length() + 40, c));
        SCOPED_TRACE(std::string(chat_template_name(k.tmpl)) + " function '" + calls.function +
                     "' max " + std::to_string(calls.max_calls) + " seed " + std::to_string(seed));
        const AssistantReply reply = parse_assistant_reply(tok, k.tmpl, r.generated_ids);
        ASSERT_FALSE(reply.tool_calls.empty()) << "content: " << reply.content;
        EXPECT_EQ(reply.content, "");
        if (calls.max_calls == 1) {
          EXPECT_EQ(reply.tool_calls.size(), 1u);
        }
        for (const ToolCall& call : reply.tool_calls) {
          if (!calls.function.empty()) {
            EXPECT_EQ(call.name, calls.function);
          }
          EXPECT_TRUE(call.name == "add" || call.name == "get_weather") << call.name;
          const auto violation = test::json_text_violation(call.arguments, schema_of(call.name));
          EXPECT_FALSE(violation) << *violation << " in " << call.arguments;
        }
      }
    }
  }
}

// tool_choice "auto" with one call at most (ToolCallOptions::text_first): an empty reply and any
// text are taken; [TOOL_CALLS], pushed by logit_bias, starts exactly one valid call (the bias
// would start another at once if the grammar allowed it), after the text before it.
TEST_F(ConstraintGenerate, TextFirstAllowsTextOrTextThenOneCall) {
  const std::vector<ChatTool> tools = {{"add", "a sum", kAdd.dump()}};
  const std::pair<std::shared_ptr<const Model>, ChatTemplate> cases[] = {
      {tekken_, ChatTemplate::MistralV13},
      {tekken_, ChatTemplate::MistralV11},
      {v3_, ChatTemplate::MistralV7}};
  for (const auto& [model, tmpl] : cases) {
    const Tokenizer& tok = model->tokenizer();
    const auto c = Constraint::tool_calls(tok, tmpl, tools,
                                          {.function = "", .max_calls = 1, .text_first = true});
    ConstraintMatcher empty(c);
    EXPECT_TRUE(empty.accept(tok.eos_id())) << "an empty reply";
    const int32_t calls_id = tok.find_special("[TOOL_CALLS]");
    // In text, a budget too small for the shortest call masks [TOOL_CALLS] only; the last token
    // may be text too (a text answer is cut at max_tokens as any is).
    const auto has = [](std::span<const uint64_t> bits, int32_t id) {
      return (bits[static_cast<size_t>(id) / 64] >> (id % 64) & 1) != 0;
    };
    const int32_t text_id = tok.encode("Hello")[0];
    ConstraintMatcher text(c);
    ASSERT_TRUE(text.accept(text_id));
    // The shortest call, [TOOL_CALLS] then add({"a":0,"b":0}) in any form, is over 15 tokens.
    for (const uint32_t remaining : {1000u, 15u, 5u, 1u}) {
      const auto bits = text.allowed(remaining);
      SCOPED_TRACE("remaining " + std::to_string(remaining));
      EXPECT_EQ(has(bits, calls_id), remaining == 1000u);
      EXPECT_TRUE(has(bits, text_id));
      EXPECT_TRUE(has(bits, tok.eos_id()));
    }
    for (uint64_t seed = 0; seed < 4; ++seed) {
      GenerateOptions o = sampled(seed, 60, c);
      // Seeds 2 and 3: the call after a few tokens of text (the bias from the 4th token on would
      // need a per-step bias; a bias throughout makes it the first token).
      if (seed >= 2) o.sampling.logit_bias = {{calls_id, 100.0f}};
      const GenerateResult r = run(model, o);
      SCOPED_TRACE(std::string(chat_template_name(tmpl)) + " seed " + std::to_string(seed) + ": " +
                   r.text);
      const AssistantReply reply = parse_assistant_reply(tok, tmpl, r.generated_ids);
      if (seed < 2) {  // free text runs to max_tokens, its last token text too
        EXPECT_EQ(r.generated_ids.size(), 60u);
        EXPECT_EQ(r.stop_reason, StopReason::MaxTokens);
        EXPECT_TRUE(reply.tool_calls.empty());
        continue;
      }
      ASSERT_EQ(reply.tool_calls.size(), 1u) << "content: " << reply.content;
      EXPECT_EQ(reply.content, "");
      EXPECT_EQ(r.stop_reason, StopReason::Eos);
      const auto violation = test::json_text_violation(reply.tool_calls[0].arguments, kAdd);
      EXPECT_FALSE(violation) << *violation << " in " << reply.tool_calls[0].arguments;
    }
  }
}

// The mask is the job's own: a constrained job gives the tokens it gives alone (generate() on a
// fresh session) when it shares the scheduler's batch with a free job and another constrained one.
TEST_F(ConstraintGenerate, AConstrainedJobIsTheSameAloneAndInABatch) {
  SchedulerOptions so;
  so.parallel = 3;
  Scheduler scheduler(tekken_, so);
  const Tokenizer& tok = tekken_->tokenizer();
  const auto prompt = tok.encode("Answer in JSON:", true);
  std::vector<GenerateOptions> jobs = {
      sampled(1, 64, Constraint::json_schema(tok, kSchemas[0])),
      sampled(2, 64, nullptr),
      sampled(3, 64, Constraint::json_schema(tok, kSchemas[1])),
      sampled(1, 64, Constraint::json_object(tok)),
  };
  std::vector<std::shared_ptr<Job>> running;
  for (const GenerateOptions& o : jobs) running.push_back(scheduler.submit(prompt, o));
  for (size_t i = 0; i < jobs.size(); ++i) {
    std::vector<int32_t> ids;
    for (;;) {
      JobEvent e;
      ASSERT_TRUE(running[i]->next(e, 60s)) << "no event for 60 s";
      if (e.kind != JobEvent::Kind::Text) {
        EXPECT_EQ(e.kind, JobEvent::Kind::Done) << e.text;
        break;
      }
      ids.insert(ids.end(), e.ids.begin(), e.ids.end());
    }
    const GenerateResult alone = run(tekken_, jobs[i]);
    // The scheduler's events hold the generated ids (a final EOS excepted).
    std::vector<int32_t> want = alone.generated_ids;
    if (alone.stop_reason == StopReason::Eos) want.pop_back();
    EXPECT_EQ(ids, want) << "job " << i;
  }
}

}  // namespace
}  // namespace brise
