// The prefetch of the decode kernels, which stream every weight once: a hardware prefetcher alone
// leaves the memory idle between a stream's pages, so each stream asks for its bytes this far
// ahead of where it reads.
#pragma once

#include <cstddef>
#include <cstdint>

namespace brise::kernels {

inline constexpr size_t kStreamPrefetchBytes = 2048;

// Hints to fetch `bytes` of a stream `distance` bytes ahead of p, into every cache level
// (kLocality 3: prefetcht0) or only the outer ones (1: prefetcht2, L2 and L3 on Zen 4). The
// address may lie past the end of the matrix, which a prefetch never faults on; it is formed as an
// integer so that no out-of-bounds pointer is ever made.
template <int kLocality = 3>
inline void prefetch_ahead(const uint8_t* p, size_t distance, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64)
    __builtin_prefetch(
        reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) + distance + off), 0,
        kLocality);
}

}  // namespace brise::kernels
