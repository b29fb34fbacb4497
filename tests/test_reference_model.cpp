// The Eigen reference forward pass (the oracle of the fast path) against the logits of Mistral's
// own one_file_ref.py in ../shared/reference/stories260k: every case of index.json, full attention,
// sliding windows 8 and 32, and bf16 weights. Plus weight decoding from hand-built GGUF blocks
// and properties of the attention mask that hold for any model.
// GCC 12 reports false -Wmaybe-uninitialized warnings inside Eigen's AVX-512 reductions.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "brise/convert.hpp"
#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "kernels/fp16.hpp"
#include "support/json_text.hpp"
#include "support/reference_model.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using brise::TensorType;
using brise::reference::ReferenceModel;
using namespace brise::test;

namespace {

// max |logits - Mistral's| allowed; the independent implementations agree to 3e-5 (README-data).
constexpr float kTolerance = 1e-4f;

// How each model_dir of the manifests is converted: the f32 checkpoints as they are, hf-bf16 to
// bf16 (its own dtype, so the weights are the exact bf16 values the reference used).
struct Source {
  const char* dir;
  std::optional<TensorType> type;
};
const std::map<std::string, Source>& sources() {
  static const std::map<std::string, Source> s = {
      {"models/stories260k/native", {"models/stories260k/native", std::nullopt}},
      {"models/stories260k/native-sw8", {"models/stories260k/native-sw8", std::nullopt}},
      {"models/stories260k/native-sw32", {"models/stories260k/native-sw32", std::nullopt}},
      {"models/stories260k/hf-bf16", {"models/stories260k/hf-bf16", TensorType::BF16}},
      {"models/stories260k/hf", {"models/stories260k/hf", std::nullopt}},
  };
  return s;
}

// Converts (once per process) and loads the model of `model_dir`.
const ReferenceModel& model_for(const fs::path& data, const std::string& model_dir) {
  static const fs::path scratch = scratch_dir("reference_model");
  static std::map<std::string, std::unique_ptr<ReferenceModel>> cache;
  auto& slot = cache[model_dir];
  if (!slot) {
    const auto it = sources().find(model_dir);
    if (it == sources().end()) throw std::runtime_error("no conversion known for " + model_dir);
    brise::ConvertOptions options;
    options.type = it->second.type;
    const fs::path out = scratch / (fs::path(model_dir).filename().string() + ".gguf");
    brise::convert_checkpoint(data / it->second.dir, out, options);
    const auto file = brise::gguf::File::open(out);
    slot = std::make_unique<ReferenceModel>(brise::reference::load(*file));
  }
  return *slot;
}

nlohmann::json read_json(const fs::path& path) {
  return brise::test::parse_json(read_file_text(path));
}

std::vector<nlohmann::json> manifests(const fs::path& data) {
  const fs::path root = data / "reference/stories260k";
  std::vector<nlohmann::json> out;
  const nlohmann::json index = read_json(root / "index.json");
  for (const auto& c : index.at("cases"))
    out.push_back(read_json(root / c.at("name").get<std::string>() / "manifest.json"));
  return out;
}

// Checks one case of index.json against Mistral's logits.
void check_case(const fs::path& data, const nlohmann::json& m) {
  const std::string name = m.at("name");
  const std::string model_dir = m.at("model_dir");
  SCOPED_TRACE("case " + name);
  const auto& shape = m.at("files").at("logits.f32").at("shape");
  const size_t rows = shape.at(0), vocab = shape.at(1);
  const auto ids = m.at("token_ids").get<std::vector<int32_t>>();
  // Generation cases hold one token more than rows (the last one was never fed).
  ASSERT_TRUE(ids.size() == rows || ids.size() == rows + 1) << ids.size() << " ids";
  std::optional<uint32_t> window;
  if (!m.at("sliding_window").is_null()) window = m.at("sliding_window").get<uint32_t>();

  const ReferenceModel& model = model_for(data, model_dir);
  if (model_dir.find("native") != std::string::npos) {
    EXPECT_EQ(model.config.sliding_window, window) << "window recorded in " << model_dir;
  }
  const Eigen::MatrixXf logits =
      brise::reference::forward(model, std::span(ids).first(rows), window);
  const std::vector<float> expected =
      read_f32_file(data / "reference/stories260k" / name / "logits.f32");
  ASSERT_EQ(expected.size(), rows * vocab);
  ASSERT_EQ(static_cast<size_t>(logits.rows()), rows);
  ASSERT_EQ(static_cast<size_t>(logits.cols()), vocab);
  const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>
      want(expected.data(), rows, vocab);
  const float diff = (logits - want).cwiseAbs().maxCoeff();
  EXPECT_LE(diff, kTolerance) << name << ": max abs logit difference";
  std::printf("  %-36s T=%3zu window=%-4s max|diff|=%.2e\n", name.c_str(), rows,
              window ? std::to_string(*window).c_str() : "none", static_cast<double>(diff));
}

// Runs every case whose model_dir satisfies `wanted`; returns how many ran.
template <typename Pred>
int check_cases(const fs::path& data, Pred wanted) {
  int ran = 0;
  for (const auto& m : manifests(data)) {
    if (!wanted(m.at("model_dir").get<std::string>())) continue;
    check_case(data, m);
    ++ran;
  }
  return ran;
}

bool is_full(const std::string& dir) {
  return dir == "models/stories260k/native";
}
bool is_windowed(const std::string& dir) {
  return dir.find("native-sw") != std::string::npos;
}
bool is_bf16(const std::string& dir) {
  return dir == "models/stories260k/hf-bf16";
}

}  // namespace

TEST(ReferenceModel, EveryIndexedCaseHasAKnownModel) {
  BRISE_REQUIRE_TESTDATA(data);
  size_t n = 0;
  for (const auto& m : manifests(data)) {
    const std::string dir = m.at("model_dir");
    EXPECT_TRUE(is_full(dir) || is_windowed(dir) || is_bf16(dir))
        << m.at("name") << ": model_dir " << dir << " is not checked by any test here";
    ++n;
  }
  EXPECT_GE(n, 20u);
}

TEST(ReferenceModel, MatchesMistralReferenceFullAttention) {
  BRISE_REQUIRE_TESTDATA(data);
  EXPECT_GE(check_cases(data, is_full), 13);
}

TEST(ReferenceModel, MatchesMistralReferenceSlidingWindow) {
  BRISE_REQUIRE_TESTDATA(data);
  EXPECT_GE(check_cases(data, is_windowed), 5);
}

TEST(ReferenceModel, MatchesMistralReferenceBf16Weights) {
  BRISE_REQUIRE_TESTDATA(data);
  EXPECT_GE(check_cases(data, is_bf16), 3);
}

// The Hugging Face layout (q/k rows permuted for rotate-half RoPE, undone by the converter) gives
// the same model.
TEST(ReferenceModel, HuggingFaceLayoutGivesTheSameLogits) {
  BRISE_REQUIRE_TESTDATA(data);
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376};
  const auto a = brise::reference::forward(model_for(data, "models/stories260k/native"), ids, {});
  const auto b = brise::reference::forward(model_for(data, "models/stories260k/hf"), ids, {});
  EXPECT_LE((a - b).cwiseAbs().maxCoeff(), 1e-5f);
}

// A window at least as long as the sequence is full attention (the mask is the same matrix);
// a window of 1 lets each position see only itself, so row t is the logits of tokens[t] alone
// (RoPE cannot matter when a query meets only its own key). The two are different Eigen
// products (12 rows against 1), whose blocking rounds differently: 1e-4, the tolerance of every
// reference comparison (1.3e-5 seen on an AVX-512 Intel host).
TEST(ReferenceModel, WindowMaskProperties) {
  BRISE_REQUIRE_TESTDATA(data);
  const ReferenceModel& m = model_for(data, "models/stories260k/native");
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
  const auto full = brise::reference::forward(m, ids, {});
  EXPECT_EQ(full, brise::reference::forward(m, ids, uint32_t(ids.size())));
  EXPECT_NE(full, brise::reference::forward(m, ids, uint32_t(4)));
  EXPECT_EQ(full.topRows(4), brise::reference::forward(m, ids, uint32_t(4)).topRows(4));

  const auto self_only = brise::reference::forward(m, ids, uint32_t(1));
  for (size_t t = 0; t < ids.size(); ++t) {
    const std::vector<int32_t> one = {ids[t]};
    const auto alone = brise::reference::forward(m, one, {});
    EXPECT_LE((self_only.row(t) - alone.row(0)).cwiseAbs().maxCoeff(), 1e-4f) << "row " << t;
  }
}

TEST(ReferenceModel, RejectsBadInput) {
  BRISE_REQUIRE_TESTDATA(data);
  const ReferenceModel& m = model_for(data, "models/stories260k/native");
  const std::vector<int32_t> bad = {1, 512};
  EXPECT_THROW(brise::reference::forward(m, bad, {}), brise::Error);
  const std::vector<int32_t> negative = {-1};
  EXPECT_THROW(brise::reference::forward(m, negative, {}), brise::Error);
  const std::vector<int32_t> ok = {1};
  EXPECT_THROW(brise::reference::forward(m, ok, uint32_t(0)), brise::Error);
  EXPECT_EQ(brise::reference::forward(m, std::span<const int32_t>(), {}).rows(), 0);
}

// Weight decoding from blocks built by hand, with values worked out from the format definitions.
TEST(ReferenceModel, DecodesEveryTensorType) {
  brise::gguf::Writer w;
  w.set("general.architecture", "llama");
  w.add_tensor("f32", {3, 2}, TensorType::F32);
  w.add_tensor("f16", {2}, TensorType::F16);
  w.add_tensor("bf16", {2}, TensorType::BF16);
  w.add_tensor("q8_0", {32, 2}, TensorType::Q8_0);
  w.add_tensor("q4_0", {32}, TensorType::Q4_0);
  std::vector<std::byte> image = w.header_bytes();
  auto put = [&](const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    image.insert(image.end(), b, b + n);
    image.resize(image.size() + brise::gguf::padding_after(n, brise::gguf::kDefaultAlignment));
  };
  const float f32[6] = {1, 2, 3, 4, 5, 6};  // rows {1,2,3} and {4,5,6}
  put(f32, sizeof f32);
  const uint16_t f16[2] = {0x3C00, 0xC500};  // 1.0, -5.0
  put(f16, sizeof f16);
  const uint16_t bf16[2] = {0x3F80, 0x4049};  // 1.0, 3.140625
  put(bf16, sizeof bf16);
  unsigned char q8[68];
  for (int b = 0; b < 2; ++b) {
    const uint16_t d = b == 0 ? 0x3800 : 0x4000;  // 0.5, 2.0
    std::memcpy(q8 + 34 * b, &d, 2);
    for (int i = 0; i < 32; ++i) q8[34 * b + 2 + i] = static_cast<unsigned char>(int8_t(i - 16));
  }
  put(q8, sizeof q8);
  unsigned char q4[18];
  const uint16_t d4 = 0x3400;  // 0.25
  std::memcpy(q4, &d4, 2);
  for (int j = 0; j < 16; ++j) q4[2 + j] = static_cast<unsigned char>(j | ((15 - j) << 4));
  put(q4, sizeof q4);
  ASSERT_EQ(image.size(), w.file_size());
  const auto file = brise::gguf::File::parse(image, "hand-made.gguf");

  auto decode = [&](const char* name) {
    return brise::reference::decode_tensor(file->tensor(name), file->name());
  };
  Eigen::MatrixXf want_f32(2, 3);
  want_f32 << 1, 2, 3, 4, 5, 6;
  EXPECT_EQ(decode("f32"), want_f32);
  EXPECT_EQ(decode("f16"), Eigen::Vector2f(1.0f, -5.0f));
  EXPECT_EQ(decode("bf16"), Eigen::Vector2f(1.0f, 3.140625f));
  const Eigen::MatrixXf q8m = decode("q8_0");
  ASSERT_EQ(q8m.rows(), 2);
  ASSERT_EQ(q8m.cols(), 32);
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(q8m(0, i), 0.5f * (i - 16));
    EXPECT_EQ(q8m(1, i), 2.0f * (i - 16));
  }
  const Eigen::MatrixXf q4m = decode("q4_0");
  ASSERT_EQ(q4m.size(), 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(q4m(j), 0.25f * (j - 8)) << j;
    EXPECT_EQ(q4m(j + 16), 0.25f * (15 - j - 8)) << j;
  }
}
