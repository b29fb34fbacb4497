// load_vocabulary: the one entry point for "a tokenizer from this file", whatever its format.
#include <array>
#include <fstream>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/tokenizer.hpp"

namespace brise {

Vocabulary load_vocabulary(const std::filesystem::path& path) {
  std::array<char, 4> magic{};
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path.string() + ": cannot open tokenizer or model file");
    in.read(magic.data(), magic.size());
  }
  if (std::string_view(magic.data(), magic.size()) == "GGUF")
    return read_vocabulary(*gguf::File::open(path));
  return read_sentencepiece_model(path);
}

}  // namespace brise
