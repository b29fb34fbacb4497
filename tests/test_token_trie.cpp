// Tokenizer::token_bytes and the token trie that constrained decoding walks: each token's bytes
// against its piece read independently (U+2581 as a space, <0xNN> as a byte, Tekken's raw
// bytes) and against decode(); the trie against the tokens it must hold, node by node.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "brise/error.hpp"
#include "brise/tokenizer.hpp"
#include "engine/tokenizer/token_trie.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

// The piece's text as SentencePiece's decoder writes it, from the piece alone.
std::string expected_bytes(const Tokenizer& tok, int32_t id) {
  const std::string piece(tok.piece(id));
  switch (tok.kind(id)) {
    case TokenKind::Control:
      return "";
    case TokenKind::Unknown:
      return tok.vocabulary().unk_surface;
    case TokenKind::Byte:
      return std::string(1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
    default:
      break;
  }
  if (tok.model() == TokenizerModel::Tekken) return piece;
  std::string out;
  for (size_t i = 0; i < piece.size(); ++i) {
    if (piece.compare(i, 3, "\xE2\x96\x81") == 0) {
      out += ' ';
      i += 2;
    } else {
      out += piece[i];
    }
  }
  return out;
}

bool valid_utf8(const std::string& s) {
  return find_invalid_utf8(s) == std::string_view::npos;
}

void check_tokenizer(const Tokenizer& tok) {
  const size_t n = tok.vocab_size();
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<int32_t>(i);
    ASSERT_EQ(tok.token_bytes(id), expected_bytes(tok, id)) << "token " << id;
  }
  EXPECT_THROW((void)tok.token_bytes(static_cast<int32_t>(n)), Error);
  EXPECT_THROW((void)tok.token_bytes(-1), Error);

  // Decoding a run of text tokens gives their bytes joined (when they form valid UTF-8 and the
  // run does not start with a space, which SentencePiece's decoder drops at a text's start).
  std::vector<int32_t> text_ids;
  for (size_t i = 0; i < n; ++i) {
    const TokenKind k = tok.kind(static_cast<int32_t>(i));
    if (k == TokenKind::Normal || k == TokenKind::Byte) text_ids.push_back(static_cast<int32_t>(i));
  }
  std::mt19937 rng(3);
  int checked = 0;
  for (int round = 0; round < 2000; ++round) {
    std::vector<int32_t> ids;
    std::string joined;
    for (int k = 0; k < 6; ++k) {
      ids.push_back(text_ids[rng() % text_ids.size()]);
      joined += tok.token_bytes(ids.back());
    }
    if (joined.empty() || joined[0] == ' ' || !valid_utf8(joined)) continue;
    ASSERT_EQ(tok.decode(ids), joined);
    ++checked;
  }
  EXPECT_GT(checked, 200);

  // The trie: every text token ends at the node its bytes lead to, and nothing else is in it.
  const auto trie = tok.token_trie();
  EXPECT_EQ(trie, tok.token_trie());  // built once
  ASSERT_EQ(trie->vocab_size, n);
  size_t in_trie = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<int32_t>(i);
    const TokenKind k = tok.kind(id);
    const bool text = k == TokenKind::Normal || k == TokenKind::UserDefined || k == TokenKind::Byte;
    const uint32_t node = trie->node_of_token[i];
    ASSERT_EQ(node != 0, text) << "token " << id;
    if (!text) continue;
    ++in_trie;
    // Down from the root by the token's bytes: children are found in their parent's subtree.
    uint32_t at = 0;
    for (const char c : tok.token_bytes(id)) {
      uint32_t child = at + 1;
      while (child < trie->subtree_end[at] && trie->byte[child] != static_cast<uint8_t>(c))
        child = trie->subtree_end[child];
      ASSERT_LT(child, trie->subtree_end[at]) << "token " << id;
      ASSERT_EQ(trie->parent[child], at);
      at = child;
    }
    ASSERT_EQ(at, node);
    bool listed = false;
    for (uint32_t t = trie->first_token[at]; t < trie->first_token[at + 1]; ++t)
      listed = listed || trie->tokens[t] == id;
    ASSERT_TRUE(listed) << "token " << id;
  }
  EXPECT_EQ(trie->tokens.size(), in_trie);
  for (size_t node = 1; node < trie->nodes(); ++node) {
    // Children in byte order, depth one more than the parent's; plain_subtree as defined.
    const uint32_t p = trie->parent[node];
    ASSERT_EQ(trie->depth[node], trie->depth[p] + 1);
    ASSERT_LE(trie->subtree_end[node], trie->subtree_end[p]);
    bool plain = true;
    for (size_t m = node; m < trie->subtree_end[node]; ++m) {
      const uint8_t b = trie->byte[m];
      plain = plain && b >= 0x20 && b <= 0x7E && b != '"' && b != '\\';
    }
    ASSERT_EQ(trie->plain_subtree[node] != 0, plain) << "node " << node;
  }
}

TEST(TokenTrie, SentencePieceMistralV3) {
  BRISE_REQUIRE_TESTDATA(data);
  check_tokenizer(
      Tokenizer(read_sentencepiece_model(data / "tokenizers/mistral-v3/tokenizer.model")));
}

TEST(TokenTrie, TekkenMini) {
  BRISE_REQUIRE_TESTDATA(data);
  check_tokenizer(Tokenizer(read_tekken_json(data / "models/tekken-mini/tekken-v13.json")));
}

TEST(TokenTrie, TheFingerprintTellsVocabulariesApart) {
  BRISE_REQUIRE_TESTDATA(data);
  const Tokenizer v3(read_sentencepiece_model(data / "tokenizers/mistral-v3/tokenizer.model"));
  const Tokenizer v1(read_sentencepiece_model(data / "tokenizers/mistral-v1/tokenizer.model"));
  const Tokenizer v3_again(
      read_sentencepiece_model(data / "tokenizers/mistral-v3/tokenizer.model"));
  const Tokenizer copy = v3;
  EXPECT_EQ(copy.token_trie(), v3.token_trie());  // copies share the built trie
  EXPECT_EQ(v3_again.token_trie()->fingerprint, v3.token_trie()->fingerprint);
  EXPECT_NE(v1.token_trie()->fingerprint, v3.token_trie()->fingerprint);
}

}  // namespace
}  // namespace brise
