#include "support/stories.hpp"

#include <unistd.h>
#include <cmath>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "brise/convert.hpp"
#include "support/testdata.hpp"

namespace brise::test {
namespace fs = std::filesystem;

std::vector<ReferenceCase> load_reference_cases(const fs::path& data) {
  const fs::path root = data / "reference/stories260k";
  const auto index = nlohmann::json::parse(read_file_text(root / "index.json"));
  std::vector<ReferenceCase> cases;
  for (const auto& entry : index.at("cases")) {
    ReferenceCase c;
    c.name = entry.at("name").get<std::string>();
    c.dir = root / c.name;
    const auto m = nlohmann::json::parse(read_file_text(c.dir / "manifest.json"));
    c.kind = m.value("kind", "");
    c.model_dir = m.at("model_dir").get<std::string>();
    if (m.contains("equivalent_model_dirs"))
      c.equivalent_dirs = m.at("equivalent_model_dirs").get<std::vector<std::string>>();
    c.bf16 = c.model_dir.find("bf16") != std::string::npos;
    if (!m.at("sliding_window").is_null())
      c.sliding_window = m.at("sliding_window").get<uint32_t>();
    c.token_ids = m.at("token_ids").get<std::vector<int32_t>>();
    if (m.contains("prompt_ids")) c.prompt_ids = m.at("prompt_ids").get<std::vector<int32_t>>();
    const auto shape = m.at("files").at("logits.f32").at("shape");
    c.rows = shape[0].get<size_t>();
    c.vocab = shape[1].get<size_t>();
    c.logits = read_f32_file(c.dir / "logits.f32");
    if (c.logits.size() != c.rows * c.vocab) throw std::runtime_error(c.name + ": logits size");
    cases.push_back(std::move(c));
  }
  return cases;
}

fs::path converted_model(const fs::path& data, const std::string& model_dir, TensorType type) {
  static std::mutex mutex;
  static std::map<std::string, fs::path> done;
  std::lock_guard lock(mutex);
  const std::string key = model_dir + "|" + std::string(tensor_type_name(type));
  if (auto it = done.find(key); it != done.end()) return it->second;
  // One folder per process (ctest runs tests in parallel processes), removed at exit.
  struct Folder {
    fs::path path = scratch_dir("converted-models-" + std::to_string(::getpid()));
    ~Folder() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  };
  static const Folder folder;
  const fs::path& dir = folder.path;
  std::string file = model_dir + "-" + std::string(tensor_type_name(type)) + ".gguf";
  for (auto& ch : file)
    if (ch == '/') ch = '_';
  ConvertOptions options;
  options.type = type;
  convert_checkpoint(data / model_dir, dir / file, options);
  return done[key] = dir / file;
}

float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) {
    const float d = std::fabs(a[i] - b[i]);
    if (!(d <= m)) m = d;  // NaN propagates as the maximum
  }
  return m;
}

}  // namespace brise::test
