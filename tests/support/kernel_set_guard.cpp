// Linked into the test programs that ctest also runs once per kernel set (isa:<set>: copies with
// BRISE_ISA=<set>, tests/CMakeLists.txt): on a CPU that cannot run that set, every test of the
// copy is skipped with the reason instead of failing.
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
    for (const auto& set : brise::kernels::built_kernel_sets())
      if (set.name == isa && !set.runs_here)
        GTEST_SKIP() << "this CPU cannot run the " << isa << " kernel set (" << set.instructions
                     << ")";
  }
};

[[maybe_unused]] ::testing::Environment* const kGuard =
    ::testing::AddGlobalTestEnvironment(new KernelSetGuard);

}  // namespace
