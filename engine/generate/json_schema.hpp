// JSON Schema (the subset of brise/constraint.hpp) read into a small tree of what values may be,
// with every keyword checked: the first step of compiling a schema into a grammar
// (json_grammar.hpp takes it from here).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/generate/grammar.hpp"
#include "engine/generate/json_range.hpp"
#include "engine/generate/python_json.hpp"

namespace brise::json_schema {

enum class Kind {
  Any,       // any JSON value
  Never,     // no value (the schema false, an enum left empty)
  Literals,  // one of `literals` (JSON texts, as json.dumps writes them)
  Union,     // a value of one of `alternatives` (anyOf, a list of types)
  Object,
  Array,
  String,
  Number,
  Integer,
  Ref,     // the node `target` ($ref)
  CallId,  // 9 letters or digits (a tool call's id): a JSON string, or bare when !quoted
};

struct Property {
  std::string name = {};
  uint32_t value = 0;  // node of its values
  bool required = false;
};

struct Node {
  Kind kind = Kind::Any;
  std::string path = {};  // the JSON pointer of its schema, for messages
  std::vector<std::string> literals = {};
  std::vector<uint32_t> alternatives = {};
  // Object: the properties it generates, in order; with none, any keys (free_keys) with values
  // of node `values`. Array: items of node `values`, between min_items and max_items.
  std::vector<Property> properties = {};
  bool free_keys = false;
  uint32_t values = 0;
  uint32_t min_items = 0, max_items = grammar::kInfinite;
  uint32_t target = 0;  // Ref
  // Integer and Number: minimum, maximum, exclusiveMinimum, exclusiveMaximum. String: minLength
  // and maxLength, in code points.
  json_range::Range range = {};
  uint32_t min_length = 0, max_length = grammar::kInfinite;
  bool quoted = true;  // CallId
};

struct Schema {
  std::vector<Node> nodes;
  uint32_t add(Node node) {
    nodes.push_back(std::move(node));
    return static_cast<uint32_t>(nodes.size() - 1);
  }
};

// Reads the schema (JSON text, or a parsed value) into `schema`, appending its nodes; returns the
// node of its root. Its $refs resolve within it. Throws brise::SchemaError naming the keyword and
// the JSON pointer of what is refused.
uint32_t compile(Schema& schema, std::string_view json_text);
uint32_t compile(Schema& schema, const python_json::Value& value);

// Follows Ref nodes to the node they stand for.
uint32_t resolve(const Schema& schema, uint32_t node);

// The values of `node` that are objects, as a node (Never when there are none): the arguments
// of a tool call, whose parameters schema may allow more.
uint32_t objects_only(Schema& schema, uint32_t node);

}  // namespace brise::json_schema
