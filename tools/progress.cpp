#include "progress.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "format.hpp"

namespace brise::cli {

ProgressLine::ProgressLine() : enabled_(::isatty(STDERR_FILENO) == 1) {}

ProgressLine::~ProgressLine() {
  finish();
}

void ProgressLine::update(const std::string& text, bool force) {
  if (!enabled_) return;
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  if (!force && now - last_ms_ < 200) return;
  last_ms_ = now;
  std::fprintf(stderr, "\r\033[K%s", text.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressLine::finish() {
  if (drawn_) std::fputc('\n', stderr);
  drawn_ = false;
}

void ProgressLine::clear() {
  if (drawn_) {
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }
  drawn_ = false;
}

WriteProgressCallback write_progress_on(ProgressLine& line) {
  return [&line](const WriteProgress& pr) {
    if (pr.tensor_index >= pr.n_tensors) return;
    char buf[256];
    const double rate = pr.seconds > 0 ? pr.bytes_done / pr.seconds : 0;
    std::snprintf(buf, sizeof buf, "[%3zu/%zu] %-28.*s %s / %s  %s/s", pr.tensor_index + 1,
                  pr.n_tensors, static_cast<int>(pr.tensor_name.size()), pr.tensor_name.data(),
                  format_bytes(pr.bytes_done).c_str(), format_bytes(pr.bytes_total).c_str(),
                  format_bytes(static_cast<uint64_t>(rate)).c_str());
    line.update(buf);
  };
}

}  // namespace brise::cli
