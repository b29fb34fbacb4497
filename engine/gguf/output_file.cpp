#include "brise/output_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>

#include "brise/error.hpp"

namespace brise {
namespace {

// The signal handler may only touch async-signal-safe state: one fixed buffer holding the path
// of the temporary file being written (brise writes one output at a time).
char g_temp_path[4096];
std::atomic<bool> g_temp_active{false};
std::mutex g_install_mutex;
struct sigaction g_previous[4];
constexpr int kCleanupSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

extern "C" void remove_temp_and_die(int sig) {
  if (g_temp_active.load()) ::unlink(g_temp_path);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void install_handlers(const std::string& temp) {
  std::lock_guard lock(g_install_mutex);
  if (g_temp_active.load())
    throw Error("another output file is already being written by this process");
  if (temp.size() >= sizeof g_temp_path) throw Error(temp + ": path too long");
  std::memcpy(g_temp_path, temp.c_str(), temp.size() + 1);
  g_temp_active.store(true);
  struct sigaction sa {};
  sa.sa_handler = remove_temp_and_die;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < std::size(kCleanupSignals); ++i)
    ::sigaction(kCleanupSignals[i], &sa, &g_previous[i]);
  ::signal(SIGXFSZ, SIG_IGN);
}

void remove_handlers() {
  std::lock_guard lock(g_install_mutex);
  for (size_t i = 0; i < std::size(kCleanupSignals); ++i)
    ::sigaction(kCleanupSignals[i], &g_previous[i], nullptr);
  g_temp_active.store(false);
}

constexpr size_t kBufferSize = 8u << 20;

}  // namespace

OutputFile::OutputFile(std::filesystem::path destination) : destination_(std::move(destination)) {
  // The rename at commit() replaces whatever is at the destination: never a device, FIFO,
  // socket or folder (e.g. -o /dev/null run as root would replace the device node).
  struct stat st {};
  if (::stat(destination_.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw Error(destination_.string() +
                ": exists and is not a regular file (a device, FIFO, socket or folder); brise "
                "writes a new file and renames it into place, so give the path of a file");
  const auto folder = destination_.has_parent_path() ? destination_.parent_path() : ".";
  std::string name = ".";  // built by appends: gcc 12 warns falsely (-Wrestrict) on "." + string
  name += destination_.filename().string();
  name += ".tmp-XXXXXX";
  std::string pattern = (folder / name).string();
  // Block the cleanup signals while the file appears and the handler learns its name.
  sigset_t block, old;
  sigemptyset(&block);
  for (int s : kCleanupSignals) sigaddset(&block, s);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  fd_ = ::mkstemp(pattern.data());
  const int err = errno;
  if (fd_ >= 0) {
    temporary_ = pattern;
    try {
      install_handlers(pattern);
    } catch (...) {
      ::close(fd_);
      ::unlink(pattern.c_str());
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      throw;
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (fd_ < 0)
    throw Error(destination_.string() + ": cannot create a temporary file in '" + folder.string() +
                "': " + std::strerror(err));
  ::fchmod(fd_, 0644);
  buffer_.resize(kBufferSize);
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temporary_.empty()) ::unlink(temporary_.c_str());
  if (!temporary_.empty()) remove_handlers();
}

void OutputFile::fail(const std::string& what, int err) {
  throw Error(destination_.string() + ": " + what + ": " + std::strerror(err) +
              " (nothing was written to the destination)");
}

void OutputFile::flush() {
  size_t done = 0;
  while (done < used_) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, used_ - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write failed", errno);
    }
    if (n == 0) fail("write failed", EIO);
    done += static_cast<size_t>(n);
  }
  used_ = 0;
}

void OutputFile::write(std::span<const std::byte> bytes) {
  if (committed_) throw Error(destination_.string() + ": write after commit");
  while (!bytes.empty()) {
    const size_t n = std::min(bytes.size(), buffer_.size() - used_);
    std::memcpy(buffer_.data() + used_, bytes.data(), n);
    used_ += n;
    written_ += n;
    bytes = bytes.subspan(n);
    if (used_ == buffer_.size()) flush();
  }
}

void OutputFile::write_zeros(uint64_t n) {
  static constexpr std::byte kZeros[256] = {};
  while (n > 0) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof kZeros));
    write({kZeros, k});
    n -= k;
  }
}

void OutputFile::commit() {
  flush();
  if (::fsync(fd_) != 0) fail("fsync failed", errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    fail("close failed", errno);
  }
  fd_ = -1;
  if (::rename(temporary_.c_str(), destination_.c_str()) != 0) fail("rename failed", errno);
  committed_ = true;
}

}  // namespace brise
