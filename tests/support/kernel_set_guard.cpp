// Linked into the test programs that ctest also runs once per kernel set (isa:<set>: copies with
// BRISE_ISA=<set>, tests/CMakeLists.txt): on a CPU that cannot run that set, every test of the
// copy is skipped with the reason instead of failing; the copy for the best set this CPU runs is
// skipped too, since the plain run of the same tests already uses that set (and CI's time is
// better spent on the lower sets).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "kernels/kernel_set.hpp"

namespace {

class KernelSetGuard : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* isa = std::getenv("BRISE_ISA");
    if (!isa || !*isa) return;
    bool best = true;  // sets are listed best first
    for (const auto& set : brise::kernels::built_kernel_sets()) {
      if (set.name == isa && !set.runs_here)
        GTEST_SKIP() << "this CPU cannot run the " << isa << " kernel set (" << set.instructions
                     << ")";
      if (set.name == isa && best)
        GTEST_SKIP() << isa
                     << " is the best kernel set this CPU runs: the tests without the isa:" << isa
                     << ": prefix ran it";
      if (set.runs_here) best = false;
    }
  }
};

[[maybe_unused]] ::testing::Environment* const kGuard =
    ::testing::AddGlobalTestEnvironment(new KernelSetGuard);

}  // namespace
