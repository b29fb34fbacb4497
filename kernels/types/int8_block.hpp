// How the int8 matmul reads the row-major quantized types (the K-quants, Q4_1, Q5_0, Q5_1, IQ4_NL,
// IQ4_XS: kernels/matmul_rows.hpp). Their matrices stay in the file's layout, row after row, and
// the kernel turns one block at a time into this common form (the codec's to_int8):
//
//   value[k] = d * scale[k / 16] * (code[k] - offset) - dmin * min[k / 16]
//
// codes unsigned bytes (so that vpdpbusd/pmaddubsw multiply them with int8 activations), integer
// scales and mins per 16 elements (the finest sub-block of any type: Q2_K, Q3_K, Q6_K), one
// offset per type (Q6_K's 32, Q3_K's 4, Q5_0's 16, IQ4's 128 around the table's signed values).
// The integer part of a block's dot product is then exact:
//   sumi = sum_j scale[j] * (sum_{k in j} code[k] * a[k] - offset * asum[j])
//   summ = sum_j min[j] * asum[j]
// and the block adds d * da * sumi - dmin * da * summ in f32 (da, asum: the activation block's
// scale and its sums per 16 codes; add_block below). The kernels compute sumi as
// sum_k weight16[k] * a[k] with weight16[k] = (code[k] - offset) * scale[k / 16], a 16-bit value
// for every type (|weight16| <= 128 x 127), once per block for all the tokens it meets.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace brise::kernels {

struct Int8Block {
  alignas(64) uint8_t code[256];  // kBlockElems of them (32 or 256)
  int32_t scale[16];              // per 16 elements: kBlockElems / 16 of them
  int32_t min[16];
  int32_t offset;
  float d;
  float dmin;
};

// weight16[k] for the kBlockElems = n codes of b (see above).
inline void block_weights16(const Int8Block& b, int16_t* weight16, size_t n) {
  for (size_t k = 0; k < n; ++k)
    weight16[k] = static_cast<int16_t>((int32_t{b.code[k]} - b.offset) * b.scale[k / 16]);
}

// A block's contribution to a row's sum, in f32 with one fixed order (every kernel set and the
// references: bit-identical): the scaled integer sum, then the mins.
inline float add_block(float acc, int32_t sumi, int32_t summ, float d, float dmin, float da) {
  acc = std::fma(static_cast<float>(sumi), d * da, acc);
  return std::fma(static_cast<float>(summ), -(dmin * da), acc);
}

// The exact mode's order for row-major types: lane l = k mod 16 of 16 partial sums,
// part[l] = fma(w[k], x[k], part[l]) for k in order, then this fixed pairwise tree.
inline float sum_lanes16(const float* part) {
  float p[16];
  for (size_t l = 0; l < 16; ++l) p[l] = part[l];
  for (size_t h = 8; h > 0; h /= 2)
    for (size_t l = 0; l < h; ++l) p[l] = p[l] + p[l + h];
  return p[0];
}

}  // namespace brise::kernels
