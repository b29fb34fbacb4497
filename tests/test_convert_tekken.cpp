// brise convert on Tekken checkpoints: the tekken-mini models (Nemo's shape, Ministral's windows)
// written as Mistral's native and Hugging Face's folders with tekken.json beside them
// (support/tekken_checkpoint), converted, and compared with the reference GGUF files they came
// from (llama.cpp's form, made by the data set's own writer): every tensor, the tokenizer.* and
// llama.* metadata, the logits of README-tekken.md §5 (numpy, checked against llama.cpp) within
// 1e-4, the tokenizer's ids of encode.json (tiktoken's), the greedy generation. Then the source
// dtypes, --type q8_0 / q4_k_m, Mistral Small 3.1's multimodal forms, and the folders brise
// refuses.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "brise/chat.hpp"
#include "brise/convert.hpp"
#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/model.hpp"
#include "brise/quantize.hpp"
#include "brise/session.hpp"
#include "brise/tokenizer.hpp"
#include "kernels/fp16.hpp"
#include "support/gguf_values.hpp"
#include "support/json_text.hpp"
#include "support/logits_compare.hpp"
#include "support/reference_model.hpp"
#include "support/stories.hpp"
#include "support/tekken_checkpoint.hpp"
#include "support/tekken_logits.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using brise::TensorType;
using brise::test::CheckpointForm;
using brise::test::TekkenCheckpoint;
using nlohmann::json;

namespace {

// Our numpy reference and llama.cpp differ by <= 1.4e-5 on these logits (std ~2.2).
constexpr float kTolerance = 1e-4f;

const char* form_name(CheckpointForm form) {
  static constexpr const char* kNames[] = {"native", "hf", "native_vision", "mistral3",
                                           "mistral3_new_names"};  // in the enumerators' order
  const auto i = static_cast<size_t>(form);
  return i < std::size(kNames) ? kNames[i] : "?";
}

std::string label(const TekkenCheckpoint& spec) {
  const std::string model = spec.model.substr(0, spec.model.find('-'));  // nemo, ministral
  return model + "_" + form_name(spec.form) + "_" + spec.dtype + "_" +
         (spec.tekken.empty() ? "none" : spec.tekken.substr(0, spec.tekken.find('.')));
}

// The checkpoint written and converted with `options`, in its own scratch folder.
struct Converted {
  fs::path dir, path;
  brise::ConvertResult result;
};
Converted convert(const fs::path& data, const TekkenCheckpoint& spec,
                  const brise::ConvertOptions& options = {}, const std::string& suffix = "") {
  const auto scratch = brise::test::scratch_dir("convert_tekken_" + label(spec) + suffix);
  Converted c;
  c.dir = brise::test::write_tekken_checkpoint(data, spec, scratch / "checkpoint");
  c.path = scratch / "converted.gguf";
  c.result = brise::convert_checkpoint(c.dir, c.path, options);
  return c;
}

// The message of the error converting `dir` gives, and nothing written.
std::string convert_error(const fs::path& dir, const brise::ConvertOptions& options = {}) {
  const fs::path out = dir.parent_path() / "refused.gguf";
  try {
    brise::convert_checkpoint(dir, out, options);
  } catch (const brise::Error& e) {
    EXPECT_FALSE(fs::exists(out));
    return e.what();
  }
  ADD_FAILURE() << dir << " converted";
  return "";
}

// Every key of `prefix` in both files, with the same value.
void expect_same_keys(const brise::gguf::File& converted, const brise::gguf::File& reference,
                      std::string_view prefix) {
  size_t compared = 0;
  for (const auto& [key, value] : reference.metadata()) {
    if (!key.starts_with(prefix)) continue;
    const brise::gguf::Value* mine = converted.find(key);
    ASSERT_NE(mine, nullptr) << key << " is missing";
    EXPECT_TRUE(brise::test::same_value(*mine, value, key));
    ++compared;
  }
  for (const auto& [key, value] : converted.metadata())
    if (key.starts_with(prefix)) {
      EXPECT_NE(reference.find(key), nullptr) << key << " is extra";
    }
  EXPECT_GT(compared, 0u) << prefix;
}

// The hyperparameters, window keys and tokenizer exactly as the reference file holds them (which
// llama.cpp loads and runs: README-tekken.md §5); of brise's own keys only the Tekken version.
void expect_reference_metadata(const brise::gguf::File& converted,
                               const brise::gguf::File& reference, const std::string& version) {
  EXPECT_EQ(converted.get_string("general.architecture"), "llama");
  expect_same_keys(converted, reference, "llama.");
  expect_same_keys(converted, reference, "tokenizer.");
  for (const auto& [key, value] : converted.metadata())
    if (key.starts_with("brise.")) {
      EXPECT_EQ(key, "brise.tokenizer.tekken_version");
    }
  EXPECT_EQ(converted.get_string("brise.tokenizer.tekken_version"), version);
}

float element(const brise::gguf::TensorInfo& t, size_t i) {
  uint16_t h;
  switch (t.type) {
    case TensorType::F32: {
      float f;
      std::memcpy(&f, t.data + 4 * i, 4);
      return f;
    }
    case TensorType::BF16:
      std::memcpy(&h, t.data + 2 * i, 2);
      return brise::kernels::bf16_to_f32(h);
    case TensorType::F16:
      std::memcpy(&h, t.data + 2 * i, 2);
      return brise::kernels::f16_to_f32(h);
    default:
      ADD_FAILURE() << t.name << " has type " << brise::tensor_type_name(t.type);
      return 0;
  }
}

// The reference file's tensors, in its order, with its shapes; matrices in `matrices`, norms in
// f32, every value the same (the checkpoints hold every value exactly: support/tekken_checkpoint).
void expect_reference_tensors(const brise::gguf::File& converted,
                              const brise::gguf::File& reference, TensorType matrices) {
  ASSERT_EQ(converted.tensors().size(), reference.tensors().size());
  for (size_t i = 0; i < reference.tensors().size(); ++i) {
    const auto& want = reference.tensors()[i];
    const auto& got = converted.tensors()[i];
    SCOPED_TRACE(want.name);
    ASSERT_EQ(got.name, want.name);
    ASSERT_EQ(got.dims, want.dims);
    EXPECT_EQ(got.type, want.dims.size() == 1 ? TensorType::F32 : matrices);
    if (got.type == TensorType::F32) {
      EXPECT_EQ(std::memcmp(got.data, want.data, want.n_bytes), 0);
      continue;
    }
    size_t differing = 0;
    for (size_t e = 0; e < want.n_elements; ++e) differing += element(got, e) != element(want, e);
    EXPECT_EQ(differing, 0u);
  }
}

// The model's logits of every reference case of its model, in exact mode, prefilled whole.
void expect_reference_logits(const fs::path& path, const fs::path& data, const std::string& model,
                             float tolerance = kTolerance) {
  const auto loaded = brise::Model::load(path);
  size_t cases = 0;
  for (const auto& c : brise::test::tekken_logits_cases(data)) {
    if (c.model.stem() != model) continue;
    SCOPED_TRACE(c.name);
    brise::SessionOptions options;
    options.exact = true;
    EXPECT_EQ(brise::Session(loaded, options).layer_windows(), c.windows);
    const auto got = brise::test::all_row_logits(loaded, c.token_ids, options);
    ASSERT_EQ(got.size(), c.logits.size());
    EXPECT_LE(brise::test::max_abs_diff(got.data(), c.logits.data(), got.size()), tolerance);
    ++cases;
  }
  EXPECT_EQ(cases, 2u);
}

double rms_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(sum / static_cast<double>(a.size()));
}

}  // namespace

// ---- each layout gives the reference model -------------------------------------------------

class ConvertTekkenForms : public ::testing::TestWithParam<TekkenCheckpoint> {};

TEST_P(ConvertTekkenForms, GiveTheReferenceModel) {
  BRISE_REQUIRE_TESTDATA(data);
  const TekkenCheckpoint& spec = GetParam();
  const Converted c = convert(data, spec);
  const auto converted = brise::gguf::File::open(c.path);
  const auto reference =
      brise::gguf::File::open(brise::test::tekken_reference_model(data, spec.model));
  expect_reference_tensors(*converted, *reference, TensorType::F32);
  expect_reference_metadata(*converted, *reference, "v3");
  expect_reference_logits(c.path, data, spec.model);
  const bool vision =
      spec.form != CheckpointForm::Native && spec.form != CheckpointForm::HuggingFace;
  ASSERT_EQ(c.result.notes.size(), vision ? 1u : 0u);
  if (vision) {
    EXPECT_NE(c.result.notes[0].find("text model only"), std::string::npos) << c.result.notes[0];
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, ConvertTekkenForms,
    ::testing::Values(TekkenCheckpoint{"nemo-mini", CheckpointForm::Native},
                      TekkenCheckpoint{"nemo-mini", CheckpointForm::HuggingFace},
                      TekkenCheckpoint{"ministral-mini", CheckpointForm::Native},
                      TekkenCheckpoint{"ministral-mini", CheckpointForm::HuggingFace},
                      TekkenCheckpoint{"nemo-mini", CheckpointForm::NativeWithVision},
                      TekkenCheckpoint{"nemo-mini", CheckpointForm::Mistral3},
                      TekkenCheckpoint{"ministral-mini", CheckpointForm::Mistral3NewNames}),
    [](const ::testing::TestParamInfo<TekkenCheckpoint>& p) { return label(p.param); });

// ---- the converted file's tokenizer and generation ----------------------------------------

// tiktoken's ids of every encode.json case, and its decode cases, through the converted file.
TEST(ConvertTekken, ConvertedFileEncodesAsTiktoken) {
  BRISE_REQUIRE_TESTDATA(data);
  const Converted c = convert(data, {"nemo-mini", CheckpointForm::HuggingFace});
  const auto model = brise::Model::load(c.path);
  const brise::Tokenizer& tokenizer = model->tokenizer();
  EXPECT_EQ(tokenizer.model(), brise::TokenizerModel::Tekken);
  const json ref = brise::test::parse_json(
      brise::test::read_file_text(data / "reference/tekken-mini/encode.json"));
  size_t cases = 0;
  for (const auto& e : ref.at("cases")) {
    SCOPED_TRACE(e.at("name").get<std::string>());
    const std::string text = e.at("text").get<std::string>();
    const auto ids = tokenizer.encode(text);
    EXPECT_EQ(ids, e.at("ids").get<std::vector<int32_t>>());
    EXPECT_EQ(tokenizer.decode(ids), text);
    ++cases;
  }
  EXPECT_EQ(cases, 65u);
  for (const auto& d : ref.at("decode_cases"))
    EXPECT_EQ(tokenizer.decode(d.at("ids").get<std::vector<int32_t>>()),
              d.at("decoded").get<std::string>());
}

// llama.cpp's 16 greedy tokens after "Hello", from a converted native folder, through the library
// and through the command line (brise convert, then brise generate at temperature 0).
TEST(ConvertTekken, GreedyGenerationMatchesLlamaCpp) {
  BRISE_REQUIRE_TESTDATA(data);
  const json g = brise::test::tekken_logits_index(data).at("greedy")[0];
  const auto want = g.at("greedy_ids").get<std::vector<int32_t>>();
  const Converted c = convert(data, {"nemo-mini", CheckpointForm::Native});
  const auto model = brise::Model::load(c.path);
  const auto prompt = g.at("prompt_ids").get<std::vector<int32_t>>();
  EXPECT_EQ(model->tokenizer().encode(g.at("prompt").get<std::string>(), true), prompt);
  EXPECT_EQ(brise::test::greedy_ids(model, prompt, want.size()), want);

  const auto cli = brise::test::cli_path().string();
  const fs::path out = c.path.parent_path() / "cli.gguf";
  const auto converted =
      brise::test::run_command(cli + " convert '" + c.dir.string() + "' -o '" + out.string() + "'");
  ASSERT_EQ(converted.status, 0) << converted.err;
  const auto generated = brise::test::run_command(cli + " generate -m '" + out.string() +
                                                  "' -p Hello -n 16 --temp 0 --json");
  ASSERT_EQ(generated.status, 0) << generated.err;
  const json result = brise::test::parse_json(generated.out);
  EXPECT_EQ(result.at("prompt_ids").get<std::vector<int32_t>>(), prompt);
  EXPECT_EQ(result.at("generated_ids").get<std::vector<int32_t>>(), want);
}

// A v13 tekken.json: its own control tokens ([ARGS], [CALL_ID], [THINK] ...) and version in the
// file, so that brise chooses the v13 chat template; the ranks, merges and ids are nemo-mini's.
TEST(ConvertTekken, V13VocabularyKeepsItsControlTokensAndVersion) {
  BRISE_REQUIRE_TESTDATA(data);
  const Converted c =
      convert(data, {"nemo-mini", CheckpointForm::Native, "F32", "tekken-v13.json"});
  const auto converted = brise::gguf::File::open(c.path);
  const auto reference = brise::gguf::File::open(data / "models/tekken-mini/nemo-mini.gguf");
  EXPECT_EQ(converted->get_string("brise.tokenizer.tekken_version"), "v13");
  const json v13 = brise::test::parse_json(
      brise::test::read_file_text(data / "models/tekken-mini/tekken-v13.json"));
  const auto& tokens = converted->get("tokenizer.ggml.tokens").as_array("tokens").items;
  const auto& reference_tokens = reference->get("tokenizer.ggml.tokens").as_array("tokens").items;
  ASSERT_EQ(tokens.size(), reference_tokens.size());
  for (const auto& special : v13.at("special_tokens"))
    EXPECT_EQ(tokens.at(special.at("rank").get<size_t>()).as_string("token"),
              special.at("token_str").get<std::string>());
  for (size_t i = 1000; i < tokens.size(); ++i)
    ASSERT_EQ(tokens[i].as_string("token"), reference_tokens[i].as_string("token")) << i;
  for (const char* key : {"tokenizer.ggml.merges", "tokenizer.ggml.token_type",
                          "tokenizer.ggml.pre", "tokenizer.ggml.bos_token_id"})
    EXPECT_TRUE(brise::test::same_value(converted->get(key), reference->get(key), key));
  const auto model = brise::Model::load(c.path);
  EXPECT_EQ(model->tokenizer().version(), "v13");
  EXPECT_EQ(model->tokenizer().find_special("[THINK]"), 35);
  EXPECT_EQ(brise::detect_chat_template(model->tokenizer()), brise::ChatTemplate::MistralV13);
  expect_reference_logits(c.path, data, "nemo-mini");
}

// ---- source dtypes and --type ----------------------------------------------------------------

// bf16 and f16 checkpoints keep their matrices' type and values; the logits stay the reference's.
TEST(ConvertTekken, Bf16AndF16CheckpointsKeepTheirType) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto reference = brise::gguf::File::open(data / "models/tekken-mini/ministral-mini.gguf");
  for (const auto& [dtype, type, file_type] :
       {std::tuple{"BF16", TensorType::BF16, 32u}, std::tuple{"F16", TensorType::F16, 1u}}) {
    SCOPED_TRACE(dtype);
    for (auto form : {CheckpointForm::Native, CheckpointForm::HuggingFace}) {
      SCOPED_TRACE(form_name(form));
      const Converted c = convert(data, {"ministral-mini", form, dtype});
      const auto converted = brise::gguf::File::open(c.path);
      EXPECT_EQ(converted->get_uint("general.file_type"), file_type);
      expect_reference_tensors(*converted, *reference, type);
      expect_reference_metadata(*converted, *reference, "v3");
      expect_reference_logits(c.path, data, "ministral-mini");
    }
  }
}

// --type q8_0 (every matrix) and --type q4_k_m (llama.cpp's mix, with its fallbacks for rows of
// 320, not whole 256-blocks): the tensors brise quantize makes of the reference file (whose
// quantizers and mixes are llama-quantize's byte for byte: test_quantize), the logits of the
// reference forward pass on the converted file's weights, and close to the f32 reference.
TEST(ConvertTekken, QuantizedTypesAreThoseOfQuantize) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path reference_path = data / "models/tekken-mini/nemo-mini.gguf";
  struct Case {
    const char* type;
    brise::QuantMix mix;
    bool pure;
    // Bounds on the distance to the f32 reference logits, twice what was measured (RMS 0.035
    // and 0.29, largest 0.20 and 1.7).
    double f32_rms;
    float f32_max;
  };
  for (const Case& q : {Case{"q8_0", brise::QuantMix::Q8_0, true, 0.07, 0.4f},
                        Case{"q4_k_m", brise::QuantMix::Q4_K_M, false, 0.6, 3.5f}}) {
    SCOPED_TRACE(q.type);
    brise::ConvertOptions options;
    options.type = brise::tensor_type_from_name(q.type);
    if (!options.type) options.mix = brise::quant_mix_from_name(q.type);
    const Converted c = convert(data, {"nemo-mini", CheckpointForm::HuggingFace}, options, q.type);
    brise::QuantizeOptions quantize;
    quantize.mix = q.mix;
    quantize.pure = q.pure;
    const fs::path quantized = c.path.parent_path() / "quantized.gguf";
    brise::quantize_model(reference_path, quantized, quantize);

    const auto converted = brise::gguf::File::open(c.path);
    const auto expected = brise::gguf::File::open(quantized);
    EXPECT_EQ(converted->get_uint("general.file_type"), static_cast<uint64_t>(q.mix));
    ASSERT_EQ(converted->tensors().size(), expected->tensors().size());
    for (const auto& t : converted->tensors()) {
      const auto& want = expected->tensor(t.name);
      ASSERT_EQ(t.type, want.type) << t.name;
      ASSERT_EQ(t.n_bytes, want.n_bytes) << t.name;
      EXPECT_EQ(std::memcmp(t.data, want.data, t.n_bytes), 0) << t.name;
    }
    expect_same_keys(*converted, *expected, "tokenizer.");

    const auto model = brise::Model::load(c.path);
    const auto oracle = brise::reference::load(*converted);
    for (const auto& rc : brise::test::tekken_logits_cases(data)) {
      if (rc.model.stem() != "nemo-mini") continue;
      SCOPED_TRACE(rc.name);
      brise::SessionOptions exact;
      exact.exact = true;
      const auto got = brise::test::all_row_logits(model, rc.token_ids, exact);
      EXPECT_LE(brise::test::max_abs_diff(
                    got, brise::reference::forward_layer_windows(oracle, rc.token_ids, rc.windows)),
                kTolerance);
      // The quantization's own error, far below a broken model's (about the logits' std, 2.2).
      EXPECT_LE(rms_diff(got, rc.logits), q.f32_rms);
      EXPECT_LE(brise::test::max_abs_diff(got.data(), rc.logits.data(), got.size()), q.f32_max);
    }
  }
}

// ---- folders brise refuses --------------------------------------------------------------------

// A Tekken checkpoint as Hugging Face's tools leave it (tokenizer.json, no tekken.json) is refused
// with a message that names tekken.json; with no tokenizer at all the message names both files;
// with both kinds brise will not guess. --tokenizer gives the file from elsewhere.
TEST(ConvertTekken, MissingOrAmbiguousTokenizerIsRefused) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto scratch = brise::test::scratch_dir("convert_tekken_tokenizer_refused");
  const auto hf = brise::test::write_tekken_checkpoint(
      data, {"nemo-mini", CheckpointForm::HuggingFace, "F32", ""}, scratch / "hf");
  const std::string none = convert_error(hf);
  EXPECT_NE(none.find("no tokenizer.model or tekken.json"), std::string::npos) << none;

  brise::test::write_file_text(hf / "tokenizer.json", R"({"version": "1.0", "model": {}})");
  const std::string tokenizer_json = convert_error(hf);
  EXPECT_NE(tokenizer_json.find("no tekken.json"), std::string::npos) << tokenizer_json;
  EXPECT_NE(tokenizer_json.find("tokenizer.json"), std::string::npos) << tokenizer_json;

  brise::ConvertOptions hf_json;
  hf_json.tokenizer = hf / "tokenizer.json";
  const std::string given_json = convert_error(hf, hf_json);
  EXPECT_NE(given_json.find("brise does not read Hugging Face's tokenizer.json; give Mistral's "
                            "tekken.json"),
            std::string::npos)
      << given_json;

  brise::ConvertOptions given;
  given.tokenizer = data / "models/tekken-mini/tekken.json";
  brise::convert_checkpoint(hf, scratch / "given.gguf", given);
  const auto converted = brise::gguf::File::open(scratch / "given.gguf");
  expect_same_keys(*converted, *brise::gguf::File::open(data / "models/tekken-mini/nemo-mini.gguf"),
                   "tokenizer.");

  const auto native = brise::test::write_tekken_checkpoint(
      data, {"nemo-mini", CheckpointForm::Native}, scratch / "native");
  fs::copy_file(data / "tokenizers/mistral-v3/tokenizer.model", native / "tokenizer.model.v3");
  const std::string both = convert_error(native);
  EXPECT_NE(both.find("both tokenizer.model.v3 (SentencePiece) and tekken.json"), std::string::npos)
      << both;
  brise::ConvertOptions sentencepiece;
  sentencepiece.tokenizer = native / "tokenizer.model.v3";
  const std::string size = convert_error(native, sentencepiece);
  EXPECT_NE(size.find("the tokenizer has 32768 tokens but the model's vocab_size is 7256"),
            std::string::npos)
      << size;
}

TEST(ConvertTekken, BadMultimodalCheckpointsAreClearErrors) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto scratch = brise::test::scratch_dir("convert_tekken_multimodal_refused");
  const auto dir = brise::test::write_tekken_checkpoint(
      data, {"nemo-mini", CheckpointForm::Mistral3}, scratch / "ck");
  json config = brise::test::parse_json(brise::test::read_file_text(dir / "config.json"));
  config.erase("text_config");
  brise::test::write_file_text(dir / "config.json", config.dump());
  const std::string no_text = convert_error(dir);
  EXPECT_NE(no_text.find("Mistral3ForConditionalGeneration needs a text_config object"),
            std::string::npos)
      << no_text;

  config["architectures"] = {"LlavaForConditionalGeneration"};
  brise::test::write_file_text(dir / "config.json", config.dump());
  const std::string other = convert_error(dir);
  EXPECT_NE(other.find("[\"LlavaForConditionalGeneration\"] are not supported"), std::string::npos)
      << other;
}
