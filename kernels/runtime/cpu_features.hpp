// The x86 instructions this CPU (and its operating system) lets a program use, read with CPUID.
#pragma once

namespace brise::kernels {

struct CpuFeatures {
  bool avx2 = false;      // with AVX, FMA, F16C, BMI1/2, LZCNT, MOVBE: x86-64-v3
  bool avx_vnni = false;  // VEX-encoded vpdpbusd
  bool avx512 = false;    // F, BW, VL, DQ, CD: x86-64-v4
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
};

// Read once; the OS must save the YMM/ZMM state for the AVX/AVX-512 bits to count.
const CpuFeatures& cpu_features();

}  // namespace brise::kernels
