// The public view of the kernel-set choice (kernels/kernel_set.hpp).
#include "brise/system.hpp"

#include <stdexcept>

#include "brise/error.hpp"
#include "kernels/kernel_set.hpp"

namespace brise {
namespace {

KernelSetInfo info(const kernels::KernelSetInfo& s) {
  return {std::string(s.name), std::string(s.instructions), s.runs_here};
}

}  // namespace

std::vector<KernelSetInfo> built_kernel_sets() {
  std::vector<KernelSetInfo> sets;
  for (const auto& s : kernels::built_kernel_sets()) sets.push_back(info(s));
  return sets;
}

KernelSetInfo active_kernel_set() {
  try {
    return info(kernels::active_kernel_set());
  } catch (const std::runtime_error& e) {
    throw Error(e.what());
  }
}

}  // namespace brise
