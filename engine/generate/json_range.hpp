// Bounds on numbers (JSON Schema's minimum, maximum, exclusiveMinimum, exclusiveMaximum) as exact
// decimals, and the grammar of the numbers between them: a deterministic digit automaton over
// the decimal text, whose states compare the digits read so far with each bound's digits (no
// floating point anywhere, so the range is exact at any magnitude the automaton writes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/generate/grammar.hpp"

namespace brise::json_range {

// A number as exact decimal digits: sign, the integer part of its magnitude (no leading zeros,
// "0" when there is none) and its fraction (no trailing zeros). Zero is never negative.
struct Decimal {
  bool negative = false;
  std::string integer = "0";
  std::string fraction = {};
};

// Reads JSON number text ("-1.50e3", or Python's "1e-05"); nullopt for anything else, or for an
// exponent beyond +-10000.
std::optional<Decimal> parse_decimal(std::string_view text);
// -1, 0 or 1 as a < b, a == b, a > b.
int compare(const Decimal& a, const Decimal& b);

struct Bound {
  Decimal value;
  bool exclusive = false;
};

// The numbers to generate: those between the bounds (each optional). Integers are written
// -?(0|[1-9][0-9]*), numbers also with a fraction of 1 to max_fraction_digits digits; never an
// exponent, never a minus before zero ("-0", "-0.0"). The integer part has at most
// max_integer_digits digits (the side without a bound is bounded by this alone).
struct Range {
  std::optional<Bound> lower, upper;
  bool integer = false;
  int max_integer_digits = 15;
  int max_fraction_digits = 15;
};

// Whether any text of the range exists.
bool admits_some(const Range& range);

// Adds the positions of `range` to `rule` of `builder`, from the rule's start (which must have no
// edges yet). The rule must admit some text (admits_some).
void build(grammar::Builder& builder, uint32_t rule, const Range& range);

}  // namespace brise::json_range
