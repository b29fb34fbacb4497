// Rows of f32 values to and from any type, through its codec's SIMD encode and decode
// (kernels/matmul.hpp: encode_row, decode_row).
#include "kernels/isa.hpp"
#include "kernels/kernel_set.hpp"
#include "kernels/types/all_types.hpp"

namespace brise::kernels::BRISE_ISA {

void encode_row(const TypeTraits& type, const float* x, void* out, size_t n) {
  with_codec(type, [&]<class C>() { C::encode_row(x, out, n); });
}

void decode_row(const TypeTraits& type, const void* in, float* out, size_t n) {
  with_codec(type, [&]<class C>() { C::decode_row(in, out, n); });
}

}  // namespace brise::kernels::BRISE_ISA
