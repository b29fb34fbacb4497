// Byte-level BPE exactly as tiktoken's byte_pair_encode: a piece starts as its bytes, and the
// adjacent pair whose concatenation has the lowest rank is merged (the leftmost of equal ones)
// until no adjacent pair is a rank. Ranks are looked up as token ids (rank + number of special
// tokens), which order the same way.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/tokenizer/tables.hpp"

namespace brise::detail {

class BytePairEncoder {
 public:
  // `ranks`: the id of every rank's bytes; `byte_ids`: the id of each single byte (256 entries).
  BytePairEncoder(const PieceTable& ranks, const int32_t* byte_ids)
      : ranks_(ranks), byte_ids_(byte_ids) {}

  // Appends the ids of `piece` (at least 2 bytes) after merging.
  void encode(std::string_view piece, std::vector<int32_t>& out) {
    if (piece.size() <= kShortPiece)
      encode_short(piece, out);
    else
      encode_long(piece, out);
  }

  // Pieces up to this length are merged by tiktoken's own method (a scan for the lowest pair
  // after each merge: quadratic, and fastest for short pieces); longer ones with a heap.
  static constexpr size_t kShortPiece = 48;

  // Both methods, for tests that hold them to the same result.
  void encode_short(std::string_view piece, std::vector<int32_t>& out);
  void encode_long(std::string_view piece, std::vector<int32_t>& out);

 private:
  int32_t rank_of(std::string_view bytes) const;

  struct Symbol {
    uint32_t begin;
    uint32_t end;
    int32_t prev;
    int32_t next;
    int32_t id;  // -1 once merged into its left neighbour
  };
  struct Candidate {
    int32_t rank;
    uint32_t begin;  // of the pair: the left symbol's begin
    uint32_t end;    // of the pair: the right symbol's end when it was proposed
    int32_t left;
  };

  const PieceTable& ranks_;
  const int32_t* byte_ids_;
  // Scratch of encode_long, kept between pieces so that the hot loop does not allocate.
  std::vector<Symbol> symbols_;
  std::vector<Candidate> heap_;
};

}  // namespace brise::detail
