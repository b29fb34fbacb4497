// Unicode character classes of Tekken's pre-tokenizer pattern (\p{Lu} \p{Ll} \p{Lt} \p{Lm} \p{Lo}
// \p{M} \p{N} and \s as White_Space), one byte of flags per code point. The data is generated
// from Debian's unicode-data package (make_unicode_tables.sh -> unicode_ranges.cpp); the lookup
// is a two-level table built from it once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace brise::unicode {

enum ClassFlag : uint8_t {
  kLu = 1,
  kLl = 2,
  kLt = 4,
  kLm = 8,
  kLo = 16,
  kMark = 32,         // Mn, Mc, Me
  kNumber = 64,       // Nd, Nl, No
  kWhiteSpace = 128,  // PropList White_Space: what \s means in Rust's regex crate
};
inline constexpr uint8_t kLetter = kLu | kLl | kLt | kLm | kLo;

struct CodePointRange {
  uint32_t first;
  uint32_t last;
  uint8_t flags;
};

// unicode_ranges.cpp (generated).
extern const char kUnicodeVersion[];
extern const CodePointRange kClassRanges[];
extern const size_t kClassRangeCount;

// Flags of every code point below 0x110000: 256-entry blocks, shared between blocks of equal
// content, indexed by the code point's high bits.
class ClassTable {
 public:
  static const ClassTable& instance();
  uint8_t operator()(uint32_t code_point) const {
    return blocks_[(size_t{index_[code_point >> 8]} << 8) | (code_point & 0xFF)];
  }

 private:
  ClassTable();
  std::vector<uint16_t> index_;  // 0x1100 entries
  std::vector<uint8_t> blocks_;
};

}  // namespace brise::unicode
