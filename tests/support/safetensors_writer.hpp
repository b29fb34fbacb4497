// Writes safetensors files for tests (independent of brise's reader): header length, JSON
// header, data, exactly as the format describes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace brise::test {

struct StTensor {
  std::string name;
  std::string dtype;  // "F32", "BF16", ... (any string, to test rejection)
  std::vector<uint64_t> shape;
  std::vector<std::byte> data;
};

void write_safetensors(const std::filesystem::path& path, const std::vector<StTensor>& tensors);

// Reads every tensor of a safetensors file with a plain JSON parse (for comparisons).
std::vector<StTensor> read_safetensors(const std::filesystem::path& path);

// Copies a checkpoint folder (all regular files) into `to`.
void copy_folder(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace brise::test
