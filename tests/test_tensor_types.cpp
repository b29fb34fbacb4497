// Every quantized codec (kernels/types/<type>.hpp) against llama.cpp's own files and values, one
// table row per type (../shared: models/tiny256/gguf/tiny256-pure-<T>.gguf, written by
// llama-quantize --pure from tiny256-f32.gguf, and reference/tiny256/dequant*, gguf-py's
// dequantization of them; README-data.md section 5):
//  - decode: the two reference matrices bit for bit, and every tensor's sum and sum of squares;
//  - encode: quantizing the f32 file's matrices gives llama-quantize's bytes exactly;
//  - to_int8 (row-major types): the int8 matmul's form of every block gives decode's values;
//  - the dispatched encode_row/decode_row (kernels/matmul.hpp) give the references' results.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "brise/gguf.hpp"
#include "kernels/matmul.hpp"
#include "kernels/type_traits.hpp"
#include "support/json_text.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct TypeCase {
  const char* type;  // the registry's name (kernels::find_type)
  const char* file;  // T of tiny256-pure-<T>.gguf and of reference/tiny256/dequant/<T>/
};

const TypeCase kCases[] = {
    {"q4_0", "Q4_0"},   {"q4_1", "Q4_1"}, {"q5_0", "Q5_0"},     {"q5_1", "Q5_1"},
    {"q8_0", "Q8_0"},   {"q2_K", "Q2_K"}, {"q3_K", "Q3_K_S"},   {"q4_K", "Q4_K_S"},
    {"q5_K", "Q5_K_S"}, {"q6_K", "Q6_K"}, {"iq4_nl", "IQ4_NL"}, {"iq4_xs", "IQ4_XS"},
};

// The two matrices of each pure file that reference/tiny256/dequant/<T>/ holds.
const char* const kReferenceMatrices[] = {"blk.0.ffn_down.weight", "blk.1.attn_q.weight"};

class TensorTypes : public ::testing::TestWithParam<TypeCase> {
 protected:
  const kernels::TypeTraits& type() const {
    const kernels::TypeTraits* t = kernels::find_type(GetParam().type);
    if (!t)
      throw std::runtime_error(std::string("no type ") + GetParam().type + " in the registry");
    return *t;
  }
  static fs::path pure_file(const fs::path& data, const TypeCase& c) {
    return data / "models/tiny256/gguf" / (std::string("tiny256-pure-") + c.file + ".gguf");
  }
  // The pure file's tensors of this type (every matrix: llama-quantize --pure quantizes the
  // embedding and the output too; norms stay F32).
  std::vector<const gguf::TensorInfo*> matrices(const gguf::File& file) const {
    std::vector<const gguf::TensorInfo*> out;
    for (const auto& info : file.tensors())
      if (static_cast<uint32_t>(info.type) == type().ggml_id) out.push_back(&info);
    return out;
  }
};

std::string case_name(const ::testing::TestParamInfo<TypeCase>& info) {
  return info.param.type;
}

// Decoding llama.cpp's blocks gives gguf-py's values bit for bit: ggml's dequantizers and
// gguf-py's numpy ones do the same f32 operations in the same order, and so do the codecs.
TEST_P(TensorTypes, DecodeMatchesGgufPyBitForBit) {
  BRISE_REQUIRE_TESTDATA(data);
  const kernels::TypeTraits& t = type();
  const auto file = gguf::File::open(pure_file(data, GetParam()));
  for (const char* name : kReferenceMatrices) {
    const gguf::TensorInfo& info = file->tensor(name);
    ASSERT_EQ(static_cast<uint32_t>(info.type), t.ggml_id) << name;
    const auto want = test::read_f32_file(data / "reference/tiny256/dequant" / GetParam().file /
                                          (std::string(name) + ".f32"));
    const size_t rows = info.n_rows(), cols = info.row_length(), row_bytes = info.n_bytes / rows;
    ASSERT_EQ(want.size(), rows * cols) << name;
    std::vector<float> got(cols);
    size_t differing = 0;
    for (size_t r = 0; r < rows; ++r) {
      t.decode_row_ref(info.data + r * row_bytes, got.data(), cols);
      for (size_t c = 0; c < cols; ++c) {
        if (std::memcmp(&got[c], &want[r * cols + c], sizeof(float)) == 0) continue;
        if (differing++ == 0)
          ADD_FAILURE() << name << " row " << r << " col " << c << ": " << got[c]
                        << " != gguf-py's " << want[r * cols + c];
      }
    }
    EXPECT_EQ(differing, 0u) << name << ": values not bit-equal to gguf-py's";
  }
}

// Every tensor of the pure file, decoded (norms through the F32 codec): its sum and sum of squares
// (double) within 1e-6 relative of gguf-py's (dequant.json), and its type and shape as listed.
TEST_P(TensorTypes, DecodedSumsMatchDequantJson) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto file = gguf::File::open(pure_file(data, GetParam()));
  const json all = test::parse_json(test::read_file_text(data / "reference/tiny256/dequant.json"));
  const json& tensors = all.at(std::string("pure-") + GetParam().file).at("tensors");
  ASSERT_EQ(tensors.size(), file->tensors().size());
  size_t quantized = 0;
  for (const auto& info : file->tensors()) {
    SCOPED_TRACE(info.name);
    const json& want = tensors.at(info.name);
    const kernels::TypeTraits* t = kernels::find_type(static_cast<uint32_t>(info.type));
    ASSERT_NE(t, nullptr);
    std::string type_name(t->name);
    for (char& ch : type_name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    EXPECT_EQ(want.at("type").get<std::string>(), type_name);
    EXPECT_EQ(want.at("shape").get<std::vector<uint64_t>>(), info.dims);
    quantized += t->ggml_id == type().ggml_id;
    const size_t rows = info.n_rows(), cols = info.row_length(), row_bytes = info.n_bytes / rows;
    std::vector<float> row(cols);
    double sum = 0, sumsq = 0;
    for (size_t r = 0; r < rows; ++r) {
      t->decode_row_ref(info.data + r * row_bytes, row.data(), cols);
      for (float v : row) {
        sum += v;
        sumsq += static_cast<double>(v) * v;
      }
    }
    const double want_sum = want.at("sum"), want_sumsq = want.at("sumsq");
    EXPECT_NEAR(sum, want_sum, 1e-6 * std::fabs(want_sum));
    EXPECT_NEAR(sumsq, want_sumsq, 1e-6 * std::fabs(want_sumsq));
  }
  // token_embd, output and 7 matrices in each of the 4 layers.
  EXPECT_EQ(quantized, 30u);
}

// Quantizing each matrix of tiny256-f32.gguf with the codec's reference gives exactly the bytes
// llama-quantize --pure wrote (it has no importance matrix there, so it runs ggml's
// quantize_row_<type>_ref).
TEST_P(TensorTypes, EncodeMatchesLlamaQuantizeBytes) {
  BRISE_REQUIRE_TESTDATA(data);
  const kernels::TypeTraits& t = type();
  const auto f32 = gguf::File::open(data / "models/tiny256/gguf/tiny256-f32.gguf");
  const auto file = gguf::File::open(pure_file(data, GetParam()));
  const auto mats = matrices(*file);
  ASSERT_EQ(mats.size(), 30u);
  for (const gguf::TensorInfo* q : mats) {
    const gguf::TensorInfo& x = f32->tensor(q->name);
    ASSERT_EQ(x.type, TensorType::F32) << q->name;
    ASSERT_EQ(x.dims, q->dims) << q->name;
    const size_t rows = q->n_rows(), cols = q->row_length(), row_bytes = q->n_bytes / rows;
    std::vector<float> src(cols);
    std::vector<std::byte> got(row_bytes);
    size_t blocks = 0, differing = 0;
    for (size_t r = 0; r < rows; ++r) {
      std::memcpy(src.data(), x.data + r * cols * sizeof(float), cols * sizeof(float));
      t.encode_row_ref(src.data(), got.data(), cols);
      const std::byte* want = q->data + r * row_bytes;
      for (size_t b = 0; b < row_bytes / t.block_bytes; ++b, ++blocks) {
        const size_t at = b * t.block_bytes;
        if (std::memcmp(got.data() + at, want + at, t.block_bytes) == 0) continue;
        if (differing++ == 0) {
          size_t i = 0;
          while (got[at + i] == want[at + i]) ++i;
          ADD_FAILURE() << q->name << " row " << r << " block " << b << ": byte " << i << " is "
                        << static_cast<int>(got[at + i]) << ", llama-quantize wrote "
                        << static_cast<int>(want[at + i]);
        }
      }
    }
    EXPECT_EQ(differing, 0u) << q->name << ": " << differing << " of " << blocks
                             << " blocks differ from llama-quantize's";
  }
}

// Row-major types: every block of the pure file's matrices in the int8 matmul's form
// (kernels/types/int8_block.hpp), value = d * scale * (code - offset) - dmin * min computed in
// f32, equals decode_row_ref's value within 1e-6 of the magnitude of its two terms
// (|d * scale * (code - offset)| + |dmin * min|, about 8 ulp: the form may group the
// multiplications differently from the type's decoder; the codecs so far agree exactly).
TEST_P(TensorTypes, ToInt8MatchesDecode) {
  BRISE_REQUIRE_TESTDATA(data);
  const kernels::TypeTraits& t = type();
  if (!t.row_major) GTEST_SKIP() << t.name << " is packed, not multiplied through to_int8";
  ASSERT_NE(t.to_int8, nullptr);
  const auto file = gguf::File::open(pure_file(data, GetParam()));
  const size_t n = t.block_elems;
  std::vector<float> ref(n);
  kernels::Int8Block form;
  size_t blocks = 0, exact = 0;
  double worst = 0;  // largest |difference| / tolerance
  for (const gguf::TensorInfo* q : matrices(*file)) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(q->data);
    for (size_t b = 0; b < q->n_bytes / t.block_bytes; ++b, ++blocks) {
      const uint8_t* block = bytes + b * t.block_bytes;
      t.decode_row_ref(block, ref.data(), n);
      t.to_int8(block, form);
      bool all_exact = true;
      for (size_t k = 0; k < n; ++k) {
        const float scaled = form.d * static_cast<float>(form.scale[k / 16]) *
                             static_cast<float>(static_cast<int>(form.code[k]) - form.offset);
        const float shift = form.dmin * static_cast<float>(form.min[k / 16]);
        const float v = scaled - shift;
        const double tol = 1e-6 * (std::fabs(scaled) + std::fabs(shift));
        const double diff = std::fabs(static_cast<double>(v) - ref[k]);
        all_exact = all_exact && v == ref[k];
        if (diff > 0) worst = std::max(worst, tol > 0 ? diff / tol : INFINITY);
        if (diff > tol)
          FAIL() << q->name << " block " << b << " element " << k << ": to_int8 gives " << v
                 << ", decode " << ref[k];
      }
      exact += all_exact;
    }
  }
  std::printf("%s: %zu blocks, %zu exactly equal, worst difference %.3g of the tolerance\n",
              std::string(t.name).c_str(), blocks, exact, worst);
  EXPECT_GT(blocks, 0u);
}

// The dispatched encode_row/decode_row (the kernel set's versions) give the references' bytes
// and values: encoding the two reference matrices of the f32 file, decoding every matrix of the
// pure file.
TEST_P(TensorTypes, DispatchedEqualsReference) {
  BRISE_REQUIRE_TESTDATA(data);
  const kernels::TypeTraits& t = type();
  const auto f32 = gguf::File::open(data / "models/tiny256/gguf/tiny256-f32.gguf");
  const auto file = gguf::File::open(pure_file(data, GetParam()));
  for (const char* name : kReferenceMatrices) {
    const gguf::TensorInfo& x = f32->tensor(name);
    const size_t rows = x.n_rows(), cols = x.row_length();
    const size_t row_bytes = cols / t.block_elems * t.block_bytes;
    std::vector<float> src(cols);
    std::vector<std::byte> ref(row_bytes), simd(row_bytes);
    for (size_t r = 0; r < rows; ++r) {
      std::memcpy(src.data(), x.data + r * cols * sizeof(float), cols * sizeof(float));
      t.encode_row_ref(src.data(), ref.data(), cols);
      kernels::encode_row(t, src.data(), simd.data(), cols);
      ASSERT_EQ(0, std::memcmp(ref.data(), simd.data(), row_bytes)) << name << " row " << r;
    }
  }
  for (const gguf::TensorInfo* q : matrices(*file)) {
    const size_t rows = q->n_rows(), cols = q->row_length(), row_bytes = q->n_bytes / rows;
    std::vector<float> ref(cols), simd(cols);
    for (size_t r = 0; r < rows; ++r) {
      t.decode_row_ref(q->data + r * row_bytes, ref.data(), cols);
      kernels::decode_row(t, q->data + r * row_bytes, simd.data(), cols);
      ASSERT_EQ(0, std::memcmp(ref.data(), simd.data(), cols * sizeof(float)))
          << q->name << " row " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny256, TensorTypes, ::testing::ValuesIn(kCases), case_name);

}  // namespace
}  // namespace brise
