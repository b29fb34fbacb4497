// SentencePiece BPE encoding and decoding, matching sentencepiece 0.1.97 (normalizer.cc,
// bpe_model.cc, sentencepiece_processor.cc) for BPE models with an identity normalizer; the
// entry points shared with Tekken (tekken.cpp).
#include "brise/tokenizer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <unordered_map>
#include <utility>

#include "brise/error.hpp"
#include "engine/tokenizer/tables.hpp"
#include "engine/tokenizer/tekken.hpp"
#include "engine/tokenizer/token_trie.hpp"
#include "engine/tokenizer/utf8.hpp"

namespace brise {

namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581 "▁"

bool is_mergeable(TokenKind kind) {
  // SentencePiece's pieces_: what BPE may form and what text may match.
  return kind == TokenKind::Normal || kind == TokenKind::UserDefined || kind == TokenKind::Unused;
}

void validate(const Vocabulary& v) {
  const size_t n = v.pieces.size();
  if (n == 0) throw Error("tokenizer vocabulary is empty");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    throw Error("tokenizer vocabulary has too many pieces (" + std::to_string(n) + ")");
  if (v.scores.size() != n || v.kinds.size() != n)
    throw Error("tokenizer vocabulary: " + std::to_string(n) + " pieces but " +
                std::to_string(v.scores.size()) + " scores and " + std::to_string(v.kinds.size()) +
                " token types");
  auto check_id = [n](const char* what, int32_t id) {
    if (id < -1 || id >= static_cast<int64_t>(n))
      throw Error(std::string("tokenizer vocabulary: ") + what + " " + std::to_string(id) +
                  " is out of range (" + std::to_string(n) + " pieces)");
  };
  check_id("bos_id", v.bos_id);
  check_id("eos_id", v.eos_id);
  check_id("unk_id", v.unk_id);
  check_id("pad_id", v.pad_id);
  if (v.unk_id >= 0 && v.kinds[static_cast<size_t>(v.unk_id)] != TokenKind::Unknown)
    throw Error("tokenizer vocabulary: unk_id " + std::to_string(v.unk_id) + " ('" +
                v.pieces[static_cast<size_t>(v.unk_id)] + "') is not an unknown-type piece");
  if (v.unk_id < 0 && !v.byte_fallback)
    throw Error("tokenizer vocabulary: no unknown piece (unk_id is -1) and no byte fallback");
  size_t total_bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto kind = static_cast<int32_t>(v.kinds[i]);
    if (kind < 1 || kind > 6)
      throw Error("tokenizer vocabulary: token " + std::to_string(i) + " has invalid type " +
                  std::to_string(kind));
    if (v.pieces[i].empty())
      throw Error("tokenizer vocabulary: token " + std::to_string(i) + " is an empty piece");
    if (std::isnan(v.scores[i]))
      throw Error("tokenizer vocabulary: token " + std::to_string(i) + " has a NaN score");
    if (v.kinds[i] == TokenKind::Byte && detail::parse_byte_piece(v.pieces[i]) < 0)
      throw Error("tokenizer vocabulary: byte token " + std::to_string(i) + " '" + v.pieces[i] +
                  "' is not of the form <0xNN>");
    total_bytes += v.pieces[i].size();
  }
  if (total_bytes >= std::numeric_limits<uint32_t>::max())
    throw Error("tokenizer vocabulary: pieces are too large in total");
}

// SentencePiece's Normalizer::Normalize with an identity rule set: optional removal of leading,
// trailing and repeated spaces, a dummy "▁" prefix, and spaces escaped as "▁". User-defined
// pieces are taken whole (their spaces are still escaped).
std::string normalize(std::string_view input, const Vocabulary& v,
                      const detail::PrefixMatcher& user_defined) {
  std::string out;
  if (input.empty()) return out;
  const bool has_user_defined = !user_defined.empty();
  auto chunk_length = [&](std::string_view s) -> size_t {
    if (has_user_defined)
      if (const size_t n = user_defined.match(s)) return n;
    return std::min(s.size(), utf8::lead_length(static_cast<uint8_t>(s[0])));
  };
  const bool remove_extra = v.remove_extra_whitespaces;
  if (!remove_extra && !has_user_defined) {
    // The common case (Mistral): chunks are single characters and nothing is dropped, so this
    // is the dummy prefix and a plain replacement of ' ' by "▁".
    out.reserve(input.size() + input.size() / 2 + kSpaceSymbol.size());
    if (v.add_dummy_prefix) out += kSpaceSymbol;
    for (size_t space; (space = input.find(' ')) != std::string_view::npos;) {
      out.append(input.substr(0, space));
      out += kSpaceSymbol;
      input.remove_prefix(space + 1);
    }
    out.append(input);
    return out;
  }
  if (remove_extra) {
    while (!input.empty()) {
      const size_t n = chunk_length(input);
      if (input.substr(0, n) != " ") break;
      input.remove_prefix(n);
    }
    if (input.empty()) return out;
  }
  out.reserve(input.size() + input.size() / 2 + kSpaceSymbol.size());
  if (v.add_dummy_prefix) out += kSpaceSymbol;
  bool is_prev_space = remove_extra;
  while (!input.empty()) {
    const size_t n = chunk_length(input);
    std::string_view chunk = input.substr(0, n);
    while (is_prev_space && !chunk.empty() && chunk.front() == ' ') chunk.remove_prefix(1);
    if (!chunk.empty()) {
      for (const char c : chunk) {
        if (c == ' ')
          out += kSpaceSymbol;
        else
          out += c;
      }
      is_prev_space = chunk.back() == ' ';
    }
    input.remove_prefix(n);
    if (!remove_extra) is_prev_space = false;
  }
  if (remove_extra)
    while (std::string_view(out).ends_with(kSpaceSymbol))
      out.resize(out.size() - kSpaceSymbol.size());
  return out;
}

// bpe_model.cc: symbols in a doubly linked list, candidate merges in a max-heap by score (ties:
// leftmost first). Stale candidates are recognised by their size and skipped, so each merge
// costs O(log n).
class BpeEncoder {
 public:
  BpeEncoder(std::string_view text, const Vocabulary& vocab, const detail::TokenizerTables& tables,
             const std::vector<int32_t>& byte_to_id, std::vector<int32_t>& out)
      : text_(text), vocab_(vocab), tables_(tables), byte_to_id_(byte_to_id), out_(out) {}

  void run() {
    if (!tables_.split_at_words) {
      encode_run(0, text_.size());
      return;
    }
    // Runs are independent (see TokenizerTables::split_at_words); short runs keep the heap and
    // the symbol list in cache.
    size_t start = 0;
    for (size_t pos = text_.find(kSpaceSymbol, 1); pos != std::string_view::npos;
         pos = text_.find(kSpaceSymbol, pos + kSpaceSymbol.size())) {
      const bool after_space =
          pos >= kSpaceSymbol.size() &&
          text_.substr(pos - kSpaceSymbol.size(), kSpaceSymbol.size()) == kSpaceSymbol;
      if (after_space) continue;
      encode_run(start, pos);
      start = pos;
    }
    encode_run(start, text_.size());
  }

 private:
  void encode_run(size_t begin, size_t end) {
    split(begin, end);
    heap_.clear();
    for (size_t i = 1; i < symbols_.size(); ++i)
      maybe_add(static_cast<int32_t>(i - 1), static_cast<int32_t>(i), /*push=*/false);
    std::make_heap(heap_.begin(), heap_.end(), Lower{});
    while (!heap_.empty()) {
      std::pop_heap(heap_.begin(), heap_.end(), Lower{});
      const Candidate top = heap_.back();
      heap_.pop_back();
      Symbol& left = symbols_[static_cast<size_t>(top.left)];
      Symbol& right = symbols_[static_cast<size_t>(top.right)];
      if (left.length == 0 || right.length == 0 || left.length + right.length != top.size)
        continue;  // stale: one side has been merged since
      left.length += right.length;
      left.next = right.next;
      if (right.next >= 0) symbols_[static_cast<size_t>(right.next)].prev = top.left;
      right.length = 0;
      maybe_add(left.prev, top.left, true);
      maybe_add(top.left, left.next, true);
    }
    for (int32_t i = symbols_.empty() ? -1 : 0; i != -1; i = symbols_[static_cast<size_t>(i)].next)
      resegment(piece_of(symbols_[static_cast<size_t>(i)]));
  }

 private:
  struct Symbol {
    int32_t prev;
    int32_t next;
    uint32_t begin;
    uint32_t length;  // 0 once merged into its left neighbour
    bool frozen;      // user-defined pieces are never merged
  };
  struct Candidate {
    float score;
    int32_t left;
    int32_t right;
    uint32_t size;
  };
  struct Lower {
    bool operator()(const Candidate& a, const Candidate& b) const {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
  };

  std::string_view piece_of(const Symbol& s) const { return text_.substr(s.begin, s.length); }

  void split(size_t begin, size_t end) {
    symbols_.clear();
    const bool has_user_defined = !tables_.user_defined.empty();
    size_t pos = begin;
    while (pos < end) {
      const std::string_view rest = text_.substr(pos, end - pos);
      size_t n = has_user_defined ? tables_.user_defined.match(rest) : 0;
      const bool frozen = n > 0;
      if (!frozen) n = std::min(rest.size(), utf8::lead_length(static_cast<uint8_t>(rest[0])));
      const auto index = static_cast<int32_t>(symbols_.size());
      symbols_.push_back(Symbol{index - 1, pos + n < end ? index + 1 : -1,
                                static_cast<uint32_t>(pos), static_cast<uint32_t>(n), frozen});
      pos += n;
    }
  }

  void maybe_add(int32_t left, int32_t right, bool push) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols_[static_cast<size_t>(left)];
    const Symbol& r = symbols_[static_cast<size_t>(right)];
    if (l.frozen || r.frozen) return;
    const std::string_view merged = text_.substr(l.begin, l.length + r.length);
    const int32_t id = tables_.mergeable.find(merged);
    if (id < 0) return;
    heap_.push_back(Candidate{vocab_.scores[static_cast<size_t>(id)], left, right,
                              static_cast<uint32_t>(merged.size())});
    if (push) std::push_heap(heap_.begin(), heap_.end(), Lower{});
    // An unused piece may be formed on the way to a longer one, but is never output: remember
    // how it was made so that it can be split again (the last pair proposed wins, as in
    // SentencePiece).
    if (tables_.has_unused && vocab_.kinds[static_cast<size_t>(id)] == TokenKind::Unused)
      rev_merge_[merged] = {piece_of(l), piece_of(r)};
  }

  void resegment(std::string_view piece) {
    const int32_t id = tables_.mergeable.find(piece);
    if (id >= 0 && vocab_.kinds[static_cast<size_t>(id)] == TokenKind::Unused) {
      if (const auto it = rev_merge_.find(piece); it != rev_merge_.end()) {
        const auto [a, b] = it->second;
        resegment(a);
        resegment(b);
        return;
      }
    }
    emit(piece, id);
  }

  // sentencepiece_processor.cc PopulateSentencePieceText: unknown pieces become their UTF-8
  // bytes with byte fallback, else one <unk> per run of unknown pieces.
  void emit(std::string_view piece, int32_t id) {
    const bool is_unknown = id < 0;
    if (is_unknown && vocab_.byte_fallback) {
      for (const char c : piece) out_.push_back(byte_to_id_[static_cast<uint8_t>(c)]);
    } else if (is_unknown) {
      if (!previous_unknown_) out_.push_back(vocab_.unk_id);
    } else {
      out_.push_back(id);
    }
    previous_unknown_ = is_unknown;
  }

  std::string_view text_;
  const Vocabulary& vocab_;
  const detail::TokenizerTables& tables_;
  const std::vector<int32_t>& byte_to_id_;
  std::vector<int32_t>& out_;
  std::vector<Symbol> symbols_;
  std::vector<Candidate> heap_;
  std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> rev_merge_;
  bool previous_unknown_ = false;
};

}  // namespace

Tokenizer::Tokenizer(Vocabulary vocab)
    : vocab_(std::move(vocab)), trie_cache_(std::make_shared<TrieCache>()) {
  switch (vocab_.model) {
    case TokenizerModel::Tekken:
      init_tekken();
      return;
    case TokenizerModel::SentencePiece:
      break;
    default:
      throw Error("tokenizer vocabulary: unknown tokenizer model " +
                  std::to_string(static_cast<int32_t>(vocab_.model)));
  }
  validate(vocab_);
  const size_t n = vocab_.size();
  auto tables = std::make_shared<EncoderTables>();
  tables->byte_of_id.assign(n, -1);
  byte_to_id_.assign(256, -1);
  piece_to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<int32_t>(i);
    if (!piece_to_id_.emplace(vocab_.pieces[i], id).second)
      throw Error("tokenizer vocabulary: token " + std::to_string(i) + " '" + vocab_.pieces[i] +
                  "' duplicates token " + std::to_string(piece_to_id_.at(vocab_.pieces[i])));
    const TokenKind kind = vocab_.kinds[i];
    if (kind == TokenKind::Byte) {
      const int byte = detail::parse_byte_piece(vocab_.pieces[i]);
      tables->byte_of_id[i] = static_cast<int16_t>(byte);
      byte_to_id_[static_cast<size_t>(byte)] = id;
    }
    if (kind == TokenKind::UserDefined) tables->user_defined.add(vocab_.pieces[i]);
    if (kind == TokenKind::Unused) tables->has_unused = true;
  }
  if (vocab_.byte_fallback) {
    const auto missing = std::find(byte_to_id_.begin(), byte_to_id_.end(), -1);
    if (missing != byte_to_id_.end()) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>",
                    static_cast<unsigned>(missing - byte_to_id_.begin()));
      throw Error(std::string("tokenizer vocabulary: byte_fallback is on but byte piece ") + name +
                  " is missing");
    }
  }
  tables->mergeable.build(vocab_.pieces, [&](size_t i) { return is_mergeable(vocab_.kinds[i]); });
  tables->split_at_words = !tables->has_unused;
  for (size_t i = 0; i < n && tables->split_at_words; ++i) {
    if (!is_mergeable(vocab_.kinds[i])) continue;
    const std::string_view p = vocab_.pieces[i];
    for (size_t pos = p.find(kSpaceSymbol, 1); pos != std::string_view::npos;
         pos = p.find(kSpaceSymbol, pos + 1)) {
      if (pos < kSpaceSymbol.size() || p.substr(pos - kSpaceSymbol.size(), 3) != kSpaceSymbol) {
        tables->split_at_words = false;
        break;
      }
    }
  }
  tables_ = std::move(tables);
  specials_ = std::make_shared<SpecialTables>(SpecialTables{detail::make_special_tables(vocab_)});
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  return encode(text, EncodeOptions{.add_bos = add_bos});
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  if (const size_t bad = utf8::find_invalid(text); bad != std::string_view::npos)
    throw Error("invalid UTF-8 at byte " + std::to_string(bad));
  std::vector<int32_t> ids;
  if (options.add_bos) {
    if (vocab_.bos_id < 0) throw Error("cannot add BOS: the vocabulary has no BOS token");
    ids.push_back(vocab_.bos_id);
  }
  if (!options.parse_special) {
    encode_text(text, ids);
    return ids;
  }
  // Control tokens' texts are cut out where they start (the longest at a position), at
  // character boundaries; the text between them is encoded on its own.
  size_t segment = 0;
  for (size_t pos = 0; pos < text.size();) {
    if (const size_t n = specials_->matcher.match(text.substr(pos))) {
      encode_text(text.substr(segment, pos - segment), ids);
      ids.push_back(specials_->ids.at(std::string(text.substr(pos, n))));
      pos += n;
      segment = pos;
    } else {
      pos += utf8::valid_char_length(text.substr(pos));
    }
  }
  encode_text(text.substr(segment), ids);
  return ids;
}

void Tokenizer::encode_text(std::string_view text, std::vector<int32_t>& ids) const {
  if (text.empty()) return;
  if (tekken_)
    encode_tekken(text, ids);
  else
    encode_sentencepiece(text, ids);
}

void Tokenizer::encode_sentencepiece(std::string_view text, std::vector<int32_t>& ids) const {
  const std::string normalized = normalize(text, vocab_, tables_->user_defined);
  if (normalized.empty()) return;
  if (normalized.size() >= std::numeric_limits<int32_t>::max())
    throw Error("text too long to encode (" + std::to_string(text.size()) + " bytes)");
  ids.reserve(ids.size() + normalized.size() / 3);
  BpeEncoder(normalized, vocab_, *tables_, byte_to_id_, ids).run();
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  if (tekken_) return decode_tekken(ids);
  // Check every id first (throws on an id outside the vocabulary) and size the output once: a
  // piece's text is never longer than the piece, except <unk>'s surface.
  size_t capacity = 0;
  for (const int32_t id : ids) capacity += std::max(piece(id).size(), vocab_.unk_surface.size());
  const detail::TokenizerTables& tables = *tables_;
  std::string text;
  text.reserve(capacity);
  std::string bytes;  // a run of byte pieces, decoded together
  bool is_bos_ws = true;
  bool bos_ws_seen = false;
  for (const int32_t id : ids) {
    const int byte = tables.byte_of_id[static_cast<size_t>(id)];
    if (byte >= 0) {
      bytes.push_back(static_cast<char>(byte));
      continue;
    }
    utf8::append_bytes_lossy(bytes, text);
    bytes.clear();
    if (bos_ws_seen || !text.empty()) is_bos_ws = false;
    bos_ws_seen = detail::append_piece_text(vocab_, id, is_bos_ws, text);
  }
  utf8::append_bytes_lossy(bytes, text);
  return text;
}

std::string_view Tokenizer::piece(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= vocab_.size())
    throw Error("token id " + std::to_string(id) + " is out of range (vocabulary has " +
                std::to_string(vocab_.size()) + " tokens)");
  return vocab_.pieces[static_cast<size_t>(id)];
}

std::string Tokenizer::token_bytes(int32_t id) const {
  const std::string_view p = piece(id);  // throws on an id outside the vocabulary
  const auto index = static_cast<size_t>(id);
  if (tekken_) return vocab_.kinds[index] == TokenKind::Control ? std::string() : std::string(p);
  if (const int byte = tables_->byte_of_id[index]; byte >= 0)
    return std::string(1, static_cast<char>(byte));
  std::string out;
  detail::append_piece_text(vocab_, id, /*is_bos_ws=*/false, out);
  return out;
}

TokenKind Tokenizer::kind(int32_t id) const {
  (void)piece(id);
  return vocab_.kinds[static_cast<size_t>(id)];
}

int32_t Tokenizer::find_piece(std::string_view text) const {
  if (tekken_) {
    if (const int32_t id = find_special(text); id >= 0) return id;
    return tekken_->ranks.find(text);
  }
  const auto it = piece_to_id_.find(std::string(text));
  return it == piece_to_id_.end() ? -1 : it->second;
}

int32_t Tokenizer::find_special(std::string_view text) const {
  const auto it = specials_->ids.find(std::string(text));
  return it == specials_->ids.end() ? -1 : it->second;
}

}  // namespace brise
