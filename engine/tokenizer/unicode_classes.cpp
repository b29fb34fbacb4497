#include "engine/tokenizer/unicode_classes.hpp"

#include <map>
#include <string>

namespace brise::unicode {

const ClassTable& ClassTable::instance() {
  static const ClassTable table;
  return table;
}

ClassTable::ClassTable() {
  constexpr uint32_t kBlocks = 0x110000 >> 8;
  index_.resize(kBlocks);
  std::map<std::string, uint16_t> seen;  // block content -> block number
  size_t r = 0;
  std::string block(256, '\0');
  for (uint32_t b = 0; b < kBlocks; ++b) {
    const uint32_t base = b << 8;
    block.assign(256, '\0');
    // Ranges are sorted and disjoint: walk them alongside the blocks.
    while (r < kClassRangeCount && kClassRanges[r].last < base) ++r;
    for (size_t k = r; k < kClassRangeCount && kClassRanges[k].first <= base + 255; ++k) {
      const uint32_t lo = kClassRanges[k].first < base ? base : kClassRanges[k].first;
      const uint32_t hi = kClassRanges[k].last > base + 255 ? base + 255 : kClassRanges[k].last;
      for (uint32_t c = lo; c <= hi; ++c)
        block[c - base] = static_cast<char>(kClassRanges[k].flags);
    }
    const auto [it, added] = seen.emplace(block, static_cast<uint16_t>(seen.size()));
    if (added) blocks_.insert(blocks_.end(), block.begin(), block.end());
    index_[b] = it->second;
  }
}

}  // namespace brise::unicode
