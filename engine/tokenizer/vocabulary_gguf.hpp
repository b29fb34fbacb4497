// Reading and writing vocabularies as GGUF metadata: the keys, and the reader's typed lookups
// whose errors name the file and the key. SentencePiece's form is in vocabulary_gguf.cpp,
// Tekken's (llama.cpp's "gpt2" + "tekken") in vocabulary_gguf_tekken.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "brise/gguf.hpp"
#include "brise/tokenizer.hpp"

namespace brise::detail {

inline constexpr std::string_view kModel = "tokenizer.ggml.model";
inline constexpr std::string_view kPre = "tokenizer.ggml.pre";
inline constexpr std::string_view kTokens = "tokenizer.ggml.tokens";
inline constexpr std::string_view kScores = "tokenizer.ggml.scores";
inline constexpr std::string_view kTokenType = "tokenizer.ggml.token_type";
inline constexpr std::string_view kMerges = "tokenizer.ggml.merges";
inline constexpr std::string_view kBosId = "tokenizer.ggml.bos_token_id";
inline constexpr std::string_view kEosId = "tokenizer.ggml.eos_token_id";
inline constexpr std::string_view kUnkId = "tokenizer.ggml.unknown_token_id";
inline constexpr std::string_view kPadId = "tokenizer.ggml.padding_token_id";
inline constexpr std::string_view kAddBos = "tokenizer.ggml.add_bos_token";
inline constexpr std::string_view kAddEos = "tokenizer.ggml.add_eos_token";
inline constexpr std::string_view kAddSpacePrefix = "tokenizer.ggml.add_space_prefix";
inline constexpr std::string_view kRemoveExtraWhitespaces =
    "tokenizer.ggml.remove_extra_whitespaces";
// brise's own keys. Their presence also marks a file written by write_vocabulary.
inline constexpr std::string_view kByteFallback = "brise.tokenizer.byte_fallback";
inline constexpr std::string_view kUnkSurface = "brise.tokenizer.unk_surface";
inline constexpr std::string_view kTekkenVersion = "brise.tokenizer.tekken_version";

class GgufVocabularyReader {
 public:
  explicit GgufVocabularyReader(const gguf::File& file) : file_(file) {}

  Vocabulary read();

 private:
  Vocabulary read_sentencepiece();
  Vocabulary read_tekken();
  void check_merges(const Vocabulary& v) const;

  std::string what(std::string_view key) const;
  std::string what(std::string_view key, size_t index) const;
  [[noreturn]] void fail(std::string_view key, const std::string& problem) const;
  // An array of "string", "f32" (or f64) or "i32" (any integer type).
  const gguf::Array& array(std::string_view key, const char* element) const;
  // Fails unless `a` (at `key`) has one item per token (`n`; `items` names them in the error).
  void check_length(std::string_view key, const gguf::Array& a, size_t n, const char* items) const;
  // The id at `key` (-1 when it says none), `fallback` when the key is absent.
  int32_t token_id(std::string_view key, int32_t fallback, size_t n) const;
  bool boolean(std::string_view key, bool fallback) const;

  const gguf::File& file_;
};

// The ids of BOS, EOS, unknown and padding (those that exist) and add_bos/add_eos.
void write_special_ids(gguf::Writer& writer, const Vocabulary& vocab);
void write_tekken_vocabulary(gguf::Writer& writer, const Vocabulary& vocab);

}  // namespace brise::detail
