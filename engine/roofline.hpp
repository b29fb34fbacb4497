// Measured machine roofline: sustained DRAM read bandwidth and f32 FMA peak, so benchmarks and
// `brise bench` can report what fraction of the hardware a kernel reaches.
#pragma once

namespace brise {

// Read bandwidth in GB/s (1e9 bytes per second): `threads` OpenMP threads each sum their own
// contiguous part of a buffer far larger than the last-level cache (512 MiB) with SIMD loads; the
// best of several passes after a warm-up pass. Takes 0.3-1.5 s (mostly faulting the buffer in).
double measure_read_bandwidth_gbs(int threads);

// f32 FMA peak in GFLOP/s (an FMA counts 2 flops): `threads` OpenMP threads each run independent
// FMA chains held in registers; the best of many short runs after a warm-up. Takes ~0.2 s.
double measure_fma_peak_gflops(int threads);

}  // namespace brise
