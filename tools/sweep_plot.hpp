// The plot of `brise bench --sweep --plot FILE.png`: the rows go to FILE.dat, a gnuplot script
// that draws them to FILE.gp, and `gnuplot FILE.gp` draws FILE.png. gnuplot (Debian's
// gnuplot-nox) is an optional tool of this option only: brise needs it nowhere else.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace brise::cli {

// One step of the sweep, with ik_llama.cpp's llama-sweep-bench's columns.
struct SweepRow {
  int64_t pp = 0;    // PP: tokens prefilled
  int64_t tg = 0;    // TG: tokens decoded
  int64_t n_kv = 0;  // N_KV: tokens in the cache before either
  double t_pp_s = 0, s_pp_tok_s = 0, t_tg_s = 0, s_tg_tok_s = 0;
  double tg_bw_fraction = 0;  // decode's weight bytes per second / the machine's read bandwidth
};

class SweepPlot {
 public:
  // Before anything is measured: UsageError unless `png` ends in .png; brise::Error when gnuplot
  // is not on PATH or the three files could not be written (a temporary of each is created in
  // their folder and removed; nothing appears at the destinations until draw()).
  explicit SweepPlot(std::filesystem::path png);

  // Writes FILE.dat and FILE.gp, runs gnuplot on FILE.gp into the PNG's temporary and renames it
  // into place. brise::Error with gnuplot's own messages when it fails; FILE.png is then not
  // written (FILE.gp and FILE.dat stay, to look at).
  void draw(std::span<const SweepRow> rows, const std::string& title);

 private:
  std::filesystem::path png_, script_, data_, gnuplot_;
};

}  // namespace brise::cli
