// Progress lines on a terminal: redrawn in place on stderr, silent when stderr is not a tty.
#pragma once

#include <cstdint>
#include <string>

#include "brise/write_progress.hpp"

namespace brise::cli {

class ProgressLine {
 public:
  ProgressLine();
  ~ProgressLine();
  bool enabled() const { return enabled_; }
  // Redraws the line (rate-limited to a few updates per second unless `force`).
  void update(const std::string& text, bool force = false);
  // Ends the line so that later output starts on a fresh line.
  void finish();
  // Erases the line, so that output on the terminal (a table's row on stdout) takes its place.
  void clear();

 private:
  bool enabled_;
  bool drawn_ = false;
  int64_t last_ms_ = -1000;
};

// Draws the progress of a model file being written (brise convert, brise quantize) on `line`, as
// "[ 12/291] blk.1.attn_q.weight   1.2 GB / 4.1 GB  350.0 MB/s"; nothing once it is complete.
WriteProgressCallback write_progress_on(ProgressLine& line);

}  // namespace brise::cli
