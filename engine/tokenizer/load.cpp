// load_vocabulary: the one entry point for "a tokenizer from this file", whatever its format.
#include <array>
#include <fstream>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/tokenizer.hpp"

namespace brise {

Vocabulary load_vocabulary(const std::filesystem::path& path) {
  std::array<char, 64> head{};
  size_t got = 0;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path.string() + ": cannot open tokenizer or model file");
    in.read(head.data(), head.size());
    got = static_cast<size_t>(in.gcount());
  }
  const std::string_view start(head.data(), got);
  if (start.starts_with("GGUF")) return read_vocabulary(*gguf::File::open(path));
  // A tekken.json is a JSON object; a tokenizer.model (protobuf) starts with a field tag.
  const size_t first = start.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && start[first] == '{') return read_tekken_json(path);
  return read_sentencepiece_model(path);
}

}  // namespace brise
