// Small helpers of the tests that run the `brise` executable on text: shell quoting, writing a
// file, and id lists as the CLI prints and reads them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/testdata.hpp"

namespace brise::test {

// `s` in single quotes for /bin/sh.
inline std::string quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

// The built `brise`, quoted.
inline std::string cli() {
  return quote(cli_path().string());
}

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// "1 2 3\n", as `brise tokenize` prints ids.
inline std::string ids_line(const std::vector<int32_t>& ids) {
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) line += ' ';
    line += std::to_string(ids[i]);
  }
  return line + "\n";
}

// "1,2,3", as `brise detokenize --ids` reads them.
inline std::string join_ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(ids[i]);
  }
  return s;
}

}  // namespace brise::test
