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

// From this many tokens, the types with a byte-group form (the K-quants and IQ4_XS) go through the
// byte-group GEMM (kernels/matmul_byte_gemm.hpp, AVX-512 VNNI or AVX2): laying out 16 rows' block
// once pays from the second token on.
// Measured in cache on 128 x 4096 (commit d8717e2): q4_K 2 tokens 63 -> 17 us and 3 tokens 88 ->
// 20 us against the per-row path; q6_K 63 -> 27 and 77 -> 46 us. The types added later were
// measured from 8 tokens on (streamed 4096 x 4096), not at 2 or 3.
inline constexpr size_t kByteGemmMinTokens = 2;

}  // namespace brise::kernels
