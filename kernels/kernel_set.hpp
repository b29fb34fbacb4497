// Kernel sets: the kernels compiled for one instruction set (kernels/isa.hpp), and the choice of
// the set that runs.
//
// The public kernel functions (brise::kernels::matmul, rmsnorm, ...) call the function of the same
// name in the set chosen when the library first needs one (kernels/runtime/dispatch.cpp): the best
// set this CPU runs, or the one the environment variable BRISE_ISA names. Scalar references
// (*_ref) exist once, outside the sets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "kernels/activation.hpp"
#include "kernels/attention.hpp"
#include "kernels/fp16.hpp"
#include "kernels/matmul.hpp"
#include "kernels/norm.hpp"
#include "kernels/probes.hpp"
#include "kernels/rope.hpp"

// X(return type, name, (parameters), (arguments)) for every kernel a set holds.
#define BRISE_KERNEL_LIST(X)                                                                       \
  X(MatmulKernel, matmul_kernel, (const WeightMatrix& w, const MatmulInput& x), (w, x))            \
  X(bool, packs_rows, (const TypeTraits& type), (type))                                            \
  X(void, quantize_activations_k,                                                                  \
    (const float* x, size_t x_stride, size_t n_tokens, const Q8KActivations& out),                 \
    (x, x_stride, n_tokens, out))                                                                  \
  X(void, quantize_activations,                                                                    \
    (const float* x, size_t x_stride, size_t n_tokens, const Q8Activations& out),                  \
    (x, x_stride, n_tokens, out))                                                                  \
  X(void, encode_row, (const TypeTraits& type, const float* x, void* out, size_t n),               \
    (type, x, out, n))                                                                             \
  X(void, decode_row, (const TypeTraits& type, const void* in, float* out, size_t n),              \
    (type, in, out, n))                                                                            \
  X(void, rmsnorm, (const float* x, const float* weight, size_t n, float eps, float* out),         \
    (x, weight, n, eps, out))                                                                      \
  X(void, rope_apply,                                                                              \
    (float* x, size_t n_heads, size_t head_dim, const float* cos_in, const float* sin_in),         \
    (x, n_heads, head_dim, cos_in, sin_in))                                                        \
  X(void, softmax, (float* x, size_t n), (x, n))                                                   \
  X(void, silu_mul, (const float* gate, const float* up, float* out, size_t n),                    \
    (gate, up, out, n))                                                                            \
  X(size_t, argmax, (const float* x, size_t n), (x, n))                                            \
  X(void, kv_block_store,                                                                          \
    (const TypeTraits& type, size_t head_dim, const float* k, const float* v, size_t slot,         \
     std::byte* block),                                                                            \
    (type, head_dim, k, v, slot, block))                                                           \
  X(void, attention_prepare_query,                                                                 \
    (const TypeTraits& type, size_t head_dim, const float* q, std::byte* out),                     \
    (type, head_dim, q, out))                                                                      \
  X(void, attention_split,                                                                         \
    (const TypeTraits& type, size_t head_dim, float scale, const KVBlocks& blocks, uint64_t split, \
     std::span<const AttentionRow> rows, std::span<AttentionPartial> out, float* scratch),         \
    (type, head_dim, scale, blocks, split, rows, out, scratch))                                    \
  X(void, attention_split_scalar,                                                                  \
    (const TypeTraits& type, size_t head_dim, float scale, const KVBlocks& blocks, uint64_t split, \
     std::span<const AttentionRow> rows, std::span<AttentionPartial> out, float* scratch),         \
    (type, head_dim, scale, blocks, split, rows, out, scratch))                                    \
  X(void, attention_fold,                                                                          \
    (size_t head_dim, const AttentionPartial& part, AttentionPartial& total),                      \
    (head_dim, part, total))                                                                       \
  X(void, attention_finish, (size_t head_dim, const AttentionPartial& total, float* out),          \
    (head_dim, total, out))                                                                        \
  X(void, convert_f32_to_f16, (const float* x, uint16_t* y, size_t n), (x, y, n))                  \
  X(void, convert_f16_to_f32, (const uint16_t* x, float* y, size_t n), (x, y, n))                  \
  X(void, convert_f32_to_bf16, (const float* x, uint16_t* y, size_t n), (x, y, n))                 \
  X(void, convert_bf16_to_f32, (const uint16_t* x, float* y, size_t n), (x, y, n))                 \
  X(float, sum_floats, (const float* p, size_t n), (p, n))                                         \
  X(double, fma_peak_probe, (size_t iterations, float b, float c, float* sink),                    \
    (iterations, b, c, sink))                                                                      \
  X(double, int8_peak_probe, (size_t iterations, int32_t * sink), (iterations, sink))

namespace brise::kernels {

struct KernelSet {
  std::string_view name;
#define BRISE_KERNEL_POINTER(ret, fn, params, args) ret(*fn) params;
  BRISE_KERNEL_LIST(BRISE_KERNEL_POINTER)
#undef BRISE_KERNEL_POINTER
};

// The set the public kernel functions use, chosen on first use. Throws std::runtime_error naming
// the problem when BRISE_ISA names a set this build lacks or this CPU cannot run.
const KernelSet& kernel_set();

// Makes `name` the set in use from now on, for benchmarks that compare sets in one process
// (std::runtime_error as above). Not for use while other threads run kernels.
void use_kernel_set(std::string_view name);

struct KernelSetInfo {
  std::string_view name;          // "avx512", "avx2vnni", "avx2", "generic"
  std::string_view instructions;  // what the set uses, for `brise info`
  bool runs_here;                 // this CPU has every instruction the set uses
};
// Every set this build holds, best first.
std::vector<KernelSetInfo> built_kernel_sets();
// The entry of kernel_set().
KernelSetInfo active_kernel_set();

#if defined(BRISE_ISA)
// This compilation's kernels, in its set's namespace (defined by kernels/*.cpp).
namespace BRISE_ISA {
#define BRISE_KERNEL_DECLARATION(ret, fn, params, args) ret fn params;
BRISE_KERNEL_LIST(BRISE_KERNEL_DECLARATION)
#undef BRISE_KERNEL_DECLARATION
}  // namespace BRISE_ISA
#endif

}  // namespace brise::kernels
