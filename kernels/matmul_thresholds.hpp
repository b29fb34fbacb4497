// The token counts at which a matmul changes kernels: named here only, read by the one place that
// chooses a kernel (matmul_kernel, kernels/matmul.cpp). kernels/MATMUL.md maps what each side of
// them runs. Every kernel gives the same bits for a token whatever the count (the determinism
// contract, kernels/matmul.hpp), so these choose speed only.
#pragma once

#include <cstddef>

namespace brise::kernels {

// Up to this many tokens a matmul is a decode step: each weight meets one token, so the kernels
// stream the matrix once (packed group streams prefetched ahead, the codecs' fused one-token dot
// products, Q4_K's group decode) and lay nothing out for reuse; the decode kernels run a chunk
// token by token. From 2 tokens on, a kernel that reads each weight once for all the tokens of its
// tile moves half the bytes or less. Measured for this map (packed 4096 x 4096, 16 copies streamed
// from memory, one thread, a shared AMD EPYC): f16 decode 1.8 ms against the prefill's 8.3 ms at
// one token (the prefill widens blocks to f32 for reuse), but q4_0 0.63 against 0.50-0.57 ms and
// q8_0 1.0 against 0.7 ms: the packed int8 prefill tiles were faster even at one token there, so
// the value is the float types' and worth measuring per family on the machines that decode.
inline constexpr size_t kDecodeMaxTokens = 1;

// From this many tokens, the types with a byte-group form go through the byte-group GEMM
// (kernels/matmul_byte_gemm.hpp, AVX-512 VNNI or AVX2): laying out 16 rows' block once pays from
// the second token on.
// Measured in cache on 128 x 4096 (commit d8717e2): q4_K 2 tokens 63 -> 17 us and 3 tokens 88 ->
// 20 us against the per-row path; q6_K 63 -> 27 and 77 -> 46 us.
inline constexpr size_t kByteGemmMinTokens = 2;

// From this many tokens, the other 256-element types (Q2_K, Q3_K, Q5_K, IQ4_XS) on AVX-512 VNNI
// go through the 16-bit GEMM (kernels/matmul_rows_gemm.hpp), below it through the per-row path.
// The GEMM lays 16 rows' block out once per 128 tokens where the per-row path turns each block
// into 16-bit weights once per 32 tokens and sums every (row, block, token) horizontally; 4 was
// set with the GEMM (commit 4ebfe5b) without a recorded measurement. Measured again in cache
// (256 x 4096, one thread, a shared machine): the per-row path is 10-50% faster from 2 to 8
// tokens, the two are within noise from 16 to 64: a higher value looks better (a change of speed
// for a commit of its own, with a measurement that streams the weights as a prefill does).
inline constexpr size_t kGemmMinTokens = 4;

}  // namespace brise::kernels
