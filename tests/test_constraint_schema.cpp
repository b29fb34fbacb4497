// Constraints compiled from JSON Schemas (brise/constraint.hpp): what is refused and how it is
// named; which texts a constraint takes, byte by byte and token by token, against expectations
// written by hand from JSON's grammar and the documented layout policy; and the mask, which must
// hold exactly the tokens that the matcher takes one at a time.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
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
      {R"({"type": "array", "items": {"type": "string", "format": "date"}})", "format", "/items"},
      {R"({"oneOf": [{"type": "string"}]})", "oneOf", ""},
      {R"({"allOf": [{"type": "string"}]})", "allOf", ""},
      {R"({"not": {"type": "string"}})", "not", ""},
      {R"({"type": "integer", "multipleOf": 2})", "multipleOf", ""},
      {R"({"type": "array", "uniqueItems": true})", "uniqueItems", ""},
      {R"({"type": "array", "prefixItems": [{}]})", "prefixItems", ""},
      {R"({"type": "array", "contains": {}})", "contains", ""},
      {R"({"type": "object", "patternProperties": {"a": {}}})", "patternProperties", ""},
      {R"({"type": "object", "propertyNames": {}})", "propertyNames", ""},
      {R"({"type": "object", "minProperties": 1})", "minProperties", ""},
      {R"({"if": {}, "then": {}})", "if", ""},
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
      {R"({"type": "integer", "minimum": 1, "enum": [1]})", "minimum", ""},
      // Bounds and lengths: malformed, beyond what brise writes, or leaving nothing.
      {R"({"type": "integer", "minimum": "1"})", "minimum", ""},
      {R"({"properties": {"a/b~c": {"type": "number", "maximum": null}}})", "maximum",
       "/properties/a~1b~0c"},
      {R"({"type": "number", "exclusiveMinimum": true})", "exclusiveMinimum", ""},
      {R"({"type": "integer", "exclusiveMaximum": [1]})", "exclusiveMaximum", ""},
      {R"({"type": "integer", "minimum": 1e30})", "minimum", ""},
      {R"({"type": "integer", "minimum": -9223372036854775809})", "minimum", ""},
      {R"({"type": "number", "maximum": 9223372036854775809})", "maximum", ""},
      {R"({"type": "number", "maximum": -9223372036854775808.5})", "maximum", ""},
      {R"({"type": "integer", "minimum": 5, "maximum": 3})", "maximum", ""},
      {R"({"type": "integer", "minimum": 0.5, "maximum": 0.7})", "maximum", ""},
      {R"({"type": "integer", "exclusiveMinimum": 3, "exclusiveMaximum": 4})", "exclusiveMaximum",
       ""},
      {R"({"type": "number", "minimum": 1, "exclusiveMaximum": 1})", "exclusiveMaximum", ""},
      {R"({"type": "integer", "exclusiveMinimum": 999999999999999})", "exclusiveMinimum", ""},
      {R"({"type": "string", "minimum": 2, "maximum": 1})", "maximum", ""},
      {R"({"$defs": {"d": {"type": "string", "minLength": -1}}, "$ref": "#/$defs/d"})", "minLength",
       "/$defs/d"},
      {R"({"type": "string", "maxLength": 1.5})", "maxLength", ""},
      {R"({"type": "string", "minLength": "2"})", "minLength", ""},
      {R"({"type": "string", "minLength": 3, "maxLength": 2})", "maxLength", ""},
      {R"({"type": "string", "minLength": 4294967296})", "minLength", ""},
      {R"({"type": "integer", "maxLength": -2})", "maxLength", ""},
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
      // zod 4's z.number().int(), pydantic's Field(ge=.., le=..), both ends of int64.
      R"({"type": "integer", "minimum": -9007199254740991, "maximum": 9007199254740991})",
      R"({"type": "integer", "minimum": -9223372036854775808, "maximum": 9223372036854775807})",
      R"({"type": "number", "minimum": -9223372036854775808, "exclusiveMaximum": 1e-30})",
      R"({"type": ["integer", "null"], "minimum": 0, "exclusiveMinimum": true, "maximum": 1})",
      R"({"type": "string", "minLength": 1, "maxLength": 4294967296})",
      R"({"minLength": 1})",
      R"({"exclusiveMaximum": 0})",
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
      // Lengths in code points: a multi-byte character or an escape is one.
      {R"({"type": "string", "minLength": 2, "maxLength": 3})",
       {{R"("ab")", true},
        {R"("abc")", true},
        {"\"\xC3\xA9\xE2\x82\xAC\"", true},                              // 2 code points, 5 bytes
        {"\"\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80\"", true},  // 3, 12 bytes
        {R"("\n\u00e9")", true},
        {R"("a\"\\")", true},
        {R"("\uFFFF\/")", true},
        {"\"\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80\"", false},
        {"\"\xC3\xA9\"", false},
        {R"("\u00e9")", false},
        {R"("abcd")", false},
        {R"("a")", false},
        {R"("")", false},
        {R"("ab\q")", false},
        {"\"a\xC3\x28\"", false}}},
      {R"({"type": "string", "minLength": 1})",
       {{R"("a")", true},
        {R"("\u0041")", true},
        {R"("a long text, longer than any bound")", true},
        {"\"\xE2\x82\xAC and more\"", true},
        {R"("")", false},
        {R"("a)", false}}},
      {R"({"maxLength": 0})", {{R"("")", true}, {R"("a")", false}, {"0", false}}},
      // Bounds on numbers: exact, in plain decimal notation (no exponent, no "-0").
      {R"({"type": "number", "minimum": -1.5, "exclusiveMaximum": 2.25})",
       {{"-1.5", true},
        {"-1.50", true},
        {"-1.499999999999999", true},
        {"2.249999999999999", true},
        {"2.2", true},
        {"2", true},
        {"0", true},
        {"0.0", true},
        {"-1", true},
        {"-1.500000000000001", false},
        {"-1.51", false},
        {"2.25", false},
        {"2.250", false},
        {"2.3", false},
        {"3", false},
        {"-2", false},
        {"-0", false},
        {"-0.0", false},
        {"1e0", false},
        {"00.5", false},
        {"2.", false}}},
      {R"({"type": "integer", "exclusiveMinimum": -3, "maximum": 5.5})",
       {{"-2", true},
        {"0", true},
        {"5", true},
        {"-3", false},
        {"6", false},
        {"-0", false},
        {"5.0", false}}},
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

// --- bounds on numbers, against the rule restated here ------------------------------------------

__extension__ typedef __int128 Int128;  // every bound brise takes, and more

// The value of `text` scaled by 10^scale_digits when it is a number as brise writes bounded ones:
// -?(0|[1-9][0-9]*)(\.[0-9]{1,scale_digits})?, and no minus before zero (a fraction is allowed
// only when scale_digits > 0); nullopt for any other text.
std::optional<Int128> plain_decimal(const std::string& text, int scale_digits) {
  const bool negative = text.starts_with("-");
  const std::string body = text.substr(negative ? 1 : 0);
  const size_t point = body.find('.');
  const std::string whole = body.substr(0, point);
  const std::string fraction = point == std::string::npos ? "" : body.substr(point + 1);
  const auto digits = [](const std::string& d) {
    return !d.empty() && d.find_first_not_of("0123456789") == std::string::npos;
  };
  if (!digits(whole) || whole.size() > 30 || (whole.size() > 1 && whole[0] == '0')) return {};
  if (point != std::string::npos &&
      (!digits(fraction) || fraction.size() > static_cast<size_t>(scale_digits)))
    return {};
  Int128 v = 0;
  for (const char c : whole) v = v * 10 + (c - '0');
  for (int k = 0; k < scale_digits; ++k)
    v = v * 10 +
        (static_cast<size_t>(k) < fraction.size() ? fraction[static_cast<size_t>(k)] - '0' : 0);
  if (negative && v == 0) return {};
  return negative ? -v : v;
}

std::string decimal_text(Int128 v) {
  if (v < 0) return "-" + decimal_text(-v);
  std::string s;
  do s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
  while ((v /= 10) != 0);
  return s;
}

// Texts that are no integers, or not as JSON writes them.
const char* const kMalformedIntegers[] = {"",   "-",   "+1",  "00", "01",  "-01", "-0", "1.0",
                                          "1.", "1e1", "1E1", "1 ", "--1", "0x1", "1-"};

struct IntegerRange {
  const char* schema;
  Int128 lo, hi;  // the integers it allows, worked out by hand
};

void expect_exactly_the_range(const IntegerRange& c, const std::vector<std::string>& texts) {
  const auto constraint = Constraint::json_schema(bytes_tokenizer(), c.schema);
  for (const std::string& text : texts) {
    const std::optional<Int128> v = plain_decimal(text, 0);
    const bool expected = v && *v >= c.lo && *v <= c.hi;
    SCOPED_TRACE(std::string(c.schema) + "\n  text: " + text);
    EXPECT_EQ(takes_bytes(constraint, text), expected);
  }
}

TEST(ConstraintSchema, BoundedIntegersAreExactlyTheIntegersInTheRange) {
  const Int128 cap = 999999999999999;  // 15 digits: the side without a bound
  const IntegerRange cases[] = {
      {R"({"type": "integer", "minimum": -25, "maximum": 37})", -25, 37},
      {R"({"type": "integer", "minimum": 0, "maximum": 0})", 0, 0},
      {R"({"type": "integer", "minimum": -1, "maximum": -1})", -1, -1},
      {R"({"type": "integer", "exclusiveMinimum": 6, "exclusiveMaximum": 121})", 7, 120},
      {R"({"type": "integer", "minimum": -130.5, "maximum": -6.5})", -130, -7},
      {R"({"type": "integer", "minimum": 100, "maximum": 100})", 100, 100},
      {R"({"type": "integer", "minimum": 9, "maximum": 10})", 9, 10},
      {R"({"type": "integer", "minimum": -10, "maximum": -9})", -10, -9},
      {R"({"type": "integer", "minimum": 10, "maximum": 99})", 10, 99},
      {R"({"type": "integer", "minimum": 1e2, "maximum": 2.5e2})", 100, 250},
      {R"({"type": "integer", "minimum": 0.5, "exclusiveMaximum": 1000})", 1, 999},
      {R"({"type": "integer", "minimum": 3, "exclusiveMinimum": 3, "maximum": 50,
          "exclusiveMaximum": 51})",
       4, 50},
      {R"({"type": "integer", "minimum": 3, "exclusiveMinimum": false})", 3, cap},
      {R"({"type": "integer", "minimum": 3, "exclusiveMinimum": true})", 4, cap},
      {R"({"type": "integer", "minimum": 7})", 7, cap},
      {R"({"type": "integer", "exclusiveMaximum": -7})", -cap, -8},
  };
  std::vector<std::string> texts(std::begin(kMalformedIntegers), std::end(kMalformedIntegers));
  for (int v = -300; v <= 300; ++v) texts.push_back(std::to_string(v));
  for (const Int128 v : {cap, cap + 1, -cap, -cap - 1}) texts.push_back(decimal_text(v));
  for (const IntegerRange& c : cases) expect_exactly_the_range(c, texts);
}

TEST(ConstraintSchema, TheZodSafeIntegerRangeAndTheInt64RangeAreExact) {
  const Int128 safe = (Int128{1} << 53) - 1, big = Int128{1} << 63;
  const IntegerRange cases[] = {
      {R"({"type": "integer", "minimum": -9007199254740991, "maximum": 9007199254740991})", -safe,
       safe},
      {R"({"type": "integer", "minimum": -9223372036854775808, "maximum": 9223372036854775807})",
       -big, big - 1},
      {R"({"type": "integer", "exclusiveMinimum": -9223372036854775808,
          "exclusiveMaximum": 9223372036854775808})",
       -big + 1, big - 1},
  };
  std::mt19937_64 rng(7);
  for (const IntegerRange& c : cases) {
    std::vector<std::string> texts(std::begin(kMalformedIntegers), std::end(kMalformedIntegers));
    for (const Int128 edge : {c.lo, c.hi, Int128{0}})
      for (int d = -40; d <= 40; ++d) texts.push_back(decimal_text(edge + d));
    // Numbers of every length up to two digits past the bound's, either sign.
    for (int k = 0; k < 300; ++k) {
      std::string t = std::to_string(1 + rng() % 9);
      const size_t length = 1 + rng() % 21;
      while (t.size() < length) t += static_cast<char>('0' + rng() % 10);
      texts.push_back(k % 2 ? "-" + t : t);
    }
    expect_exactly_the_range(c, texts);
  }
}

TEST(ConstraintSchema, BoundedNumbersAreExactlyTheDecimalsInTheRange) {
  struct NumberRange {
    const char* schema;
    int lo, hi;  // the bounds times 1000, worked out by hand
    bool lo_open, hi_open;
  };
  const NumberRange cases[] = {
      {R"({"type": "number", "minimum": -1.5, "exclusiveMaximum": 2.25})", -1500, 2250, false,
       true},
      {R"({"type": "number", "exclusiveMinimum": 0, "maximum": 0.5})", 0, 500, true, false},
      {R"({"type": "number", "minimum": -2.249, "maximum": -0.001})", -2249, -1, false, false},
      {R"({"type": "number", "exclusiveMinimum": -1, "exclusiveMaximum": 1})", -1000, 1000, true,
       true},
  };
  std::vector<std::string> texts = {"", ".5", "1e0", "1.5e0", "+1", "0.", "-.5", "1..2"};
  for (const char* sign : {"", "-"})
    for (const char* whole : {"0", "1", "2", "3", "00", "01"})
      for (const char* fraction : {"", ".", ".0", ".000", ".001", ".5", ".25", ".24", ".26", ".249",
                                   ".250", ".251", ".50", ".5001", ".49", ".999"})
        texts.push_back(std::string(sign) + whole + fraction);
  for (const NumberRange& c : cases) {
    const auto constraint = Constraint::json_schema(bytes_tokenizer(), c.schema);
    for (const std::string& text : texts) {
      const std::optional<Int128> v = plain_decimal(text, 15);
      const Int128 scale = 1000000000000;  // 10^15 / 10^3
      const bool expected = v && (c.lo_open ? *v > c.lo * scale : *v >= c.lo * scale) &&
                            (c.hi_open ? *v < c.hi * scale : *v <= c.hi * scale);
      SCOPED_TRACE(std::string(c.schema) + "\n  text: " + text);
      EXPECT_EQ(takes_bytes(constraint, text), expected);
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
      R"({"type": "object", "properties": {"s": {"type": "string", "minLength": 2, "maxLength": 4},
          "n": {"type": "integer", "minimum": -20, "maximum": 300},
          "x": {"type": "number", "exclusiveMinimum": -1, "maximum": 2.5},
          "t": {"type": "string", "minLength": 3}}, "required": ["s", "n", "x", "t"]})",
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
