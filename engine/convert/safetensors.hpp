// Reader for safetensors files (8-byte little-endian header length, JSON header, raw data), and
// for the shard index model.safetensors.index.json.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "brise/tensor_type.hpp"
#include "engine/gguf/mapped_file.hpp"

namespace brise {

struct SafetensorsTensor {
  std::string name;
  TensorType dtype = TensorType::F32;  // F32, F16 or BF16
  std::vector<uint64_t> shape;         // PyTorch order: shape.back() varies fastest
  uint64_t n_elements = 0;
  std::span<const std::byte> data;
};

class SafetensorsFile {
 public:
  // Maps the file and validates the header: every offset and size against the real file size,
  // dtypes (F32/F16/BF16; others are a clear error), shapes, overlaps.
  static std::unique_ptr<SafetensorsFile> open(const std::filesystem::path& path);
  // Same checks on bytes already in memory (which must outlive the result).
  static std::unique_ptr<SafetensorsFile> parse(std::span<const std::byte> bytes, std::string name);

  const std::string& name() const { return name_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(std::string_view tensor_name) const;

 private:
  SafetensorsFile() = default;
  std::unique_ptr<MappedFile> map_;
  std::string name_;
  std::vector<SafetensorsTensor> tensors_;
};

inline constexpr uint64_t kMaxSafetensorsHeader = 100u << 20;

// model.safetensors.index.json: tensor name -> shard file name (a plain file name in the same
// folder; anything with a path separator or "..", or an empty map, is an error).
std::map<std::string, std::string> read_shard_index(const std::filesystem::path& path);
std::map<std::string, std::string> parse_shard_index(std::string_view text,
                                                     const std::string& name);

}  // namespace brise
