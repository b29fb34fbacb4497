// Include this instead of <xsimd/xsimd.hpp> in kernels. GCC 12 reports the intentionally
// undefined registers of its own AVX-512 intrinsics (_mm512_undefined_ps, inlined through
// xsimd's max/round/...) as -Wmaybe-uninitialized (GCC bug 105593); the warning is attributed to
// the intrinsic headers, so silencing it around their inclusion keeps it active for our code.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <xsimd/xsimd.hpp>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
