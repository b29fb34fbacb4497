// `brise bench --sweep`: prefill and decode speed at every step of depth up to the context.
#pragma once

#include <cstdint>
#include <string>

#include "session_args.hpp"

namespace brise::cli {

struct SweepRequest {
  const SessionArgs& session_args;
  int64_t step;      // -p: tokens prefilled per step, the distance between depths
  int64_t decode;    // -n: tokens decoded at each depth
  bool json;         // one JSON object at the end instead of a table row by row
  std::string plot;  // --plot FILE.png, or empty
};

// Runs the sweep and prints it; returns the exit code. Bad input (a context too small for one
// step, gnuplot missing for --plot, a plot path that cannot be written) is a brise::Error or
// UsageError before anything is measured.
int run_bench_sweep(const SweepRequest& request);

}  // namespace brise::cli
