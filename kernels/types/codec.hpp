// What every codec (kernels/types/<type>.hpp) is made of, and the helpers they share.
//
// A codec is one struct per tensor type, compiled once per kernel set (its SIMD parts follow the
// set's instructions), holding everything about the type:
//   kGgmlId, kName, kBlockElems, kBlockBytes, kFileType, kQuantized
//   encode_row_ref / decode_row_ref   scalar, straight from the block layout (the references)
//   encode_row / decode_row           the same results, with the set's SIMD where it has any
// Float types (kQuantized false) add the loader of the f32-activation matmul (kernels/matmul.cpp):
//   kChunk, kChunkBytes, kPrefetchBytes, kSteps, load(row, k, out), load_tail(row, k, n)
// Quantized types (blocks of 32 integer codes with an fp16 scale) add their packed layout and
// codes (kernels/types/packed.hpp): kPayloadBytes, kSignedCodes, kCodeOffset, kStepsPerUnit,
// step(unit, i), block_scale, block_codes, decode_unit<Ops>, decode_step<Ops>.
#pragma once

#include "kernels/isa.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "kernels/fp16.hpp"

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

// An unaligned load kept in a register: the empty asm hides where the value came from, so the
// compiler cannot re-read memory at every use (folding the load into each FMA), which costs a
// load per use and two when the address straddles cache lines.
inline Batch load_pinned(const float* p) {
#if defined(BRISE_AVX512) && defined(__GNUC__)
  __m512 v = _mm512_loadu_ps(p);
  __asm__("" : "+v"(v));
  return v;
#else
  return Batch::load_unaligned(p);
#endif
}

// First `n` (< kLanes) floats of p, the rest zero. Never reads past p + n.
inline Batch load_partial(const float* p, size_t n) {
#if defined(BRISE_AVX512)
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1u), p);
#else
  alignas(64) float buf[kLanes] = {};
  std::memcpy(buf, p, n * sizeof(float));
  return Batch::load_aligned(buf);
#endif
}

// A little-endian u16 at p, whatever p's alignment (quantized blocks are 2-byte aligned at best).
inline uint16_t read_u16(const void* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace brise::kernels::BRISE_ISA
