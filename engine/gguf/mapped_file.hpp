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

  // Drops the whole pages inside `part` (a part of bytes()) from this process's resident memory;
  // they stay in the page cache and reading them again maps them back from the file.
  void release(std::span<const std::byte> part) const;

 private:
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace brise
