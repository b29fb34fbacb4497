// The one place where a matmul's kernel is chosen, for the kernel set being compiled: from the
// type (its codec and what it has), the matrix's layout, the token count and the mode.
// kernels/MATMUL.md is this file as a table; the token counts are kernels/matmul_thresholds.hpp.
// Every kernel gives the same bits for a (row, token) whatever the count (kernels/matmul.hpp), so
// the choice is one of speed.
#include "kernels/matmul.hpp"
#include "kernels/isa.hpp"
#include "kernels/kernel_set.hpp"
#include "kernels/matmul_byte_gemm.hpp"
#include "kernels/matmul_checks.hpp"
#include "kernels/matmul_group_decode.hpp"
#include "kernels/matmul_packed.hpp"
#include "kernels/matmul_rows.hpp"
#include "kernels/matmul_thresholds.hpp"
#include "kernels/types/all_types.hpp"

namespace brise::kernels::BRISE_ISA {
namespace {

using F = ActivationFormat;

// The kernel for codec C and a matrix `packed` or as stored (which only AVX-512 VNNI's decode
// kernels tell apart); `int8` when the input holds the int8 format C is multiplied with.
template <class C>
MatmulKernel choose([[maybe_unused]] bool packed, size_t n_tokens, bool int8) {
  const bool decode = n_tokens <= kDecodeMaxTokens;
  if constexpr (!C::kQuantized) {  // f32, f16, bf16: packed groups
    if (decode) return {group_matmul::float_decode<C>, F::F32, "packed float decode"};
    return {group_matmul::float_prefill<C>, F::F32, "packed float prefill"};
  } else if constexpr (!kIsRowMajor<C>) {  // q8_0, q4_0: packed groups
    if (!int8 && decode) return {group_matmul::exact_decode<C>, F::F32, "packed exact decode"};
    if (!int8) return {group_matmul::exact_prefill<C>, F::F32, "packed exact prefill"};
    if (decode) return {group_matmul::int8_decode<C>, F::Q8, "packed int8 decode"};
    return {group_matmul::int8_prefill<C>, F::Q8, "packed int8 prefill"};
  } else {  // the row-major types: as stored, or packed in word units (packs_rows)
    if (!int8) return {&row_matmul::exact<C>, F::F32, "row exact"};
    if constexpr (C::kActivations == F::Q8K) {
#if defined(BRISE_AVX2)
      if constexpr (row_matmul::kHasGroupDecode<C>)
        if (decode && packed)
          return {&row_matmul::word_group_decode<C>, F::Q8K, "word-packed group decode"};
#endif
#if defined(BRISE_AVX512_VNNI)
      if constexpr (row_matmul::kHasFusedDot<C>)
        if (decode && !packed)
          return {&row_matmul::fused_dot_decode<C>, F::Q8K, "row fused decode"};
#endif
#if defined(BRISE_AVX2)
      if constexpr (byte_gemm::kHasByteGemm<C>)
        if (n_tokens >= kByteGemmMinTokens)
          return {&byte_gemm::byte_group_prefill<C>, F::Q8K, "byte-group prefill"};
#endif
    }
    return {&row_matmul::int8<C>, C::kActivations, "row int8"};
  }
}

}  // namespace

MatmulKernel matmul_kernel(const WeightMatrix& w, const MatmulInput& x) {
  check_matrix(w, /*for_reference=*/false);
  const bool int8 = input_format(w, x) != ActivationFormat::F32;
  MatmulKernel kernel;
  with_codec(*w.type, [&]<class C>() { kernel = choose<C>(w.packed, x.n_tokens, int8); });
  return kernel;
}

bool packs_rows(const TypeTraits& type) {
  bool packs = !type.row_major;
#if defined(BRISE_AVX2)
  with_codec(type, [&]<class C>() {
    if constexpr (row_matmul::kHasGroupDecode<C>) packs = true;
  });
#endif
  return packs;
}

}  // namespace brise::kernels::BRISE_ISA
