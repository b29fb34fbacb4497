#include "engine/tokenizer/token_trie.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "brise/error.hpp"

namespace brise {
namespace {

bool in_trie(TokenKind kind) {
  return kind == TokenKind::Normal || kind == TokenKind::UserDefined || kind == TokenKind::Byte;
}

bool plain_byte(uint8_t b) {
  return b >= 0x20 && b <= 0x7E && b != '"' && b != '\\';
}

uint64_t fnv(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

TokenTrie build_token_trie(const Tokenizer& tokenizer) {
  const size_t n = tokenizer.vocab_size();
  TokenTrie trie;
  trie.vocab_size = n;
  uint64_t h = 0xcbf29ce484222325ull;
  std::vector<std::pair<std::string, int32_t>> entries;
  entries.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<int32_t>(i);
    const auto kind = static_cast<int32_t>(tokenizer.kind(id));
    std::string bytes = tokenizer.token_bytes(id);
    const uint64_t size = bytes.size();
    h = fnv(h, &kind, sizeof kind);
    h = fnv(h, &size, sizeof size);
    h = fnv(h, bytes.data(), bytes.size());
    if (in_trie(tokenizer.kind(id)) && !bytes.empty()) entries.emplace_back(std::move(bytes), id);
  }
  const int32_t ends[2] = {tokenizer.bos_id(), tokenizer.eos_id()};
  trie.fingerprint = fnv(h, ends, sizeof ends);
  // Sorted by bytes (then id), the tokens come in the trie's preorder: a token's node is made
  // when its first token arrives, before any longer token below it.
  std::sort(entries.begin(), entries.end());

  trie.node_of_token.assign(n, 0);
  trie.byte.push_back(0);
  trie.parent.push_back(0);
  trie.depth.push_back(0);
  trie.subtree_end.push_back(0);
  trie.first_token.push_back(0);
  std::vector<uint32_t> path = {0};  // the nodes of the previous token's bytes, root first
  std::string_view previous;
  const auto close_to = [&](size_t keep) {  // ends the subtrees of the path below `keep` nodes
    while (path.size() > keep) {
      trie.subtree_end[path.back()] = static_cast<uint32_t>(trie.byte.size());
      path.pop_back();
    }
  };
  for (const auto& [bytes, id] : entries) {
    size_t common = 0;
    while (common < bytes.size() && common < previous.size() && bytes[common] == previous[common])
      ++common;
    close_to(common + 1);
    for (size_t k = common; k < bytes.size(); ++k) {
      const auto node = static_cast<uint32_t>(trie.byte.size());
      trie.byte.push_back(static_cast<uint8_t>(bytes[k]));
      trie.parent.push_back(path.back());
      trie.depth.push_back(static_cast<uint32_t>(k + 1));
      trie.subtree_end.push_back(0);
      trie.first_token.push_back(static_cast<uint32_t>(trie.tokens.size()));
      path.push_back(node);
    }
    trie.tokens.push_back(id);
    trie.node_of_token[static_cast<size_t>(id)] = path.back();
    trie.max_depth = std::max(trie.max_depth, static_cast<uint32_t>(bytes.size()));
    previous = bytes;
  }
  close_to(0);
  trie.first_token.push_back(static_cast<uint32_t>(trie.tokens.size()));
  // Plainness from the leaves up: in preorder, every descendant comes after its node.
  const size_t nodes = trie.byte.size();
  trie.plain_subtree.assign(nodes, 1);
  for (size_t i = nodes; i-- > 1;) {
    bool plain = plain_byte(trie.byte[i]);
    for (size_t c = i + 1; plain && c < trie.subtree_end[i]; c = trie.subtree_end[c])
      plain = trie.plain_subtree[c] != 0;
    trie.plain_subtree[i] = plain ? 1 : 0;
  }
  trie.plain_subtree[0] = 0;
  return trie;
}

std::shared_ptr<const TokenTrie> Tokenizer::token_trie() const {
  std::call_once(trie_cache_->once, [&] {
    trie_cache_->trie = std::make_shared<const TokenTrie>(build_token_trie(*this));
  });
  return trie_cache_->trie;
}

}  // namespace brise
