// Writing a file so that a failed or interrupted run never leaves a partial file at the
// destination: data goes to a temporary file in the destination folder, which is renamed over
// the destination only on commit().
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace brise {

class OutputFile {
 public:
  // Creates the temporary file. While it exists, SIGINT/SIGTERM/SIGHUP remove it before the
  // process dies, and SIGXFSZ is ignored so that a file-size limit is reported as an error.
  explicit OutputFile(std::filesystem::path destination);
  // Removes the temporary file unless commit() succeeded.
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  // Buffered; throws brise::Error naming the destination on any write error (disk full, file
  // size limit, I/O error).
  void write(std::span<const std::byte> bytes);
  void write_zeros(uint64_t n);
  uint64_t bytes_written() const { return written_; }

  // Flushes, syncs and renames over the destination.
  void commit();

  const std::filesystem::path& destination() const { return destination_; }
  const std::filesystem::path& temporary() const { return temporary_; }

 private:
  void flush();
  [[noreturn]] void fail(const std::string& what, int err);

  std::filesystem::path destination_;
  std::filesystem::path temporary_;
  int fd_ = -1;
  bool committed_ = false;
  uint64_t written_ = 0;
  std::vector<std::byte> buffer_;
  size_t used_ = 0;
};

}  // namespace brise
