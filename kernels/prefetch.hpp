// The prefetch of the decode kernels, which stream every weight once: a hardware prefetcher alone
// leaves the memory idle between a stream's pages, so each stream asks for its bytes this far
// ahead of where it reads.
#pragma once

#include <cstddef>
#include <cstdint>

namespace brise::kernels {

inline constexpr size_t kStreamPrefetchBytes = 2048;

// Hints to fetch `bytes` of a stream `distance` bytes ahead of p. The address may lie past the end
// of the matrix, which a prefetch never faults on; it is formed as an integer so that no
// out-of-bounds pointer is ever made.
inline void prefetch_ahead(const uint8_t* p, size_t distance, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64)
    __builtin_prefetch(
        reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) + distance + off));
}

}  // namespace brise::kernels
