// What every codec (kernels/types/<type>.hpp) is made of, and the helpers they share.
//
// A codec is one struct per tensor type, compiled once per kernel set (its SIMD parts follow the
// set's instructions), holding everything about the type but its GGUF id (type_list.hpp):
//   kName, kBlockElems, kBlockBytes, kFileType, kQuantized
//   kActivations                      the activations it is multiplied with (activation_format.hpp)
//   encode_row_ref / decode_row_ref   scalar, straight from the block layout (the references)
//   encode_row / decode_row           the same results, with the set's SIMD where it has any
// and how the matmul reads the type packed in groups of 16 rows (kernels/types/packed.hpp):
// float types (kQuantized false) load_packed<Ops>, the f32 values of one element of each row;
// quantized types (blocks of 32 integer codes with an fp16 scale) kPayloadBytes, kSignedCodes,
// kCodeOffset, kStepsPerUnit, step(unit, i), block_scale, block_codes, decode_unit<Ops>,
// decode_step<Ops>; row-major quantized types (kRowMajor true: the K-quants and the later 32-block
// types, which stay in the file's layout) to_int8 (kernels/types/int8_block.hpp), and optionally
// to_weights16(block, int16_t* w16, Int8Block& meta): block_weights16 of to_int8's result, with
// meta's min, d and dmin (its code and scale need not be filled), straight from the block's bytes
// with the set's SIMD: the int8 matmul's per-block work, so worth a type's own code.
#pragma once

#include "kernels/isa.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "kernels/fp16.hpp"
#include "kernels/types/activation_format.hpp"

namespace brise::kernels::BRISE_ISA {

using Batch = xsimd::batch<float>;
inline constexpr size_t kLanes = Batch::size;

#if defined(BRISE_AVX512)
static_assert(kLanes == 16, "AVX-512 loaders expect 16-lane batches");
#elif defined(BRISE_AVX2)
static_assert(kLanes == 8, "AVX2 loaders expect 8-lane batches");
#endif

// a * b + c with one rounding. xsimd 8.1's fma for AVX-512 is a plain a * b + c that only fuses
// if the compiler contracts it, so the instruction is spelled out where the ISA has it.
inline Batch fmadd(Batch a, Batch b, Batch c) {
#if defined(BRISE_AVX512)
  return _mm512_fmadd_ps(a, b, c);
#elif defined(BRISE_AVX2)
  return _mm256_fmadd_ps(a, b, c);
#else
  return xsimd::fma(a, b, c);
#endif
}

// Whether codec C is multiplied in the file's row-major layout (kernels/types/int8_block.hpp)
// rather than packed in groups of 16 rows.
template <class C>
inline constexpr bool kIsRowMajor = requires {
  requires C::kRowMajor;
};

// A little-endian u16 at p, whatever p's alignment (quantized blocks are 2-byte aligned at best).
inline uint16_t read_u16(const void* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The scan of ggml's reference quantizers: the largest magnitude of n values and the first value
// that has it, with its sign (a later one of the same magnitude does not replace it). A NaN never
// compares greater: it is passed over. Both 0 when every value is 0.
struct LargestMagnitude {
  float amax;
  float max;
};
inline LargestMagnitude largest_magnitude(const float* x, size_t n) {
  LargestMagnitude m{0.0f, 0.0f};
  for (size_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    if (a > m.amax) {
      m.amax = a;
      m.max = x[i];
    }
  }
  return m;
}

}  // namespace brise::kernels::BRISE_ISA
