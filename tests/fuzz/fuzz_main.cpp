// libFuzzer entry points for one target of fuzz_targets.hpp, chosen at compile time by
// BRISE_FUZZ_TARGET (tests/fuzz/CMakeLists.txt builds this file once per target).
#include <cstdio>
#include <cstdlib>

#include "fuzz/fuzz_targets.hpp"

#ifndef BRISE_FUZZ_TARGET
#error "define BRISE_FUZZ_TARGET to a target name of fuzz_targets.hpp"
#endif

namespace {
const brise::fuzz::Target* g_target = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_target = brise::fuzz::find_target(BRISE_FUZZ_TARGET);
  if (!g_target) {
    std::fprintf(stderr, "unknown fuzz target '%s'\n", BRISE_FUZZ_TARGET);
    std::exit(2);
  }
  if (g_target->needs_testdata) {
    const char* data = std::getenv("BRISE_TESTDATA");
    if (!data || !*data) {
      std::fprintf(stderr, "fuzz target '%s' needs BRISE_TESTDATA (the shared test data)\n",
                   BRISE_FUZZ_TARGET);
      std::exit(2);
    }
    try {
      brise::fuzz::load_fixed_tokenizers(data);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cannot load the tokenizers: %s\n", e.what());
      std::exit(2);
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  g_target->run({data, size});
  return 0;
}
