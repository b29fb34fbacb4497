// SentencePiece BPE tokenizer (the "llama" tokenizer model of GGUF): encode, decode, streaming
// decode, special tokens.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace brise {

namespace gguf {
class File;
class Writer;
}  // namespace gguf

// SentencePiece piece types; values are those of sentencepiece_model.proto and of GGUF's
// tokenizer.ggml.token_type.
enum class TokenKind : int32_t {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

// Everything the tokenizer needs, as stored in tokenizer.model or in GGUF metadata.
struct Vocabulary {
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<TokenKind> kinds;
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  int32_t pad_id = -1;
  bool add_bos = true;
  bool add_eos = false;
  // Normalizer facts (SentencePiece NormalizerSpec / TrainerSpec).
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = false;
  bool byte_fallback = true;
  // Text that decode() gives for the unknown piece (SentencePiece TrainerSpec.unk_surface).
  std::string unk_surface = " \xE2\x81\x87 ";

  size_t size() const { return pieces.size(); }
};

// Parses a SentencePiece ModelProto (tokenizer.model, protobuf wire format). Only BPE models with
// an identity normalizer are accepted; anything else is a brise::Error naming the problem.
Vocabulary parse_sentencepiece_model(std::span<const std::byte> bytes, const std::string& name);
Vocabulary read_sentencepiece_model(const std::filesystem::path& path);

// GGUF keys: tokenizer.ggml.{model,tokens,scores,token_type,bos_token_id,eos_token_id,
// unknown_token_id,padding_token_id,add_bos_token,add_eos_token,add_space_prefix,
// remove_extra_whitespaces} and brise.tokenizer.byte_fallback.
Vocabulary read_vocabulary(const gguf::File& file);
void write_vocabulary(gguf::Writer& writer, const Vocabulary& vocab);

// Loads a vocabulary from a GGUF file (recognised by its "GGUF" magic) or else from a
// SentencePiece tokenizer.model.
Vocabulary load_vocabulary(const std::filesystem::path& path);

class Tokenizer {
 public:
  // Validates the vocabulary (sizes agree, special ids in range, byte pieces present when
  // byte_fallback is on); throws brise::Error otherwise.
  explicit Tokenizer(Vocabulary vocab);

  const Vocabulary& vocabulary() const { return vocab_; }
  size_t vocab_size() const { return vocab_.size(); }
  int32_t bos_id() const { return vocab_.bos_id; }
  int32_t eos_id() const { return vocab_.eos_id; }

  // SentencePiece encoding of plain text; control tokens are never produced from text.
  // Throws brise::Error on invalid UTF-8.
  std::vector<int32_t> encode(std::string_view text, bool add_bos = false) const;
  // SentencePiece decoding: control tokens vanish, byte pieces are reassembled into UTF-8
  // (invalid sequences become U+FFFD), the leading space of the first piece is dropped.
  // Throws brise::Error on an id outside the vocabulary.
  std::string decode(std::span<const int32_t> ids) const;

  std::string_view piece(int32_t id) const;  // throws on an out-of-range id
  TokenKind kind(int32_t id) const;          // throws on an out-of-range id
  // Id of a piece by its exact text (e.g. "[INST]"), or -1.
  int32_t find_piece(std::string_view piece) const;

  // Decodes a stream of ids into UTF-8-complete text: bytes of a character split over several
  // tokens are held back until the character is complete.
  class StreamDecoder {
   public:
    // `at_start`: the first piece is the start of a text (its leading space is dropped, as in
    // decode()); false to continue text that came before (e.g. generation after a prompt).
    explicit StreamDecoder(const Tokenizer& tokenizer, bool at_start = false);
    // Returns the text that became complete with this id (possibly empty).
    std::string push(int32_t id);
    // Returns what is still held back (incomplete UTF-8 becomes U+FFFD).
    std::string flush();

   private:
    const Tokenizer* tokenizer_;
    bool at_start_;
    std::string pending_;
    bool bos_ws_seen_ = false;  // the previous piece consumed the text's leading space
    bool emitted_ = false;      // some text has been returned already
  };

 private:
  Vocabulary vocab_;
  std::unordered_map<std::string, int32_t> piece_to_id_;
  std::vector<int32_t> byte_to_id_;  // 256 entries, -1 when missing
  // Helper state for encode, built once in the constructor.
  struct EncoderTables;
  std::shared_ptr<const EncoderTables> tables_;
};

// Offset of the first byte of `text` that does not belong to a valid UTF-8 character (overlong
// forms, surrogates and code points above U+10FFFF are invalid), or std::string_view::npos when
// all of it is valid: for checking text from outside before it meets a tokenizer.
size_t find_invalid_utf8(std::string_view text);

}  // namespace brise
