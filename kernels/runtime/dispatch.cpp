// The public kernel functions, each a call into the kernel set in use, and the choice of that set.
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernels/built_kernel_sets.hpp"
#include "kernels/kernel_set.hpp"
#include "kernels/runtime/cpu_features.hpp"

namespace brise::kernels {

#define BRISE_DECLARE_SET(set)       \
  namespace set {                    \
  extern const KernelSet kKernelSet; \
  }
BRISE_BUILT_KERNEL_SETS(BRISE_DECLARE_SET)
#undef BRISE_DECLARE_SET

namespace {

struct SetRequirements {
  std::string_view name;
  std::string_view instructions;
  bool (*runs)(const CpuFeatures&);
};

// What each set is compiled for (kernels/CMakeLists.txt) and so needs from the CPU.
constexpr SetRequirements kRequirements[] = {
    {"avx512", "AVX-512 F/BW/VL/DQ/CD + VNNI + BF16 (x86-64-v4)",
     [](const CpuFeatures& f) { return f.avx512 && f.avx512_vnni && f.avx512_bf16; }},
    {"avx2vnni", "AVX2 + FMA + F16C + AVX-VNNI (x86-64-v3)",
     [](const CpuFeatures& f) { return f.avx2 && f.avx_vnni; }},
    {"avx2", "AVX2 + FMA + F16C (x86-64-v3)", [](const CpuFeatures& f) { return f.avx2; }},
#if defined(__AVX__)
    {"generic", "the build machine's instructions (-march=native)",
     [](const CpuFeatures&) { return true; }},
#else
    {"generic", "x86-64 baseline (SSE2), portable C++", [](const CpuFeatures&) { return true; }},
#endif
};

const SetRequirements& requirements(std::string_view name) {
  for (const auto& r : kRequirements)
    if (r.name == name) return r;
  throw std::logic_error("kernel set without requirements: " + std::string(name));
}

struct Built {
  const KernelSet* set;
  const SetRequirements* needs;
};

std::vector<Built> built() {
  std::vector<Built> sets;
#define BRISE_LIST_SET(set) sets.push_back({&set::kKernelSet, &requirements(#set)});
  BRISE_BUILT_KERNEL_SETS(BRISE_LIST_SET)
#undef BRISE_LIST_SET
  return sets;
}

// The set named `forced` (from BRISE_ISA or use_kernel_set), or the best this CPU runs.
const KernelSet& choose(const char* forced) {
  const CpuFeatures& cpu = cpu_features();
  const auto sets = built();
  if (forced && *forced) {
    std::string names;
    for (const auto& b : sets) {
      if (b.set->name == forced) {
        if (!b.needs->runs(cpu))
          throw std::runtime_error(std::string("BRISE_ISA=") + forced +
                                   ": this CPU cannot run that kernel set (it needs " +
                                   std::string(b.needs->instructions) + ")");
        return *b.set;
      }
      names += (names.empty() ? "" : ", ") + std::string(b.set->name);
    }
    throw std::runtime_error(std::string("BRISE_ISA=") + forced +
                             ": no such kernel set in this build (it has " + names + ")");
  }
  for (const auto& b : sets)
    if (b.needs->runs(cpu)) return *b.set;
  return *sets.back().set;  // generic runs everywhere
}

std::atomic<const KernelSet*> g_in_use{nullptr};

}  // namespace

const KernelSet& kernel_set() {
  if (const KernelSet* set = g_in_use.load(std::memory_order_acquire)) return *set;
  static const KernelSet& chosen = choose(std::getenv("BRISE_ISA"));
  const KernelSet* expected = nullptr;
  g_in_use.compare_exchange_strong(expected, &chosen, std::memory_order_acq_rel);
  return *g_in_use.load(std::memory_order_acquire);
}

void use_kernel_set(std::string_view name) {
  const std::string n(name);
  g_in_use.store(&choose(n.c_str()), std::memory_order_release);
}

std::vector<KernelSetInfo> built_kernel_sets() {
  std::vector<KernelSetInfo> info;
  for (const auto& b : built())
    info.push_back({b.set->name, b.needs->instructions, b.needs->runs(cpu_features())});
  return info;
}

KernelSetInfo active_kernel_set() {
  const KernelSet& set = kernel_set();
  for (const auto& i : built_kernel_sets())
    if (i.name == set.name) return i;
  return {set.name, "", true};
}

#define BRISE_KERNEL_DISPATCH(ret, fn, params, args) \
  ret fn params {                                    \
    return kernel_set().fn args;                     \
  }
BRISE_KERNEL_LIST(BRISE_KERNEL_DISPATCH)
#undef BRISE_KERNEL_DISPATCH

}  // namespace brise::kernels
