// Memory for a matrix that the decode streams once per token (the engine's copies of the weights,
// bench_matmul's): on 2 MiB pages (where the kernel grants them) the stream crosses 512 times
// fewer pages than on 4 KiB ones, so fewer TLB misses stall the prefetches, and a hardware
// prefetcher, which stops at every 4 KiB page, runs on.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>

namespace brise {

inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// The alignment of allocate_on_huge_pages(bytes): a 2 MiB page from 2 MiB on, 64 bytes below.
inline size_t huge_page_alignment(size_t bytes) {
  return bytes >= kHugePageBytes ? kHugePageBytes : 64;
}
// The bytes allocate_on_huge_pages(bytes) allocates: `bytes` rounded up to its alignment.
inline size_t huge_page_allocation_bytes(size_t bytes) {
  const size_t align = huge_page_alignment(bytes);
  return (bytes + align - 1) / align * align;
}

// std::aligned_alloc of huge_page_allocation_bytes(bytes) (free it with std::free), aligned to a
// 2 MiB page and advised onto such pages from 2 MiB on, to 64 bytes below; nullptr when out of
// memory.
inline void* allocate_on_huge_pages(size_t bytes) {
  const size_t align = huge_page_alignment(bytes);
  const size_t size = huge_page_allocation_bytes(bytes);
  void* p = std::aligned_alloc(align, size);
#ifdef MADV_HUGEPAGE
  if (p && align == kHugePageBytes)
    ::madvise(p, size, MADV_HUGEPAGE);  // a hint; no error if refused
#endif
  return p;
}

}  // namespace brise
