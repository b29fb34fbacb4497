// Every token that stands for text, in a trie over its bytes: what constrained decoding walks to
// find the tokens a grammar allows (engine/generate/constraint_matcher.cpp). A token's bytes are
// Tokenizer::token_bytes(id); tokens with the same first bytes share the nodes of those bytes, so
// a walk steps over each shared prefix once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "brise/tokenizer.hpp"

namespace brise {

struct TokenTrie {
  // Nodes in depth-first preorder, children in byte order; node 0 is the root (the empty prefix,
  // where no token ends). Preorder makes a walk one pass over the arrays: a node's subtree is the
  // nodes [n, subtree_end[n]), and the tokens that end in it are tokens[first_token[n] ..
  // first_token[subtree_end[n]]).
  std::vector<uint8_t> byte;          // per node: the byte on the edge from its parent
  std::vector<uint32_t> depth;        // per node: its number of bytes (the root: 0)
  std::vector<uint32_t> subtree_end;  // per node: one past the last node of its subtree
  // Per node plus one: the tokens that end at node n are tokens[first_token[n]..first_token[n+1]).
  std::vector<uint32_t> first_token;
  std::vector<int32_t> tokens;
  std::vector<uint32_t> parent;         // per node (the root: 0)
  std::vector<uint32_t> node_of_token;  // per id: the node where it ends, 0 when not in the trie
  // Per node: every byte from this node down (its own edge and all below) is printable ASCII
  // other than '"' and '\' (0x20-0x7E): the bytes that leave a JSON string's text as it is, so a
  // walk inside a string can take the whole subtree at once.
  std::vector<uint8_t> plain_subtree;
  uint32_t max_depth = 0;  // the longest token's bytes
  size_t vocab_size = 0;   // of the tokenizer (ids not in the trie are never text)
  // The tokenizer's vocabulary in one number (every token's kind and bytes, BOS, EOS): a
  // constraint made for one tokenizer is refused on a model with another.
  uint64_t fingerprint = 0;

  size_t nodes() const { return byte.size(); }
};

// The trie of `tokenizer`: every Normal, UserDefined and Byte token (SentencePiece) or rank
// (Tekken) with its token_bytes; control, unknown and unused tokens are left out.
TokenTrie build_token_trie(const Tokenizer& tokenizer);

// A Tokenizer's trie, built on first use and shared by the Tokenizer's copies.
struct Tokenizer::TrieCache {
  std::once_flag once;
  std::shared_ptr<const TokenTrie> trie;
};

}  // namespace brise
