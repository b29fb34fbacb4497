// What the kernel set being compiled may use. Every kernels/*.cpp is compiled once per kernel set
// (kernels/CMakeLists.txt) with -DBRISE_ISA=<set> and that set's -march flags, and puts its SIMD
// code in namespace brise::kernels::BRISE_ISA: each set's inline functions and templates are
// distinct symbols, so the linker never mixes code built for different instruction sets.
//
// BRISE_ISA_GENERIC is defined for the one set compiled with the library's own flags; code that
// exists once (scalar references, the registry, the dispatcher) is compiled only there.
#pragma once

// Before the intrinsics headers (GCC 12 false positives, see there).
#include "kernels/simd.hpp"

#if !defined(BRISE_ISA)
#error \
    "kernels are compiled once per kernel set: BRISE_ISA must name the set (kernels/CMakeLists.txt)"
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#define BRISE_AVX512 1
#endif
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define BRISE_AVX2 1
#endif
#if defined(BRISE_AVX512) && defined(__AVX512VNNI__)
#define BRISE_AVX512_VNNI 1
#endif
#if defined(__AVXVNNI__)
#define BRISE_AVX_VNNI 1
#endif
#if defined(BRISE_AVX512) || defined(BRISE_AVX2) || defined(__F16C__) || defined(__SSE2__)
#include <immintrin.h>
#endif

#define BRISE_STRINGIFY_(x) #x
#define BRISE_STRINGIFY(x) BRISE_STRINGIFY_(x)
// The set's name as a string, e.g. "avx512".
#define BRISE_ISA_NAME BRISE_STRINGIFY(BRISE_ISA)
