#include "support/testdata.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <stdexcept>

namespace brise::test {
namespace fs = std::filesystem;

bool testdata_required() {
  const char* env = std::getenv("BRISE_TESTDATA");
  return env != nullptr && *env != '\0';
}

std::optional<fs::path> testdata_dir(std::string* why) {
  const char* env = std::getenv("BRISE_TESTDATA");
  fs::path dir = (env && *env) ? fs::path(env) : fs::path(BRISE_SOURCE_DIR) / ".." / "shared";
  std::error_code ec;
  if (!fs::is_regular_file(dir / "README-data.md", ec)) {
    if (why) {
      *why = "test data not found at '" + dir.string() + "' (" +
             ((env && *env) ? "BRISE_TESTDATA is set" : "default ../shared; set BRISE_TESTDATA") +
             ")";
    }
    return std::nullopt;
  }
  return fs::weakly_canonical(dir);
}

std::vector<std::byte> read_file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  if (!chars.empty()) std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

std::string read_file_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<float> read_f32_file(const fs::path& path) {
  auto bytes = read_file_bytes(path);
  if (bytes.size() % 4 != 0) throw std::runtime_error(path.string() + ": size not a multiple of 4");
  std::vector<float> v(bytes.size() / 4);
  if (!v.empty()) std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

void write_file_text(const fs::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

void write_file_bytes(const fs::path& path, std::span<const std::byte> bytes) {
  write_file_text(path, {reinterpret_cast<const char*>(bytes.data()), bytes.size()});
}

fs::path scratch_dir(const std::string& test_name) {
  // ctest runs the cases of one test program as parallel processes, so each process gets its
  // own folder; all are removed when the process exits (set BRISE_KEEP_SCRATCH to keep them).
  struct Folders {
    std::mutex mutex;
    std::vector<fs::path> paths;
    ~Folders() {
      if (const char* keep = std::getenv("BRISE_KEEP_SCRATCH"); keep && *keep) return;
      std::error_code ec;
      for (const auto& p : paths) fs::remove_all(p, ec);
    }
  };
  static Folders folders;
  fs::path dir =
      fs::path(BRISE_BINARY_DIR) / "test-scratch" / (test_name + "." + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::lock_guard lock(folders.mutex);
  folders.paths.push_back(dir);
  return dir;
}

fs::path cli_path() {
  return fs::path(BRISE_CLI_PATH);
}

CommandResult run_command(const std::string& command) {
  // stderr goes to a temporary file so that both streams can be inspected.
  const fs::path err_path =
      fs::temp_directory_path() /
      ("brise-test-stderr-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()));
  const std::string full = command + " 2>'" + err_path.string() + "'";
  CommandResult result;
  FILE* pipe = ::popen(full.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed: " + command);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) result.out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  if (WIFEXITED(status)) {
    result.status = WEXITSTATUS(status);
    // /bin/sh reports a child killed by signal N as exit status 128 + N.
    result.signaled = result.status > 128;
  } else if (WIFSIGNALED(status)) {
    result.status = 128 + WTERMSIG(status);
    result.signaled = true;
  }
  std::error_code ec;
  if (fs::exists(err_path, ec)) {
    result.err = read_file_text(err_path);
    fs::remove(err_path, ec);
  }
  return result;
}

}  // namespace brise::test
