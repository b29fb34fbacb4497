// Lookup structures the tokenizer builds once from its vocabulary: an allocation-free piece -> id
// hash table, a longest-prefix matcher for user-defined pieces, and per-id byte values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "brise/tokenizer.hpp"

namespace brise::detail {

// Open-addressing hash table from piece text to id. It keeps its own copy of the keys (so that a
// Tokenizer may be copied or moved freely), and a lookup by string_view never allocates.
class PieceTable {
 public:
  // Inserts the ids of `pieces` for which `include(id)` holds.
  template <typename Pred>
  void build(const std::vector<std::string>& pieces, Pred include) {
    size_t count = 0, bytes = 0;
    for (size_t id = 0; id < pieces.size(); ++id)
      if (include(id)) {
        ++count;
        bytes += pieces[id].size();
      }
    size_t capacity = 16;
    while (capacity < count * 2) capacity *= 2;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    keys_.clear();
    keys_.reserve(bytes);
    for (size_t id = 0; id < pieces.size(); ++id)
      if (include(id)) insert(pieces[id], static_cast<int32_t>(id));
  }

  // Id of `piece`, or -1.
  int32_t find(std::string_view piece) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash(piece);
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.tag == tag && s.length == piece.size() &&
          std::string_view(keys_).substr(s.offset, s.length) == piece)
        return s.id;
    }
  }

  static uint64_t hash(std::string_view s) {
    // FNV-1a: pieces are short, so a byte-wise hash is fast enough and well spread.
    uint64_t h = 0xcbf29ce484222325ull;
    for (char c : s) {
      h ^= static_cast<uint8_t>(c);
      h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
  }

 private:
  struct Slot {
    uint32_t tag = 0;
    int32_t id = -1;
    uint32_t offset = 0;
    uint32_t length = 0;
  };
  void insert(const std::string& piece, int32_t id) {
    const uint64_t h = hash(piece);
    size_t i = h & mask_;
    while (slots_[i].id >= 0) i = (i + 1) & mask_;
    slots_[i] = Slot{static_cast<uint32_t>(h >> 32), id, static_cast<uint32_t>(keys_.size()),
                     static_cast<uint32_t>(piece.size())};
    keys_ += piece;
  }

  std::vector<Slot> slots_;
  std::string keys_;  // all keys, back to back
  size_t mask_ = 0;
};

// Longest-prefix matcher over the user-defined pieces (a byte trie), as SentencePiece's
// PrefixMatcher: user-defined pieces are cut out of the text whole, before anything else.
class PrefixMatcher {
 public:
  void add(std::string_view piece);
  bool empty() const { return edges_.empty(); }
  // Length of the longest user-defined piece at the start of `text`, or 0 when none matches.
  size_t match(std::string_view text) const;

 private:
  std::unordered_map<uint64_t, uint32_t> edges_;  // (node << 8 | byte) -> child node
  std::vector<bool> terminal_ = {false};          // node 0 is the root
};

// Everything encode/decode looks up, built once by the Tokenizer constructor.
struct TokenizerTables {
  PieceTable mergeable;        // Normal, UserDefined and Unused pieces (SentencePiece's pieces_)
  PrefixMatcher user_defined;  // UserDefined pieces
  std::vector<int16_t> byte_of_id;  // the byte of each Byte piece, -1 for other pieces
  bool has_unused = false;          // Unused pieces exist (encode must resegment them)
  // BPE may run word by word (each "▁" after another character starts a new run): true when no
  // mergeable piece holds a "▁" after another character, so no merge can cross such a point,
  // and no unused pieces exist (their resegmentation depends on the order across the text).
  bool split_at_words = false;
};

// The byte value of a "<0xNN>" piece (upper-case hex, as SentencePiece writes them), or -1.
int parse_byte_piece(std::string_view piece);

// Appends the text of one non-byte piece as SentencePiece's decoder does; returns whether it
// consumed the leading U+2581 of the text (SentencePiece's has_bos_ws).
bool append_piece_text(const Vocabulary& vocab, int32_t id, bool is_bos_ws, std::string& out);

// The control tokens by their text, for find_special and for encode's parse_special.
struct SpecialTables {
  std::unordered_map<std::string, int32_t> ids;
  PrefixMatcher matcher;
};
SpecialTables make_special_tables(const Vocabulary& vocab);

}  // namespace brise::detail

// The Tokenizer's private table types are exactly the tables above.
struct brise::Tokenizer::EncoderTables : brise::detail::TokenizerTables {};
struct brise::Tokenizer::SpecialTables : brise::detail::SpecialTables {};
