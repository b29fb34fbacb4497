// Machine probes for the measured roofline (bench/support/roofline.hpp): the loops that find how
// fast this core reads memory, fuses multiply-adds and multiplies int8, written with the kernel
// set's own instructions so that the ceilings are those the kernels can reach.
#pragma once

#include <cstddef>
#include <cstdint>

namespace brise::kernels {

// Sum of n floats, loaded as fast as the set loads (unaligned loads, independent accumulators).
float sum_floats(const float* p, size_t n);

// `iterations` rounds of independent f32 FMA chains held in registers (acc = acc * b + c); returns
// the flops done (2 per lane per FMA) and leaves a result in *sink.
double fma_peak_probe(size_t iterations, float b, float c, float* sink);

// The same with the set's int8 dot product (acc += 4 u8 x s8 products per 32-bit lane); returns
// the operations done (2 per product).
double int8_peak_probe(size_t iterations, int32_t* sink);

}  // namespace brise::kernels
