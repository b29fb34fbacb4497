// SentencePiece ModelProto (tokenizer.model) -> Vocabulary. Field numbers and defaults follow
// sentencepiece_model.proto:
//   ModelProto      pieces=1 trainer_spec=2 normalizer_spec=3 self_test_data=4
//                   denormalizer_spec=5
//   SentencePiece   piece=1 score=2 type=3 [NORMAL]
//   TrainerSpec     model_type=3 [UNIGRAM] treat_whitespace_as_suffix=24 [false]
//                   byte_fallback=35 [false] unk_id=40 [0] bos_id=41 [1] eos_id=42 [2]
//                   pad_id=43 [-1] unk_surface=44 [" \xE2\x81\x87 "]
//   NormalizerSpec  name=1 precompiled_charsmap=2 add_dummy_prefix=3 [true]
//                   remove_extra_whitespaces=4 [true] escape_whitespaces=5 [true]
#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <unordered_map>

#include "brise/error.hpp"
#include "brise/tokenizer.hpp"
#include "engine/tokenizer/protobuf.hpp"
#include "engine/tokenizer/tables.hpp"

namespace brise {
namespace {

using protobuf::Field;
using protobuf::Reader;
using protobuf::WireType;

constexpr int32_t kModelTypeBpe = 2;
constexpr const char* kUnsupported = "only BPE with an identity normalizer is supported";

const char* model_type_name(int32_t type) {
  switch (type) {
    case 1:
      return "UNIGRAM";
    case 2:
      return "BPE";
    case 3:
      return "WORD";
    case 4:
      return "CHAR";
  }
  return "unknown";
}

struct TrainerSpec {
  int32_t model_type = 1;
  bool treat_whitespace_as_suffix = false;
  bool byte_fallback = false;
  int32_t unk_id = 0;
  int32_t bos_id = 1;
  int32_t eos_id = 2;
  int32_t pad_id = -1;
  std::string unk_surface = " \xE2\x81\x87 ";
};

struct NormalizerSpec {
  std::string name;
  size_t charsmap_bytes = 0;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

struct Piece {
  std::string text;
  float score = 0.0f;
  int32_t type = 1;
};

// proto2 int32: the low 32 bits of the varint (negative values are sign-extended to 10 bytes).
int32_t as_int32(const Field& f) {
  return static_cast<int32_t>(static_cast<uint32_t>(f.varint));
}

int32_t read_int32(const Reader& r, const Field& f, std::string_view name) {
  r.expect(f, name, WireType::Varint);
  return as_int32(f);
}

bool read_bool(const Reader& r, const Field& f, std::string_view name) {
  r.expect(f, name, WireType::Varint);
  return f.varint != 0;
}

std::string read_string(const Reader& r, const Field& f, std::string_view name) {
  r.expect(f, name, WireType::Len);
  return std::string(f.as_string_view());
}

class ModelParser {
 public:
  ModelParser(std::span<const std::byte> bytes, const std::string& name)
      : bytes_(bytes), name_(name) {}

  Vocabulary parse() {
    const std::string model = name_ + ": ModelProto";
    Reader r(bytes_, 0, model);
    Field f;
    while (r.next(f)) {
      switch (f.number) {
        case 1:
          r.expect(f, "pieces[" + std::to_string(pieces_.size()) + "]", WireType::Len);
          parse_piece(f);
          break;
        case 2:
          r.expect(f, "trainer_spec", WireType::Len);
          parse_trainer_spec(f);
          break;
        case 3:
          r.expect(f, "normalizer_spec", WireType::Len);
          parse_normalizer_spec(f, "normalizer_spec", normalizer_);
          break;
        case 5:
          r.expect(f, "denormalizer_spec", WireType::Len);
          parse_normalizer_spec(f, "denormalizer_spec", denormalizer_);
          break;
        default:
          break;  // self_test_data and unknown fields
      }
    }
    return build();
  }

 private:
  size_t offset_of(const Field& f) const {
    return static_cast<size_t>(f.bytes.data() - bytes_.data());
  }

  // Each piece is checked as soon as it is read, so that a hostile file with millions of bad
  // pieces fails on the first one.
  void parse_piece(const Field& f) {
    const auto index = static_cast<int64_t>(pieces_.size());
    Reader r(f.bytes, offset_of(f), pieces_where_, index);
    Piece piece;
    Field g;
    while (r.next(g)) {
      switch (g.number) {
        case 1:
          r.expect(g, "piece", WireType::Len);
          piece.text.assign(g.as_string_view());
          break;
        case 2:
          r.expect(g, "score", WireType::Fixed32);
          piece.score = g.as_float();
          if (std::isnan(piece.score)) r.fail(g, "score", "score is NaN");
          break;
        case 3:
          piece.type = read_int32(r, g, "type");
          if (piece.type < 1 || piece.type > 6)
            r.fail(g, "type", "unknown piece type " + std::to_string(piece.type));
          break;
        default:
          break;
      }
    }
    auto field = [index] { return "pieces[" + std::to_string(index) + "].piece"; };
    if (piece.text.empty()) fail(field(), "piece must not be empty");
    if (auto [it, inserted] = seen_.emplace(piece.text, static_cast<size_t>(index)); !inserted)
      fail(field(), "'" + piece.text + "' duplicates pieces[" + std::to_string(it->second) + "]");
    pieces_.push_back(std::move(piece));
  }

  void parse_trainer_spec(const Field& f) {
    const std::string where = name_ + ": ModelProto.trainer_spec";
    Reader r(f.bytes, offset_of(f), where);
    Field g;
    while (r.next(g)) {
      switch (g.number) {
        case 3:
          trainer_.model_type = read_int32(r, g, "model_type");
          break;
        case 24:
          trainer_.treat_whitespace_as_suffix = read_bool(r, g, "treat_whitespace_as_suffix");
          break;
        case 35:
          trainer_.byte_fallback = read_bool(r, g, "byte_fallback");
          break;
        case 40:
          trainer_.unk_id = read_int32(r, g, "unk_id");
          break;
        case 41:
          trainer_.bos_id = read_int32(r, g, "bos_id");
          break;
        case 42:
          trainer_.eos_id = read_int32(r, g, "eos_id");
          break;
        case 43:
          trainer_.pad_id = read_int32(r, g, "pad_id");
          break;
        case 44:
          trainer_.unk_surface = read_string(r, g, "unk_surface");
          break;
        default:
          break;
      }
    }
  }

  void parse_normalizer_spec(const Field& f, const char* what, NormalizerSpec& spec) {
    const std::string where = name_ + ": ModelProto." + what;
    Reader r(f.bytes, offset_of(f), where);
    Field g;
    while (r.next(g)) {
      switch (g.number) {
        case 1:
          spec.name = read_string(r, g, "name");
          break;
        case 2:
          r.expect(g, "precompiled_charsmap", WireType::Len);
          spec.charsmap_bytes = g.bytes.size();
          break;
        case 3:
          spec.add_dummy_prefix = read_bool(r, g, "add_dummy_prefix");
          break;
        case 4:
          spec.remove_extra_whitespaces = read_bool(r, g, "remove_extra_whitespaces");
          break;
        case 5:
          spec.escape_whitespaces = read_bool(r, g, "escape_whitespaces");
          break;
        default:
          break;
      }
    }
  }

  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw Error(name_ + ": ModelProto." + field + ": " + problem);
  }

  void check_id(const char* field, int32_t id, bool allow_none) const {
    const auto n = static_cast<int64_t>(pieces_.size());
    if (id < (allow_none ? -1 : 0) || id >= n)
      fail(
          std::string("trainer_spec.") + field,
          std::to_string(id) + " is out of range (the model has " + std::to_string(n) + " pieces)");
  }

  Vocabulary build() const {
    if (pieces_.empty()) fail("pieces", "the model has no pieces");
    if (trainer_.model_type != kModelTypeBpe)
      fail("trainer_spec.model_type", std::string(kUnsupported) + " (model_type is " +
                                          model_type_name(trainer_.model_type) + ")");
    if (normalizer_.charsmap_bytes != 0)
      fail("normalizer_spec", std::string(kUnsupported) + " (normalizer '" + normalizer_.name +
                                  "' needs a precompiled_charsmap)");
    if (denormalizer_.charsmap_bytes != 0)
      fail("denormalizer_spec",
           std::string(kUnsupported) + " (a denormalizer with a precompiled_charsmap is set)");
    if (!normalizer_.escape_whitespaces)
      fail("normalizer_spec.escape_whitespaces",
           std::string(kUnsupported) + " (escape_whitespaces=false)");
    if (trainer_.treat_whitespace_as_suffix)
      fail("trainer_spec.treat_whitespace_as_suffix",
           std::string(kUnsupported) + " (treat_whitespace_as_suffix=true)");

    Vocabulary v;
    const size_t n = pieces_.size();
    v.pieces.reserve(n);
    v.scores.reserve(n);
    v.kinds.reserve(n);
    int32_t unknown_piece = -1;
    int byte_pieces = 0;
    for (size_t i = 0; i < n; ++i) {
      const Piece& p = pieces_[i];
      const std::string field = "pieces[" + std::to_string(i) + "]";
      const auto kind = static_cast<TokenKind>(p.type);
      if (kind == TokenKind::Unknown) {
        if (unknown_piece >= 0)
          fail(field + ".type", "a second UNKNOWN piece (the first is pieces[" +
                                    std::to_string(unknown_piece) + "])");
        unknown_piece = static_cast<int32_t>(i);
      }
      if (kind == TokenKind::Byte) {
        if (!trainer_.byte_fallback)
          fail(field + ".type", "byte piece '" + p.text + "' although byte_fallback is false");
        if (detail::parse_byte_piece(p.text) < 0)
          fail(field + ".piece", "byte piece '" + p.text + "' is not of the form <0xNN>");
        ++byte_pieces;
      }
      v.pieces.push_back(p.text);
      v.scores.push_back(p.score);
      v.kinds.push_back(kind);
    }
    if (unknown_piece < 0) fail("pieces", "no piece has type UNKNOWN");
    if (trainer_.byte_fallback && byte_pieces != 256)
      fail("pieces", "byte_fallback is set but only " + std::to_string(byte_pieces) +
                         " of the 256 byte pieces exist");
    check_id("unk_id", trainer_.unk_id, false);
    check_id("bos_id", trainer_.bos_id, true);
    check_id("eos_id", trainer_.eos_id, true);
    check_id("pad_id", trainer_.pad_id, true);
    if (trainer_.unk_id != unknown_piece)
      fail("trainer_spec.unk_id", std::to_string(trainer_.unk_id) +
                                      " is not the UNKNOWN piece (pieces[" +
                                      std::to_string(unknown_piece) + "])");

    v.unk_id = trainer_.unk_id;
    v.bos_id = trainer_.bos_id;
    v.eos_id = trainer_.eos_id;
    v.pad_id = trainer_.pad_id;
    v.add_bos = true;
    v.add_eos = false;
    v.add_dummy_prefix = normalizer_.add_dummy_prefix;
    v.remove_extra_whitespaces = normalizer_.remove_extra_whitespaces;
    v.byte_fallback = trainer_.byte_fallback;
    v.unk_surface = trainer_.unk_surface;
    return v;
  }

  std::span<const std::byte> bytes_;
  const std::string& name_;
  std::string pieces_where_ = name_ + ": ModelProto.pieces";
  std::vector<Piece> pieces_;
  // Piece text -> index. Keys are copies: pieces_ reallocates while it grows.
  std::unordered_map<std::string, size_t> seen_;
  TrainerSpec trainer_;
  NormalizerSpec normalizer_;
  NormalizerSpec denormalizer_;
};

}  // namespace

Vocabulary parse_sentencepiece_model(std::span<const std::byte> bytes, const std::string& name) {
  return ModelParser(bytes, name).parse();
}

Vocabulary read_sentencepiece_model(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open SentencePiece model");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path.string() + ": read error");
  return parse_sentencepiece_model(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(data.data()), data.size()),
      path.string());
}

}  // namespace brise
