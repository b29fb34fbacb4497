// Constrained decoding's cost (brise/constraint.hpp).
//
//   Mask/<vocabulary>/<schema>: the masking alone, one iteration per decode step (its time is the
//     mask's cost per generated token): ConstraintMatcher::allowed() then
//     accept() along a fixed walk (each token drawn by a seeded generator among the allowed ones,
//     as a model that knows nothing would; the matcher starts again when the output is complete),
//     on Mistral v3's vocabulary (32768), the synthetic 32000 of `brise synth --preset mistral-1b`
//     and the synthetic Tekken vocabulary of 131072.
//   Generate/{free,json_schema}: brise::generate of 64 tokens after a short prompt, with
//     and without a schema; the counter tok_s is decoded tokens per second of the process's CPU
//     time (all threads), the overhead of masking being the ratio of the two. The model is
//     $BRISE_BENCH_MODEL (e.g. brise synth --preset mistral-1b + brise quantize q4_0), absent:
//     skipped.
//
// Issue 21 asks that masking add at most 15 % to decode time on the 1B synth model at a 32k
// vocabulary: Mask/synth-32000/schema per step against the decode step of `brise bench`, or the
// two Generate rows' tok_s.
//
//   BRISE_BENCH_MODEL=m1b-Q4_0.gguf build/bench/bench_constraint --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "brise/constraint.hpp"
#include "brise/generate.hpp"
#include "brise/model.hpp"
#include "brise/synth.hpp"
#include "brise/tokenizer.hpp"

namespace {

namespace fs = std::filesystem;

// A form with the usual parts: strings, an enum, numbers, a bounded array, a nested object.
constexpr const char* kSchema = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "age": {"type": "integer"},
    "email": {"type": "string"},
    "role": {"enum": ["admin", "editor", "viewer"]},
    "scores": {"type": "array", "items": {"type": "number"}, "maxItems": 4},
    "address": {"type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"},
                               "zip": {"type": "string"}},
                "required": ["street", "city"]},
    "active": {"type": "boolean"}
  },
  "required": ["name", "age", "role", "address"]
})";

std::optional<fs::path> data_dir() {
  const char* env = std::getenv("BRISE_TESTDATA");
  const fs::path dir = (env && *env) ? fs::path(env) : fs::path(BRISE_SOURCE_DIR) / ".." / "shared";
  std::error_code ec;
  if (!fs::is_directory(dir / "tokenizers", ec)) return std::nullopt;
  return dir;
}

const brise::Tokenizer* tokenizer(const std::string& name) {
  static const auto mistral_v3 = [] {
    const auto dir = data_dir();
    return dir ? std::make_unique<brise::Tokenizer>(brise::read_sentencepiece_model(
                     *dir / "tokenizers/mistral-v3/tokenizer.model"))
               : nullptr;
  }();
  static const brise::Tokenizer synth_32k(brise::synthetic_vocabulary(32000));
  static const brise::Tokenizer tekken_131k(brise::synthetic_tekken_vocabulary(131072));
  if (name == "mistral-v3") return mistral_v3.get();
  if (name == "synth-32000") return &synth_32k;
  return &tekken_131k;
}

std::shared_ptr<const brise::Constraint> constraint(const brise::Tokenizer& tok,
                                                    const std::string& kind) {
  if (kind == "json_object") return brise::Constraint::json_object(tok);
  return brise::Constraint::json_schema(tok, kSchema);
}

void BM_Mask(benchmark::State& state, std::string vocab, std::string kind) {
  const brise::Tokenizer* tok = tokenizer(vocab);
  if (!tok) {
    state.SkipWithError("test data not found (BRISE_TESTDATA)");
    return;
  }
  const auto c = constraint(*tok, kind);
  (void)tok->token_trie();  // built once, outside the timing
  std::mt19937_64 rng(1);
  brise::ConstraintMatcher matcher(c);
  uint32_t left = 256;
  std::vector<int32_t> ids;
  size_t tokens = 0;
  for (auto _ : state) {
    if (matcher.finished() || left == 0) {
      matcher = brise::ConstraintMatcher(c);
      left = 256;
    }
    const auto mask = matcher.allowed(left);
    ids.clear();
    for (size_t w = 0; w < mask.size(); ++w)
      for (uint64_t bits = mask[w]; bits; bits &= bits - 1)
        ids.push_back(static_cast<int32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(bits))));
    const int32_t id = ids[rng() % ids.size()];
    if (!matcher.accept(id)) state.SkipWithError("an allowed token was refused");
    --left;
    ++tokens;
  }
  state.SetItemsProcessed(static_cast<int64_t>(tokens));
}

void BM_Generate(benchmark::State& state, bool constrained) {
  const char* path = std::getenv("BRISE_BENCH_MODEL");
  if (!path || !*path) {
    state.SkipWithError("set BRISE_BENCH_MODEL to a GGUF model (e.g. mistral-1b q4_0)");
    return;
  }
  static std::shared_ptr<const brise::Model> model = brise::Model::load(path);
  brise::Session session(model, {});
  const auto prompt = model->tokenizer().encode("Write the record as JSON:", true);
  brise::GenerateOptions options;
  options.max_tokens = 64;
  options.sampling.temperature = 1.0f;
  options.sampling.seed = 7;
  if (constrained) options.constraint = brise::Constraint::json_schema(model->tokenizer(), kSchema);
  uint64_t decoded = 0;
  for (auto _ : state) {
    session.reset();
    const auto result = brise::generate(session, prompt, options);
    decoded += result.decoded_tokens;
  }
  state.counters["tok_s"] =
      benchmark::Counter(static_cast<double>(decoded), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK_CAPTURE(BM_Mask, v3_schema, "mistral-v3", "schema")->Name("Mask/mistral-v3/schema");
BENCHMARK_CAPTURE(BM_Mask, v3_object, "mistral-v3", "json_object")
    ->Name("Mask/mistral-v3/json_object");
BENCHMARK_CAPTURE(BM_Mask, synth_schema, "synth-32000", "schema")->Name("Mask/synth-32000/schema");
BENCHMARK_CAPTURE(BM_Mask, tekken_schema, "tekken-131072", "schema")
    ->Name("Mask/tekken-131072/schema");
BENCHMARK_CAPTURE(BM_Mask, tekken_object, "tekken-131072", "json_object")
    ->Name("Mask/tekken-131072/json_object");
BENCHMARK_CAPTURE(BM_Generate, free, false)
    ->Name("Generate/free")
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->Iterations(3);
BENCHMARK_CAPTURE(BM_Generate, json_schema, true)
    ->Name("Generate/json_schema")
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->Iterations(3);

BENCHMARK_MAIN();
