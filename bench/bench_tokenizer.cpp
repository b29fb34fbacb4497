// Tokenizer throughput, one thread. SentencePiece: 1 MiB of French news text (the corpus article
// repeated) with the mistral-v1 tokenizer. Tekken: 1 MiB of mixed text with tekken-mini (see
// tekken_text(); bench/bench_tiktoken.mjs encodes the same text with npm tiktoken, for the
// comparison). Bytes/s counts input text bytes for encode, output text bytes for decode.
//
//   build/bench/bench_tokenizer [--benchmark_filter=Encode]
// The data folder is $BRISE_TESTDATA, else ../shared beside the source tree.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "brise/tokenizer.hpp"

namespace {

namespace fs = std::filesystem;

constexpr size_t kTextBytes = size_t{1} << 20;

std::optional<fs::path> data_dir() {
  const char* env = std::getenv("BRISE_TESTDATA");
  const fs::path dir = (env && *env) ? fs::path(env) : fs::path(BRISE_SOURCE_DIR) / ".." / "shared";
  std::error_code ec;
  if (!fs::is_regular_file(dir / "corpus" / "mistral-news-fr.txt", ec)) return std::nullopt;
  return dir;
}

struct Fixture {
  std::unique_ptr<brise::Tokenizer> tokenizer;
  std::string text;
  std::vector<int32_t> ids;
  std::string missing;  // why the data could not be loaded
};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The French news article repeated to 1 MiB.
std::string news_text(const fs::path& dir) {
  const std::string article = read_text(dir / "corpus" / "mistral-news-fr.txt");
  std::string text;
  while (text.size() < kTextBytes) text += article;
  return text;
}

// The mixed text: the French news article, the English stories of tiny256's validation text and
// the texts of every Tekken reference case (code, digits, emoji, CJK, Arabic, Devanagari, ...)
// joined by newlines, repeated until it holds at least 1 MiB. bench_tiktoken.mjs builds the same.
std::string tekken_text(const fs::path& dir) {
  std::string unit = read_text(dir / "corpus" / "mistral-news-fr.txt") + "\n" +
                     read_text(dir / "reference" / "tiny256" / "val-stories.txt") + "\n";
  const auto ref = nlohmann::json::parse(read_text(dir / "reference/tekken-mini/encode.json"));
  for (const auto& c : ref.at("cases")) unit += c.at("text").get<std::string>() + "\n";
  std::string text;
  while (text.size() < kTextBytes) text += unit;
  return text;
}

Fixture make_fixture(brise::Vocabulary (*load)(const fs::path& dir),
                     std::string (*make_text)(const fs::path& dir)) {
  Fixture out;
  const auto dir = data_dir();
  if (!dir) {
    out.missing = "test data not found (set BRISE_TESTDATA or put it at ../shared)";
    return out;
  }
  out.tokenizer = std::make_unique<brise::Tokenizer>(load(*dir));
  out.text = make_text(*dir);
  out.ids = out.tokenizer->encode(out.text);
  return out;
}

const Fixture& fixture() {
  static const Fixture f = make_fixture(
      [](const fs::path& dir) {
        return brise::read_sentencepiece_model(dir / "tokenizers/mistral-v1/tokenizer.model");
      },
      news_text);
  return f;
}

const Fixture& tekken_fixture() {
  static const Fixture f = make_fixture(
      [](const fs::path& dir) {
        return brise::read_tekken_json(dir / "models/tekken-mini/tekken.json");
      },
      tekken_text);
  return f;
}

void BM_Encode(benchmark::State& state, const Fixture& (*get)()) {
  const Fixture& f = get();
  if (!f.tokenizer) {
    state.SkipWithError(f.missing.c_str());
    return;
  }
  for (auto _ : state) {
    auto ids = f.tokenizer->encode(f.text);
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.text.size()));
  state.counters["tokens"] = static_cast<double>(f.ids.size());
}
BENCHMARK_CAPTURE(BM_Encode, mistral_v1, fixture)
    ->Name("Encode/mistral-v1/news-fr-1MiB")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, tekken, tekken_fixture)
    ->Name("Encode/tekken-mini/mixed-1MiB")
    ->Unit(benchmark::kMillisecond);

void BM_Decode(benchmark::State& state, const Fixture& (*get)()) {
  const Fixture& f = get();
  if (!f.tokenizer) {
    state.SkipWithError(f.missing.c_str());
    return;
  }
  for (auto _ : state) {
    auto text = f.tokenizer->decode(f.ids);
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.text.size()));
}
BENCHMARK_CAPTURE(BM_Decode, mistral_v1, fixture)
    ->Name("Decode/mistral-v1/news-fr-1MiB")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, tekken, tekken_fixture)
    ->Name("Decode/tekken-mini/mixed-1MiB")
    ->Unit(benchmark::kMillisecond);

void BM_StreamDecode(benchmark::State& state, const Fixture& (*get)()) {
  const Fixture& f = get();
  if (!f.tokenizer) {
    state.SkipWithError(f.missing.c_str());
    return;
  }
  for (auto _ : state) {
    brise::Tokenizer::StreamDecoder stream(*f.tokenizer, true);
    size_t bytes = 0;
    for (const int32_t id : f.ids) bytes += stream.push(id).size();
    bytes += stream.flush().size();
    benchmark::DoNotOptimize(bytes);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.text.size()));
}
BENCHMARK_CAPTURE(BM_StreamDecode, mistral_v1, fixture)
    ->Name("StreamDecode/mistral-v1/news-fr-1MiB")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_StreamDecode, tekken, tekken_fixture)
    ->Name("StreamDecode/tekken-mini/mixed-1MiB")
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
