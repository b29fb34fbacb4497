// Locating ../shared (the reference data) from tests.
//
// BRISE_TESTDATA names the folder. When it is set (as .ci/run does) and the folder is missing,
// tests that need it FAIL; when it is unset, the default is ../shared beside the source tree and
// tests that need it SKIP with a visible message if it is absent.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace brise::test {

// The data folder, or nullopt (with `why` set) when it cannot be used.
std::optional<std::filesystem::path> testdata_dir(std::string* why);
// True when BRISE_TESTDATA was set explicitly, so missing data is a failure.
bool testdata_required();

std::vector<std::byte> read_file_bytes(const std::filesystem::path& path);
std::string read_file_text(const std::filesystem::path& path);
std::vector<float> read_f32_file(const std::filesystem::path& path);
// Writes the file anew; throws std::runtime_error when it cannot.
void write_file_bytes(const std::filesystem::path& path, std::span<const std::byte> bytes);
void write_file_text(const std::filesystem::path& path, std::string_view text);

// A fresh empty directory under the build tree for one test's outputs.
std::filesystem::path scratch_dir(const std::string& test_name);

// Path of the built `brise` executable.
std::filesystem::path cli_path();

// Runs a command through /bin/sh, returning exit status (or 128+signal) and captured stdout.
struct CommandResult {
  int status = -1;  // exit code, or 128 + signal number when killed by a signal
  bool signaled = false;
  std::string out;  // stdout
  std::string err;  // stderr
};
CommandResult run_command(const std::string& command);

}  // namespace brise::test

// Use at the top of a test body: `BRISE_REQUIRE_TESTDATA(dir);` declares `dir`.
#define BRISE_REQUIRE_TESTDATA(var)                                 \
  std::filesystem::path var;                                        \
  {                                                                 \
    std::string brise_why_;                                         \
    auto brise_dir_ = ::brise::test::testdata_dir(&brise_why_);     \
    if (!brise_dir_) {                                              \
      if (::brise::test::testdata_required()) FAIL() << brise_why_; \
      GTEST_SKIP() << "SKIPPED (no test data): " << brise_why_;     \
    }                                                               \
    var = *brise_dir_;                                              \
  }
