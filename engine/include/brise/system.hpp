// What this machine runs: the kernel sets of this build (one per instruction set, chosen at run
// time; BRISE_ISA=<set> forces a lower one) and the one in use.
#pragma once

#include <string>
#include <vector>

namespace brise {

struct KernelSetInfo {
  std::string name;          // "avx512", "avx2vnni", "avx2", "generic"
  std::string instructions;  // what the set uses
  bool runs_here = false;    // this CPU has every instruction the set uses
};

// Every set this build holds, best first.
std::vector<KernelSetInfo> built_kernel_sets();
// The set the kernels use: the best this CPU runs, or the one BRISE_ISA names. Throws
// brise::Error when BRISE_ISA names a set this build lacks or this CPU cannot run.
KernelSetInfo active_kernel_set();

}  // namespace brise
