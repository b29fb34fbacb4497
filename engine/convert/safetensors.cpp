#include "engine/convert/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include "brise/error.hpp"
#include "engine/gguf/json_util.hpp"

namespace brise {
namespace {

std::optional<TensorType> dtype_from_name(const std::string& dtype) {
  if (dtype == "F32") return TensorType::F32;
  if (dtype == "F16") return TensorType::F16;
  if (dtype == "BF16") return TensorType::BF16;
  return std::nullopt;
}

uint64_t read_u64_le(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Returns the offsets pair or throws naming the tensor.
std::pair<uint64_t, uint64_t> read_offsets(const nlohmann::json& entry, const std::string& where) {
  const auto it = entry.find("data_offsets");
  if (it == entry.end() || !it->is_array() || it->size() != 2 || !(*it)[0].is_number_unsigned() ||
      !(*it)[1].is_number_unsigned())
    throw Error(where + ": 'data_offsets' must be two non-negative integers");
  return {(*it)[0].get<uint64_t>(), (*it)[1].get<uint64_t>()};
}

}  // namespace

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  auto map = std::make_unique<MappedFile>(path);
  auto file = parse(map->bytes(), path.string());
  file->map_ = std::move(map);
  return file;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::parse(std::span<const std::byte> bytes,
                                                        std::string name) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->name_ = std::move(name);
  const std::string& fname = file->name_;
  if (bytes.size() < 8)
    throw Error(fname + ": header length: file is " + std::to_string(bytes.size()) +
                " bytes, too short for a safetensors file");
  const uint64_t header_len = read_u64_le(bytes.data());
  if (header_len > bytes.size() - 8)
    throw Error(fname + ": header length " + std::to_string(header_len) +
                " runs past the end of the file (" + std::to_string(bytes.size()) + " bytes)");
  if (header_len > kMaxSafetensorsHeader)
    throw Error(fname + ": header length " + std::to_string(header_len) + " exceeds the limit of " +
                std::to_string(kMaxSafetensorsHeader) + " bytes");
  const std::string_view header(reinterpret_cast<const char*>(bytes.data() + 8), header_len);
  const nlohmann::json j = json_util::parse(header, fname + ": header");
  if (!j.is_object()) throw Error(fname + ": header: the JSON header must be an object");

  const std::span<const std::byte> data = bytes.subspan(8 + header_len);
  struct Range {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Range> ranges;
  for (const auto& [key, entry] : j.items()) {
    if (key == "__metadata__") continue;
    const std::string where = fname + ": tensor '" + key + "'";
    if (!entry.is_object()) throw Error(where + ": entry must be an object");
    const auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string()) throw Error(where + ": missing 'dtype'");
    const auto dtype = dtype_from_name(dt->get<std::string>());
    if (!dtype)
      throw Error(where + ": dtype " + dt->get<std::string>() +
                  " is not supported (brise reads F32, F16, BF16)");
    const auto sh = entry.find("shape");
    if (sh == entry.end() || !sh->is_array() || sh->size() > 8)
      throw Error(where + ": 'shape' must be an array of at most 8 dimensions");
    SafetensorsTensor t;
    t.name = key;
    t.dtype = *dtype;
    t.n_elements = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned())
        throw Error(where + ": shape entries must be non-negative integers");
      const uint64_t n = d.get<uint64_t>();
      if (n != 0 && t.n_elements > std::numeric_limits<uint64_t>::max() / n)
        throw Error(where + ": shape overflows");
      t.n_elements *= n;
      t.shape.push_back(n);
    }
    const uint64_t elem = tensor_type_info(t.dtype).block_bytes;
    if (t.n_elements > std::numeric_limits<uint64_t>::max() / elem)
      throw Error(where + ": shape overflows");
    const auto [begin, end] = read_offsets(entry, where);
    if (begin > end) throw Error(where + ": data_offsets begin after they end");
    if (end > data.size())
      throw Error(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                  ") run past the end of the data (" + std::to_string(data.size()) + " bytes)");
    if (end - begin != t.n_elements * elem)
      throw Error(where + ": data is " + std::to_string(end - begin) +
                  " bytes but shape and dtype need " + std::to_string(t.n_elements * elem));
    t.data = data.subspan(begin, end - begin);
    ranges.push_back({begin, end, file->tensors_.size()});
    file->tensors_.push_back(std::move(t));
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].begin < ranges[i - 1].end)
      throw Error(fname + ": tensors '" + file->tensors_[ranges[i - 1].index].name + "' and '" +
                  file->tensors_[ranges[i].index].name + "' overlap");
  return file;
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view tensor_name) const {
  for (const auto& t : tensors_)
    if (t.name == tensor_name) return &t;
  return nullptr;
}

namespace {

std::map<std::string, std::string> shard_index_from_json(const nlohmann::json& j,
                                                         const std::string& name) {
  const auto wm = j.is_object() ? j.find("weight_map") : j.end();
  if (wm == j.end() || !wm->is_object() || wm->empty())
    throw Error(name + ": 'weight_map' must be a non-empty object");
  std::map<std::string, std::string> map;
  for (const auto& [tensor, shard] : wm->items()) {
    if (!shard.is_string())
      throw Error(name + ": weight_map entry '" + tensor + "' must name a file");
    const std::string file = shard.get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos ||
        file.find('\\') != std::string::npos || file == "." || file == "..")
      throw Error(name + ": weight_map entry '" + tensor + "' names '" + file +
                  "', which is not a file in the checkpoint folder");
    map.emplace(tensor, file);
  }
  return map;
}

}  // namespace

std::map<std::string, std::string> parse_shard_index(std::string_view text,
                                                     const std::string& name) {
  return shard_index_from_json(json_util::parse(text, name), name);
}

std::map<std::string, std::string> read_shard_index(const std::filesystem::path& path) {
  return shard_index_from_json(json_util::parse_file(path.string()), path.string());
}

}  // namespace brise
