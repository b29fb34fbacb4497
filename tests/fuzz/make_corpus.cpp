// brise_fuzz_corpus DATA_DIR OUT_DIR: writes the seed corpus of every fuzz target into
// OUT_DIR/<target>/, made at run time from the shared test data (nothing is copied into the
// repository): stories260k converted to GGUF (f32, q8_0), tiny synthetic models of every tensor
// type, a GGUF holding every metadata value type, shrunken copies of the real safetensors files
// (their real headers with small shapes) and their headers alone, shard indexes, config.json and
// params.json files, the tokenizer.model files, the texts and id sequences of the tokenizer
// vectors, small tekken.json files and the Tekken reference texts and ids. Each seed is in the
// input format its target expects (see fuzz_targets.hpp).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "brise/convert.hpp"
#include "brise/gguf.hpp"
#include "brise/synth.hpp"
#include "brise/tokenizer.hpp"
#include "tokenizer_test_models.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
}

class Corpus {
 public:
  explicit Corpus(fs::path root) : root_(std::move(root)) {}
  void add(const std::string& target, const std::string& name, const std::vector<uint8_t>& bytes) {
    const fs::path dir = root_ / target;
    fs::create_directories(dir);
    std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + (dir / name).string());
    ++count_[target];
  }
  void add(const std::string& target, const std::string& name, uint8_t first,
           std::string_view rest) {
    std::vector<uint8_t> bytes{first};
    bytes.insert(bytes.end(), rest.begin(), rest.end());
    add(target, name, bytes);
  }
  void report() const {
    for (const auto& [target, n] : count_) std::printf("  %-14s %3d seeds\n", target.c_str(), n);
  }

 private:
  fs::path root_;
  std::map<std::string, int> count_;
};

// A model seed: the GGUF file, then token ids and the control byte (see model_target).
std::vector<uint8_t> model_input(std::vector<uint8_t> gguf, const std::vector<uint16_t>& ids,
                                 uint8_t control_high_bits) {
  for (const uint16_t id : ids) {
    gguf.push_back(static_cast<uint8_t>(id));
    gguf.push_back(static_cast<uint8_t>(id >> 8));
  }
  gguf.push_back(static_cast<uint8_t>(control_high_bits | ((ids.size() - 1) % 8)));
  return gguf;
}

// Every metadata value type, nested arrays, and one small tensor of each type brise computes
// with, written with brise's own Writer.
std::vector<uint8_t> every_value_type_gguf() {
  using namespace brise;
  gguf::Writer w;
  w.set("general.architecture", "llama");
  w.set("u8", uint8_t{200});
  w.set("i8", int8_t{-100});
  w.set("u16", uint16_t{60000});
  w.set("i16", int16_t{-30000});
  w.set("u32", uint32_t{4000000000u});
  w.set("i32", int32_t{-2000000000});
  w.set("f32", 1.5f);
  w.set("bool", true);
  w.set("string", "caf\xC3\xA9");
  w.set("u64", uint64_t{1} << 60);
  w.set("i64", int64_t{-1} << 60);
  w.set("f64", 2.5);
  w.set("strings", gguf::make_array(std::vector<std::string>{"a", "", "bc"}));
  w.set("floats", gguf::make_array(std::vector<float>{1, 2, 3}));
  gguf::Array inner = gguf::make_array(std::vector<int32_t>{1, -2});
  gguf::Array outer;
  outer.elem_type = gguf::ValueType::ARRAY;
  outer.items = {inner, inner};
  w.set("nested", outer);
  const TensorType types[] = {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q8_0,
                              TensorType::Q4_0};
  for (const TensorType t : types)
    w.add_tensor("t." + std::string(tensor_type_name(t)), {32, 2}, t);
  std::vector<uint8_t> bytes;
  for (const std::byte b : w.header_bytes()) bytes.push_back(static_cast<uint8_t>(b));
  uint8_t v = 0;
  while (bytes.size() < w.file_size()) bytes.push_back(v += 37);
  return bytes;
}

// The tiny synthetic models: small enough that mutations often hit the header.
void add_synthetic_models(Corpus& corpus, const fs::path& tmp) {
  using namespace brise;
  struct Variant {
    const char* name;
    TensorType type;
    bool tied;
    std::optional<uint32_t> window;
  };
  const Variant variants[] = {
      {"f32", TensorType::F32, false, std::nullopt},  {"f16", TensorType::F16, false, std::nullopt},
      {"bf16", TensorType::BF16, true, std::nullopt}, {"q8_0", TensorType::Q8_0, false, 4},
      {"q4_0", TensorType::Q4_0, true, std::nullopt},
  };
  for (const auto& v : variants) {
    SynthSpec spec;
    ModelConfig& c = spec.config;
    c.name = std::string("fuzz-") + v.name;
    c.dim = 32, c.n_layers = 1, c.n_heads = 2, c.n_kv_heads = 1, c.head_dim = 16;
    c.hidden_dim = 64, c.vocab_size = 260, c.context_length = 64;
    c.sliding_window = v.window;
    spec.type = v.type;
    spec.tied_embeddings = v.tied;
    const fs::path path = tmp / (std::string("synth-") + v.name + ".gguf");
    write_synthetic_model(path, spec);
    const auto bytes = read_bytes(path);
    corpus.add("gguf", std::string("synth-") + v.name + ".gguf", bytes);
    corpus.add("model", std::string("synth-") + v.name,
               model_input(bytes, {1, 260, 3, 300}, v.type == TensorType::Q8_0 ? 0x18 : 0x00));
  }
}

// A valid safetensors file with the real file's tensor names and dtypes, every shape cut to at
// most [2, 3], and the real header alone (whose offsets then run past the end).
void add_safetensors(Corpus& corpus, const fs::path& file, const std::string& tag) {
  const auto bytes = read_bytes(file);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes.at(static_cast<size_t>(i));
  const std::string header(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(header_len));
  corpus.add(
      "safetensors", tag + "-header-only",
      std::vector<uint8_t>(bytes.begin(), bytes.begin() + 8 + static_cast<long>(header_len)));
  json j = json::parse(header);
  uint64_t offset = 0;
  for (auto& [name, entry] : j.items()) {
    if (name == "__metadata__") continue;
    json shape = json::array();
    uint64_t n = 1;
    for (size_t d = 0; d < entry["shape"].size() && d < 2; ++d) {
      const uint64_t dim = std::min<uint64_t>(entry["shape"][d].get<uint64_t>(), d == 0 ? 2 : 3);
      shape.push_back(dim);
      n *= dim;
    }
    entry["shape"] = shape;
    const uint64_t size = n * (entry["dtype"] == "F32" ? 4 : 2);
    entry["data_offsets"] = {offset, offset + size};
    offset += size;
  }
  std::string text = j.dump();
  while (text.size() % 8) text += ' ';
  std::vector<uint8_t> out(8);
  for (int i = 0; i < 8; ++i)
    out[static_cast<size_t>(i)] = static_cast<uint8_t>(text.size() >> (8 * i));
  out.insert(out.end(), text.begin(), text.end());
  for (uint64_t i = 0; i < offset; ++i) out.push_back(static_cast<uint8_t>(i * 13));
  corpus.add("safetensors", tag + "-small", out);
}

void add_tokenizer_vectors(Corpus& corpus, const fs::path& file, const std::string& tag) {
  const json j = json::parse(read_bytes(file));
  // Selector bytes of encode_target/decode_target: % 4 == 3 is tok512, else Mistral v3.
  const bool small = tag == "tok512";
  if (tag != "tok512" && tag != "mistral-v3") return;
  const uint8_t selector = small ? 3 : 0;
  int i = 0;
  for (const auto& c : j.at("cases")) {
    const std::string text = c.at("text").get<std::string>();
    const std::string name = tag + "-" + std::to_string(i++);
    corpus.add("encode", name, static_cast<uint8_t>(selector | (i % 2 ? 0x80 : 0)), text);
    std::vector<uint8_t> ids{selector};
    for (const auto& id : c.at("ids_with_bos")) {
      const auto v = id.get<uint32_t>();
      ids.push_back(static_cast<uint8_t>(v));
      ids.push_back(static_cast<uint8_t>(v >> 8));
    }
    corpus.add("decode", name, ids);
  }
  for (const auto& c : j.at("decode_cases")) {
    std::vector<uint8_t> ids{static_cast<uint8_t>(selector | (i % 2 ? 0x80 : 0))};
    for (const auto& id : c.at("ids")) {
      const auto v = id.get<uint32_t>();
      ids.push_back(static_cast<uint8_t>(v));
      ids.push_back(static_cast<uint8_t>(v >> 8));
    }
    corpus.add("decode", tag + "-dec-" + std::to_string(i++), ids);
  }
}

// The first pieces of the Mistral models (specials, control pieces, byte pieces, a few merges)
// written back as ModelProto bytes, plainly, with unknown fields to skip, and with user-defined
// and unused pieces.
void add_small_sentencepiece_models(Corpus& corpus, const fs::path& data) {
  for (const char* name : {"mistral-v1", "mistral-v3"}) {
    const brise::Vocabulary full =
        brise::read_sentencepiece_model(data / "tokenizers" / name / "tokenizer.model");
    brise::test::ModelSpec spec;
    brise::Vocabulary& v = spec.vocab;
    v = full;
    const size_t keep = std::string_view(name) == "mistral-v3" ? 1100 : 400;
    v.pieces.resize(keep);
    v.scores.resize(keep);
    v.kinds.resize(keep);
    const auto bytes = [](const std::string& s) {
      return std::vector<uint8_t>(s.begin(), s.end());
    };
    corpus.add("sentencepiece", std::string(name) + "-small",
               bytes(brise::test::write_model(spec)));
    spec.unknown_fields = true;
    spec.write_unk_surface = true;
    corpus.add("sentencepiece", std::string(name) + "-unknown-fields",
               bytes(brise::test::write_model(spec)));
    spec.unknown_fields = false;
    v.kinds[keep - 1] = brise::TokenKind::UserDefined;
    v.kinds[keep - 2] = brise::TokenKind::Unused;
    v.remove_extra_whitespaces = !v.remove_extra_whitespaces;
    corpus.add("sentencepiece", std::string(name) + "-user-defined",
               bytes(brise::test::write_model(spec)));
  }
}

// Tekken seeds (see tekken_target): tekken-mini's tekken.json cut down to its first 300 ranks
// (with its deprecated special tokens, and v13-style with 40 listed ones), the reference texts
// (plain and with parse_special), their id sequences; and the vocabulary in llama.cpp's GGUF
// form for the gguf target.
void add_tekken(Corpus& corpus, const fs::path& data) {
  const json full = json::parse(read_bytes(data / "models/tekken-mini/tekken.json"));
  for (const bool v13 : {false, true}) {
    json small = full;
    small["vocab"] = json(std::vector<json>(full["vocab"].begin(), full["vocab"].begin() + 300));
    small["config"]["num_vocab_tokens"] = 300;
    small["config"]["default_num_special_tokens"] = v13 ? 40 : 1000;
    small["config"]["default_vocab_size"] = (v13 ? 40 : 1000) + 290;
    if (v13) {
      small["config"]["version"] = "v13";
      const json listed = json::parse(read_bytes(data / "models/tekken-mini/tekken-v13.json"));
      small["special_tokens"] = json(std::vector<json>(listed["special_tokens"].begin(),
                                                       listed["special_tokens"].begin() + 40));
    }
    corpus.add("tekken", v13 ? "tekken-small-v13.json" : "tekken-small.json", 0, small.dump(1));
  }
  const json ref = json::parse(read_bytes(data / "reference/tekken-mini/encode.json"));
  int i = 0;
  for (const auto& c : ref.at("cases")) {
    const std::string text = c.at("text").get<std::string>();
    corpus.add("tekken", "text-" + std::to_string(i), i % 2 ? 3 : 2, text);
    std::vector<uint8_t> ids{4};
    for (const auto& id : c.at("ids")) {
      const auto v = id.get<uint32_t>();
      ids.push_back(static_cast<uint8_t>(v));
      ids.push_back(static_cast<uint8_t>(v >> 8));
    }
    corpus.add("tekken", "ids-" + std::to_string(i++), ids);
  }
  brise::gguf::Writer w;
  brise::write_vocabulary(w, brise::read_tekken_json(data / "models/tekken-mini/tekken.json"));
  std::vector<uint8_t> bytes;
  for (const std::byte b : w.header_bytes()) bytes.push_back(static_cast<uint8_t>(b));
  corpus.add("gguf", "tekken-vocab.gguf", bytes);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DATA_DIR OUT_DIR\n", argv[0]);
    return 2;
  }
  try {
    const fs::path data = argv[1], out = argv[2];
    const fs::path stories = data / "models/stories260k";
    fs::remove_all(out);
    const fs::path tmp = out / "tmp";
    fs::create_directories(tmp);
    Corpus corpus(out);

    // GGUF: stories260k f32 and q8_0, synthetic models, every value type.
    for (const auto type : {brise::TensorType::F32, brise::TensorType::Q8_0}) {
      const std::string name = "stories260k-" + std::string(brise::tensor_type_name(type));
      brise::ConvertOptions options;
      options.type = type;
      brise::convert_checkpoint(stories / "hf", tmp / (name + ".gguf"), options);
      const auto bytes = read_bytes(tmp / (name + ".gguf"));
      corpus.add("gguf", name + ".gguf", bytes);
      if (type == brise::TensorType::Q8_0)
        corpus.add("model", name, model_input(bytes, {1, 403, 407, 261, 378}, 0x20));
    }
    add_synthetic_models(corpus, tmp);
    // brise serve request bodies (first byte: 0 chat completions, 1 completions).
    const char* const requests[] = {
        R"({"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"max_tokens":16,"temperature":0.7,"top_p":0.9,"seed":42,"stop":["\n","END"],"stream":true,"stream_options":{"include_usage":true}})",
        R"({"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"assistant","content":"c"},{"role":"user","content":"d"}],"max_completion_tokens":3,"n":1,"top_k":40,"min_p":0.05,"repeat_penalty":1.1,"logprobs":false})",
        R"({"prompt":"Once upon a time","max_tokens":32,"temperature":0,"stop":"."})",
        R"({"prompt":["x"],"logprobs":0,"seed":-1})"};
    for (size_t i = 0; i < std::size(requests); ++i) {
      const std::string body = requests[i];
      corpus.add("request", "request-" + std::to_string(i), static_cast<uint8_t>(i >= 2), body);
    }
    corpus.add("gguf", "every-value-type.gguf", every_value_type_gguf());

    // safetensors headers and shard indexes.
    for (const auto& dir : fs::directory_iterator(stories)) {
      if (!dir.is_directory()) continue;
      for (const auto& f : fs::directory_iterator(dir.path())) {
        const std::string tag = dir.path().filename().string() + "-" + f.path().stem().string();
        if (f.path().extension() == ".safetensors") add_safetensors(corpus, f.path(), tag);
        if (f.path().filename() == "model.safetensors.index.json")
          corpus.add("safetensors", tag, read_bytes(f.path()));
        // Configs: first byte 0 = config.json, 1 = params.json.
        if (f.path().filename() == "config.json" || f.path().filename() == "params.json") {
          const auto bytes = read_bytes(f.path());
          corpus.add("config", tag, f.path().filename() == "params.json" ? 1 : 0,
                     std::string(bytes.begin(), bytes.end()));
        }
      }
    }
    for (const auto& dir : fs::directory_iterator(data / "configs")) {
      if (!dir.is_directory()) continue;
      for (const auto& f : fs::directory_iterator(dir.path())) {
        const std::string tag = dir.path().filename().string() + "-" + f.path().stem().string();
        const auto bytes = read_bytes(f.path());
        const std::string text(bytes.begin(), bytes.end());
        if (f.path().filename() == "model.safetensors.index.json")
          corpus.add("safetensors", tag, bytes);
        else if (f.path().filename() == "params.json")
          corpus.add("config", tag, 1, text);
        else
          corpus.add("config", tag, 0, text);
      }
    }

    // SentencePiece models (tok512, and cut-down Mistral models: the full 32k-piece ones would
    // make each run ~50 ms), tokenizer texts and ids.
    corpus.add("sentencepiece", "tok512", read_bytes(data / "tokenizers/tok512/tokenizer.model"));
    add_small_sentencepiece_models(corpus, data);
    for (const char* t : {"tok512", "mistral-v3"})
      add_tokenizer_vectors(corpus, data / "tokenizers/vectors" / (std::string(t) + ".json"), t);
    add_tekken(corpus, data);
    // Chat: mistral-common's samples with each template, on Mistral v3 and (0x80) on Tekken.
    for (const char* sample : {"get_weather_full", "several_calls", "no_tools"}) {
      const auto body = read_bytes(data / "reference/chat-tools" / sample / "sample.json");
      for (const uint8_t first : {0x02, 0x05, 0x83}) {
        std::vector<uint8_t> bytes{first};
        bytes.insert(bytes.end(), body.begin(), body.end());
        corpus.add("chat", std::string(sample) + "-" + std::to_string(first), bytes);
      }
    }
    // JSON Schemas (first byte: 0 response_format on tok512, 2 a tool's parameters in the v3
    // form, 3 in the v13 form).
    const char* const schemas[] = {
        R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"enum":["a","b"]},"minItems":1,"maxItems":3}},"required":["name"],"additionalProperties":false})",
        R"({"$defs":{"n":{"type":"object","properties":{"v":{"anyOf":[{"type":"number"},{"type":"null"}]},"kids":{"type":"array","items":{"$ref":"#/$defs/n"}}},"required":["v"]}},"$ref":"#/$defs/n"})",
        R"({"type":["boolean","string"],"const":"x"})",
        R"({"type":"object","additionalProperties":{"type":"array","items":true}})",
        R"({"type":"object","properties":{"id":{"type":"integer","minimum":-9007199254740991,"maximum":9007199254740991},"x":{"type":"number","exclusiveMinimum":-1.5,"maximum":2.25},"s":{"type":"string","minLength":1,"maxLength":8}},"required":["id","s"]})"};
    for (size_t i = 0; i < std::size(schemas); ++i)
      for (const uint8_t first : {0, 2, 3})
        corpus.add("schema", "schema-" + std::to_string(i) + "-" + std::to_string(first), first,
                   schemas[i]);
    const auto news = read_bytes(data / "corpus/mistral-news-fr.txt");
    corpus.add("encode", "news-fr", 0, std::string(news.begin(), news.end()));

    fs::remove_all(tmp);
    std::printf("seed corpus in %s:\n", out.c_str());
    corpus.report();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "brise_fuzz_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
