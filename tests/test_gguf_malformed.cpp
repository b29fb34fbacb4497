// The GGUF reader against damaged and hostile files: every truncation, extreme counts and
// lengths, bad offsets, bad types, duplicates, deep nesting and random mutations. Each must raise
// brise::Error naming the file, the field and the problem; nothing may crash or allocate wildly.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <map>
#include <random>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "support/testdata.hpp"

namespace brise::gguf {
namespace {

constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();

// Assembles a file byte by byte (little-endian, per the spec), remembering where each named
// field starts so that tests can overwrite it.
class Builder {
 public:
  void u8(uint8_t v, const std::string& field = "") {
    mark(field);
    b_.push_back(static_cast<std::byte>(v));
  }
  void u32(uint32_t v, const std::string& field = "") {
    mark(field);
    for (int i = 0; i < 4; ++i) b_.push_back(static_cast<std::byte>(v >> (8 * i)));
  }
  void u64(uint64_t v, const std::string& field = "") {
    mark(field);
    for (int i = 0; i < 8; ++i) b_.push_back(static_cast<std::byte>(v >> (8 * i)));
  }
  void raw(std::string_view s, const std::string& field = "") {
    mark(field);
    for (char c : s) b_.push_back(static_cast<std::byte>(c));
  }
  // A gguf_string; `field` names its length, `field`.text its bytes.
  void str(std::string_view s, const std::string& field = "") {
    u64(s.size(), field);
    raw(s, field.empty() ? "" : field + ".text");
  }
  void pad_to(size_t alignment) {
    while (b_.size() % alignment) b_.push_back(std::byte{0});
  }
  size_t at(const std::string& field) const { return fields_.at(field); }
  std::vector<std::byte>& bytes() { return b_; }

 private:
  void mark(const std::string& field) {
    if (!field.empty()) fields_[field] = b_.size();
  }
  std::vector<std::byte> b_;
  std::map<std::string, size_t> fields_;
};

// The valid base file: five metadata pairs (string, u32 alignment, string array, nested array,
// bool) and two tensors (f32 8x2 at offset 0, q8_0 32 at offset 64).
struct Base {
  Builder b;
  size_t data_start = 0;
  size_t data_end = 0;  // end of the last tensor's bytes (before its trailing padding)

  Base() {
    b.raw("GGUF", "magic");
    b.u32(3, "version");
    b.u64(2, "tensor_count");
    b.u64(5, "kv_count");
    b.str("general.architecture", "kv0.key");
    b.u32(8, "kv0.type");
    b.str("llama", "kv0.string");
    b.str("general.alignment", "kv1.key");
    b.u32(4, "kv1.type");
    b.u32(32, "kv1.value");
    b.str("tokens", "kv2.key");
    b.u32(9, "kv2.type");
    b.u32(8, "kv2.elem_type");
    b.u64(3, "kv2.count");
    b.str("a", "kv2.item0");
    b.str("", "kv2.item1");
    b.str("bc", "kv2.item2");
    b.str("nest", "kv3.key");
    b.u32(9, "kv3.type");
    b.u32(9, "kv3.elem_type");
    b.u64(1, "kv3.count");
    b.u32(4, "kv3.inner.elem_type");
    b.u64(2, "kv3.inner.count");
    b.u32(1);
    b.u32(2);
    b.str("flag", "kv4.key");
    b.u32(7, "kv4.type");
    b.u8(1, "kv4.value");
    b.str("a", "t0.name");
    b.u32(2, "t0.n_dims");
    b.u64(8, "t0.dim0");
    b.u64(2, "t0.dim1");
    b.u32(0, "t0.type");
    b.u64(0, "t0.offset");
    b.str("b", "t1.name");
    b.u32(1, "t1.n_dims");
    b.u64(32, "t1.dim0");
    b.u32(8, "t1.type");
    b.u64(64, "t1.offset");
    b.pad_to(32);
    data_start = b.bytes().size();
    for (int i = 0; i < 64 + 34; ++i) b.u8(static_cast<uint8_t>(i * 7));
    data_end = b.bytes().size();
    b.pad_to(32);
  }
  std::vector<std::byte> with_u64(const std::string& field, uint64_t v) const {
    return with(field, v, 8);
  }
  std::vector<std::byte> with_u32(const std::string& field, uint64_t v) const {
    return with(field, v, 4);
  }
  std::vector<std::byte> with_u8(const std::string& field, uint64_t v) const {
    return with(field, v, 1);
  }
  std::vector<std::byte> with_text(const std::string& field, std::string_view text) const {
    auto copy = const_cast<Builder&>(b).bytes();
    std::memcpy(copy.data() + b.at(field), text.data(), text.size());
    return copy;
  }

 private:
  std::vector<std::byte> with(const std::string& field, uint64_t v, int width) const {
    auto copy = const_cast<Builder&>(b).bytes();
    const size_t at = b.at(field);
    for (int i = 0; i < width; ++i) copy[at + i] = static_cast<std::byte>(v >> (8 * i));
    return copy;
  }
};

// Parses `bytes`; returns the error message, or "" when it parsed.
std::string parse_error(const std::vector<std::byte>& bytes, const ReadLimits& limits = {}) {
  try {
    const auto f = File::parse(bytes, "m.gguf", limits);
    // Touch every tensor byte: views must lie inside the buffer (ASan checks this).
    unsigned sum = 0;
    for (const auto& t : f->tensors())
      for (uint64_t i = 0; i < t.n_bytes; ++i) sum += static_cast<unsigned>(t.data[i]);
    (void)sum;
    return "";
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (std::getenv("BRISE_SHOW_ERRORS")) std::fprintf(stderr, "%s\n", msg.c_str());
    EXPECT_EQ(msg.rfind("m.gguf: ", 0), 0u) << "message must start with the file name: " << msg;
    return msg.empty() ? "(empty message)" : msg;
  }
}

void expect_error(const std::vector<std::byte>& bytes, const std::string& phrase,
                  const std::string& field = "", const ReadLimits& limits = {}) {
  const std::string msg = parse_error(bytes, limits);
  ASSERT_FALSE(msg.empty()) << "parsed; expected an error containing '" << phrase << "'";
  EXPECT_NE(msg.find(phrase), std::string::npos) << msg;
  if (!field.empty()) {
    EXPECT_NE(msg.find(field), std::string::npos) << "field: " << msg;
  }
}

TEST(GgufMalformed, BaseFileIsValid) {
  Base base;
  const auto& bytes = base.b.bytes();
  ASSERT_EQ(parse_error(bytes), "");
  const auto f = File::parse(bytes, "m.gguf");
  EXPECT_EQ(f->metadata().size(), 5u);
  EXPECT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->data_offset(), base.data_start);
  EXPECT_EQ(f->tensor("b").data, bytes.data() + base.data_start + 64);

  // The writer produces the same bytes from the same declarations.
  Writer w;
  w.set("general.architecture", "llama");
  w.set("general.alignment", uint32_t{32});
  w.set("tokens", make_array(std::vector<std::string>{"a", "", "bc"}));
  Array inner;
  inner.elem_type = ValueType::U32;
  inner.items = {uint32_t{1}, uint32_t{2}};
  Array outer;
  outer.elem_type = ValueType::ARRAY;
  outer.items = {inner};
  w.set("nest", outer);
  w.set("flag", true);
  w.add_tensor("a", {8, 2}, TensorType::F32);
  w.add_tensor("b", {32}, TensorType::Q8_0);
  const auto header = w.header_bytes();
  ASSERT_EQ(header.size(), base.data_start);
  EXPECT_TRUE(std::equal(header.begin(), header.end(), bytes.begin()));
  EXPECT_EQ(w.file_size(), bytes.size());
}

TEST(GgufMalformed, EveryTruncationIsAnError) {
  Base base;
  const auto& full = base.b.bytes();
  // Every cut before the end of the last tensor's data, header and data alike.
  for (size_t n = 0; n < base.data_end; ++n) {
    std::vector<std::byte> cut(full.begin(), full.begin() + n);
    const std::string msg = parse_error(cut);
    ASSERT_FALSE(msg.empty()) << "truncated to " << n << " bytes parsed";
    EXPECT_NE(msg.find("past the end"), std::string::npos) << n << ": " << msg;
  }
  // Only the last tensor's trailing padding may be missing.
  for (size_t n = base.data_end; n <= full.size(); ++n) {
    std::vector<std::byte> cut(full.begin(), full.begin() + n);
    EXPECT_EQ(parse_error(cut), "") << n;
  }
}

TEST(GgufMalformed, HeaderErrors) {
  Base base;
  expect_error(base.with_text("magic", "GGUD"), "not a GGUF file", "header: magic");
  expect_error(base.with_text("magic", "FUGG"), "big-endian", "header: magic");
  expect_error(base.with_text("magic", "tjgg"), "legacy GGML");
  expect_error(base.with_u32("version", 1), "unsupported GGUF version 1; brise reads version 3");
  expect_error(base.with_u32("version", 2), "unsupported GGUF version 2; brise reads version 3");
  expect_error(base.with_u32("version", 4), "unsupported GGUF version 4", "header: version");
  expect_error(base.with_u32("version", 0), "unsupported GGUF version 0");
  // A big-endian writer stores version 3 as 00 00 00 03.
  expect_error(base.with_u32("version", 0x03000000), "big-endian (byte-swapped version 3)");
  expect_error(base.with_u32("version", 0x02000000), "big-endian (byte-swapped version 2)");
}

struct CountCase {
  std::string field;
  int width;
  uint64_t value;
  std::string phrase;  // expected in the message; "" means the file still parses
  std::string where;   // expected field named in the message
};

TEST(GgufMalformed, ExtremeCountsLengthsAndOffsets) {
  // Values whose product with the minimum encoded size wraps around 2^64.
  const uint64_t wrap13 = kMax64 / 13 + 1;  // metadata pairs: at least 13 bytes each
  const uint64_t wrap32 = kMax64 / 32 + 1;  // tensor infos: at least 32 bytes each
  const uint64_t wrap8 = kMax64 / 8 + 1;    // strings in an array: at least 8 bytes each
  const uint64_t wrap12 = kMax64 / 12 + 1;  // arrays in an array: at least 12 bytes each
  const std::vector<CountCase> cases = {
      {"tensor_count", 8, 1ull << 31, "past the end", "header: tensor_count"},
      {"tensor_count", 8, 1ull << 63, "past the end", "header: tensor_count"},
      {"tensor_count", 8, kMax64, "past the end", "header: tensor_count"},
      {"tensor_count", 8, wrap32, "past the end", "header: tensor_count"},
      // A third tensor info read from the zero padding: empty name, then n_dims 0.
      {"tensor_count", 8, 3, "n_dims 0 is out of range", "tensor 2 ''"},
      {"tensor_count", 8, 0, "", ""},  // zero tensors: the infos become ignored trailing bytes
      {"kv_count", 8, 1ull << 31, "past the end", "header: metadata_kv_count"},
      {"kv_count", 8, 1ull << 63, "past the end", "header: metadata_kv_count"},
      {"kv_count", 8, kMax64, "past the end", "header: metadata_kv_count"},
      {"kv_count", 8, wrap13, "past the end", "header: metadata_kv_count"},
      // Zero pairs: the first key is read as tensor 0's name, then its value type 8 as n_dims.
      {"kv_count", 8, 0, "n_dims 8 is out of range (1..4)", "tensor 0 'general.architecture'"},
      {"kv0.key", 8, 1ull << 31, "past the end", "metadata 0: key"},
      {"kv0.key", 8, 1ull << 32, "past the end", "metadata 0: key"},  // a 4 GB key claim
      {"kv0.key", 8, kMax64, "past the end", "metadata 0: key"},
      // An empty key: "gene" is then read as the value type.
      {"kv0.key", 8, 0, "unknown value type 1701733735", "metadata 0 ''"},
      {"kv0.string", 8, 1ull << 32, "past the end", "metadata 0 'general.architecture'"},
      {"kv0.string", 8, 1ull << 63, "past the end", "metadata 0 'general.architecture'"},
      {"kv0.string", 8, kMax64, "past the end", "metadata 0 'general.architecture'"},
      {"kv2.count", 8, 1ull << 31, "past the end", "metadata 2 'tokens'"},
      {"kv2.count", 8, 1ull << 63, "past the end", "metadata 2 'tokens'"},
      {"kv2.count", 8, kMax64, "past the end", "metadata 2 'tokens'"},
      {"kv2.count", 8, wrap8, "past the end", "metadata 2 'tokens'"},
      {"kv2.item0", 8, 1ull << 32, "past the end", "metadata 2 'tokens'[0]"},
      {"kv2.item0", 8, kMax64, "past the end", "metadata 2 'tokens'[0]"},
      {"kv3.count", 8, 1ull << 31, "past the end", "metadata 3 'nest'"},
      {"kv3.count", 8, wrap12, "past the end", "metadata 3 'nest'"},
      {"kv3.count", 8, kMax64, "past the end", "metadata 3 'nest'"},
      {"kv3.inner.count", 8, 1ull << 31, "past the end", "metadata 3 'nest'[0]"},
      {"kv3.inner.count", 8, kMax64 / 4 + 1, "past the end", "metadata 3 'nest'[0]"},
      {"t0.name", 8, 1ull << 32, "past the end", "tensor 0"},
      {"t0.name", 8, kMax64, "past the end", "tensor 0"},
      {"t0.n_dims", 4, 0, "n_dims 0 is out of range", "tensor 0 'a'"},
      {"t0.n_dims", 4, 5, "n_dims 5 is out of range", "tensor 0 'a'"},
      {"t0.n_dims", 4, 1u << 31, "out of range", "tensor 0 'a'"},
      {"t0.n_dims", 4, 0xFFFFFFFF, "out of range", "tensor 0 'a'"},
      {"t0.dim0", 8, 0, "dimension 0 is 0", "tensor 0 'a'"},
      {"t0.dim1", 8, 0, "dimension 1 is 0", "tensor 0 'a'"},
      {"t0.dim1", 8, 1ull << 31, "past the end", "tensor 0 'a'"},
      {"t0.dim1", 8, 1ull << 40, "past the end", "tensor 0 'a'"},  // a 2^43-element claim
      {"t0.dim1", 8, 1ull << 63, "overflows", "tensor 0 'a'"},
      {"t0.dim1", 8, kMax64, "overflows", "tensor 0 'a'"},
      // 8 * 2^61 = 2^64 wraps to 0 in unchecked arithmetic.
      {"t0.dim1", 8, 1ull << 61, "overflows", "tensor 0 'a'"},
      {"t0.dim0", 8, 1ull << 62, "element count of dims 4611686018427387904 x 2 overflows int64",
       "tensor 0 'a'"},
      // 2^62 elements fit int64, but 2^62 f32 values are 2^64 bytes.
      {"t0.dim0", 8, 1ull << 61, "byte size of dims 2305843009213693952 x 2 overflows",
       "tensor 0 'a'"},
      {"t0.offset", 8, 1ull << 31, "past the end", "tensor 0 'a'"},
      {"t0.offset", 8, 1ull << 63, "past the end", "tensor 0 'a'"},
      {"t0.offset", 8, kMax64, "misaligned", "tensor 0 'a'"},
      {"t0.offset", 8, kMax64 - 31, "past the end", "tensor 0 'a'"},  // aligned, offset+size wraps
      {"t1.offset", 8, 96, "past the end of the file (448 bytes", "tensor 1 'b'"},
      {"t1.offset", 8, 65, "misaligned", "tensor 1 'b'"},
      {"t1.offset", 8, 48, "misaligned", "tensor 1 'b'"},
      {"t1.offset", 8, 32, "overlaps tensor 0 'a'", "tensor 1 'b'"},
      {"t1.offset", 8, 0, "overlaps tensor 0 'a'", "tensor 1 'b'"},
      {"t0.offset", 8, 64, "overlaps tensor", "tensor"},
      {"t1.offset", 8, 128, "past the end", "tensor 1 'b'"},
  };
  Base base;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.field + " = " + std::to_string(c.value));
    const auto bytes = c.width == 8   ? base.with_u64(c.field, c.value)
                       : c.width == 4 ? base.with_u32(c.field, c.value)
                                      : base.with_u8(c.field, c.value);
    if (c.phrase.empty()) {
      EXPECT_EQ(parse_error(bytes), "");
    } else {
      expect_error(bytes, c.phrase, c.where);
    }
  }
}

TEST(GgufMalformed, TypeErrors) {
  Base base;
  expect_error(base.with_u32("kv0.type", 13), "unknown value type 13", "metadata 0");
  expect_error(base.with_u32("kv0.type", 0xFFFFFFFF), "unknown value type 4294967295");
  expect_error(base.with_u32("kv2.elem_type", 99), "unknown array element type 99",
               "metadata 2 'tokens'");
  expect_error(base.with_u32("kv3.inner.elem_type", 13), "unknown array element type 13",
               "metadata 3 'nest'[0]");
  expect_error(base.with_u8("kv4.value", 2), "invalid bool value 2", "metadata 4 'flag'");
  expect_error(base.with_u32("t0.type", 16),
               "unsupported tensor type id 16 (brise reads f32, f16, bf16, q8_0, q4_0, q4_1",
               "tensor 0 'a'");
  expect_error(base.with_u32("t1.type", 40), "unsupported tensor type id 40", "tensor 1 'b'");
  expect_error(base.with_u32("t1.type", 0x80000000u), "unsupported tensor type id 2147483648");
  // q4_0 for tensor b: 32 elements are one 18-byte block, so the file stays consistent.
  EXPECT_EQ(parse_error(base.with_u32("t1.type", 2)), "");
  // Row length 8 is not a whole q8_0 block.
  expect_error(base.with_u32("t0.type", 8), "row length 8 is not a multiple of the q8_0 block",
               "tensor 0 'a'");
  expect_error(base.with_u64("t1.dim0", 33), "row length 33 is not a multiple", "tensor 1 'b'");
}

TEST(GgufMalformed, ForeignGgmlTypesOnlyWhenAsked) {
  Base base;
  ReadLimits inspect;
  inspect.accept_foreign_tensor_types = true;
  // q8_1: 32-element blocks of 36 bytes, so tensor b (32 elements at offset 64) stays valid.
  const auto q8_1 = base.with_u32("t1.type", 9);
  expect_error(q8_1, "unsupported tensor type id 9 (brise reads", "tensor 1 'b'");
  ASSERT_EQ(parse_error(q8_1, inspect), "");
  const auto f = File::parse(q8_1, "m.gguf", inspect);
  EXPECT_EQ(static_cast<uint32_t>(f->tensor("b").type), 9u);
  EXPECT_EQ(f->tensor("b").n_bytes, 36u);
  EXPECT_EQ(ggml_type_name(9), "q8_1");
  // iq2_xxs blocks hold 256 elements: a 32-element row is not whole blocks.
  expect_error(base.with_u32("t1.type", 16),
               "row length 32 is not a multiple of the iq2_xxs block "
               "size 256",
               "tensor 1 'b'", inspect);
  // Ids removed from ggml, and ids past the table, stay unsupported.
  expect_error(base.with_u32("t1.type", 4), "unsupported tensor type id 4", "", inspect);
  expect_error(base.with_u32("t1.type", 99), "unsupported tensor type id 99", "", inspect);
  EXPECT_EQ(ggml_type_name(0), "f32");
  EXPECT_EQ(ggml_type_name(12), "q4_K");
  EXPECT_EQ(ggml_type_name(30), "bf16");
  EXPECT_EQ(ggml_type_name(4), "unknown");
}

TEST(GgufMalformed, AlignmentErrors) {
  Base base;
  const std::string field = "metadata 'general.alignment'";
  expect_error(base.with_u32("kv1.value", 0), "alignment 0 is not a power of two", field);
  expect_error(base.with_u32("kv1.value", 48), "alignment 48 is not a power of two", field);
  expect_error(base.with_u32("kv1.value", 0xFFFFFFFF), "not a power of two", field);
  expect_error(base.with_u32("kv1.value", 1u << 31), "absurdly large", field);
  expect_error(base.with_u32("kv1.type", 5), "expected type u32, got i32", field);
  expect_error(base.with_u32("kv1.type", 6), "expected type u32, got f32", field);
  // 16 is valid: tensor offsets 0 and 64 remain aligned; the data section then starts at the
  // next multiple of 16, which shifts the tensors but stays inside the file.
  EXPECT_EQ(parse_error(base.with_u32("kv1.value", 16)), "");
  // With 128, offset 64 is misaligned.
  expect_error(base.with_u32("kv1.value", 128), "offset 64 is misaligned", "tensor 1 'b'");
}

TEST(GgufMalformed, Duplicates) {
  Base base;
  // Tensor "b" renamed "a" (same length).
  expect_error(base.with_text("t1.name.text", "a"), "duplicate tensor name (also tensor 0)",
               "tensor 1 'a'");
  // Key "flag" renamed "nest" (same length).
  expect_error(base.with_text("kv4.key.text", "nest"),
               "duplicate metadata key (first defined by metadata 3)", "metadata 4 'nest'");
}

TEST(GgufMalformed, Limits) {
  Base base;
  ReadLimits l;
  l.max_string_bytes = 4;  // "llama" is 5
  expect_error(base.b.bytes(), "string of 5 bytes exceeds the limit of 4 bytes",
               "metadata 0 'general.architecture'", l);
  l = {};
  l.max_array_items = 2;
  expect_error(base.b.bytes(), "array of 3 items exceeds the limit of 2", "metadata 2 'tokens'", l);
  l = {};
  l.max_array_depth = 1;
  expect_error(base.b.bytes(), "nested deeper than 1", "metadata 3 'nest'[0]", l);
  l = {};
  l.max_tensors = 1;
  expect_error(base.b.bytes(), "count 2 exceeds the limit of 1", "header: tensor_count", l);
  l = {};
  l.max_metadata = 4;
  expect_error(base.b.bytes(), "count 5 exceeds the limit of 4", "header: metadata_kv_count", l);
  l = {};
  l.max_dims = 1;
  expect_error(base.b.bytes(), "n_dims 2 is out of range (1..1)", "tensor 0 'a'", l);
}

// A file whose only metadata value claims arrays nested `levels` deep.
std::vector<std::byte> nested_arrays(int levels) {
  Builder b;
  b.raw("GGUF");
  b.u32(3);
  b.u64(0);
  b.u64(1);
  b.str("deep");
  b.u32(9);
  for (int i = 0; i < levels; ++i) {
    b.u32(9);  // element type: array
    b.u64(1);  // one element
  }
  b.u32(4);
  b.u64(1);
  b.u32(7);
  b.pad_to(32);
  return b.bytes();
}

TEST(GgufMalformed, DeepNesting) {
  // Four levels of arrays (the default limit) are fine; five are not.
  EXPECT_EQ(parse_error(nested_arrays(3)), "");
  expect_error(nested_arrays(4), "arrays nested deeper than 4 levels",
               "metadata 0 'deep'[0][0][0][0]");
  // A claim of a million levels fails at level five, without recursing further.
  expect_error(nested_arrays(1000000), "arrays nested deeper than 4 levels");
}

TEST(GgufMalformed, HugeArrayClaimDoesNotAllocate) {
  // 2^31 u8 items in a tiny file: rejected from the counts alone, before any reserve().
  Builder b;
  b.raw("GGUF");
  b.u32(3);
  b.u64(0);
  b.u64(1);
  b.str("big");
  b.u32(9);
  b.u32(0);
  b.u64(1ull << 31);
  b.u8(1);
  expect_error(b.bytes(), "array of 2147483648 u8 items needs at least 2147483648 bytes",
               "metadata 0 'big'");
}

TEST(GgufMalformed, RandomMutationsOnlyEverRaiseBriseError) {
  Base base;
  const auto& original = base.b.bytes();
  std::mt19937_64 rng(20240601);
  const uint64_t extremes[] = {0, 1, 1ull << 31, 1ull << 32, 1ull << 63, kMax64, kMax64 - 1};
  int parsed = 0, failed = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    auto bytes = original;
    const int n_mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < n_mutations; ++m) {
      const size_t pos = rng() % bytes.size();
      switch (rng() % 4) {
        case 0:  // one random byte
          bytes[pos] = static_cast<std::byte>(rng() & 0xff);
          break;
        case 1:  // one flipped bit
          bytes[pos] ^= static_cast<std::byte>(1u << (rng() % 8));
          break;
        case 2: {  // an extreme 64-bit value, anywhere
          const uint64_t v = extremes[rng() % std::size(extremes)];
          for (size_t i = 0; i < 8 && pos + i < bytes.size(); ++i)
            bytes[pos + i] = static_cast<std::byte>(v >> (8 * i));
          break;
        }
        default:  // truncation
          bytes.resize(pos);
          break;
      }
      if (bytes.empty()) break;
    }
    try {
      const auto f = File::parse(bytes, "fuzz.gguf");
      unsigned sum = 0;
      for (const auto& t : f->tensors())
        for (uint64_t i = 0; i < t.n_bytes; ++i) sum += static_cast<unsigned>(t.data[i]);
      (void)sum;
      ++parsed;
    } catch (const Error&) {
      ++failed;
    } catch (const std::exception& e) {
      FAIL() << "iteration " << iter << ": non-brise exception: " << e.what();
    }
  }
  // Both outcomes occur, so the mutations reach past the first check.
  EXPECT_GT(parsed, 0);
  EXPECT_GT(failed, 1000);
}

TEST(GgufMalformed, FileErrorsNameThePath) {
  const auto dir = test::scratch_dir("gguf_malformed_file");
  Base base;
  auto bytes = base.with_u64("t1.offset", 96);
  const auto path = dir / "bad.gguf";
  {
    std::FILE* fp = std::fopen(path.c_str(), "wb");
    ASSERT_NE(fp, nullptr);
    std::fwrite(bytes.data(), 1, bytes.size(), fp);
    std::fclose(fp);
  }
  try {
    File::open(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path.string() + ": tensor 1 'b': data (offset 96, 34 bytes) runs past "
                                        "the end of the file (448 bytes",
                        0),
              0u)
        << msg;
  }
}

}  // namespace
}  // namespace brise::gguf
