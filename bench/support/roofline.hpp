// Measured machine roofline: sustained DRAM read bandwidth, f32 FMA peak and int8 dot-product peak,
// measured with the kernel set in use, so benchmarks and `brise bench` can report what fraction of
// the hardware a kernel reaches.
#pragma once

#include <cstddef>
#include <span>

namespace brise {

// Read bandwidth in GB/s (1e9 bytes per second): `threads` OpenMP threads each sum their own
// contiguous part of a buffer far larger than the last-level cache (512 MiB) with SIMD loads; the
// best of several passes after a warm-up pass. Takes 0.3-1.5 s (mostly faulting the buffer in).
double measure_read_bandwidth_gbs(int threads);

// Read bandwidth in GB/s over the given memory itself (a model's weights): the
// regions are cut into 16 MiB pieces that `threads` OpenMP threads sum with SIMD loads; the best
// of `passes` passes. Decode cannot read its weights faster than this; on a machine whose memory
// serves a working set as large as the model slower than a small buffer (a VM whose host does not
// keep all of its memory resident), this is lower than measure_read_bandwidth_gbs.
double measure_region_read_gbs(std::span<const std::span<const std::byte>> regions, int threads,
                               int passes);

// f32 FMA peak in GFLOP/s (an FMA counts 2 flops): `threads` OpenMP threads each run independent
// FMA chains held in registers; the best of many short runs after a warm-up. Takes ~0.2 s.
double measure_fma_peak_gflops(int threads);

// Int8 dot-product peak in GOP/s (a multiply-add counts 2), measured the same way with the kernel
// set's int8 instruction (vpdpbusd, or vpmaddubsw + vpmaddwd): the ceiling of quantized prefill.
double measure_int8_peak_gops(int threads);

}  // namespace brise
