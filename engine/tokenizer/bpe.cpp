#include "engine/tokenizer/bpe.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

namespace brise::detail {
namespace {

constexpr int32_t kNoRank = std::numeric_limits<int32_t>::max();

}  // namespace

int32_t BytePairEncoder::rank_of(std::string_view bytes) const {
  const int32_t id = ranks_.find(bytes);
  return id < 0 ? kNoRank : id;
}

void BytePairEncoder::encode_short(std::string_view piece, std::vector<int32_t>& out) {
  // Parts as in tiktoken's _byte_pair_merge: part i starts at begin[i] and holds token id[i];
  // pair[i] is the rank of part i joined with part i + 1.
  const auto n = static_cast<uint32_t>(piece.size());
  uint32_t begin[kShortPiece + 1];
  int32_t id[kShortPiece];
  int32_t pair[kShortPiece];
  uint32_t parts = n;
  for (uint32_t i = 0; i < n; ++i) {
    begin[i] = i;
    id[i] = byte_ids_[static_cast<uint8_t>(piece[i])];
  }
  begin[n] = n;
  for (uint32_t i = 0; i + 1 < n; ++i) pair[i] = rank_of(piece.substr(i, 2));
  auto rank_of_parts = [&](uint32_t first, uint32_t last) {  // parts first..last joined
    return rank_of(piece.substr(begin[first], begin[last + 1] - begin[first]));
  };
  for (;;) {
    int32_t best = kNoRank;
    uint32_t at = 0;
    for (uint32_t i = 0; i + 1 < parts; ++i)
      if (pair[i] < best) {  // strict: the leftmost of equal ranks
        best = pair[i];
        at = i;
      }
    if (best == kNoRank) break;
    // Part at + 1 joins part at.
    id[at] = best;
    const uint32_t tail = parts - (at + 2);
    std::memmove(&begin[at + 1], &begin[at + 2], (tail + 1) * sizeof(uint32_t));
    std::memmove(&id[at + 1], &id[at + 2], tail * sizeof(int32_t));
    if (tail > 1) std::memmove(&pair[at + 1], &pair[at + 2], (tail - 1) * sizeof(int32_t));
    --parts;
    if (at + 1 < parts) pair[at] = rank_of_parts(at, at + 1);
    if (at > 0) pair[at - 1] = rank_of_parts(at - 1, at);
  }
  out.insert(out.end(), id, id + parts);
}

void BytePairEncoder::encode_long(std::string_view piece, std::vector<int32_t>& out) {
  // Symbols in a linked list, candidate pairs in a min-heap by (rank, begin): the same choice as
  // tiktoken's scan, in O(log n) a merge. A candidate is stale when its left symbol has been
  // merged away or its right neighbour no longer ends where it did; a stale candidate whose
  // symbols still span the same bytes is the same pair, so taking it is right.
  const auto n = static_cast<uint32_t>(piece.size());
  symbols_.resize(n);
  heap_.clear();
  for (uint32_t i = 0; i < n; ++i)
    symbols_[i] =
        Symbol{i, i + 1, static_cast<int32_t>(i) - 1, i + 1 < n ? static_cast<int32_t>(i + 1) : -1,
               byte_ids_[static_cast<uint8_t>(piece[i])]};
  const auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.begin > b.begin);
  };
  const auto propose = [&](int32_t left) {
    if (left < 0) return;
    const Symbol& l = symbols_[static_cast<size_t>(left)];
    if (l.next < 0) return;
    const Symbol& r = symbols_[static_cast<size_t>(l.next)];
    const int32_t rank = rank_of(piece.substr(l.begin, r.end - l.begin));
    if (rank == kNoRank) return;
    heap_.push_back(Candidate{rank, l.begin, r.end, left});
    std::push_heap(heap_.begin(), heap_.end(), later);
  };
  for (uint32_t i = 0; i + 1 < n; ++i) {
    const int32_t rank = rank_of(piece.substr(i, 2));
    if (rank != kNoRank) heap_.push_back(Candidate{rank, i, i + 2, static_cast<int32_t>(i)});
  }
  std::make_heap(heap_.begin(), heap_.end(), later);
  while (!heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    const Candidate c = heap_.back();
    heap_.pop_back();
    Symbol& left = symbols_[static_cast<size_t>(c.left)];
    if (left.id < 0 || left.next < 0) continue;
    Symbol& right = symbols_[static_cast<size_t>(left.next)];
    if (right.end != c.end) continue;
    left.end = right.end;
    left.id = c.rank;
    left.next = right.next;
    if (right.next >= 0) symbols_[static_cast<size_t>(right.next)].prev = c.left;
    right.id = -1;
    propose(left.prev);
    propose(c.left);
  }
  for (int32_t i = 0; i >= 0; i = symbols_[static_cast<size_t>(i)].next)
    out.push_back(symbols_[static_cast<size_t>(i)].id);
}

}  // namespace brise::detail
