// Constrained decoding: generation whose output a grammar holds to, for structured output (a JSON
// Schema, or any JSON object: OpenAI's response_format) and forced tool calls (tool_choice
// "required" or a named function).
//
// A Constraint is compiled once per request: the schema becomes a grammar over bytes (a set of
// small automata that call each other, so nesting and $ref recursion are exact), tied to the
// vocabulary of one tokenizer. Control tokens ([TOOL_CALLS], [ARGS], [CALL_ID]) are symbols of
// the grammar by id; EOS ends it. At each step the tokens whose bytes the grammar cannot take
// from where it stands are masked before sampling: a walk over the tokenizer's byte trie
// (Tokenizer::token_trie) steps the grammar once per shared prefix, so a 131072-token vocabulary
// costs what its distinct prefixes cost, and each state's mask is kept for the next time the
// grammar is there (inside a long string, every step). Tokens that end inside a UTF-8 character
// are judged by their bytes: a string may hold them as long as a valid character can follow.
//
// Use it through GenerateOptions::constraint (brise::generate, brise::Generation and
// brise::Scheduler apply it): the sampling options (temperature, top-k/p, min-p, penalties)
// apply to the tokens the mask leaves; the mask depends only on the constraint and the tokens
// generated so far, so seeds and batch invariance hold. When the grammar is complete and nothing
// but EOS may follow, generation ends there: EOS is appended to the generated ids without
// another forward pass (StopReason::Eos).
//
// The output fits max_tokens: a token is allowed only if the shortest way to finish the grammar
// after it (in bytes, each of which has a single-byte token in Mistral's vocabularies), plus EOS,
// still fits the tokens left (max_tokens and, with full attention, the context). Near the end of
// the budget the model is thus steered to close what is open; when that excluded a token the
// grammar allowed, the generation ends with StopReason::MaxTokens (and no EOS) instead of Eos.
// Only a budget below the grammar's shortest output leaves it unfinished (then the mask is the
// grammar's alone, and generation stops at max_tokens).
// Free text (ToolCallOptions::text_first) needs no room for EOS: a text answer runs to
// max_tokens as it would unconstrained.
//
// JSON layout. JSON allows any whitespace between tokens, and a weak model can loop on it, so the
// grammar allows only what pretty-printers write, in their places: after '{', '[', ',' and ':'
// and before '}' and ']', nothing, one space, or one newline followed by up to 32 spaces; nothing
// elsewhere (no space before ',' or ':'), and the same once before the whole value (SentencePiece
// models start text with a space). Numbers have at most 15 integer digits (so that every integer
// is exact as a double), 15 fraction digits and a 2-digit exponent (bounded ones: see minimum).
// Strings are as long as the model makes them (within minLength/maxLength); their text is valid
// UTF-8 with JSON's escapes (\uXXXX outside the surrogates D800-DFFF, so every string also
// decodes without lone surrogates).
//
// JSON Schema subset (draft 2020-12 names; a schema is an object or true/false):
//   type          "object" "array" "string" "number" "integer" "boolean" "null", or a list of them
//   properties    generated in the schema's order; each at most once
//   required      these always, the others when the model chooses (a name only in `required` gets
//                 the additionalProperties schema, or any value)
//   additionalProperties  false, true or a schema. Only an object schema that names no property
//                 (no properties, no required) generates keys of its own: any keys, with values
//                 of this schema (false: only {}). Where names are given, only they are generated
//                 (valid whatever additionalProperties says). Duplicate keys are not prevented in
//                 the free form.
//   enum, const   the values, written as Python's json.dumps writes them; with `type` beside them
//                 the values of other types are dropped (other keywords beside them: refused)
//   items         one schema for every item (a list of schemas, prefixItems: refused)
//   minItems, maxItems
//   minimum, maximum, exclusiveMinimum, exclusiveMaximum  on integer and number (numbers, at most
//                 2^63 in magnitude; draft 4's boolean exclusiveMinimum/Maximum too): exactly the
//                 values between them. A bounded value is written in plain decimal, without an
//                 exponent or "-0", its fraction at most 15 digits; a side without a bound keeps
//                 the 15-digit limit on the integer part (or the other bound's digit count, when
//                 larger). Valid beside any type, they apply only to numbers.
//   minLength, maxLength  on string, in code points (an escape counts as the one character it
//                 stands for)
//   anyOf         the alternatives (with keywords beside it other than annotations: refused)
//   $ref          "#" or "#/$defs/NAME" ("#/definitions/NAME" too), $defs/definitions at the
//                 root; recursion is exact (a cycle that consumes nothing is refused)
// Without `type`, object keywords (properties, required, additionalProperties) make it an object,
// array keywords (items, minItems, maxItems) an array, minLength and maxLength a string, and the
// bounds above a number. Annotations are accepted and ignored:
// title, description, default, examples, $comment, deprecated, readOnly, writeOnly, and $schema
// and $id at the root. Any other keyword is refused with a SchemaError naming it and its place
// (a JSON pointer), e.g. "unsupported JSON Schema keyword 'pattern' at /properties/name"; so is
// a schema that no value satisfies (a required property whose schema is false, minItems above
// maxItems, an enum left empty, bounds with no number between them, minLength above maxLength).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "brise/tokenizer.hpp"

namespace brise {

// A schema brise does not take: `path` is the JSON pointer of the schema object at fault ("" for
// the root; "/properties/a/items"), `keyword` the keyword (empty when the problem is not one
// keyword, e.g. the text is not JSON). The message names both.
class SchemaError : public Error {
 public:
  SchemaError(std::string path, std::string keyword, const std::string& message)
      : Error(message), path_(std::move(path)), keyword_(std::move(keyword)) {}
  const std::string& path() const { return path_; }
  const std::string& keyword() const { return keyword_; }

 private:
  std::string path_, keyword_;
};

// What a forced tool call may call.
struct ToolCallOptions {
  // Empty: any of the tools (tool_choice "required"); else this function (tool_choice {"type":
  // "function", "function": {"name": ...}}), which must be one of the tools.
  std::string function;
  // Calls in one answer: at least 1, at most this (0: no limit; 1 for parallel_tool_calls false).
  uint32_t max_calls = 0;
  // tool_choice "auto" with a bound on the calls: the reply may be free text (any text tokens,
  // EOS anywhere, even first), and from [TOOL_CALLS] on it is the calls as above (at least 1,
  // at most max_calls), then EOS. Text before the calls stays as the model writes it.
  bool text_first = false;
};

struct TokenTrie;
namespace grammar {
struct Grammar;
}

// A compiled grammar for one tokenizer's vocabulary. Immutable: share it between generations and
// threads (GenerateOptions holds a shared_ptr).
class Constraint {
 public:
  // A JSON Schema as JSON text (OpenAI's response_format.json_schema.schema). SchemaError for
  // what the subset above does not take, or text that is not one JSON value.
  static std::shared_ptr<const Constraint> json_schema(const Tokenizer& tokenizer,
                                                       std::string_view schema_json);
  // Any JSON object (response_format {"type": "json_object"}).
  static std::shared_ptr<const Constraint> json_object(const Tokenizer& tokenizer);
  // A reply that is only tool calls, in the template's form, then EOS:
  //   v2, v3, v7: [TOOL_CALLS] then a JSON list of {"name": NAME, "arguments": ARGS} (v3 and v7:
  //               with an optional "id" of 9 letters or digits after them), one space allowed
  //               before the list;
  //   v11:        [TOOL_CALLS]NAME, optionally [CALL_ID] and 9 letters or digits, [ARGS]ARGS,
  //               repeated for each call;
  //   v13:        [TOOL_CALLS]NAME[ARGS]ARGS, repeated.
  // With options.text_first, any text may come before (or instead of) the calls.
  // NAME is one of the allowed functions' names and ARGS a JSON object that satisfies that
  // function's `parameters` schema (the subset above; "{}": any object), so that
  // parse_assistant_reply finds the calls. brise::Error for v1 (no tools), a vocabulary without
  // the template's control tokens, no tools, an unknown function, or an invalid function name;
  // SchemaError (its message prefixed with the tool's name) for a parameters schema refused or
  // one that allows no object.
  static std::shared_ptr<const Constraint> tool_calls(const Tokenizer& tokenizer, ChatTemplate tmpl,
                                                      std::span<const ChatTool> tools,
                                                      const ToolCallOptions& options = {});

  Constraint(std::shared_ptr<const grammar::Grammar> grammar, std::shared_ptr<const TokenTrie> trie,
             int32_t eos_id);
  ~Constraint();

  // The shortest output, in bytes and control tokens (EOS not counted).
  uint32_t min_length() const;
  // Whether this constraint was made for `tokenizer`'s vocabulary (the same token bytes, kinds,
  // BOS and EOS): generation refuses it otherwise.
  bool compatible_with(const Tokenizer& tokenizer) const;

  const grammar::Grammar& grammar() const { return *grammar_; }
  const TokenTrie& trie() const { return *trie_; }
  int32_t eos_id() const { return eos_id_; }

 private:
  std::shared_ptr<const grammar::Grammar> grammar_;
  std::shared_ptr<const TokenTrie> trie_;
  int32_t eos_id_;
};

// One generation's progress through a Constraint: which tokens may come next, and the tokens
// taken. brise::Generation holds one; use it directly to drive a loop of your own.
class ConstraintMatcher {
 public:
  explicit ConstraintMatcher(std::shared_ptr<const Constraint> constraint);
  ~ConstraintMatcher();
  ConstraintMatcher(ConstraintMatcher&&) noexcept;
  ConstraintMatcher& operator=(ConstraintMatcher&&) noexcept;

  // The tokens allowed next, as a bitset over the vocabulary (bit id % 64 of word id / 64), when
  // `remaining` tokens may still be generated, this one included (see the budget above). Valid
  // until the next call. Never empty while the grammar is not finished.
  std::span<const uint64_t> allowed(uint32_t remaining = UINT32_MAX);
  // Takes a token: false (and no change) when the grammar does not allow it here. EOS is allowed
  // where the grammar is complete and ends it.
  bool accept(int32_t id);
  // The grammar is complete and nothing but EOS may follow.
  bool finished() const;
  // EOS may come next (the grammar is complete here, though more may follow).
  bool can_end() const;
  // The budget of an allowed() call excluded a token that the grammar allowed.
  bool steered() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace brise
