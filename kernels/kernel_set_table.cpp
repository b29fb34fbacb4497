// This kernel set's entry in the dispatcher's table (kernels/runtime/dispatch.cpp).
#include "kernels/isa.hpp"
#include "kernels/kernel_set.hpp"

namespace brise::kernels::BRISE_ISA {

extern const KernelSet kKernelSet;
const KernelSet kKernelSet{BRISE_ISA_NAME,
#define BRISE_KERNEL_ADDRESS(ret, fn, params, args) &fn,
                           BRISE_KERNEL_LIST(BRISE_KERNEL_ADDRESS)
#undef BRISE_KERNEL_ADDRESS
};

}  // namespace brise::kernels::BRISE_ISA
