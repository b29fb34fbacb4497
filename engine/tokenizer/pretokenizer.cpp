// Each alternative of the pattern is matched by hand, in the pattern's order, and returns the
// first match a backtracking engine would accept (see the comments at each step for why the
// greedy choice with its backtracking comes down to the rule used).
#include "engine/tokenizer/pretokenizer.hpp"

#include <cstdint>

namespace brise::detail {
namespace {

using namespace unicode;

constexpr size_t kNone = static_cast<size_t>(-1);
constexpr uint8_t kUpperSide = kLu | kLt | kLm | kLo | kMark;  // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
constexpr uint8_t kLowerSide = kLl | kLm | kLo | kMark;        // [\p{Ll}\p{Lm}\p{Lo}\p{M}]

struct Char {
  uint32_t cp;
  uint8_t flags;
  uint8_t length;
};

class Scanner {
 public:
  Scanner(std::string_view text, const ClassTable& classes)
      : s_(reinterpret_cast<const uint8_t*>(text.data())), n_(text.size()), classes_(classes) {}

  size_t size() const { return n_; }

  // The character at `pos` (< size()); the text is valid UTF-8.
  Char at(size_t pos) const {
    const uint32_t c = s_[pos];
    if (c < 0x80) return {c, classes_(c), 1};
    uint32_t cp;
    uint8_t len;
    if (c < 0xE0) {
      cp = ((c & 0x1F) << 6) | (s_[pos + 1] & 0x3F);
      len = 2;
    } else if (c < 0xF0) {
      cp = ((c & 0x0F) << 12) | ((s_[pos + 1] & 0x3Fu) << 6) | (s_[pos + 2] & 0x3F);
      len = 3;
    } else {
      cp = ((c & 0x07) << 18) | ((s_[pos + 1] & 0x3Fu) << 12) | ((s_[pos + 2] & 0x3Fu) << 6) |
           (s_[pos + 3] & 0x3F);
      len = 4;
    }
    return {cp, classes_(cp), len};
  }

  // End of the longest run from `pos` of characters whose flags meet `mask`.
  size_t run_of(size_t pos, uint8_t mask) const {
    while (pos < n_) {
      const Char c = at(pos);
      if (!(c.flags & mask)) break;
      pos += c.length;
    }
    return pos;
  }

  // [^\s\p{L}\p{N}]+ from `pos`.
  size_t run_of_other(size_t pos) const {
    while (pos < n_) {
      const Char c = at(pos);
      if (c.flags & (kWhiteSpace | kLetter | kNumber)) break;
      pos += c.length;
    }
    return pos;
  }

  // [\r\n/]* from `pos` (ASCII only, so byte by byte).
  size_t run_of_newline_or_slash(size_t pos) const {
    while (pos < n_ && (s_[pos] == '\r' || s_[pos] == '\n' || s_[pos] == '/')) ++pos;
    return pos;
  }

 private:
  const uint8_t* s_;
  size_t n_;
  const ClassTable& classes_;
};

// [^\r\n\p{L}\p{N}]
bool is_letter_prefix(const Char& c) {
  return !(c.flags & (kLetter | kNumber)) && c.cp != '\r' && c.cp != '\n';
}

// Alternative 1 after its optional prefix: [upper]*[lower]+ from `pos`, or kNone. The greedy
// [upper]* takes its whole run; backtracking then gives characters back one at a time until the
// one after it starts [lower]+. So [lower]+ starts at the end of the run when that character is
// Ll (the only lower-side class that is not upper-side), else at the last lower-side character
// inside the run (Lm, Lo or a mark), whose run of lower-side characters ends right after it (the
// characters after it in the run are Lu or Lt, and the one after the run is not lower-side).
size_t upper_then_lower(const Scanner& s, size_t pos) {
  size_t after_last_lower = kNone;
  while (pos < s.size()) {
    const Char c = s.at(pos);
    if (!(c.flags & kUpperSide)) break;
    pos += c.length;
    if (c.flags & kLowerSide) after_last_lower = pos;
  }
  if (pos < s.size() && (s.at(pos).flags & kLl)) return s.run_of(pos, kLowerSide);
  return after_last_lower;
}

// Alternatives 5-7 at a white-space character: the longest run of white space, then
//   5  \s*[\r\n]+  ends right after the run's last \r or \n, when it has one;
//   6  \s+(?!\S)   takes the whole run at the end of the text, else all of it but the last
//                  character (which is then white space, so not \S), when that leaves one;
//   7  \s+         the lone white-space character.
size_t white_space(const Scanner& s, size_t pos) {
  const size_t begin = pos;
  size_t after_last_newline = kNone;
  size_t last_start = pos;
  while (pos < s.size()) {
    const Char c = s.at(pos);
    if (!(c.flags & kWhiteSpace)) break;
    last_start = pos;
    pos += c.length;
    if (c.cp == '\r' || c.cp == '\n') after_last_newline = pos;
  }
  if (after_last_newline != kNone) return after_last_newline;
  if (pos == s.size()) return pos;
  if (last_start > begin) return last_start;
  return pos;
}

}  // namespace

size_t TekkenSplitter::piece_end(std::string_view text, size_t pos) const {
  const Scanner s(text, classes_);
  const Char first = s.at(pos);
  const size_t next = pos + first.length;
  const bool prefix = is_letter_prefix(first);

  // 1: [prefix]?[upper]*[lower]+ — with the prefix first (the greedy ?), then without it.
  if (prefix) {
    if (const size_t end = upper_then_lower(s, next); end != kNone) return end;
  }
  if (const size_t end = upper_then_lower(s, pos); end != kNone) return end;

  // 2: [prefix]?[upper]+[lower]*: the greedy runs cannot fail once [upper]+ has a character.
  if (prefix) {
    if (const size_t upper = s.run_of(next, kUpperSide); upper > next)
      return s.run_of(upper, kLowerSide);
  }
  if (const size_t upper = s.run_of(pos, kUpperSide); upper > pos)
    return s.run_of(upper, kLowerSide);

  // 3: \p{N}, one character.
  if (first.flags & kNumber) return next;

  // 4:  ?[^\s\p{L}\p{N}]+[\r\n/]*
  if (first.cp == ' ') {
    if (const size_t other = s.run_of_other(next); other > next)
      return s.run_of_newline_or_slash(other);
  }
  if (const size_t other = s.run_of_other(pos); other > pos)
    return s.run_of_newline_or_slash(other);

  // 5-7: only white space is left (it is neither a letter, a mark, a digit nor "other"). The
  // piece is never empty, so that a caller's loop always advances.
  const size_t end = white_space(s, pos);
  return end > pos ? end : next;
}

}  // namespace brise::detail
