// The Tekken side of the Tokenizer: its checks and tables, tiktoken's encoding (pre-split by the
// pattern, whole-piece lookup, then byte-pair merges) and byte-level decoding.
#include <algorithm>
#include <limits>
#include <unordered_map>

#include "brise/error.hpp"
#include "brise/tokenizer.hpp"
#include "engine/tokenizer/bpe.hpp"
#include "engine/tokenizer/pretokenizer.hpp"
#include "engine/tokenizer/tekken.hpp"
#include "engine/tokenizer/utf8.hpp"

namespace brise {
namespace detail {
namespace {

constexpr std::string_view kKnownVersions[] = {"v1", "v2", "v3", "v7", "v11", "v13"};

[[noreturn]] void fail(const std::string& problem) {
  throw Error("tokenizer vocabulary: " + problem);
}

std::string hex_byte(unsigned b) {
  const char* digits = "0123456789ABCDEF";
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

}  // namespace

bool is_known_tekken_version(std::string_view version) {
  return std::find(std::begin(kKnownVersions), std::end(kKnownVersions), version) !=
         std::end(kKnownVersions);
}

std::string known_tekken_versions() {
  std::string out;
  for (const auto v : kKnownVersions) {
    if (!out.empty()) out += ' ';
    out += v;
  }
  return out;
}

void validate_tekken(const Vocabulary& v) {
  const size_t n = v.pieces.size();
  if (v.scores.size() != n || v.kinds.size() != n)
    fail(std::to_string(n) + " pieces but " + std::to_string(v.scores.size()) + " scores and " +
         std::to_string(v.kinds.size()) + " token types");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    fail("too many tokens (" + std::to_string(n) + ")");
  const auto special = static_cast<size_t>(std::max(v.num_special_tokens, 0));
  if (v.num_special_tokens < 1 || special >= n)
    fail("Tekken needs at least one special token and one rank, but it has " +
         std::to_string(v.num_special_tokens) + " special tokens in " + std::to_string(n) +
         " tokens");
  if (n - special < 256)
    fail("Tekken needs the 256 single bytes as ranks 0-255, but it has only " +
         std::to_string(n - special) + " ranks");
  if (v.pattern != kTekkenPattern)
    fail("pre-tokenizer pattern '" + v.pattern +
         "' is not supported (brise matches exactly the pattern of Tekken files)");
  if (!v.version.empty() && !is_known_tekken_version(v.version))
    fail("unknown Tekken version '" + v.version + "' (known: " + known_tekken_versions() + ")");
  auto check_id = [&](const char* what, int32_t id, bool required) {
    if (id == -1 && !required) return;
    if (id < 0 || static_cast<size_t>(id) >= special)
      fail(std::string(what) + " " + std::to_string(id) + " is not a special token (0-" +
           std::to_string(special - 1) + ")");
  };
  check_id("bos_id", v.bos_id, true);
  check_id("eos_id", v.eos_id, true);
  check_id("unk_id", v.unk_id, false);
  check_id("pad_id", v.pad_id, false);
  size_t total_bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    const TokenKind want = i < special ? TokenKind::Control : TokenKind::Normal;
    if (v.kinds[i] != want)
      fail("token " + std::to_string(i) + " has type " +
           std::to_string(static_cast<int32_t>(v.kinds[i])) + ", but in Tekken tokens below " +
           std::to_string(special) + " are control tokens (3) and the rest normal (1)");
    if (v.pieces[i].empty()) fail("token " + std::to_string(i) + " is empty");
    if (v.scores[i] != 0.0f)
      fail("token " + std::to_string(i) + " has score " + std::to_string(v.scores[i]) +
           " (Tekken ranks have no scores: all are 0)");
    total_bytes += v.pieces[i].size();
  }
  if (total_bytes >= std::numeric_limits<uint32_t>::max()) fail("tokens are too large in total");
  std::unordered_map<std::string_view, size_t> specials;
  for (size_t i = 0; i < special; ++i)
    if (const auto [it, added] = specials.emplace(v.pieces[i], i); !added)
      fail("special token " + std::to_string(i) + " '" + v.pieces[i] +
           "' duplicates special token " + std::to_string(it->second));
  for (unsigned b = 0; b < 256; ++b) {
    const std::string& piece = v.pieces[special + b];
    if (piece.size() != 1 || static_cast<uint8_t>(piece[0]) != b)
      fail("rank " + std::to_string(b) + " (token " + std::to_string(special + b) +
           ") is not the single byte " + hex_byte(b) +
           ": Tekken's ranks 0-255 are the 256 bytes in order");
  }
}

}  // namespace detail

void Tokenizer::init_tekken() {
  detail::validate_tekken(vocab_);
  const auto special = static_cast<size_t>(vocab_.num_special_tokens);
  auto tables = std::make_shared<TekkenTables>();
  tables->ranks.build(vocab_.pieces, [&](size_t id) { return id >= special; });
  for (size_t id = special; id < vocab_.size(); ++id) {
    const int32_t found = tables->ranks.find(vocab_.pieces[id]);
    if (found != static_cast<int32_t>(id))
      throw Error("tokenizer vocabulary: rank " + std::to_string(id - special) + " (token " +
                  std::to_string(id) + ") has the same bytes as rank " +
                  std::to_string(static_cast<size_t>(found) - special));
  }
  for (int b = 0; b < 256; ++b) tables->byte_ids[b] = static_cast<int32_t>(special) + b;
  tekken_ = std::move(tables);
  specials_ = std::make_shared<SpecialTables>(SpecialTables{detail::make_special_tables(vocab_)});
}

void Tokenizer::encode_tekken(std::string_view text, std::vector<int32_t>& ids) const {
  if (text.size() >= std::numeric_limits<uint32_t>::max())
    throw Error("text too long to encode (" + std::to_string(text.size()) + " bytes)");
  const detail::TekkenTables& t = *tekken_;
  const detail::TekkenSplitter splitter;
  detail::BytePairEncoder bpe(t.ranks, t.byte_ids);
  ids.reserve(ids.size() + text.size() / 4);
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = splitter.piece_end(text, pos);
    const std::string_view piece = text.substr(pos, end - pos);
    pos = end;
    if (piece.size() == 1) {
      ids.push_back(t.byte_ids[static_cast<uint8_t>(piece[0])]);
    } else if (const int32_t id = t.ranks.find(piece); id >= 0) {
      ids.push_back(id);  // the whole piece is a rank: tiktoken takes it without merging
    } else {
      bpe.encode(piece, ids);
    }
  }
}

std::string Tokenizer::decode_tekken(std::span<const int32_t> ids) const {
  // Control tokens are dropped and the other tokens' bytes read as one text (README-tekken.md:
  // the reference's rule; mistral-common's decode reads the runs between control tokens apart,
  // which differs only where a control token splits a character).
  std::string bytes;
  const auto special = vocab_.num_special_tokens;
  for (const int32_t id : ids) {
    const std::string_view p = piece(id);  // throws on an id outside the vocabulary
    if (id >= special) bytes.append(p);
  }
  std::string text;
  text.reserve(bytes.size());
  utf8::append_bytes_replacing_subparts(bytes, text);
  return text;
}

std::string Tokenizer::push_tekken(int32_t id, std::string& pending) const {
  const std::string_view p = piece(id);  // throws on an id outside the vocabulary
  std::string out;
  if (id < vocab_.num_special_tokens) return out;  // control tokens do not end a character
  pending.append(p);
  pending.erase(0, utf8::append_complete_bytes_replacing_subparts(pending, out));
  return out;
}

}  // namespace brise
