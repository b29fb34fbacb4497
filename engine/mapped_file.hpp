// A read-only memory mapping of a whole file (RAII). Internal to the engine.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>

namespace brise {

class MappedFile {
 public:
  // Throws brise::Error "<path>: cannot open: <reason>" when the file cannot be mapped.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Empty for an empty file (mmap cannot map zero bytes).
  std::span<const std::byte> bytes() const { return {data_, size_}; }

 private:
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace brise
