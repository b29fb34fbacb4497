#include "engine/generate/json_range.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <vector>

namespace brise::json_range {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

size_t digits_at(std::string_view text, size_t i) {
  size_t j = i;
  while (j < text.size() && is_digit(text[j])) ++j;
  return j - i;
}

int sign_of(int v) {
  return (v > 0) - (v < 0);
}

// A bound on the magnitude of what one branch (with or without '-') writes.
struct Side {
  const Decimal* value = nullptr;  // nullptr: no bound
  bool exclusive = false;
};

// The state after some text of one branch: how it compares so far with each bound.
struct State {
  uint8_t phase = 0;  // 0: nothing yet, 1: integer digits, 2: '.' and fraction digits
  uint8_t n = 0;      // digits read in this phase
  bool zero = false;  // the integer part is "0": no digit may follow it
  int8_t lo = 0, hi = 0;
  // Phase 1: the integer digits read against the bound's first n (lexicographically; 1 once
  // they are more than the bound's). Phase 2: the whole integer part against the bound's, then
  // the fraction digits against its fraction's.
  uint32_t key() const {
    return uint32_t{phase} | uint32_t{n} << 2 | uint32_t{zero} << 10 | uint32_t(lo + 1) << 11 |
           uint32_t(hi + 1) << 13;
  }
};

// The comparison after integer digit `d`, the (k+1)-th, given `c` for the first k.
int integer_step(const Side& side, int c, int k, char d) {
  if (!side.value) return 0;
  const std::string& b = side.value->integer;
  if (static_cast<size_t>(k) + 1 > b.size()) return 1;  // more digits than the bound
  return c != 0 ? c : sign_of(d - b[static_cast<size_t>(k)]);
}

// The comparison of a whole integer part of k digits.
int integer_end(const Side& side, int c, int k) {
  if (!side.value) return 0;
  const size_t len = side.value->integer.size();
  if (static_cast<size_t>(k) < len) return -1;
  return c;
}

int fraction_step(const Side& side, int c, int j, char d) {
  if (!side.value || c != 0) return c;
  const std::string& f = side.value->fraction;
  return sign_of(d - (static_cast<size_t>(j) < f.size() ? f[static_cast<size_t>(j)] : '0'));
}

// The comparison of the whole text with the bound, from its state.
int final_comparison(const Side& side, const State& s, int c) {
  if (!side.value) return 0;
  const size_t fraction = side.value->fraction.size();
  if (s.phase == 1) {
    const int whole = integer_end(side, c, s.n);
    return whole == 0 && fraction > 0 ? -1 : whole;
  }
  return c == 0 && s.n < fraction ? -1 : c;
}

class Branch {
 public:
  Branch(Side lower, Side upper, int max_integer_digits, int max_fraction_digits)
      : lower_(lower), upper_(upper), max_int_(max_integer_digits), max_frac_(max_fraction_digits) {
    enumerate();
    find_live();
  }

  // Symbols: digits '0'-'9' as 0-9, '.' as 10.
  static constexpr int kSymbols = 11;
  std::vector<State> states;
  std::vector<std::array<int, kSymbols>> next;  // -1: none
  std::vector<bool> accepting, live;

 private:
  std::optional<State> step(const State& s, int symbol) const {
    State t = s;
    if (symbol == 10) {
      if (s.phase != 1 || max_frac_ == 0) return std::nullopt;
      t.phase = 2;
      t.n = 0;
      t.lo = static_cast<int8_t>(integer_end(lower_, s.lo, s.n));
      t.hi = static_cast<int8_t>(integer_end(upper_, s.hi, s.n));
      return t;
    }
    const char d = static_cast<char>('0' + symbol);
    if (s.phase == 2) {
      if (s.n >= max_frac_) return std::nullopt;
      t.lo = static_cast<int8_t>(fraction_step(lower_, s.lo, s.n, d));
      t.hi = static_cast<int8_t>(fraction_step(upper_, s.hi, s.n, d));
      ++t.n;
      return t;
    }
    if (s.phase == 1 && (s.zero || s.n >= max_int_)) return std::nullopt;
    t.phase = 1;
    if (s.phase == 0) t.zero = d == '0';
    t.lo = static_cast<int8_t>(integer_step(lower_, s.lo, s.n, d));
    t.hi = static_cast<int8_t>(integer_step(upper_, s.hi, s.n, d));
    ++t.n;
    return t;
  }

  bool accepts(const State& s) const {
    if (s.phase == 0 || (s.phase == 2 && s.n == 0)) return false;
    const int lo = final_comparison(lower_, s, s.lo), hi = final_comparison(upper_, s, s.hi);
    const bool above = !lower_.value || lo > 0 || (lo == 0 && !lower_.exclusive);
    const bool below = !upper_.value || hi < 0 || (hi == 0 && !upper_.exclusive);
    return above && below;
  }

  void enumerate() {
    std::map<uint32_t, int> index;
    states.push_back(State{});
    index[states[0].key()] = 0;
    for (size_t i = 0; i < states.size(); ++i) {
      std::array<int, kSymbols> row;
      row.fill(-1);
      for (int symbol = 0; symbol < kSymbols; ++symbol) {
        const std::optional<State> t = step(states[i], symbol);
        if (!t) continue;
        const auto [it, fresh] = index.try_emplace(t->key(), static_cast<int>(states.size()));
        if (fresh) states.push_back(*t);
        row[static_cast<size_t>(symbol)] = it->second;
      }
      next.push_back(row);
      accepting.push_back(accepts(states[i]));
    }
  }

  // The states from which an accepting one can be reached: only they become positions.
  void find_live() {
    live = accepting;
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < states.size(); ++i) {
        if (live[i]) continue;
        for (const int t : next[i])
          if (t >= 0 && live[static_cast<size_t>(t)]) {
            live[i] = true;
            changed = true;
            break;
          }
      }
    }
  }

  Side lower_, upper_;
  int max_int_, max_frac_;
};

bool is_zero(const Decimal& d) {
  return d.integer == "0" && d.fraction.empty();
}

// The two branches of a range: without '-' (x >= 0, the magnitude x) and with it (x < 0, the
// magnitude -x > 0); nullopt for a branch the bounds leave empty.
struct Branches {
  std::optional<Branch> positive, negative;
};

Branches branches(const Range& r) {
  size_t int_digits = static_cast<size_t>(r.max_integer_digits);
  for (const auto& b : {r.lower, r.upper})
    if (b) int_digits = std::max(int_digits, b->value.integer.size());
  const int max_int = static_cast<int>(int_digits);
  const int max_frac = r.integer ? 0 : r.max_fraction_digits;
  static const Decimal kZero;
  Branches out;
  const bool upper_below_zero =
      r.upper && (r.upper->value.negative || (is_zero(r.upper->value) && r.upper->exclusive));
  if (!upper_below_zero) {
    Side lower, upper;
    if (r.lower && !r.lower->value.negative) lower = {&r.lower->value, r.lower->exclusive};
    if (r.upper) upper = {&r.upper->value, r.upper->exclusive};
    out.positive.emplace(lower, upper, max_int, max_frac);
  }
  const bool lower_at_or_above_zero = r.lower && !r.lower->value.negative;
  if (!lower_at_or_above_zero) {
    Side lower{&kZero, true}, upper;  // a magnitude above zero: no "-0"
    if (r.upper && r.upper->value.negative) lower = {&r.upper->value, r.upper->exclusive};
    if (r.lower) upper = {&r.lower->value, r.lower->exclusive};
    out.negative.emplace(lower, upper, max_int, max_frac);
  }
  return out;
}

// The positions of `branch` in `rule`, its first state at `start`.
void emit(grammar::Builder& b, uint32_t rule, const Branch& branch, uint32_t start) {
  std::vector<uint32_t> position(branch.states.size(), grammar::kInfinite);
  position[0] = start;
  const auto at = [&](size_t i) {
    if (position[i] == grammar::kInfinite) position[i] = b.add_position(rule);
    return position[i];
  };
  for (size_t i = 0; i < branch.states.size(); ++i) {
    if (!branch.live[i]) continue;
    const uint32_t from = at(i);
    if (branch.accepting[i]) b.accept(from);
    const auto& row = branch.next[i];
    const auto target = [&](int symbol) {
      const int t = row[static_cast<size_t>(symbol)];
      return t >= 0 && branch.live[static_cast<size_t>(t)] ? t : -1;
    };
    // Runs of digits that lead to the same state are one edge.
    for (int d = 0; d < 10;) {
      const int t = target(d);
      int e = d;
      while (e + 1 < 10 && target(e + 1) == t) ++e;
      if (t >= 0)
        b.byte_edge(from, static_cast<uint8_t>('0' + d), static_cast<uint8_t>('0' + e),
                    at(static_cast<size_t>(t)));
      d = e + 1;
    }
    if (const int t = target(10); t >= 0) b.byte_edge(from, '.', at(static_cast<size_t>(t)));
  }
}

}  // namespace

std::optional<Decimal> parse_decimal(std::string_view text) {
  size_t i = 0;
  Decimal d;
  if (i < text.size() && text[i] == '-') {
    d.negative = true;
    ++i;
  }
  const size_t int_len = digits_at(text, i);
  if (int_len == 0) return std::nullopt;
  std::string digits(text.substr(i, int_len));
  i += int_len;
  if (i < text.size() && text[i] == '.') {
    const size_t frac_len = digits_at(text, i + 1);
    if (frac_len == 0) return std::nullopt;
    digits += text.substr(i + 1, frac_len);
    i += 1 + frac_len;
  }
  long exponent = 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool minus = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) minus = text[i++] == '-';
    const size_t exp_len = digits_at(text, i);
    if (exp_len == 0 || exp_len > 5) return std::nullopt;
    exponent = std::stol(std::string(text.substr(i, exp_len)));
    if (exponent > 10000) return std::nullopt;
    if (minus) exponent = -exponent;
    i += exp_len;
  }
  if (i != text.size()) return std::nullopt;
  // The decimal point sits after `point` digits of `digits` (before them when negative).
  const long point = static_cast<long>(int_len) + exponent;
  const long size = static_cast<long>(digits.size());
  std::string integer, fraction;
  if (point <= 0) {
    fraction = std::string(static_cast<size_t>(-point), '0') + digits;
  } else if (point >= size) {
    integer = digits + std::string(static_cast<size_t>(point - size), '0');
  } else {
    integer = digits.substr(0, static_cast<size_t>(point));
    fraction = digits.substr(static_cast<size_t>(point));
  }
  integer.erase(0, std::min(integer.find_first_not_of('0'), integer.size()));
  fraction.erase(fraction.find_last_not_of('0') + 1);
  d.integer = integer.empty() ? "0" : integer;
  d.fraction = fraction;
  if (is_zero(d)) d.negative = false;
  return d;
}

int compare(const Decimal& a, const Decimal& b) {
  if (a.negative != b.negative) return a.negative ? -1 : 1;
  int magnitude = 0;
  if (a.integer.size() != b.integer.size())
    magnitude = a.integer.size() < b.integer.size() ? -1 : 1;
  else if (const int c = a.integer.compare(b.integer); c != 0)
    magnitude = sign_of(c);
  else
    magnitude = sign_of(a.fraction.compare(b.fraction));  // no trailing zeros: as numbers
  return a.negative ? -magnitude : magnitude;
}

bool admits_some(const Range& range) {
  const Branches b = branches(range);
  return (b.positive && b.positive->live[0]) || (b.negative && b.negative->live[0]);
}

void build(grammar::Builder& builder, uint32_t rule, const Range& range) {
  const Branches b = branches(range);
  const uint32_t start = builder.rule_start(rule);
  if (b.positive && b.positive->live[0]) emit(builder, rule, *b.positive, start);
  if (b.negative && b.negative->live[0]) {
    const uint32_t minus = builder.add_position(rule);
    builder.byte_edge(start, '-', minus);
    emit(builder, rule, *b.negative, minus);
  }
}

}  // namespace brise::json_range
