// Vocabulary <-> GGUF metadata, with llama.cpp's keys for the SentencePiece ("llama") tokenizer;
// which form a file holds.
#include <cmath>
#include <cstdint>
#include <string>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/tokenizer.hpp"
#include "engine/tokenizer/tables.hpp"
#include "engine/tokenizer/vocabulary_gguf.hpp"

namespace brise {
namespace detail {

namespace {

bool has_all_byte_pieces(const Vocabulary& v) {
  bool seen[256] = {};
  int count = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v.kinds[i] != TokenKind::Byte) continue;
    const int byte = detail::parse_byte_piece(v.pieces[i]);
    if (byte >= 0 && !seen[byte]) {
      seen[byte] = true;
      ++count;
    }
  }
  return count == 256;
}

}  // namespace

Vocabulary GgufVocabularyReader::read() {
  const std::string& model = file_.get(kModel).as_string(what(kModel));
  if (model == "llama") return read_sentencepiece();
  if (model == "gpt2") return read_tekken();
  fail(kModel, "tokenizer model '" + model +
                   "' is not supported (only 'llama', SentencePiece BPE, and 'gpt2' with the "
                   "'tekken' pre-tokenizer)");
}

Vocabulary GgufVocabularyReader::read_sentencepiece() {
  Vocabulary v;
  const gguf::Array& tokens = array(kTokens, "string");
  const gguf::Array& scores = array(kScores, "f32");
  const gguf::Array& types = array(kTokenType, "i32");
  const size_t n = tokens.items.size();
  if (n == 0) fail(kTokens, "the vocabulary is empty");
  check_length(kScores, scores, n, "scores");
  check_length(kTokenType, types, n, "token types");
  v.pieces.reserve(n);
  v.scores.reserve(n);
  v.kinds.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    v.pieces.push_back(tokens.items[i].as_string(what(kTokens, i)));
    v.scores.push_back(static_cast<float>(scores.items[i].as_float(what(kScores, i))));
    const int64_t type = types.items[i].as_int(what(kTokenType, i));
    if (type < 1 || type > 6)
      fail(kTokenType, "token " + std::to_string(i) + " has unknown type " + std::to_string(type));
    v.kinds.push_back(static_cast<TokenKind>(type));
  }

  // A file from write_vocabulary states every id it has; for other files (llama.cpp's) a
  // missing id takes SentencePiece's default.
  const bool written_by_brise = file_.find(kByteFallback) != nullptr;
  v.bos_id = token_id(kBosId, written_by_brise ? -1 : 1, n);
  v.eos_id = token_id(kEosId, written_by_brise ? -1 : 2, n);
  v.unk_id = token_id(kUnkId, written_by_brise ? -1 : 0, n);
  v.pad_id = token_id(kPadId, -1, n);
  v.add_bos = boolean(kAddBos, true);
  v.add_eos = boolean(kAddEos, false);
  v.add_dummy_prefix = boolean(kAddSpacePrefix, true);
  v.remove_extra_whitespaces = boolean(kRemoveExtraWhitespaces, false);
  v.byte_fallback = boolean(kByteFallback, has_all_byte_pieces(v));
  if (const gguf::Value* s = file_.find(kUnkSurface))
    v.unk_surface = s->as_string(what(kUnkSurface));
  return v;
}

std::string GgufVocabularyReader::what(std::string_view key) const {
  return file_.name() + ": metadata '" + std::string(key) + "'";
}
std::string GgufVocabularyReader::what(std::string_view key, size_t index) const {
  return what(key) + "[" + std::to_string(index) + "]";
}
void GgufVocabularyReader::fail(std::string_view key, const std::string& problem) const {
  throw Error(what(key) + ": " + problem);
}

const gguf::Array& GgufVocabularyReader::array(std::string_view key, const char* element) const {
  const gguf::Array& a = file_.get(key).as_array(what(key));
  const gguf::ValueType t = a.elem_type;
  const bool ok =
      std::string_view(element) == "string" ? t == gguf::ValueType::STRING
      : std::string_view(element) == "f32"
          ? (t == gguf::ValueType::F32 || t == gguf::ValueType::F64)
          : (t != gguf::ValueType::STRING && t != gguf::ValueType::ARRAY &&
             t != gguf::ValueType::BOOL && t != gguf::ValueType::F32 && t != gguf::ValueType::F64);
  if (!ok)
    fail(key, std::string("expected an array of ") + element + ", got an array of " +
                  std::string(gguf::value_type_name(t)));
  return a;
}

void GgufVocabularyReader::check_length(std::string_view key, const gguf::Array& a, size_t n,
                                        const char* items) const {
  if (a.items.size() != n)
    fail(key,
         std::to_string(a.items.size()) + " " + items + " for " + std::to_string(n) + " tokens");
}

int32_t GgufVocabularyReader::token_id(std::string_view key, int32_t fallback, size_t n) const {
  const gguf::Value* value = file_.find(key);
  if (!value) return fallback;
  const int64_t id = value->as_int(what(key));
  // -1 (or its u32 image) means "none", as llama.cpp writes for an absent token.
  if (id == -1 || (value->type() == gguf::ValueType::U32 && id == 0xFFFFFFFF)) return -1;
  if (id < 0 || id >= static_cast<int64_t>(n))
    fail(key,
         "token id " + std::to_string(id) + " is out of range (" + std::to_string(n) + " tokens)");
  return static_cast<int32_t>(id);
}

bool GgufVocabularyReader::boolean(std::string_view key, bool fallback) const {
  const gguf::Value* value = file_.find(key);
  return value ? value->as_bool(what(key)) : fallback;
}

void write_special_ids(gguf::Writer& writer, const Vocabulary& vocab) {
  const size_t n = vocab.size();
  auto set_id = [&](std::string_view key, int32_t id) {
    if (id < -1 || id >= static_cast<int64_t>(n))
      throw Error("write_vocabulary: " + std::string(key) + " " + std::to_string(id) +
                  " is out of range (" + std::to_string(n) + " tokens)");
    if (id >= 0) writer.set(std::string(key), static_cast<uint32_t>(id));
  };
  set_id(kBosId, vocab.bos_id);
  set_id(kEosId, vocab.eos_id);
  set_id(kUnkId, vocab.unk_id);
  set_id(kPadId, vocab.pad_id);
  writer.set(std::string(kAddBos), vocab.add_bos);
  writer.set(std::string(kAddEos), vocab.add_eos);
}

}  // namespace detail

Vocabulary read_vocabulary(const gguf::File& file) {
  return detail::GgufVocabularyReader(file).read();
}

void write_vocabulary(gguf::Writer& writer, const Vocabulary& vocab) {
  using namespace detail;
  if (vocab.model == TokenizerModel::Tekken) {
    write_tekken_vocabulary(writer, vocab);
    return;
  }
  const size_t n = vocab.size();
  if (vocab.scores.size() != n || vocab.kinds.size() != n)
    throw Error("write_vocabulary: " + std::to_string(n) + " pieces but " +
                std::to_string(vocab.scores.size()) + " scores and " +
                std::to_string(vocab.kinds.size()) + " token types");
  std::vector<int32_t> types(n);
  for (size_t i = 0; i < n; ++i) types[i] = static_cast<int32_t>(vocab.kinds[i]);
  writer.set(std::string(kModel), "llama");
  writer.set(std::string(kTokens), gguf::make_array(vocab.pieces));
  writer.set(std::string(kScores), gguf::make_array(vocab.scores));
  writer.set(std::string(kTokenType), gguf::make_array(types));
  write_special_ids(writer, vocab);
  writer.set(std::string(kAddSpacePrefix), vocab.add_dummy_prefix);
  writer.set(std::string(kRemoveExtraWhitespaces), vocab.remove_extra_whitespaces);
  writer.set(std::string(kByteFallback), vocab.byte_fallback);
  writer.set(std::string(kUnkSurface), vocab.unk_surface);
}

}  // namespace brise
