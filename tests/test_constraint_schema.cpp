// Constraints compiled from JSON Schemas (brise/constraint.hpp): what is refused and how it is
// named; which texts a constraint takes, byte by byte and token by token, against expectations
// written by hand from JSON's grammar and the documented layout policy; and the mask, which must
// hold exactly the tokens that the matcher takes one at a time.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "brise/constraint.hpp"
#include "brise/tokenizer.hpp"
#include "support/json_text.hpp"
#include "support/json_validator.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

// --- refusals -------------------------------------------------------------------------------

struct Refusal {
  const char* schema;
  const char* keyword;
  const char* path;
};

const Tokenizer& bytes_tokenizer() {
  // Tekken's single-byte ranks make any byte string a token sequence; the multi-byte ranks are
  // there too. Built from a synthetic vocabulary so that refusals need no test data.
  static const Tokenizer t(Vocabulary([] {
    Vocabulary v;
    v.model = TokenizerModel::Tekken;
    v.num_special_tokens = 20;
    for (const std::string& s : tekken_default_special_tokens(20)) {
      v.pieces.push_back(s);
      v.kinds.push_back(TokenKind::Control);
    }
    for (int b = 0; b < 256; ++b) {
      v.pieces.push_back(std::string(1, static_cast<char>(b)));
      v.kinds.push_back(TokenKind::Normal);
    }
    v.scores.assign(v.pieces.size(), 0.0f);
    v.bos_id = 1, v.eos_id = 2, v.unk_id = 0, v.pad_id = 11;
    v.pattern = std::string(kTekkenPattern);
    return v;
  }()));
  return t;
}

TEST(ConstraintSchema, UnsupportedKeywordsAreRefusedByNameAndPlace) {
  const Refusal cases[] = {
      {R"({"type": "string", "pattern": "^a"})", "pattern", ""},
      {R"({"properties": {"a": {"type": "string", "minLength": 1}}})", "minLength",
       "/properties/a"},
      {R"({"type": "array", "items": {"type": "string", "format": "date"}})", "format", "/items"},
      {R"({"oneOf": [{"type": "string"}]})", "oneOf", ""},
      {R"({"allOf": [{"type": "string"}]})", "allOf", ""},
      {R"({"not": {"type": "string"}})", "not", ""},
      {R"({"type": "number", "minimum": 0})", "minimum", ""},
      {R"({"type": "integer", "maximum": 9})", "maximum", ""},
      {R"({"type": "integer", "multipleOf": 2})", "multipleOf", ""},
      {R"({"type": "array", "uniqueItems": true})", "uniqueItems", ""},
      {R"({"type": "array", "prefixItems": [{}]})", "prefixItems", ""},
      {R"({"type": "array", "contains": {}})", "contains", ""},
      {R"({"type": "object", "patternProperties": {"a": {}}})", "patternProperties", ""},
      {R"({"type": "object", "propertyNames": {}})", "propertyNames", ""},
      {R"({"type": "object", "minProperties": 1})", "minProperties", ""},
      {R"({"if": {}, "then": {}})", "if", ""},
      {R"({"properties": {"a/b~c": {"maxLength": 3}}})", "maxLength", "/properties/a~1b~0c"},
      {R"({"$defs": {"d": {"type": "string", "maxLength": 3}}, "$ref": "#/$defs/d"})", "maxLength",
       "/$defs/d"},
      {R"({"type": "object", "additionalProperties": {"pattern": "x"}})", "pattern",
       "/additionalProperties"},
      {R"({"anyOf": [{"type": "string"}, {"type": "object", "properties": {"x": {"enum": [1],
          "exclusiveMinimum": 0}}}]})",
       "exclusiveMinimum", "/anyOf/1/properties/x"},
      // Supported keywords in combinations that are not.
      {R"({"type": "string", "anyOf": [{"type": "string"}]})", "anyOf", ""},
      {R"({"$ref": "#", "type": "object"})", "$ref", ""},
      {R"({"enum": ["a"], "properties": {}})", "properties", ""},
      {R"({"items": [{"type": "string"}]})", "items", ""},
      {R"({"properties": {"a": {"$defs": {}}}})", "$defs", "/properties/a"},
      {R"({"properties": {"a": {"$schema": "x"}}})", "$schema", "/properties/a"},
      {R"({"$ref": "#/properties/a", "properties": {"a": {}}})", "$ref", ""},
      {R"({"$ref": "https://example.com/s.json"})", "$ref", ""},
      {R"({"$ref": "#/$defs/missing"})", "$ref", ""},
      {R"({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}},
          "$ref": "#/$defs/a"})",
       "$ref", "/$defs/a"},
      // Malformed values of supported keywords.
      {R"({"type": "strin"})", "type", ""},
      {R"({"type": []})", "type", ""},
      {R"({"type": 3})", "type", ""},
      {R"({"type": "array", "minItems": -1})", "minItems", ""},
      {R"({"type": "array", "maxItems": 1.5})", "maxItems", ""},
      {R"({"type": "array", "minItems": "2"})", "minItems", ""},
      {R"({"required": "a"})", "required", ""},
      {R"({"required": [1]})", "required", ""},
      {R"({"properties": ["a"]})", "properties", ""},
      {R"({"enum": "a"})", "enum", ""},
      {R"({"anyOf": []})", "anyOf", ""},
      {R"({"$ref": 1})", "$ref", ""},
      {R"({"$defs": []})", "$defs", ""},
      {R"({"required": ["x"], "additionalProperties": false})", "required", ""},
  };
  for (const Refusal& c : cases) {
    SCOPED_TRACE(c.schema);
    try {
      (void)Constraint::json_schema(bytes_tokenizer(), c.schema);
      ADD_FAILURE() << "accepted";
    } catch (const SchemaError& e) {
      EXPECT_EQ(e.keyword(), c.keyword) << e.what();
      EXPECT_EQ(e.path(), c.path) << e.what();
      const std::string message = e.what();
      EXPECT_NE(message.find("'" + std::string(c.keyword) + "'"), std::string::npos) << message;
      EXPECT_NE(message.find(*c.path ? c.path : "the root"), std::string::npos) << message;
    }
  }
}

TEST(ConstraintSchema, TextsThatAreNoSchemaAndSchemasNoValueSatisfiesAreRefused) {
  const char* const cases[] = {
      "",
      "{",
      "[1, 2]",
      "\"string\"",
      "{\"type\": \"string\"} x",
      "{\"description\": \"\xC3\x28\"}",  // not UTF-8
      "false",
      R"({"type": "array", "minItems": 3, "maxItems": 2})",
      R"({"type": "object", "properties": {"a": false}, "required": ["a"]})",
      R"({"enum": [1, 2], "type": "string"})",
      R"({"enum": []})",
      R"({"enum": [1], "const": 2})",
      R"({"type": "array", "items": false, "minItems": 1})",
      R"({"$defs": {"a": {"type": "object", "properties": {"x": {"$ref": "#/$defs/a"}},
          "required": ["x"]}}, "$ref": "#/$defs/a"})",  // an object that must hold itself
  };
  for (const char* schema : cases) {
    SCOPED_TRACE(schema);
    EXPECT_THROW((void)Constraint::json_schema(bytes_tokenizer(), schema), SchemaError);
  }
}

TEST(ConstraintSchema, AnnotationsAndTheWholeSubsetAreAccepted) {
  const char* const cases[] = {
      "true",
      "{}",
      R"({"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x",
          "title": "T", "description": "D", "$comment": "c", "examples": [1], "default": {},
          "type": "object", "deprecated": false, "readOnly": true, "writeOnly": false})",
      R"({"type": ["string", "null"]})",
      R"({"type": "integer", "enum": [1, 2.0, 2.5, "x"]})",
      R"({"const": {"a": [1, 2]}})",
      R"({"definitions": {"n": {"type": "number"}}, "type": "array",
          "items": {"$ref": "#/definitions/n"}, "minItems": 0, "maxItems": 4294967296})",
      R"({"type": "object", "properties": {"v": {"type": "integer"},
          "kids": {"type": "array", "items": {"$ref": "#"}}}, "required": ["v"]})",
      R"({"anyOf": [{"type": "string"}, {"$ref": "#/$defs/o"}],
          "$defs": {"o": {"properties": {"a": {"anyOf": [{"$ref": "#/$defs/o"}, {"type": "null"}]}}}}})",
      R"({"type": "object", "additionalProperties": {"type": "integer"}})",
      R"({"type": "object", "properties": {"a": true, "b": false}, "additionalProperties": true})",
  };
  for (const char* schema : cases) {
    SCOPED_TRACE(schema);
    EXPECT_NO_THROW((void)Constraint::json_schema(bytes_tokenizer(), schema));
  }
}

// --- which texts a constraint takes ----------------------------------------------------------

// Feeds `text` one byte token at a time (each rank of bytes_tokenizer() is one byte): true when
// every byte is taken and the output may end there.
bool takes_bytes(const std::shared_ptr<const Constraint>& c, std::string_view text) {
  ConstraintMatcher m(c);
  for (const char ch : text) {
    const int32_t id = 20 + static_cast<uint8_t>(ch);
    const auto mask = m.allowed();
    const bool in_mask = (mask[static_cast<size_t>(id) / 64] >> (id % 64)) & 1;
    const bool taken = m.accept(id);
    EXPECT_EQ(in_mask, taken) << "byte " << (id - 20) << " in " << text;
    if (!taken) return false;
  }
  return m.can_end();
}

struct Texts {
  const char* schema;  // nullptr: any JSON object
  std::vector<std::pair<std::string, bool>> texts;
};

TEST(ConstraintSchema, TakesExactlyTheTextsOfTheSchemaInTheDocumentedLayout) {
  const std::vector<Texts> cases = {
      {R"({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
          "required": ["a"]})",
       {{R"({"a": 1})", true},
        {R"({"a":1,"b":"x"})", true},
        {" {\"a\": 1}", true},
        {"\n{\"a\": 1}", true},
        {"{\n  \"a\": 1,\n  \"b\": \"x\"\n}", true},
        {"{ \"a\": 1 }", true},
        {R"({"a": -0})", true},
        {R"({"a": 123456789012345})", true},
        {R"({"b":"x","a":1})", false},  // valid JSON, but properties come in the schema's order
        {R"({"b": "x"})", false},
        {R"({"a": 1.5})", false},
        {R"({"a": 01})", false},
        {R"({"a": 1, "c": 2})", false},
        {R"({"a": 1, "a": 2})", false},
        {R"({ "a" : 1})", false},
        {R"({"a":  1})", false},
        {R"({"a": 1 , "b": "x"})", false},
        {"{\"a\": 1} ", false},
        {"  {\"a\": 1}", false},
        {R"({"a": 1234567890123456})", false},
        {R"({"a": 1})"
         "\n",
         false},
        {R"({"a": 1)", false},
        {R"([{"a": 1}])", false}}},
      {R"({"type": "string"})",
       {{R"("h\u00e9llo \" \\ \/ \b\f\n\r\t")", true},
        {"\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xED\x9F\xBF\xEF\xBF\xBF\xF4\x8F\xBF\xBF\"", true},
        {R"("\uD7FF \ue000 \uFFFF")", true},
        {R"("")", true},
        {R"("\ud800")", false},  // a lone surrogate
        {R"("\uDFFF")", false},
        {R"("\q")", false},
        {R"("\u12")", false},
        {"\"a\nb\"", false},  // a raw control character
        {"\"\x01\"", false},
        {"\"\xC3\x28\"", false},  // not UTF-8
        {"\"\xC0\x80\"", false},  // overlong
        {"\"\xE0\x80\x80\"", false},
        {"\"\xED\xA0\x80\"", false},  // an encoded surrogate
        {"\"\xF4\x90\x80\x80\"", false},
        {"\"\xF5\x80\x80\x80\"", false},
        {"\"\xC3\"", false},
        {R"("abc)", false}}},
      {R"({"type": "number"})",
       {{"1.5e10", true},
        {"-0.25", true},
        {"1E+99", true},
        {"7e-01", true},
        {"0.123456789012345", true},
        {"1.", false},
        {".5", false},
        {"1e", false},
        {"-", false},
        {"+1", false},
        {"1e100", false},
        {"0.1234567890123456", false},
        {"00", false},
        {"NaN", false}}},
      {R"({"type": "integer"})", {{"0", true}, {"-12", true}, {"1.0", false}, {"1e2", false}}},
      {R"({"enum": ["a", 1, null, {"x": [1, 2.5]}, true]})",
       {{R"("a")", true},
        {"1", true},
        {"null", true},
        {"true", true},
        {R"({"x": [1, 2.5]})", true},  // as json.dumps writes it
        {R"({"x":[1,2.5]})", false},
        {"2", false},
        {"false", false},
        {R"("b")", false}}},
      {R"({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3})",
       {{"[1,2]", true},
        {"[1, 2, 3]", true},
        {"[ 1, 2 ]", true},
        {"[\n  1,\n  2\n]", true},
        {"[1]", false},
        {"[]", false},
        {"[1,2,3,4]", false},
        {"[1 ,2]", false},
        {"[1,,2]", false},
        {"[1,2,]", false}}},
      {R"({"type": "array", "maxItems": 0})", {{"[]", true}, {"[ ]", true}, {"[1]", false}}},
      {R"({"anyOf": [{"type": "object", "properties": {"a": {"type": "integer"}},
          "required": ["a"], "additionalProperties": false},
          {"type": "object", "properties": {"b": {"type": ["string", "null"]}}, "required": ["b"]}]})",
       {{R"({"a": 1})", true},
        {R"({"b": "x"})", true},
        {R"({"b": null})", true},
        {R"({"a": "x"})", false},
        {R"({"b": 1})", false},
        {R"({})", false}}},
      {R"({"type": "object", "properties": {"v": {"type": "integer"},
          "kids": {"type": "array", "items": {"$ref": "#"}}}, "required": ["v"]})",
       {{R"({"v": 1, "kids": [{"v": 2}, {"v": 3, "kids": [{"v": 4, "kids": []}]}]})", true},
        {R"({"v": 1, "kids": [{"kids": []}]})", false}}},
      {R"({"type": "object", "additionalProperties": {"type": "boolean"}})",
       {{"{}", true}, {R"({"any key": true, "k\u00e9y": false})", true}, {R"({"x": 1})", false}}},
      {R"({"type": "object", "additionalProperties": false})",
       {{"{}", true}, {R"({"x": 1})", false}}},
      {R"({"const": "caf\u00e9"})", {{"\"caf\xC3\xA9\"", true}, {R"("caf\u00e9")", false}}},
      {nullptr,
       {{"{}", true},
        {R"({"x": [1, {"y": null}, "z", -2.5e-3, true, false], "w": {"": {}}})", true},
        {"[]", false},
        {R"("x")", false},
        {"{\"a\": 1}\n", false}}},
  };
  for (const Texts& c : cases) {
    const auto constraint = c.schema ? Constraint::json_schema(bytes_tokenizer(), c.schema)
                                     : Constraint::json_object(bytes_tokenizer());
    const auto schema =
        c.schema ? test::parse_json(c.schema) : test::parse_json(R"({"type": "object"})");
    for (const auto& [text, expected] : c.texts) {
      SCOPED_TRACE(std::string(c.schema ? c.schema : "json_object") + "\n  text: " + text);
      EXPECT_EQ(takes_bytes(constraint, text), expected);
      // Every text taken is valid for the independent validator.
      if (expected) {
        EXPECT_EQ(test::json_text_violation(text, schema), std::nullopt);
      }
    }
  }
}

// --- the mask against the matcher, token by token ---------------------------------------------

// Along a seeded random walk (each token drawn among the allowed ones), the mask at each step
// must hold exactly the tokens that a matcher replaying the walk takes.
void expect_mask_is_what_the_matcher_takes(const Tokenizer& tok, const char* schema, uint64_t seed,
                                           int steps) {
  const auto c = schema ? Constraint::json_schema(tok, schema) : Constraint::json_object(tok);
  std::mt19937_64 rng(seed);
  std::vector<int32_t> walk;
  ConstraintMatcher m(c);
  for (int step = 0; step < steps && !m.finished(); ++step) {
    const auto mask = m.allowed();
    std::vector<int32_t> allowed;
    for (size_t id = 0; id < tok.vocab_size(); ++id) {
      const bool bit = (mask[id / 64] >> (id % 64)) & 1;
      if (bit) allowed.push_back(static_cast<int32_t>(id));
      ConstraintMatcher replay(c);
      for (const int32_t t : walk) ASSERT_TRUE(replay.accept(t));
      ASSERT_EQ(replay.accept(static_cast<int32_t>(id)), bit)
          << "token " << id << " '" << tok.token_bytes(static_cast<int32_t>(id)) << "' after "
          << tok.decode(walk);
    }
    ASSERT_FALSE(allowed.empty());
    walk.push_back(allowed[rng() % allowed.size()]);
    ASSERT_TRUE(m.accept(walk.back()));
  }
}

TEST(ConstraintSchema, TheMaskHoldsExactlyTheTokensTheMatcherTakes) {
  BRISE_REQUIRE_TESTDATA(data);
  const Tokenizer tok512(read_sentencepiece_model(data / "tokenizers/tok512/tokenizer.model"));
  const Tokenizer tekken(read_tekken_json(data / "models/tekken-mini/tekken.json"));
  const char* const schemas[] = {
      nullptr,
      R"({"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "number"},
          "tags": {"type": "array", "items": {"enum": ["red", "green"]}, "maxItems": 2}},
          "required": ["name"]})",
      R"({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "integer"}}]})",
  };
  for (const char* schema : schemas) {
    SCOPED_TRACE(schema ? schema : "json_object");
    for (uint64_t seed = 1; seed <= 2; ++seed) {
      expect_mask_is_what_the_matcher_takes(tok512, schema, seed, 12);
      expect_mask_is_what_the_matcher_takes(tekken, schema, seed, 6);
    }
  }
}

}  // namespace
}  // namespace brise
