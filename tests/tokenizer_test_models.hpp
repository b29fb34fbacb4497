// Writes SentencePiece ModelProto bytes (protobuf wire format) for tokenizer tests: variants of
// real models (user-defined, unused pieces, other normalizer flags) and malformed inputs. The
// encoder is written here from the protobuf encoding rules, independently of the parser.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "brise/tokenizer.hpp"

namespace brise::test {

class ProtoWriter {
 public:
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void tag(uint32_t field, uint32_t wire) { varint((static_cast<uint64_t>(field) << 3) | wire); }
  // int32 fields: negative values are sign-extended to 64 bits (10 bytes), as protobuf does.
  void int32_field(uint32_t field, int32_t v) {
    tag(field, 0);
    varint(static_cast<uint64_t>(static_cast<int64_t>(v)));
  }
  void bool_field(uint32_t field, bool v) {
    tag(field, 0);
    varint(v ? 1 : 0);
  }
  void float_field(uint32_t field, float v) {
    tag(field, 5);
    char b[4];
    std::memcpy(b, &v, 4);
    out_.append(b, 4);
  }
  void fixed64_field(uint32_t field, uint64_t v) {
    tag(field, 1);
    char b[8];
    std::memcpy(b, &v, 8);
    out_.append(b, 8);
  }
  void bytes_field(uint32_t field, std::string_view v) {
    tag(field, 2);
    varint(v.size());
    out_.append(v);
  }
  void group_field(uint32_t field, std::string_view inner) {
    tag(field, 3);
    out_.append(inner);
    tag(field, 4);
  }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

struct ModelSpec {
  Vocabulary vocab;
  int32_t model_type = 2;  // BPE
  std::string normalizer_name = "identity";
  std::string precompiled_charsmap;
  bool escape_whitespaces = true;
  bool treat_whitespace_as_suffix = false;
  bool write_unk_surface = false;
  // Adds fields that a reader must skip, of every wire type, at every message level.
  bool unknown_fields = false;
};

inline void add_unknown_fields(ProtoWriter& w) {
  w.int32_field(1000, -7);
  w.fixed64_field(1001, 0x0123456789ABCDEFull);
  w.float_field(1002, 1.5f);
  w.bytes_field(1003, "ignored");
  ProtoWriter inner;
  inner.int32_field(1, 5);
  inner.bytes_field(2, "x");
  w.group_field(1004, inner.str());
}

inline std::string write_model(const ModelSpec& spec) {
  const Vocabulary& v = spec.vocab;
  ProtoWriter model;
  for (size_t i = 0; i < v.pieces.size(); ++i) {
    ProtoWriter piece;
    piece.bytes_field(1, v.pieces[i]);
    piece.float_field(2, v.scores[i]);
    if (v.kinds[i] != TokenKind::Normal) piece.int32_field(3, static_cast<int32_t>(v.kinds[i]));
    if (spec.unknown_fields && i % 7 == 0) add_unknown_fields(piece);
    model.bytes_field(1, piece.str());
  }
  ProtoWriter trainer;
  if (spec.unknown_fields) add_unknown_fields(trainer);
  trainer.int32_field(3, spec.model_type);
  trainer.int32_field(4, static_cast<int32_t>(v.pieces.size()));
  if (spec.treat_whitespace_as_suffix) trainer.bool_field(24, true);
  trainer.bool_field(35, v.byte_fallback);
  trainer.int32_field(40, v.unk_id);
  trainer.int32_field(41, v.bos_id);
  trainer.int32_field(42, v.eos_id);
  trainer.int32_field(43, v.pad_id);
  if (spec.write_unk_surface) trainer.bytes_field(44, v.unk_surface);
  model.bytes_field(2, trainer.str());
  ProtoWriter normalizer;
  normalizer.bytes_field(1, spec.normalizer_name);
  if (!spec.precompiled_charsmap.empty()) normalizer.bytes_field(2, spec.precompiled_charsmap);
  normalizer.bool_field(3, v.add_dummy_prefix);
  normalizer.bool_field(4, v.remove_extra_whitespaces);
  normalizer.bool_field(5, spec.escape_whitespaces);
  if (spec.unknown_fields) add_unknown_fields(normalizer);
  model.bytes_field(3, normalizer.str());
  if (spec.unknown_fields) add_unknown_fields(model);
  return model.str();
}

inline std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

}  // namespace brise::test
