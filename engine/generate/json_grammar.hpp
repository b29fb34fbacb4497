// A JSON Schema's tree (json_schema.hpp) as grammar rules (grammar.hpp): one rule per node, the
// shared ones (strings, numbers, any value, whitespace) made once. The layout policy of
// brise/constraint.hpp is here: optional_space() is the only whitespace a rule allows.
#pragma once

#include <cstdint>
#include <map>

#include "engine/generate/grammar.hpp"
#include "engine/generate/json_schema.hpp"

namespace brise::json_grammar {

// How many spaces may follow a newline where whitespace is allowed (indentation).
inline constexpr int kMaxIndent = 32;
// Digits of a number: integer part, fraction, exponent.
inline constexpr int kMaxIntegerDigits = 15;
inline constexpr int kMaxFractionDigits = 15;
inline constexpr int kMaxExponentDigits = 2;

class Rules {
 public:
  Rules(grammar::Builder& builder, const json_schema::Schema& schema) : b_(builder), s_(schema) {}

  // The rule whose text is a value of `node`.
  uint32_t rule_of(uint32_t node);
  // From `from` to `to`: nothing, one space, or a newline and up to kMaxIndent spaces.
  void optional_space(uint32_t from, uint32_t to);
  // A rule for one of `texts` (each as it is: JSON literals, or a tool's bare name).
  uint32_t literals(const std::vector<std::string>& texts, const std::string& name);

 private:
  uint32_t space();
  uint32_t string();
  void character(uint32_t rule, uint32_t from, uint32_t to);
  uint32_t counted_string(const std::string& name, uint32_t min_length, uint32_t max_length);
  uint32_t number(bool integer);
  uint32_t any();
  uint32_t call_id(bool quoted);
  uint32_t never();
  // The rule shared under `kind`: true when it exists; else it is made (named `name`, its body
  // for the caller to build) and registered first, so that its body may call it back.
  bool shared(int kind, const char* name, uint32_t& rule);
  // The positions of rule `r` (made by the caller, so that parts may call it back).
  void fill_object(uint32_t r, const json_schema::Node& node);
  void fill_free_object(uint32_t r, uint32_t values_rule);
  void fill_array(uint32_t r, uint32_t item_rule, uint32_t min_items, uint32_t max_items);
  void fill_union(uint32_t r, const json_schema::Node& node);

  grammar::Builder& b_;
  const json_schema::Schema& s_;
  std::map<uint32_t, uint32_t> rules_;  // schema node -> rule
  std::map<int, uint32_t> shared_;      // the shared rules, by kind
};

}  // namespace brise::json_grammar
