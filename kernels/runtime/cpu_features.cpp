#include "kernels/runtime/cpu_features.hpp"

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace brise::kernels {
namespace {

#if defined(__x86_64__) || defined(__i386__)
struct Regs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

Regs cpuid(uint32_t leaf, uint32_t subleaf) {
  Regs r;
  if (!__get_cpuid_count(leaf, subleaf, &r.eax, &r.ebx, &r.ecx, &r.edx)) return Regs{};
  return r;
}

// XCR0: which register states the OS saves on a context switch.
uint64_t xcr0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

bool bit(uint32_t reg, int b) {
  return (reg >> b) & 1u;
}

CpuFeatures detect() {
  CpuFeatures f;
  const Regs l1 = cpuid(1, 0);
  const bool osxsave = bit(l1.ecx, 27);
  if (!osxsave) return f;
  const uint64_t xcr = xcr0();
  const bool os_avx = (xcr & 0x6) == 0x6;                 // SSE and AVX state
  const bool os_avx512 = os_avx && (xcr & 0xE0) == 0xE0;  // opmask, ZMM_Hi256, Hi16_ZMM
  const Regs l7 = cpuid(7, 0);
  const Regs l7s1 = cpuid(7, 1);
  const Regs ext = cpuid(0x80000001u, 0);
  f.avx2 = os_avx && bit(l1.ecx, 28) /*AVX*/ && bit(l1.ecx, 12) /*FMA*/ &&
           bit(l1.ecx, 29) /*F16C*/ && bit(l1.ecx, 22) /*MOVBE*/ && bit(l7.ebx, 5) /*AVX2*/ &&
           bit(l7.ebx, 3) /*BMI1*/ && bit(l7.ebx, 8) /*BMI2*/ && bit(ext.ecx, 5) /*LZCNT*/;
  f.avx_vnni = f.avx2 && bit(l7s1.eax, 4);
  f.avx512 = f.avx2 && os_avx512 && bit(l7.ebx, 16) /*F*/ && bit(l7.ebx, 17) /*DQ*/ &&
             bit(l7.ebx, 28) /*CD*/ && bit(l7.ebx, 30) /*BW*/ && bit(l7.ebx, 31) /*VL*/;
  f.avx512_vnni = f.avx512 && bit(l7.ecx, 11);
  f.avx512_bf16 = f.avx512 && bit(l7s1.eax, 5);
  return f;
}
#else
CpuFeatures detect() {
  return CpuFeatures{};
}
#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

}  // namespace brise::kernels
