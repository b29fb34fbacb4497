#include "engine/generate/json_grammar.hpp"

#include <string>

#include "engine/generate/json_range.hpp"
#include "engine/generate/python_json.hpp"

namespace brise::json_grammar {
namespace {

using grammar::Count;
using grammar::Guard;
using grammar::ItemRole;
using json_schema::Kind;

enum Shared {
  kSpace,
  kString,
  kStringTail,
  kCharacter,
  kNumber,
  kInteger,
  kAny,
  kQuotedId,
  kBareId,
  kNever
};

}  // namespace

uint32_t Rules::rule_of(uint32_t node) {
  const uint32_t n = json_schema::resolve(s_, node);
  if (const auto it = rules_.find(n); it != rules_.end()) return it->second;
  const json_schema::Node& nd = s_.nodes[n];
  const std::string name = nd.path.empty() ? "value" : nd.path;
  // Rules that may contain themselves are registered before their parts are made.
  const auto begin = [&] {
    const uint32_t r = b_.add_rule(name);
    rules_[n] = r;
    return r;
  };
  uint32_t r = 0;
  switch (nd.kind) {
    case Kind::Any:
      r = any();
      break;
    case Kind::Never:
    case Kind::Ref:  // resolved above
      r = never();
      break;
    case Kind::Literals:
      r = literals(nd.literals, name);
      break;
    case Kind::String:
      r = nd.min_length == 0 && nd.max_length == grammar::kInfinite
              ? string()
              : counted_string(name, nd.min_length, nd.max_length);
      break;
    case Kind::Number:
    case Kind::Integer:
      if (nd.range.lower || nd.range.upper) {
        json_range::Range range = nd.range;
        range.integer = nd.kind == Kind::Integer;
        range.max_integer_digits = kMaxIntegerDigits;
        range.max_fraction_digits = kMaxFractionDigits;
        r = b_.add_rule(name);
        json_range::build(b_, r, range);
      } else {
        r = number(nd.kind == Kind::Integer);
      }
      break;
    case Kind::CallId:
      r = call_id(nd.quoted);
      break;
    case Kind::Union:
      r = begin();
      fill_union(r, nd);
      break;
    case Kind::Object:
      r = begin();
      if (!nd.free_keys)
        fill_object(r, nd);
      else if (s_.nodes[json_schema::resolve(s_, nd.values)].kind == Kind::Never)
        fill_free_object(r, grammar::kInfinite);
      else
        fill_free_object(r, rule_of(nd.values));
      break;
    case Kind::Array:
      r = begin();
      fill_array(r, rule_of(nd.values), nd.min_items, nd.max_items);
      break;
  }
  rules_[n] = r;
  return r;
}

void Rules::optional_space(uint32_t from, uint32_t to) {
  b_.eps(from, to);
  b_.call(from, space(), to);
}

bool Rules::shared(int kind, const char* name, uint32_t& rule) {
  if (const auto it = shared_.find(kind); it != shared_.end()) {
    rule = it->second;
    return true;
  }
  rule = b_.add_rule(name);
  shared_[kind] = rule;
  return false;
}

uint32_t Rules::space() {
  uint32_t r;
  if (shared(kSpace, "whitespace", r)) return r;
  const uint32_t start = b_.rule_start(r);
  const uint32_t after_space = b_.add_position(r);
  b_.accept(after_space);
  b_.byte_edge(start, ' ', after_space);
  uint32_t indent = b_.add_position(r);  // after the newline and k spaces
  b_.accept(indent);
  b_.byte_edge(start, '\n', indent);
  for (int k = 0; k < kMaxIndent; ++k) {
    const uint32_t next = b_.add_position(r);
    b_.accept(next);
    b_.byte_edge(indent, ' ', next);
    indent = next;
  }
  return r;
}

uint32_t Rules::never() {
  // A rule with no way out: it matches nothing, and its callers' distances say so.
  uint32_t r;
  if (shared(kNever, "no value", r)) return r;
  const uint32_t dead_end = b_.add_position(r);
  b_.byte_edge(b_.rule_start(r), '"', dead_end);  // a rule consumes before it could end
  return r;
}

uint32_t Rules::literals(const std::vector<std::string>& texts, const std::string& name) {
  const uint32_t r = b_.add_rule(name.empty() ? "literal" : name);
  const uint32_t end = b_.add_position(r);
  b_.accept(end);
  for (const std::string& text : texts) b_.eps(b_.literal(b_.rule_start(r), text), end);
  return r;
}

// "..." with JSON's escapes; the text valid UTF-8, byte by byte (a token may end inside a
// character); \u escapes outside the UTF-16 surrogates, which a JSON parser may refuse alone.
uint32_t Rules::string() {
  uint32_t r;
  if (shared(kString, "string", r)) return r;
  const uint32_t start = b_.rule_start(r), text = b_.add_position(r), end = b_.add_position(r);
  b_.accept(end);
  b_.byte_edge(start, '"', text);
  character(r, text, text);
  b_.byte_edge(text, '"', end);
  return r;
}

// The edges of one character of a string's text (printable ASCII but '"' and '\', a UTF-8
// sequence or an escape: one code point each) from `from` to `to`.
void Rules::character(uint32_t r, uint32_t from, uint32_t to) {
  const auto pos = [&] { return b_.add_position(r); };
  const uint32_t escape = pos();
  b_.byte_edge(from, 0x20, 0x21, to);
  b_.byte_edge(from, 0x23, 0x5B, to);
  b_.byte_edge(from, 0x5D, 0x7F, to);
  b_.byte_edge(from, '\\', escape);
  // UTF-8 (RFC 3629's table): lead bytes, then continuation bytes in their allowed ranges.
  const uint32_t need1 = pos(), need2 = pos(), need3 = pos();
  const uint32_t after_e0 = pos(), after_ed = pos(), after_f0 = pos(), after_f4 = pos();
  b_.byte_edge(from, 0xC2, 0xDF, need1);
  b_.byte_edge(from, 0xE0, 0xE0, after_e0);
  b_.byte_edge(from, 0xE1, 0xEC, need2);
  b_.byte_edge(from, 0xED, 0xED, after_ed);
  b_.byte_edge(from, 0xEE, 0xEF, need2);
  b_.byte_edge(from, 0xF0, 0xF0, after_f0);
  b_.byte_edge(from, 0xF1, 0xF3, need3);
  b_.byte_edge(from, 0xF4, 0xF4, after_f4);
  b_.byte_edge(need1, 0x80, 0xBF, to);
  b_.byte_edge(need2, 0x80, 0xBF, need1);
  b_.byte_edge(need3, 0x80, 0xBF, need2);
  b_.byte_edge(after_e0, 0xA0, 0xBF, need1);
  b_.byte_edge(after_ed, 0x80, 0x9F, need1);
  b_.byte_edge(after_f0, 0x90, 0xBF, need2);
  b_.byte_edge(after_f4, 0x80, 0x8F, need2);
  for (const char c : std::string_view("\"\\/bfnrt")) b_.byte_edge(escape, c, to);
  const uint32_t hex1 = pos(), hex1_d = pos(), hex2 = pos(), hex3 = pos(), hex4 = pos();
  b_.byte_edge(escape, 'u', hex1);
  const auto hex = [&](uint32_t a, uint32_t b) {
    b_.byte_edge(a, '0', '9', b);
    b_.byte_edge(a, 'a', 'f', b);
    b_.byte_edge(a, 'A', 'F', b);
  };
  // First digit d/D: only 0-7 may follow (D800-DFFF are the surrogates).
  b_.byte_edge(hex1, '0', '9', hex2);
  b_.byte_edge(hex1, 'a', 'c', hex2);
  b_.byte_edge(hex1, 'e', 'f', hex2);
  b_.byte_edge(hex1, 'A', 'C', hex2);
  b_.byte_edge(hex1, 'E', 'F', hex2);
  b_.byte_edge(hex1, 'd', hex1_d);
  b_.byte_edge(hex1, 'D', hex1_d);
  b_.byte_edge(hex1_d, '0', '7', hex3);
  hex(hex2, hex3);
  hex(hex3, hex4);
  hex(hex4, to);
}

// A string of min_length to max_length code points: a list (grammar.hpp) of one-character items
// with no separator, counted in the frame. Without a maximum the list stops at min_length and
// the free text of string() follows (a plain loop again, fast and cached in the matcher).
uint32_t Rules::counted_string(const std::string& name, uint32_t min_length, uint32_t max_length) {
  uint32_t one = 0, tail = 0;
  if (!shared(kCharacter, "character", one)) {
    const uint32_t end = b_.add_position(one);
    b_.accept(end);
    character(one, b_.rule_start(one), end);
  }
  const bool open_ended = max_length == grammar::kInfinite;
  if (open_ended && !shared(kStringTail, "string text", tail)) {
    const uint32_t text = b_.rule_start(tail), end = b_.add_position(tail);
    b_.accept(end);
    character(tail, text, text);
    b_.byte_edge(text, '"', end);
  }
  const uint32_t r = b_.add_rule(name);
  b_.set_list(r, min_length, open_ended ? min_length : max_length, one, /*separator=*/0,
              /*close=*/1);
  const auto pos = [&](ItemRole role) {
    const uint32_t p = b_.add_position(r);
    b_.set_role(p, role);
    return p;
  };
  const uint32_t first = pos(ItemRole::BeforeFirst), after = pos(ItemRole::AfterItem);
  const uint32_t end = pos(ItemRole::None);
  b_.accept(end);
  b_.byte_edge(b_.rule_start(r), '"', first);
  if (min_length == 0) b_.byte_edge(first, '"', end);
  if (max_length >= 1) b_.call(first, one, after, Guard::None, Count::One);
  b_.call(after, one, after, Guard::BelowMax, Count::Increment);
  if (open_ended)
    b_.call(after, tail, end, Guard::AtMin);
  else
    b_.byte_edge(after, '"', '"', end, Guard::AtMin);
  return r;
}

// -?(0|[1-9][0-9]{0,14}), then for numbers (\.[0-9]{1,15})?([eE][+-]?[0-9]{1,2})?
uint32_t Rules::number(bool integer) {
  const Shared kind = integer ? kInteger : kNumber;
  uint32_t r;
  if (shared(kind, integer ? "integer" : "number", r)) return r;
  const auto pos = [&] { return b_.add_position(r); };
  const uint32_t start = b_.rule_start(r), minus = pos(), zero = pos();
  std::vector<uint32_t> ends = {zero};  // where the integer part may end
  b_.byte_edge(start, '-', minus);
  for (const uint32_t from : {start, minus}) b_.byte_edge(from, '0', zero);
  uint32_t digit = pos();
  for (const uint32_t from : {start, minus}) b_.byte_edge(from, '1', '9', digit);
  for (int k = 1; k <= kMaxIntegerDigits; ++k) {
    ends.push_back(digit);
    if (k == kMaxIntegerDigits) break;
    const uint32_t next = pos();
    b_.byte_edge(digit, '0', '9', next);
    digit = next;
  }
  for (const uint32_t e : ends) b_.accept(e);
  if (integer) return r;
  const uint32_t point = pos(), exponent = pos(), sign = pos();
  for (const uint32_t e : ends) {
    b_.byte_edge(e, '.', point);
    b_.byte_edge(e, 'e', exponent);
    b_.byte_edge(e, 'E', exponent);
  }
  uint32_t at = point;
  for (int k = 1; k <= kMaxFractionDigits; ++k) {
    const uint32_t next = pos();
    b_.byte_edge(at, '0', '9', next);
    b_.accept(next);
    b_.byte_edge(next, 'e', exponent);
    b_.byte_edge(next, 'E', exponent);
    at = next;
  }
  b_.byte_edge(exponent, '+', sign);
  b_.byte_edge(exponent, '-', sign);
  uint32_t exp_digit = pos();
  b_.byte_edge(exponent, '0', '9', exp_digit);
  b_.byte_edge(sign, '0', '9', exp_digit);
  for (int k = 1; k <= kMaxExponentDigits; ++k) {
    b_.accept(exp_digit);
    if (k == kMaxExponentDigits) break;
    const uint32_t next = pos();
    b_.byte_edge(exp_digit, '0', '9', next);
    exp_digit = next;
  }
  return r;
}

// Any JSON value: an object or array of anything, a string, a number, true, false or null.
uint32_t Rules::any() {
  uint32_t r;
  if (shared(kAny, "any value", r)) return r;
  const uint32_t start = b_.rule_start(r), end = b_.add_position(r);
  b_.accept(end);
  const uint32_t object_rule = b_.add_rule("any object"), array_rule = b_.add_rule("any array");
  fill_free_object(object_rule, r);
  fill_array(array_rule, r, 0, grammar::kInfinite);
  for (const uint32_t alt : {object_rule, array_rule, string(), number(false)})
    b_.call(start, alt, end);
  for (const char* word : {"true", "false", "null"}) b_.eps(b_.literal(start, word), end);
  return r;
}

// 9 letters or digits: a tool call's id (mistral-common's format), in quotes or bare.
uint32_t Rules::call_id(bool quoted) {
  const Shared kind = quoted ? kQuotedId : kBareId;
  uint32_t r;
  if (shared(kind, quoted ? "call id" : "bare call id", r)) return r;
  uint32_t at = b_.rule_start(r);
  if (quoted) at = b_.literal(at, "\"");
  for (int k = 0; k < 9; ++k) {
    const uint32_t next = b_.add_position(r);
    b_.byte_edge(at, '0', '9', next);
    b_.byte_edge(at, 'a', 'z', next);
    b_.byte_edge(at, 'A', 'Z', next);
    at = next;
  }
  if (quoted) at = b_.literal(at, "\"");
  b_.accept(at);
  return r;
}

// {"a": ..., "b": ...}: the properties in their order, each at most once, the required ones
// always. From each point the keys that may come next are a trie: the properties from there up
// to and including the next required one.
void Rules::fill_object(uint32_t r, const json_schema::Node& node) {
  const auto& props = node.properties;
  const size_t n = props.size();
  const auto pos = [&] { return b_.add_position(r); };
  const uint32_t open = pos(), end = pos();
  b_.accept(end);
  b_.byte_edge(b_.rule_start(r), '{', open);
  std::vector<bool> closable(n + 1, true);  // no required property from i on
  for (size_t i = n; i-- > 0;) closable[i] = closable[i + 1] && !props[i].required;
  // After each key: ':' then the value, then after_value[j + 1].
  std::vector<uint32_t> key_end(n), after_value(n + 1);
  for (size_t i = 1; i <= n; ++i) after_value[i] = pos();
  for (size_t j = 0; j < n; ++j) {
    key_end[j] = pos();
    const uint32_t colon = pos(), value = pos();
    b_.byte_edge(key_end[j], ':', colon);
    optional_space(colon, value);
    b_.call(value, rule_of(props[j].value), after_value[j + 1]);
  }
  const auto key_trie = [&](size_t i) {
    const uint32_t root = pos();
    for (size_t j = i; j < n; ++j) {
      b_.eps(b_.literal(root, python_json::dumps_string(props[j].name)), key_end[j]);
      if (props[j].required) break;
    }
    return root;
  };
  const uint32_t first = n > 0 ? key_trie(0) : pos();
  optional_space(open, first);
  if (closable[0]) b_.byte_edge(first, '}', end);
  for (size_t i = 1; i <= n; ++i) {
    const uint32_t at = after_value[i];
    if (i < n) {
      const uint32_t comma = pos();
      b_.byte_edge(at, ',', comma);
      optional_space(comma, key_trie(i));
    }
    if (closable[i]) {
      const uint32_t spaced = pos();
      b_.byte_edge(at, '}', end);
      b_.call(at, space(), spaced);
      b_.byte_edge(spaced, '}', end);
    }
  }
}

// {"key": value, ...} with any keys, the values of `values_rule` (kInfinite: none, only {}).
void Rules::fill_free_object(uint32_t r, uint32_t values_rule) {
  const auto pos = [&] { return b_.add_position(r); };
  const uint32_t open = pos(), first = pos(), end = pos();
  b_.accept(end);
  b_.byte_edge(b_.rule_start(r), '{', open);
  optional_space(open, first);
  b_.byte_edge(first, '}', end);
  if (values_rule == grammar::kInfinite) return;
  const uint32_t key_end = pos(), colon = pos(), value = pos(), after = pos(), spaced = pos();
  const uint32_t comma = pos(), next_key = pos();
  b_.call(first, string(), key_end);
  b_.byte_edge(key_end, ':', colon);
  optional_space(colon, value);
  b_.call(value, values_rule, after);
  b_.byte_edge(after, ',', comma);
  b_.byte_edge(after, '}', end);
  b_.call(after, space(), spaced);
  b_.byte_edge(spaced, '}', end);
  optional_space(comma, next_key);
  b_.call(next_key, string(), key_end);
}

// [item, ...] with the item count between min_items and max_items, counted in the frame.
void Rules::fill_array(uint32_t r, uint32_t item, uint32_t min_items, uint32_t max_items) {
  b_.set_list(r, min_items, max_items, item, /*separator=*/1, /*close=*/1);
  const auto pos = [&](ItemRole role) {
    const uint32_t p = b_.add_position(r);
    b_.set_role(p, role);
    return p;
  };
  const uint32_t open = pos(ItemRole::BeforeFirst), first = pos(ItemRole::BeforeFirst);
  const uint32_t after = pos(ItemRole::AfterItem), spaced = pos(ItemRole::ClosingOnly);
  const uint32_t comma = pos(ItemRole::BeforeItem), next = pos(ItemRole::BeforeItem);
  const uint32_t end = pos(ItemRole::None);
  b_.accept(end);
  b_.byte_edge(b_.rule_start(r), '[', open);
  optional_space(open, first);
  if (min_items == 0) b_.byte_edge(first, ']', end);
  if (max_items >= 1) b_.call(first, item, after, Guard::None, Count::One);
  b_.byte_edge(after, ',', ',', comma, Guard::BelowMax);
  b_.byte_edge(after, ']', ']', end, Guard::AtMin);
  b_.call(after, space(), spaced);
  b_.byte_edge(spaced, ']', ']', end, Guard::AtMin);
  optional_space(comma, next);
  b_.call(next, item, after, Guard::None, Count::Increment);
}

void Rules::fill_union(uint32_t r, const json_schema::Node& node) {
  const uint32_t end = b_.add_position(r);
  b_.accept(end);
  for (const uint32_t alt : node.alternatives) b_.call(b_.rule_start(r), rule_of(alt), end);
}

}  // namespace brise::json_grammar
