#include "support/safetensors_writer.hpp"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "support/testdata.hpp"

namespace brise::test {

void write_safetensors(const std::filesystem::path& path, const std::vector<StTensor>& tensors) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = text.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out.write(len, 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : tensors)
    out.write(reinterpret_cast<const char*>(t.data.data()),
              static_cast<std::streamsize>(t.data.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::vector<StTensor> read_safetensors(const std::filesystem::path& path) {
  const auto bytes = read_file_bytes(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes.at(i));
  const auto header =
      nlohmann::json::parse(std::string(reinterpret_cast<const char*>(bytes.data() + 8), n));
  std::vector<StTensor> out;
  for (const auto& [name, e] : header.items()) {
    if (name == "__metadata__") continue;
    StTensor t;
    t.name = name;
    t.dtype = e.at("dtype").get<std::string>();
    t.shape = e.at("shape").get<std::vector<uint64_t>>();
    const uint64_t b = e.at("data_offsets")[0], end = e.at("data_offsets")[1];
    t.data.assign(bytes.begin() + 8 + n + b, bytes.begin() + 8 + n + end);
    out.push_back(std::move(t));
  }
  return out;
}

void copy_folder(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::filesystem::create_directories(to);
  for (const auto& e : std::filesystem::directory_iterator(from))
    if (e.is_regular_file()) std::filesystem::copy_file(e.path(), to / e.path().filename());
}

}  // namespace brise::test
