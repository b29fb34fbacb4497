// JSON as Python's json module reads and writes it, for Mistral's chat templates: mistral-common
// builds the text of tool definitions, tool calls and tool results with json.loads/json.dumps,
// and the model saw exactly that text in training, so brise must produce it byte for byte:
// objects keep their key order (a repeated key keeps its first place and its last value, as a
// Python dict does), numbers print as Python prints them (an integer literal keeps all its digits,
// a float is the shortest text that reads back the same: 1e-05, 1e+16, 1000000000000000.0), and
// dumps() writes json.dumps(value, ensure_ascii=False): ", " and ": " separators, non-ASCII
// characters as they are, control characters escaped (\n, \u001f).
//
// Not reproduced: Python also reads NaN, Infinity and lone UTF-16 surrogates (\ud800); here such
// text is not JSON (so a tool result holding it stays a plain string).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace brise::python_json {

struct Value {
  enum class Kind { Null, Bool, Int, Float, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  // Int and Float: the number as Python prints it; String: the UTF-8 text.
  std::string text;
  std::vector<Value> items;                            // Array
  std::vector<std::pair<std::string, Value>> members;  // Object, in order, keys unique

  // Declared here, defined where Value is complete: clang with libstdc++ otherwise instantiates
  // the members' vector while pair<string, Value> is still incomplete (through optional<Value>).
  Value();
  Value(const Value&);
  Value(Value&&) noexcept;
  Value& operator=(const Value&);
  Value& operator=(Value&&) noexcept;
  ~Value();

  bool is_object() const { return kind == Kind::Object; }
  bool is_array() const { return kind == Kind::Array; }
  bool is_string() const { return kind == Kind::String; }
  bool is_null() const { return kind == Kind::Null; }
  // The member named `key`, or nullptr.
  const Value* find(std::string_view key) const;
  // Sets `key` (replacing its value in place when present, appending it otherwise).
  void set(std::string key, Value value);

  static Value string(std::string s);
  static Value object();
  static Value array();
};

// Parses `text` (UTF-8; whitespace around the value allowed). Throws brise::Error naming `what`
// and the byte offset on anything that is not one JSON value, or on nesting deeper than 256.
Value parse(std::string_view text, const std::string& what);
// The same, but returns nullopt where json.loads would raise JSONDecodeError.
std::optional<Value> try_parse(std::string_view text);

// json.dumps(value, ensure_ascii=False).
std::string dumps(const Value& value);
// json.dumps of a string alone: the quoted, escaped text.
std::string dumps_string(std::string_view s);

}  // namespace brise::python_json
