#include "text_file.hpp"

#include <fstream>
#include <iterator>

#include "brise/error.hpp"

namespace brise::cli {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open file");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path + ": read error");
  return text;
}

}  // namespace brise::cli
