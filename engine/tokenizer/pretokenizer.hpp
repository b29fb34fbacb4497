// Tekken's pre-tokenizer: splits text into the pieces that tiktoken's regex (fancy_regex over
// Rust's regex crate, leftmost-first alternation, greedy quantifiers with backtracking) finds
// with kTekkenPattern, without a regex engine. The pattern is
//
//   1  [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+
//   2 |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*
//   3 |\p{N}
//   4 | ?[^\s\p{L}\p{N}]+[\r\n/]*
//   5 |\s*[\r\n]+
//   6 |\s+(?!\S)
//   7 |\s+
//
// and every character starts a match of one of the alternatives (letters: 1 or 2, marks: 1,
// digits: 3, white space: 5-7, anything else: 4), so the pieces cover the text.
#pragma once

#include <cstddef>
#include <string_view>

#include "engine/tokenizer/unicode_classes.hpp"

namespace brise::detail {

class TekkenSplitter {
 public:
  TekkenSplitter() : classes_(unicode::ClassTable::instance()) {}

  // End of the piece that starts at `pos` (< text.size()) of valid UTF-8 `text`.
  size_t piece_end(std::string_view text, size_t pos) const;

 private:
  const unicode::ClassTable& classes_;
};

}  // namespace brise::detail
