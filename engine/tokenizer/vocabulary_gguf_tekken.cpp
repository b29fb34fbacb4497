// Tekken vocabularies as GGUF metadata in llama.cpp's form (convert_hf_to_gguf.py
// _set_vocab_mistral, gguf-py MistralVocab): tokenizer.ggml.model "gpt2", pre "tekken", the
// control tokens then each rank's bytes in GPT-2's byte-to-unicode form, types 3 and 1, scores
// 0, and the merges llama.cpp's own byte-level BPE needs. brise encodes by the ranks (the token
// order), as tiktoken does; the merges are checked and written, not used.
#include <algorithm>
#include <unordered_map>
#include <utility>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/tokenizer.hpp"
#include "engine/tokenizer/tekken.hpp"
#include "engine/tokenizer/vocabulary_gguf.hpp"

namespace brise::detail {

Vocabulary GgufVocabularyReader::read_tekken() {
  const gguf::Value* pre = file_.find(kPre);
  if (!pre)
    fail(kPre,
         "tokenizer model 'gpt2' is not supported without a pre-tokenizer (brise reads "
         "'gpt2' vocabularies with Tekken's pre-tokenizer, 'tekken', only)");
  const std::string& pre_name = pre->as_string(what(kPre));
  if (pre_name != "tekken")
    fail(kPre, "tokenizer model 'gpt2' is not supported with pre-tokenizer '" + pre_name +
                   "' (brise reads 'gpt2' vocabularies with Tekken's pre-tokenizer, 'tekken', "
                   "only)");
  const gguf::Array& tokens = array(kTokens, "string");
  const size_t n = tokens.items.size();
  if (n == 0) fail(kTokens, "the vocabulary is empty");
  const gguf::Array& types = array(kTokenType, "i32");
  check_length(kTokenType, types, n, "token types");
  if (file_.find(kScores)) {
    const gguf::Array& scores = array(kScores, "f32");
    check_length(kScores, scores, n, "scores");
    for (size_t i = 0; i < n; ++i)
      if (scores.items[i].as_float(what(kScores, i)) != 0)
        fail(kScores, "token " + std::to_string(i) + " has a score; Tekken's are all 0");
  }

  Vocabulary v;
  v.model = TokenizerModel::Tekken;
  v.add_dummy_prefix = false;
  v.byte_fallback = false;
  v.pattern = std::string(kTekkenPattern);
  v.pieces.reserve(n);
  v.kinds.reserve(n);
  // The control tokens come first (llama.cpp's form, and Tekken's ids); then the ranks.
  size_t special = 0;
  std::string bytes;
  for (size_t i = 0; i < n; ++i) {
    const int64_t type = types.items[i].as_int(what(kTokenType, i));
    const std::string& text = tokens.items[i].as_string(what(kTokens, i));
    if (type == static_cast<int64_t>(TokenKind::Control) && special == i) {
      ++special;
      v.pieces.push_back(text);
      v.kinds.push_back(TokenKind::Control);
      continue;
    }
    if (type != static_cast<int64_t>(TokenKind::Normal))
      fail(kTokenType, "token " + std::to_string(i) + " has type " + std::to_string(type) +
                           "; a Tekken vocabulary has control tokens (3) first, then normal "
                           "tokens (1)");
    if (!gpt2_to_bytes(text, bytes))
      fail(kTokens,
           "token " + std::to_string(i) + " '" + text + "' is not in GPT-2's byte-to-unicode form");
    v.pieces.push_back(bytes);
    v.kinds.push_back(TokenKind::Normal);
  }
  v.scores.assign(n, 0.0f);
  v.num_special_tokens = static_cast<int32_t>(std::min<size_t>(special, INT32_MAX));
  check_merges(v);

  auto special_named = [&](const char* text) {
    for (size_t i = 0; i < special; ++i)
      if (v.pieces[i] == text) return static_cast<int32_t>(i);
    return -1;
  };
  v.bos_id = token_id(kBosId, special_named("<s>"), n);
  v.eos_id = token_id(kEosId, special_named("</s>"), n);
  v.unk_id = token_id(kUnkId, special_named("<unk>"), n);
  v.pad_id = token_id(kPadId, special_named("<pad>"), n);
  v.add_bos = boolean(kAddBos, true);
  v.add_eos = boolean(kAddEos, false);
  if (const gguf::Value* version = file_.find(kTekkenVersion))
    v.version = version->as_string(what(kTekkenVersion));
  try {
    validate_tekken(v);
  } catch (const Error& e) {
    throw Error(file_.name() + ": " + e.what());
  }
  return v;
}

// llama.cpp's byte-level BPE merges by these pairs: a file without them, or whose pairs name
// tokens that do not exist, is broken for llama.cpp whatever brise does with it.
void GgufVocabularyReader::check_merges(const Vocabulary& v) const {
  if (!file_.find(kMerges))
    fail(kMerges, "missing: a 'gpt2' vocabulary needs its merges (llama.cpp's form of Tekken)");
  const gguf::Array& merges = array(kMerges, "string");
  if (merges.items.empty()) fail(kMerges, "is empty: a 'gpt2' vocabulary needs its merges");
  std::unordered_map<std::string_view, size_t> ranks;
  ranks.reserve(v.size());
  for (size_t i = static_cast<size_t>(v.num_special_tokens); i < v.size(); ++i)
    ranks.emplace(v.pieces[i], i);
  std::string left, right;
  for (size_t m = 0; m < merges.items.size(); ++m) {
    const std::string& merge = merges.items[m].as_string(what(kMerges, m));
    const size_t space = merge.find(' ');
    // GPT-2's form has no spaces (a space byte is "Ġ"), so the one space separates the pair.
    if (space == std::string::npos || merge.find(' ', space + 1) != std::string::npos)
      fail(kMerges, "merge " + std::to_string(m) + " '" + merge + "' is not two tokens");
    const std::string_view a = std::string_view(merge).substr(0, space);
    const std::string_view b = std::string_view(merge).substr(space + 1);
    for (const auto& [side, out] : {std::pair{a, &left}, std::pair{b, &right}}) {
      if (!gpt2_to_bytes(side, *out) || !ranks.count(*out))
        fail(kMerges, "merge " + std::to_string(m) + " '" + merge + "' names '" +
                          std::string(side) + "', which is not a token");
    }
    if (!ranks.count(left + right))
      fail(kMerges,
           "merge " + std::to_string(m) + " '" + merge + "' makes a token that does not exist");
  }
}

void write_tekken_vocabulary(gguf::Writer& writer, const Vocabulary& vocab) {
  try {
    validate_tekken(vocab);
  } catch (const Error& e) {
    throw Error(std::string("write_vocabulary: ") + e.what());
  }
  const size_t n = vocab.size();
  const auto special = static_cast<size_t>(vocab.num_special_tokens);
  std::unordered_map<std::string_view, int32_t> rank_of;
  rank_of.reserve(n - special);
  for (size_t i = special; i < n; ++i)
    rank_of.emplace(vocab.pieces[i], static_cast<int32_t>(i - special));

  std::vector<std::string> tokens;
  tokens.reserve(n);
  std::vector<int32_t> types(n, static_cast<int32_t>(TokenKind::Normal));
  for (size_t i = 0; i < n; ++i) {
    if (i < special) {
      tokens.push_back(vocab.pieces[i]);
      types[i] = static_cast<int32_t>(TokenKind::Control);
    } else {
      tokens.push_back(bytes_to_gpt2(vocab.pieces[i]));
    }
  }
  // gguf-py's MistralVocab (after transformers' TikTokenConverter): for each rank of two bytes
  // or more, in rank order, every split of its bytes into two ranks, ordered by (left rank,
  // right rank).
  std::vector<std::string> merges;
  std::vector<std::pair<int32_t, int32_t>> splits;
  for (size_t i = special; i < n; ++i) {
    const std::string_view bytes = vocab.pieces[i];
    splits.clear();
    for (size_t k = 1; k < bytes.size(); ++k) {
      const auto l = rank_of.find(bytes.substr(0, k));
      const auto r = rank_of.find(bytes.substr(k));
      if (l != rank_of.end() && r != rank_of.end()) splits.emplace_back(l->second, r->second);
    }
    if (bytes.size() > 1 && splits.empty())
      throw Error("write_vocabulary: rank " + std::to_string(i - special) +
                  " is not two ranks joined, so llama.cpp's form has no merge for it");
    std::sort(splits.begin(), splits.end());
    for (const auto& [l, r] : splits)
      merges.push_back(tokens[special + static_cast<size_t>(l)] + " " +
                       tokens[special + static_cast<size_t>(r)]);
  }
  writer.set(std::string(kModel), "gpt2");
  writer.set(std::string(kPre), "tekken");
  writer.set(std::string(kTokens), gguf::make_array(tokens));
  writer.set(std::string(kTokenType), gguf::make_array(types));
  writer.set(std::string(kScores), gguf::make_array(std::vector<float>(n, 0.0f)));
  writer.set(std::string(kMerges), gguf::make_array(merges));
  write_special_ids(writer, vocab);
  if (!vocab.version.empty()) writer.set(std::string(kTekkenVersion), vocab.version);
}

}  // namespace brise::detail
