#include "engine/tokenizer/protobuf.hpp"

namespace brise::protobuf {
namespace {

// Nested groups are obsolete but legal; a bound keeps hostile input from exhausting the stack.
constexpr int kMaxGroupDepth = 64;

}  // namespace

std::string_view wire_type_name(WireType type) {
  // Indexed by the wire type's number (0 to 5).
  static constexpr std::string_view kNames[] = {"varint",      "fixed64",   "length-delimited",
                                                "start-group", "end-group", "fixed32"};
  const auto i = static_cast<size_t>(type);
  return i < std::size(kNames) ? kNames[i] : "invalid";
}

std::string Reader::where() const {
  std::string w(where_);
  if (index_ >= 0) {  // appends: gcc 12 warns falsely (-Wrestrict) on "[" + string
    w += '[';
    w += std::to_string(index_);
    w += ']';
  }
  return w;
}

void Reader::fail_at(size_t pos, std::string_view problem) const {
  throw Error(where() + ": " + std::string(problem) + " (at byte " + std::to_string(base_ + pos) +
              ")");
}

void Reader::fail(const Field& field, std::string_view name, std::string_view problem) const {
  throw Error(where() + "." + std::string(name) + ": " + std::string(problem) + " (field at byte " +
              std::to_string(field.offset) + ")");
}

void Reader::expect(const Field& field, std::string_view name, WireType expected) const {
  if (field.type != expected)
    fail(field, name,
         "expected wire type " + std::string(wire_type_name(expected)) + ", got " +
             std::string(wire_type_name(field.type)));
}

uint64_t Reader::read_varint(std::string_view what) {
  const size_t start = pos_;
  uint64_t value = 0;
  for (int i = 0; i < 10; ++i) {
    if (pos_ >= data_.size())
      fail_at(start, "truncated varint (" + std::string(what) + ") at the end of the message");
    const auto byte = static_cast<uint8_t>(data_[pos_++]);
    // The 10th byte may only carry the top bit of a 64-bit value.
    if (i == 9 && byte > 1) fail_at(start, "varint overflows 64 bits (" + std::string(what) + ")");
    value |= static_cast<uint64_t>(byte & 0x7F) << (7 * i);
    if ((byte & 0x80) == 0) return value;
  }
  fail_at(start, "varint longer than 10 bytes (" + std::string(what) + ")");
}

Reader::Tag Reader::read_tag() {
  const size_t pos = pos_;
  const uint64_t tag = read_varint("field tag");
  const uint64_t number = tag >> 3;
  const auto wire = static_cast<uint32_t>(tag & 7);
  if (number == 0 || number > 0x1FFFFFFF)
    fail_at(pos, "invalid field number " + std::to_string(number));
  if (wire > 5) fail_at(pos, "invalid wire type " + std::to_string(wire));
  return {pos, static_cast<uint32_t>(number), static_cast<WireType>(wire)};
}

bool Reader::next(Field& field) {
  if (pos_ >= data_.size()) return false;
  field = Field{};
  field.offset = base_ + pos_;
  const Tag tag = read_tag();
  field.number = tag.number;
  field.type = tag.type;
  switch (field.type) {
    case WireType::Varint:
      field.varint = read_varint("value of field " + std::to_string(tag.number));
      break;
    case WireType::Fixed64:
      if (data_.size() - pos_ < 8) fail_at(tag.pos, "truncated fixed64 field");
      std::memcpy(&field.fixed64, data_.data() + pos_, 8);
      pos_ += 8;
      break;
    case WireType::Fixed32:
      if (data_.size() - pos_ < 4) fail_at(tag.pos, "truncated fixed32 field");
      std::memcpy(&field.fixed32, data_.data() + pos_, 4);
      pos_ += 4;
      break;
    case WireType::Len: {
      const uint64_t length = read_varint("length of field " + std::to_string(tag.number));
      if (length > data_.size() - pos_)
        fail_at(tag.pos, "field " + std::to_string(tag.number) + " claims " +
                             std::to_string(length) + " bytes but only " +
                             std::to_string(data_.size() - pos_) + " remain");
      field.bytes = data_.subspan(pos_, static_cast<size_t>(length));
      pos_ += static_cast<size_t>(length);
      break;
    }
    case WireType::StartGroup:
      skip_group(field.number, 1);
      break;
    case WireType::EndGroup:
      fail_at(tag.pos, "unexpected end-group tag for field " + std::to_string(tag.number));
  }
  return true;
}

void Reader::skip_group(uint32_t number, int depth) {
  if (depth > kMaxGroupDepth) fail_at(pos_, "groups nested too deeply");
  while (true) {
    if (pos_ >= data_.size())
      fail_at(pos_, "unterminated group for field " + std::to_string(number));
    const Tag tag = read_tag();
    switch (tag.type) {
      case WireType::Varint:
        read_varint("varint in group");
        break;
      case WireType::Fixed64:
        if (data_.size() - pos_ < 8) fail_at(tag.pos, "truncated fixed64 field");
        pos_ += 8;
        break;
      case WireType::Fixed32:
        if (data_.size() - pos_ < 4) fail_at(tag.pos, "truncated fixed32 field");
        pos_ += 4;
        break;
      case WireType::Len: {
        const uint64_t length = read_varint("length in group");
        if (length > data_.size() - pos_) fail_at(tag.pos, "length-delimited field past the end");
        pos_ += static_cast<size_t>(length);
        break;
      }
      case WireType::StartGroup:
        skip_group(tag.number, depth + 1);
        break;
      case WireType::EndGroup:
        if (tag.number != number)
          fail_at(tag.pos, "end-group tag for field " + std::to_string(tag.number) +
                               " does not match group " + std::to_string(number));
        return;
    }
  }
}

}  // namespace brise::protobuf
