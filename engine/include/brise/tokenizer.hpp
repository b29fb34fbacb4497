// The tokenizers of Mistral's models, behind one Tokenizer type: SentencePiece BPE (the "llama"
// tokenizer model of GGUF: Mistral 7B, Mixtral, ...) and Tekken (tiktoken's byte-level BPE:
// Mistral Nemo, Small 3.x, Ministral, Devstral, Magistral). Encode, decode, streaming decode,
// special tokens.
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

struct TokenTrie;  // engine/tokenizer/token_trie.hpp

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

// Which algorithm a vocabulary is for.
enum class TokenizerModel : int32_t {
  SentencePiece = 0,  // tokenizer.model; GGUF tokenizer.ggml.model "llama"
  Tekken = 1,         // tekken.json; GGUF tokenizer.ggml.model "gpt2" with pre-tokenizer "tekken"
};

// The pre-tokenizer pattern of every real Tekken file (tekken.json config.pattern). It is the only
// one brise accepts: its matcher is written for exactly this pattern
// (engine/tokenizer/pretokenizer).
inline constexpr std::string_view kTekkenPattern =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// Everything the tokenizer needs, as stored in tokenizer.model, tekken.json or GGUF metadata.
//
// A Tekken vocabulary holds its num_special_tokens control tokens first (pieces: their text,
// kinds: Control), then the ranks that are used (the "vocabulary cut" already applied), id =
// rank + num_special_tokens (pieces: the rank's raw bytes, which need not be valid UTF-8; kinds:
// Normal); scores are all 0. The SentencePiece-only fields (add_dummy_prefix,
// remove_extra_whitespaces, byte_fallback, unk_surface) do not apply to it.
struct Vocabulary {
  TokenizerModel model = TokenizerModel::SentencePiece;
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
  // Tekken only: the number of special (control) ids, the pre-tokenizer pattern, and the
  // version of mistral-common's tokenizer ("v3", "v7", "v11", "v13"; empty when the source does
  // not say, as llama.cpp's GGUF form does not).
  int32_t num_special_tokens = 0;
  std::string pattern;
  std::string version;

  size_t size() const { return pieces.size(); }
};

// Parses a SentencePiece ModelProto (tokenizer.model, protobuf wire format). Only BPE models with
// an identity normalizer are accepted; anything else is a brise::Error naming the problem.
Vocabulary parse_sentencepiece_model(std::span<const std::byte> bytes, const std::string& name);
Vocabulary read_sentencepiece_model(const std::filesystem::path& path);

// Parses Mistral's tekken.json (mistral-common's Tekkenizer.from_file): config.pattern,
// default_vocab_size, default_num_special_tokens, num_vocab_tokens, version; vocab (base64 bytes
// by rank, cut to the first default_vocab_size - default_num_special_tokens ranks); optional
// special_tokens (without it, mistral-common's deprecated list, allowed up to version v7). Image
// and audio settings are not the tokenizer's and are not read. Malformed files are a
// brise::Error naming the file and the problem.
Vocabulary parse_tekken_json(std::string_view json, const std::string& name);
Vocabulary read_tekken_json(const std::filesystem::path& path);
// The special tokens of a tekken.json without a special_tokens list: mistral-common's
// Tekkenizer.DEPRECATED_SPECIAL_TOKENS (<unk> <s> </s> [INST] [/INST] ... <pad> (11) ...
// [TOOL_CONTENT]), then "<SPECIAL_i>", `count` in all.
std::vector<std::string> tekken_default_special_tokens(size_t count);

// GGUF keys. SentencePiece: tokenizer.ggml.{model ("llama"),tokens,scores,token_type,
// bos_token_id,eos_token_id,unknown_token_id,padding_token_id,add_bos_token,add_eos_token,
// add_space_prefix,remove_extra_whitespaces} and brise.tokenizer.byte_fallback. Tekken, in
// llama.cpp's form: tokenizer.ggml.{model ("gpt2"),pre ("tekken"),tokens (control tokens, then
// each rank's bytes in GPT-2's byte-to-unicode form),token_type,scores,merges,bos/eos/unknown/
// padding ids,add_bos_token,add_eos_token} and brise.tokenizer.tekken_version when the version
// is known. A "gpt2" vocabulary with another pre-tokenizer is refused.
Vocabulary read_vocabulary(const gguf::File& file);
void write_vocabulary(gguf::Writer& writer, const Vocabulary& vocab);

// Loads a vocabulary from a GGUF file (recognised by its "GGUF" magic), a tekken.json (a JSON
// object) or else a SentencePiece tokenizer.model.
Vocabulary load_vocabulary(const std::filesystem::path& path);

struct EncodeOptions {
  bool add_bos = false;
  // Text that spells a control token ("[INST]", "<s>", ...) becomes that token; the text between
  // such tokens is encoded as separate texts. Off by default: user text never produces control
  // tokens unless the caller asks for it here.
  bool parse_special = false;
};

class Tokenizer {
 public:
  // Validates the vocabulary (sizes agree, special ids in range, byte pieces present when
  // byte_fallback is on); throws brise::Error otherwise.
  // Tekken: ranks and special tokens unique, every single byte a rank (ranks 0-255 are the
  // bytes 0x00-0xFF), the supported pattern.
  explicit Tokenizer(Vocabulary vocab);

  const Vocabulary& vocabulary() const { return vocab_; }
  TokenizerModel model() const { return vocab_.model; }
  // Tekken: mistral-common's tokenizer version ("v3", "v7", "v11", "v13"), which with the
  // control tokens that exist decides the chat format; empty when unknown and for SentencePiece.
  const std::string& version() const { return vocab_.version; }
  size_t vocab_size() const { return vocab_.size(); }
  int32_t bos_id() const { return vocab_.bos_id; }
  int32_t eos_id() const { return vocab_.eos_id; }

  // Encoding of plain text; control tokens are never produced from text. SentencePiece: as
  // sentencepiece's Encode. Tekken: as tiktoken's encode (the text split by the pattern, each
  // piece a rank or merged lowest rank first), ids = rank + num_special_tokens.
  // Throws brise::Error on invalid UTF-8.
  std::vector<int32_t> encode(std::string_view text, bool add_bos = false) const;
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options) const;
  // Decoding: control tokens vanish. SentencePiece: byte pieces are reassembled into UTF-8
  // (each byte of an invalid sequence becomes U+FFFD), the leading space of the first piece is
  // dropped. Tekken: the tokens' bytes are joined and read as UTF-8, each maximal invalid
  // subsequence becoming one U+FFFD (as Python's and tiktoken's decode(errors="replace")).
  // Throws brise::Error on an id outside the vocabulary.
  std::string decode(std::span<const int32_t> ids) const;

  // A token's piece: its text (SentencePiece, with U+2581 for spaces; a Tekken control token),
  // or a Tekken rank's raw bytes. Throws on an out-of-range id.
  std::string_view piece(int32_t id) const;
  TokenKind kind(int32_t id) const;  // throws on an out-of-range id
  // The bytes a token adds to decoded text in the middle of a text: SentencePiece pieces with
  // U+2581 as a space, a byte piece <0xNN> as its one byte, <unk> as unk_surface; a Tekken rank's
  // raw bytes (which may be part of a UTF-8 character); nothing for a control token. (Decoding
  // drops the leading space of a text's first piece; this does not.) Throws on an out-of-range id.
  std::string token_bytes(int32_t id) const;
  // The tokens that stand for text (Normal, UserDefined, Byte) in a trie over their token_bytes,
  // for constrained decoding (brise/constraint.hpp). Built on first use (tens of ms for 131072
  // tokens), then shared by this tokenizer and its copies; thread-safe.
  std::shared_ptr<const TokenTrie> token_trie() const;
  // Id of a piece by its exact text, or -1. A control token's text ("[INST]") finds the control
  // token, also in a Tekken vocabulary where a rank may have the same bytes.
  int32_t find_piece(std::string_view piece) const;
  // Id of the control token with this text ("[INST]", "[THINK]"), or -1 when there is none.
  int32_t find_special(std::string_view text) const;

  // Decodes a stream of ids into UTF-8-complete text: bytes of a character split over several
  // tokens are held back until the character is complete.
  class StreamDecoder {
   public:
    // `at_start`: the first piece is the start of a text (SentencePiece drops its leading space,
    // as decode() does; Tekken has none to drop); false to continue text that came before (e.g.
    // generation after a prompt).
    explicit StreamDecoder(const Tokenizer& tokenizer, bool at_start = false);
    // Returns the text that became complete with this id (possibly empty): never a part of a
    // UTF-8 character.
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
  std::shared_ptr<const EncoderTables> tables_;  // SentencePiece
  struct TekkenTables;
  std::shared_ptr<const TekkenTables> tekken_;  // Tekken
  struct SpecialTables;
  std::shared_ptr<const SpecialTables> specials_;  // both: the control tokens' texts
  struct TrieCache;
  std::shared_ptr<TrieCache> trie_cache_;  // token_trie(), built on first use

  void encode_text(std::string_view text, std::vector<int32_t>& ids) const;
  void encode_sentencepiece(std::string_view text, std::vector<int32_t>& ids) const;
  void init_tekken();
  void encode_tekken(std::string_view text, std::vector<int32_t>& ids) const;
  std::string decode_tekken(std::span<const int32_t> ids) const;
  std::string push_tekken(int32_t id, std::string& pending) const;
};

// Offset of the first byte of `text` that does not belong to a valid UTF-8 character (overlong
// forms, surrogates and code points above U+10FFFF are invalid), or std::string_view::npos when
// all of it is valid: for checking text from outside before it meets a tokenizer.
size_t find_invalid_utf8(std::string_view text);

}  // namespace brise
