#include "engine/tokenizer/tables.hpp"

namespace brise::detail {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581, SentencePiece's space

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void PrefixMatcher::add(std::string_view piece) {
  if (piece.empty()) return;
  uint32_t node = 0;
  for (char c : piece) {
    const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(c);
    auto it = edges_.find(key);
    if (it == edges_.end()) {
      const auto child = static_cast<uint32_t>(terminal_.size());
      terminal_.push_back(false);
      it = edges_.emplace(key, child).first;
    }
    node = it->second;
  }
  terminal_[node] = true;
}

size_t PrefixMatcher::match(std::string_view text) const {
  size_t longest = 0;
  uint32_t node = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(text[i]);
    const auto it = edges_.find(key);
    if (it == edges_.end()) break;
    node = it->second;
    if (terminal_[node]) longest = i + 1;
  }
  return longest;
}

SpecialTables make_special_tables(const Vocabulary& vocab) {
  SpecialTables t;
  for (size_t id = 0; id < vocab.size(); ++id) {
    if (vocab.kinds[id] != TokenKind::Control) continue;
    if (t.ids.emplace(vocab.pieces[id], static_cast<int32_t>(id)).second)
      t.matcher.add(vocab.pieces[id]);
  }
  return t;
}

int parse_byte_piece(std::string_view piece) {
  // Exactly "<0xNN>" with upper-case hex digits, as SentencePiece's ByteToPiece writes it.
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  const int hi = hex_digit(piece[3]);
  const int lo = hex_digit(piece[4]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

bool append_piece_text(const Vocabulary& vocab, int32_t id, bool is_bos_ws, std::string& out) {
  const auto index = static_cast<size_t>(id);
  switch (vocab.kinds[index]) {
    case TokenKind::Control:
      return false;  // <s>, </s>, [INST]: invisible
    case TokenKind::Unknown:
      out += vocab.unk_surface;
      return false;
    default:
      break;
  }
  std::string_view piece = vocab.pieces[index];
  bool has_bos_ws = false;
  // The first piece of a text loses the space that add_dummy_prefix put in front of it.
  if (is_bos_ws && (vocab.add_dummy_prefix || vocab.remove_extra_whitespaces)) {
    if (piece.starts_with(kSpaceSymbol)) {
      piece.remove_prefix(kSpaceSymbol.size());
      has_bos_ws = true;
    }
    // With remove_extra_whitespaces every leading space goes, so keep looking.
    if (vocab.remove_extra_whitespaces) has_bos_ws = false;
  }
  for (size_t pos; (pos = piece.find(kSpaceSymbol)) != std::string_view::npos;) {
    out.append(piece.substr(0, pos));
    out += ' ';
    piece.remove_prefix(pos + kSpaceSymbol.size());
  }
  out.append(piece);
  return has_bos_ws;
}

}  // namespace brise::detail
