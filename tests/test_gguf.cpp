// GGUF reader/writer: round trips of every value and tensor type, and a byte-exact check of the
// layout against a file assembled by hand from the specification (ggml docs/gguf.md).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "support/gguf_values.hpp"
#include "support/testdata.hpp"

namespace brise::gguf {
namespace {

// --- helpers ---

// Header, then one tensor's bytes with no padding after them.
std::vector<std::byte> assemble_single(const Writer& w, const std::vector<std::byte>& data) {
  std::vector<std::byte> out = w.header_bytes();
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// Header, then each tensor's bytes followed by its padding, as a streaming caller writes them.
std::vector<std::byte> assemble_with_padding(const Writer& w,
                                             const std::vector<std::vector<std::byte>>& data,
                                             uint32_t alignment) {
  std::vector<std::byte> out = w.header_bytes();
  const size_t header = out.size();
  for (size_t i = 0; i < data.size(); ++i) {
    const TensorInfo& t = w.tensors()[i];
    EXPECT_EQ(out.size() - header, t.offset) << t.name;
    EXPECT_EQ(data[i].size(), t.n_bytes) << t.name;
    out.insert(out.end(), data[i].begin(), data[i].end());
    out.insert(out.end(), padding_after(data[i].size(), alignment), std::byte{0});
  }
  EXPECT_EQ(out.size(), w.file_size());
  return out;
}

std::vector<std::byte> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng() & 0xff);
  return v;
}

Array typed_array(ValueType type, std::vector<Value> items) {
  Array a;
  a.elem_type = type;
  a.items = std::move(items);
  return a;
}

// One value of every scalar type, at the edges of each range, and arrays of every element type.
std::vector<std::pair<std::string, Value>> every_value_type() {
  std::vector<std::pair<std::string, Value>> kv;
  kv.emplace_back("t.u8", uint8_t{255});
  kv.emplace_back("t.i8", int8_t{-128});
  kv.emplace_back("t.u16", uint16_t{65535});
  kv.emplace_back("t.i16", int16_t{-32768});
  kv.emplace_back("t.u32", uint32_t{0xFFFFFFFFu});
  kv.emplace_back("t.i32", std::numeric_limits<int32_t>::min());
  kv.emplace_back("t.f32", 1.5e-40f);  // a subnormal
  kv.emplace_back("t.f32_neg_zero", -0.0f);
  kv.emplace_back("t.f32_nan", std::bit_cast<float>(0x7fc01234u));
  kv.emplace_back("t.bool_true", true);
  kv.emplace_back("t.bool_false", false);
  kv.emplace_back("t.string", "llama");
  kv.emplace_back("t.string_empty", "");
  kv.emplace_back("t.string_utf8", "h\xc3\xa9llo \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac");
  kv.emplace_back("t.string_nul", std::string("a\0b", 3));
  kv.emplace_back("t.u64", std::numeric_limits<uint64_t>::max());
  kv.emplace_back("t.i64", std::numeric_limits<int64_t>::min());
  kv.emplace_back("t.f64", 3.141592653589793);
  kv.emplace_back("a.u8", typed_array(ValueType::U8, {uint8_t{0}, uint8_t{255}}));
  kv.emplace_back("a.i8", typed_array(ValueType::I8, {int8_t{-1}, int8_t{127}}));
  kv.emplace_back("a.u16", typed_array(ValueType::U16, {uint16_t{1}, uint16_t{65535}}));
  kv.emplace_back("a.i16", typed_array(ValueType::I16, {int16_t{-2}}));
  kv.emplace_back("a.u32", typed_array(ValueType::U32, {uint32_t{7}, uint32_t{0}, uint32_t{9}}));
  kv.emplace_back("a.i32", Value(make_array(std::vector<int32_t>{-5, 0, 5})));
  kv.emplace_back("a.f32", Value(make_array(std::vector<float>{-1.0f, 0.25f, 1e30f})));
  kv.emplace_back("a.bool", typed_array(ValueType::BOOL, {true, false, true}));
  kv.emplace_back("a.string",
                  Value(make_array(std::vector<std::string>{"<unk>", "", "\xe2\x96\x81the"})));
  kv.emplace_back("a.u64", typed_array(ValueType::U64, {std::numeric_limits<uint64_t>::max()}));
  kv.emplace_back("a.i64", typed_array(ValueType::I64, {int64_t{-1}, int64_t{1} << 40}));
  kv.emplace_back("a.f64", typed_array(ValueType::F64, {1e-300, -2.5}));
  kv.emplace_back("a.empty", typed_array(ValueType::U32, {}));
  kv.emplace_back("a.nested",
                  typed_array(ValueType::ARRAY,
                              {typed_array(ValueType::U8, {uint8_t{1}, uint8_t{2}}),
                               typed_array(ValueType::STRING, {"x", "yz"}),
                               typed_array(ValueType::ARRAY, {typed_array(ValueType::F64, {0.5})}),
                               typed_array(ValueType::I32, {})}));
  return kv;
}

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> dims;
  TensorType type;
  uint64_t expected_bytes;  // worked out by hand from the block layouts in the spec
  uint64_t expected_elements;
};

std::vector<TensorSpec> every_tensor_type() {
  return {
      {"f32.1d", {3}, TensorType::F32, 12, 3},
      {"f16.2d", {5, 2}, TensorType::F16, 20, 10},
      {"bf16.3d", {4, 3, 2}, TensorType::BF16, 48, 24},
      {"q8_0.4d", {64, 2, 1, 3}, TensorType::Q8_0, 12 * 34, 384},  // 12 blocks of 34 bytes
      {"q4_0.2d", {32, 3}, TensorType::Q4_0, 3 * 18, 96},          // 3 blocks of 18 bytes
      {"q8_0.1d", {32}, TensorType::Q8_0, 34, 32},
  };
}

// --- round trips ---

class RoundTrip : public ::testing::TestWithParam<uint32_t> {};

TEST_P(RoundTrip, EveryValueTypeAndTensorType) {
  const uint32_t alignment = GetParam();
  const auto dir = test::scratch_dir("gguf_round_trip_" + std::to_string(alignment));
  Writer w(alignment);
  const auto values = every_value_type();
  for (const auto& [k, v] : values) w.set(k, v);
  const auto specs = every_tensor_type();
  std::vector<std::vector<std::byte>> data;
  for (size_t i = 0; i < specs.size(); ++i) {
    w.add_tensor(specs[i].name, specs[i].dims, specs[i].type);
    data.push_back(random_bytes(specs[i].expected_bytes, static_cast<uint32_t>(i + 1)));
  }
  const auto bytes = assemble_with_padding(w, data, alignment);
  const auto path = dir / "all.gguf";
  test::write_file_bytes(path, bytes);

  const auto f = File::open(path);
  EXPECT_EQ(f->name(), path.string());
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), alignment);
  EXPECT_EQ(f->file_size(), bytes.size());
  EXPECT_EQ(f->data_offset() % alignment, 0u);
  EXPECT_EQ(f->data_offset(), w.header_bytes().size());

  // general.alignment is written exactly when the alignment differs from the default, first.
  const size_t extra = alignment == kDefaultAlignment ? 0 : 1;
  ASSERT_EQ(f->metadata().size(), values.size() + extra);
  if (extra) {
    EXPECT_EQ(f->metadata()[0].first, "general.alignment");
    EXPECT_EQ(f->metadata()[0].second.type(), ValueType::U32);
    EXPECT_EQ(f->get_uint("general.alignment"), alignment);
  } else {
    EXPECT_EQ(f->find("general.alignment"), nullptr);
  }
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(f->metadata()[i + extra].first, values[i].first);
    EXPECT_TRUE(
        test::same_value(f->metadata()[i + extra].second, values[i].second, values[i].first));
  }

  ASSERT_EQ(f->tensors().size(), specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorInfo& t = f->tensors()[i];
    SCOPED_TRACE(specs[i].name);
    EXPECT_EQ(t.name, specs[i].name);
    EXPECT_EQ(t.dims, specs[i].dims);
    EXPECT_EQ(t.type, specs[i].type);
    EXPECT_EQ(t.n_bytes, specs[i].expected_bytes);
    EXPECT_EQ(t.n_elements, specs[i].expected_elements);
    EXPECT_EQ(t.offset % alignment, 0u);
    EXPECT_EQ(t.row_length(), specs[i].dims[0]);
    EXPECT_EQ(t.n_rows(), specs[i].expected_elements / specs[i].dims[0]);
    ASSERT_NE(t.data, nullptr);
    EXPECT_EQ(std::memcmp(t.data, data[i].data(), data[i].size()), 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % alignment, 0u)
        << "mmap is page-aligned, so aligned offsets give aligned pointers";
    EXPECT_EQ(f->find_tensor(specs[i].name), &t);
    EXPECT_EQ(&f->tensor(specs[i].name), &t);
  }
}

INSTANTIATE_TEST_SUITE_P(Alignments, RoundTrip, ::testing::Values(32u, 64u, 8u, 4096u));

TEST(GgufRoundTrip, ZeroTensorsAndZeroMetadata) {
  const auto dir = test::scratch_dir("gguf_zero");
  {
    Writer w;
    const auto bytes = w.header_bytes();
    // 24-byte header padded to 32.
    ASSERT_EQ(bytes.size(), 32u);
    EXPECT_EQ(w.file_size(), 32u);
    test::write_file_bytes(dir / "empty.gguf", bytes);
    const auto f = File::open(dir / "empty.gguf");
    EXPECT_TRUE(f->metadata().empty());
    EXPECT_TRUE(f->tensors().empty());
    EXPECT_EQ(f->data_offset(), 32u);
  }
  {
    Writer w(64);
    w.set("general.architecture", "llama");
    w.set("llama.block_count", uint32_t{2});
    test::write_file_bytes(dir / "meta.gguf", assemble_with_padding(w, {}, 64));
    const auto f = File::open(dir / "meta.gguf");
    EXPECT_TRUE(f->tensors().empty());
    EXPECT_EQ(f->get_string("general.architecture"), "llama");
    EXPECT_EQ(f->get_uint("llama.block_count"), 2u);
    EXPECT_EQ(f->data_offset() % 64, 0u);
  }
  {
    Writer w;
    w.add_tensor("only", {4}, TensorType::F32);
    const auto data = random_bytes(16, 7);
    test::write_file_bytes(dir / "tensor.gguf", assemble_with_padding(w, {data}, 32));
    const auto f = File::open(dir / "tensor.gguf");
    EXPECT_TRUE(f->metadata().empty());
    ASSERT_EQ(f->tensors().size(), 1u);
    EXPECT_EQ(std::memcmp(f->tensor("only").data, data.data(), 16), 0);
  }
}

TEST(GgufRoundTrip, ParseFromMemoryMatchesOpen) {
  Writer w;
  w.set("k", uint32_t{5});
  w.add_tensor("t", {2, 2}, TensorType::F16);
  const auto bytes = assemble_with_padding(w, {random_bytes(8, 3)}, 32);
  const auto f = File::parse(bytes, "mem.gguf");
  EXPECT_EQ(f->name(), "mem.gguf");
  EXPECT_EQ(f->get_uint("k"), 5u);
  EXPECT_EQ(f->tensor("t").data, bytes.data() + f->data_offset());
}

TEST(GgufRoundTrip, StreamingWithoutTrailingPaddingStillReads) {
  // The last tensor's trailing padding is optional for readers (llama.cpp writes it, others not).
  Writer w;
  w.add_tensor("a", {3}, TensorType::F32);
  const auto bytes = assemble_single(w, random_bytes(12, 1));
  const auto f = File::parse(bytes, "m.gguf");
  EXPECT_EQ(f->tensor("a").n_bytes, 12u);
}

// --- byte layout, assembled by hand from the specification ---

class Bytes {
 public:
  void u8(uint8_t v) { b_.push_back(static_cast<std::byte>(v)); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void str(std::string_view s) {
    u64(s.size());
    for (char c : s) u8(static_cast<uint8_t>(c));
  }
  void zeros(size_t n) {
    for (size_t i = 0; i < n; ++i) u8(0);
  }
  size_t size() const { return b_.size(); }
  const std::vector<std::byte>& bytes() const { return b_; }

 private:
  std::vector<std::byte> b_;
};

TEST(GgufLayout, HandAssembledFileMatchesReaderAndWriter) {
  Bytes h;
  h.u8('G'), h.u8('G'), h.u8('U'), h.u8('F');  // magic, byte by byte
  h.u32(3);                                    // version
  h.u64(2);                                    // tensor_count
  h.u64(4);                                    // metadata_kv_count
  h.str("general.architecture");
  h.u32(8);  // STRING
  h.str("llama");
  h.str("llama.block_count");
  h.u32(4);  // UINT32
  h.u32(5);
  h.str("x.scores");
  h.u32(9);  // ARRAY
  h.u32(6);  // of FLOAT32
  h.u64(2);
  h.u32(0x3f800000);  // 1.0f
  h.u32(0xc0000000);  // -2.0f
  h.str("x.flag");
  h.u32(7);  // BOOL
  h.u8(1);
  // tensor infos
  h.str("w");
  h.u32(2);  // n_dims
  h.u64(2);  // ne0 (row length)
  h.u64(3);  // ne1
  h.u32(0);  // GGML_TYPE_F32
  h.u64(0);  // offset
  h.str("q");
  h.u32(1);
  h.u64(32);
  h.u32(8);   // GGML_TYPE_Q8_0
  h.u64(32);  // 24 bytes of "w" padded to the 32-byte alignment
  const size_t header_end = h.size();
  ASSERT_EQ(header_end, 24u + (8 + 20 + 4 + 8 + 5) + (8 + 17 + 4 + 4) + (8 + 8 + 4 + 4 + 8 + 8) +
                            (8 + 6 + 4 + 1) + (8 + 1 + 4 + 16 + 4 + 8) + (8 + 1 + 4 + 8 + 4 + 8));
  h.zeros((32 - header_end % 32) % 32);
  const size_t data_start = h.size();
  ASSERT_EQ(data_start % 32, 0u);
  for (int i = 0; i < 6; ++i) h.u32(std::bit_cast<uint32_t>(static_cast<float>(i) - 2.5f));
  h.zeros(8);  // pad 24 -> 32
  // q8_0 block: fp16 scale 1.0 (0x3c00), then 32 int8 quants.
  h.u8(0x00), h.u8(0x3c);
  for (int i = 0; i < 32; ++i) h.u8(static_cast<uint8_t>(i - 16));
  h.zeros(30);  // pad 34 -> 64
  const auto& expected = h.bytes();

  // The reader decodes it.
  const auto f = File::parse(expected, "hand.gguf");
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->data_offset(), data_start);
  ASSERT_EQ(f->metadata().size(), 4u);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get("llama.block_count").type(), ValueType::U32);
  EXPECT_EQ(f->get_uint("llama.block_count"), 5u);
  const Array& scores = f->get("x.scores").as_array("x.scores");
  EXPECT_EQ(scores.elem_type, ValueType::F32);
  ASSERT_EQ(scores.items.size(), 2u);
  EXPECT_EQ(scores.items[0].as_float("s0"), 1.0);
  EXPECT_EQ(scores.items[1].as_float("s1"), -2.0);
  EXPECT_TRUE(f->get_bool_or("x.flag", false));
  ASSERT_EQ(f->tensors().size(), 2u);
  const TensorInfo& w_info = f->tensor("w");
  EXPECT_EQ(w_info.dims, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(w_info.type, TensorType::F32);
  EXPECT_EQ(w_info.n_elements, 6u);
  EXPECT_EQ(w_info.n_bytes, 24u);
  EXPECT_EQ(w_info.data, expected.data() + data_start);
  float first;
  std::memcpy(&first, w_info.data, 4);
  EXPECT_EQ(first, -2.5f);
  const TensorInfo& q_info = f->tensor("q");
  EXPECT_EQ(q_info.type, TensorType::Q8_0);
  EXPECT_EQ(q_info.offset, 32u);
  EXPECT_EQ(q_info.n_bytes, 34u);
  EXPECT_EQ(q_info.data, expected.data() + data_start + 32);

  // The writer produces exactly these bytes.
  Writer w;
  w.set("general.architecture", "llama");
  w.set("llama.block_count", uint32_t{5});
  w.set("x.scores", make_array(std::vector<float>{1.0f, -2.0f}));
  w.set("x.flag", true);
  w.add_tensor("w", {2, 3}, TensorType::F32);
  w.add_tensor("q", {32}, TensorType::Q8_0);
  const auto header = w.header_bytes();
  ASSERT_EQ(header.size(), data_start);
  EXPECT_TRUE(std::equal(header.begin(), header.end(), expected.begin()));
  std::vector<std::vector<std::byte>> data = {
      {expected.begin() + data_start, expected.begin() + data_start + 24},
      {expected.begin() + data_start + 32, expected.begin() + data_start + 66}};
  const auto written = assemble_with_padding(w, data, 32);
  EXPECT_EQ(written, expected);
  EXPECT_EQ(w.file_size(), expected.size());
}

// --- writer behaviour and validation ---

TEST(GgufWriter, SetKeepsFirstPositionAndReplacesValue) {
  Writer w;
  w.set("a", uint32_t{1});
  w.set("b", "x");
  w.set("a", "replaced");
  const auto f = File::parse(w.header_bytes(), "w.gguf");
  ASSERT_EQ(f->metadata().size(), 2u);
  EXPECT_EQ(f->metadata()[0].first, "a");
  EXPECT_EQ(f->get_string("a"), "replaced");
  EXPECT_EQ(f->metadata()[1].first, "b");
}

TEST(GgufWriter, OffsetsArePaddedToTheAlignment) {
  Writer w(64);
  w.add_tensor("a", {3}, TensorType::F32);    // 12 bytes
  w.add_tensor("b", {32}, TensorType::Q4_0);  // 18 bytes
  w.add_tensor("c", {64}, TensorType::F16);   // 128 bytes
  EXPECT_EQ(w.tensors()[0].offset, 0u);
  EXPECT_EQ(w.tensors()[1].offset, 64u);
  EXPECT_EQ(w.tensors()[2].offset, 128u);
  EXPECT_EQ(w.file_size(), w.header_bytes().size() + 256u);
}

TEST(GgufWriter, PaddingAfter) {
  EXPECT_EQ(padding_after(0, 32), 0u);
  EXPECT_EQ(padding_after(1, 32), 31u);
  EXPECT_EQ(padding_after(32, 32), 0u);
  EXPECT_EQ(padding_after(34, 32), 30u);
  EXPECT_EQ(padding_after(100, 64), 28u);
}

void expect_writer_error(const std::function<void()>& fn, const std::string& phrase) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected '" << phrase << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
  }
}

TEST(GgufWriter, RejectsInvalidDeclarations) {
  expect_writer_error([] { Writer w(0); }, "power of two");
  expect_writer_error([] { Writer w(48); }, "power of two");
  expect_writer_error([] { Writer w(4); }, "power of two");  // the spec wants a multiple of 8
  expect_writer_error([] { Writer w(1u << 31); }, "power of two");
  Writer w;
  w.add_tensor("t", {32}, TensorType::Q8_0);
  expect_writer_error([&] { w.add_tensor("t", {4}, TensorType::F32); }, "duplicate");
  expect_writer_error([&] { w.add_tensor("e", {}, TensorType::F32); }, "0 dimensions");
  expect_writer_error([&] { w.add_tensor("z", {4, 0}, TensorType::F32); }, "dimension 1 is 0");
  expect_writer_error([&] { w.add_tensor("q", {33, 2}, TensorType::Q8_0); }, "not a multiple");
  expect_writer_error([&] { w.add_tensor("q4", {16}, TensorType::Q4_0); }, "not a multiple");
  expect_writer_error(
      [&] {
        w.add_tensor("d5", {1, 1, 1, 1, 1}, TensorType::F32);
      },
      "5 dimensions");
  expect_writer_error(
      [&] {
        w.add_tensor("big", {1ull << 32, 1ull << 32}, TensorType::F32);
      },
      "overflows");
  expect_writer_error([&] { w.add_tensor(std::string(64, 'n'), {1}, TensorType::F32); },
                      "longer than 63");
  expect_writer_error([&] { w.set("general.alignment", uint32_t{64}); }, "must be the u32 32");
  expect_writer_error([&] { w.set("general.alignment", int32_t{32}); }, "must be the u32 32");
  expect_writer_error(
      [&] {
        w.set("mixed", typed_array(ValueType::U32, {uint32_t{1}, 2}));
      },
      "item of type i32 in an array of u32");
  Value deep = typed_array(ValueType::U8, {uint8_t{1}});
  for (int i = 0; i < 4; ++i) deep = typed_array(ValueType::ARRAY, {deep});
  expect_writer_error([&] { w.set("deep", deep); }, "nested deeper than 4");
  // Nothing invalid was recorded.
  EXPECT_EQ(w.tensors().size(), 1u);
  w.set("general.alignment", uint32_t{32});  // the value in use is fine
  const auto bytes = assemble_with_padding(w, {random_bytes(34, 1)}, 32);
  EXPECT_NO_THROW(File::parse(bytes, "w.gguf"));
}

// --- value accessors and lookups ---

TEST(GgufValue, Accessors) {
  EXPECT_EQ(Value(uint8_t{7}).as_uint("k"), 7u);
  EXPECT_EQ(Value(int16_t{300}).as_uint("k"), 300u);
  EXPECT_EQ(Value(int64_t{5}).as_uint("k"), 5u);
  EXPECT_EQ(Value(std::numeric_limits<uint64_t>::max()).as_uint("k"),
            std::numeric_limits<uint64_t>::max());
  expect_writer_error([] { Value(int32_t{-1}).as_uint("my.key"); }, "my.key: expected a non");
  expect_writer_error([] { Value(true).as_uint("my.key"); }, "my.key: expected an unsigned");
  expect_writer_error([] { Value(1.0f).as_uint("my.key"); }, "got f32");
  EXPECT_EQ(Value(int8_t{-3}).as_int("k"), -3);
  EXPECT_EQ(Value(uint32_t{0xFFFFFFFFu}).as_int("k"), 0xFFFFFFFFll);
  EXPECT_EQ(Value(uint64_t{1} << 62).as_int("k"), int64_t{1} << 62);
  expect_writer_error([] { Value(std::numeric_limits<uint64_t>::max()).as_int("k"); },
                      "does not fit");
  expect_writer_error([] { Value("s").as_int("k"); }, "got string");
  EXPECT_EQ(Value(0.5f).as_float("k"), 0.5);
  EXPECT_EQ(Value(0.25).as_float("k"), 0.25);
  expect_writer_error([] { Value(int32_t{1}).as_float("k"); }, "expected f32 or f64, got i32");
  EXPECT_TRUE(Value(true).as_bool("k"));
  expect_writer_error([] { Value(uint8_t{1}).as_bool("k"); }, "expected bool, got u8");
  EXPECT_EQ(Value("x").as_string("k"), "x");
  expect_writer_error([] { Value(uint32_t{1}).as_string("k"); }, "expected string, got u32");
  EXPECT_EQ(Value(make_array(std::vector<int32_t>{1, 2})).as_array("k").items.size(), 2u);
  expect_writer_error([] { Value("x").as_array("k"); }, "expected array, got string");
  EXPECT_EQ(value_type_name(ValueType::BOOL), "bool");
  EXPECT_EQ(value_type_name(ValueType::F64), "f64");
}

TEST(GgufFile, LookupsAndMissingKeys) {
  Writer w;
  w.set("u", uint32_t{3});
  w.set("neg", int32_t{-2});
  w.set("f", 0.5f);
  w.set("s", "str");
  w.set("b", false);
  w.add_tensor("t", {4}, TensorType::F32);
  const auto bytes = assemble_with_padding(w, {random_bytes(16, 2)}, 32);
  const auto f = File::parse(bytes, "look.gguf");
  EXPECT_EQ(f->get_uint_or("u"), 3u);
  EXPECT_EQ(f->get_uint_or("absent"), std::nullopt);
  EXPECT_EQ(f->get_float("f"), 0.5);
  EXPECT_EQ(f->get_string("s"), "str");
  EXPECT_FALSE(f->get_bool_or("b", true));
  EXPECT_TRUE(f->get_bool_or("absent", true));
  EXPECT_EQ(f->find("absent"), nullptr);
  EXPECT_EQ(f->find_tensor("absent"), nullptr);
  expect_writer_error([&] { f->get("absent"); }, "look.gguf: missing metadata key 'absent'");
  expect_writer_error([&] { f->get_uint("absent"); }, "missing metadata key 'absent'");
  expect_writer_error([&] { f->tensor("absent"); }, "look.gguf: missing tensor 'absent'");
  expect_writer_error([&] { f->get_uint("neg"); }, "look.gguf: metadata 'neg': expected a non");
  expect_writer_error([&] { f->get_uint_or("s"); }, "look.gguf: metadata 's': expected");
  expect_writer_error([&] { f->get_float("u"); }, "look.gguf: metadata 'u': expected f32");
  expect_writer_error([&] { f->get_string("u"); }, "metadata 'u': expected string");
  expect_writer_error([&] { f->get_bool_or("u", true); }, "metadata 'u': expected bool");
}

TEST(GgufFile, OpenReportsUnreadablePaths) {
  const auto dir = test::scratch_dir("gguf_open_errors");
  expect_writer_error([&] { File::open(dir / "missing.gguf"); }, "missing.gguf: cannot open");
  expect_writer_error([&] { File::open(dir); }, "not a regular file");
  test::write_file_bytes(dir / "empty.gguf", {});
  expect_writer_error([&] { File::open(dir / "empty.gguf"); }, "too short");
}

}  // namespace
}  // namespace brise::gguf
