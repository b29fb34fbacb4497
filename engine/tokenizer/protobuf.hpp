// A minimal protobuf wire-format reader, just enough to decode SentencePiece's ModelProto without
// depending on libprotobuf. Every read is bounds-checked; malformed input raises brise::Error
// naming `where` (file and message path) and the byte offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "brise/error.hpp"

namespace brise::protobuf {

enum class WireType : uint32_t {
  Varint = 0,
  Fixed64 = 1,
  Len = 2,
  StartGroup = 3,
  EndGroup = 4,
  Fixed32 = 5,
};

std::string_view wire_type_name(WireType type);

// One decoded field. Only the member matching `type` is meaningful.
struct Field {
  uint32_t number = 0;
  WireType type = WireType::Varint;
  uint64_t varint = 0;               // Varint
  uint32_t fixed32 = 0;              // Fixed32
  uint64_t fixed64 = 0;              // Fixed64
  std::span<const std::byte> bytes;  // Len
  size_t offset = 0;                 // absolute offset of the field's tag, for messages

  std::string_view as_string_view() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  float as_float() const {
    float f;
    std::memcpy(&f, &fixed32, sizeof f);
    return f;
  }
};

// Iterates over the fields of one message. `base` is the absolute offset of `data` inside the
// file, so that messages name real file offsets. `where` (e.g. "tok.model: ModelProto.pieces")
// must outlive the reader; with an `index` >= 0 it is shown as where[index]. Messages are only
// built on failure, so that parsing many small messages allocates nothing for them.
class Reader {
 public:
  Reader(std::span<const std::byte> data, size_t base, std::string_view where, int64_t index = -1)
      : data_(data), base_(base), where_(where), index_(index) {}

  // Reads the next field into `field`; returns false at the end of the message. Unknown fields
  // are returned too: the caller skips them simply by not using them (groups are skipped here,
  // since their extent is only known by parsing them).
  bool next(Field& field);

  // Throws brise::Error "<where>.<name>: <problem>" (with the field's offset).
  [[noreturn]] void fail(const Field& field, std::string_view name, std::string_view problem) const;
  // Throws unless `field` has wire type `expected`.
  void expect(const Field& field, std::string_view name, WireType expected) const;

  std::string where() const;
  size_t base() const { return base_; }

 private:
  // A field's tag: where it starts, its number (1 .. 2^29 - 1) and its wire type.
  struct Tag {
    size_t pos;
    uint32_t number;
    WireType type;
  };
  Tag read_tag();
  uint64_t read_varint(std::string_view what);
  void skip_group(uint32_t number, int depth);
  [[noreturn]] void fail_at(size_t pos, std::string_view problem) const;

  std::span<const std::byte> data_;
  size_t base_;
  size_t pos_ = 0;
  std::string_view where_;
  int64_t index_;
};

}  // namespace brise::protobuf
