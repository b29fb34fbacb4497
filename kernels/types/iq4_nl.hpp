// IQ4_NL (ggml-common.h block_iq4_nl): blocks of 32 weights, an fp16 scale d and 16 bytes of 4-bit
// indices q into the non-linear table kIq4Values (ggml's kvalues_iq4nl); value = d * kIq4Values[q];
// byte j holds element j in its low nibble and element j + 16 in its high nibble.
// Quantized as llama-quantize does without an importance matrix: ggml's quantize_iq4_nl, i.e.
// quantize_row_iq4_nl_impl with one block per super-block, weights x * x and ntry = 7 (a search
// over 15 trial scales for the weighted least-squares fit), then every element re-picked against
// the chosen f32 scale. Bit for bit on finite input. IQ4_XS (iq4_xs.hpp) shares the table and the
// search.
#pragma once

#include "kernels/types/block32.hpp"
#include "kernels/types/codec.hpp"
#include "kernels/types/int8_block.hpp"
#include "kernels/types/rounding.hpp"

namespace brise::kernels::BRISE_ISA {

// ggml's kvalues_iq4nl: the 16 levels of the IQ4 types, sorted.
inline constexpr int8_t kIq4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                          1,    13,   25,  38,  53,  69,  89,  113};
// The same levels + 128 as unsigned codes, for the int8 matmul (offset 128).
inline constexpr uint8_t kIq4Codes[16] = {1,   24,  45,  63,  79,  93,  106, 118,
                                          129, 141, 153, 166, 181, 197, 217, 241};

// Index of the level nearest to x, as ggml's best_index_int8 in llama.cpp 34af94c (the build that
// wrote the reference files): clamped at the ends, binary search for the bracketing pair, then the
// nearer of the two, ties to the upper one. Near a midpoint x - lo and hi - x are exact in f32, so
// this agrees on finite x with later ggml's x + x >= lo + hi. NaN gives 15, as 34af94c's.
inline int iq4_best_index(float x) {
  if (x <= kIq4Values[0]) return 0;
  if (x >= kIq4Values[15]) return 15;
  int lo = 0;
  int hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (x < kIq4Values[mid]) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return x - static_cast<float>(kIq4Values[hi - 1]) < static_cast<float>(kIq4Values[hi]) - x
             ? hi - 1
             : hi;
}

// The scale of 32 weights xb that ggml's quantize_row_iq4_nl_impl picks without an importance
// matrix (weights w = x * x, ntry = 7): the weighted least-squares scale for the levels chosen at
// d = max / 127 (max: the first element of largest magnitude, signed), then at id = (t - 127) / max
// for t = -7..7, keeping the fit that explains most of sum w x^2 (largest sumqx^2 / sumq2).
// 0 for a block whose magnitude is below ggml's GROUP_MAX_EPS.
inline float iq4_block_scale(const float* xb) {
  const auto [amax, max] = largest_magnitude(xb, 32);
  if (amax < 1e-15f) return 0.0f;
  // Weighted sums of the fit for inverse scale id, in ggml's order: (w * q) * x and (w * q) * q.
  const auto fit = [xb](float id, float& sumqx, float& sumq2) {
    sumqx = 0.0f;
    sumq2 = 0.0f;
    for (size_t j = 0; j < 32; ++j) {
      const float q = static_cast<float>(kIq4Values[iq4_best_index(id * xb[j])]);
      const float w = xb[j] * xb[j];
      sumqx += w * q * xb[j];
      sumq2 += w * q * q;
    }
  };
  float sumqx;
  float sumq2;
  const float d0 = -max / static_cast<float>(kIq4Values[0]);
  fit(1.0f / d0, sumqx, sumq2);
  float d = sumq2 > 0.0f ? sumqx / sumq2 : 0.0f;
  float best = d * sumqx;
  for (int t = -7; t <= 7; ++t) {
    fit(static_cast<float>(t + kIq4Values[0]) / max, sumqx, sumq2);
    if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

struct IQ4_NL {
  static constexpr std::string_view kName = "iq4_nl";
  static constexpr uint32_t kBlockElems = 32;
  static constexpr uint32_t kBlockBytes = 18;
  static constexpr uint32_t kFileType = 25;  // LLAMA_FTYPE_MOSTLY_IQ4_NL
  static constexpr bool kQuantized = true;
  static constexpr ActivationFormat kActivations = ActivationFormat::Q8;
  static constexpr bool kRowMajor = true;  // multiplied in the file's layout (int8_block.hpp)

  struct Block {
    uint16_t d;  // fp16
    uint8_t qs[16];
  };
  static_assert(sizeof(Block) == kBlockBytes);

  static void encode_row_ref(const float* x, void* out, size_t n) {
    auto* y = static_cast<Block*>(out);
    for (size_t b = 0; b < n / 32; ++b) {
      const float* xb = x + b * 32;
      const float d = iq4_block_scale(xb);
      y[b].d = f32_to_f16(d);
      // The indices are picked against the f32 scale, not its fp16 rounding, as ggml does.
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      uint8_t q[32];
      for (size_t j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>(iq4_best_index(id * xb[j]));
      block32::pack_nibbles(q, y[b].qs);
    }
  }

  static void decode_row_ref(const void* in, float* out, size_t n) {
    const auto* x = static_cast<const uint8_t*>(in);
    uint8_t q[32];
    for (size_t b = 0; b < n / 32; ++b) {
      const uint8_t* block = x + b * kBlockBytes;
      const float d = f16_to_f32(read_u16(block));
      block32::unpack_nibbles(block + 2, q);
      for (size_t j = 0; j < 32; ++j) out[b * 32 + j] = d * static_cast<float>(kIq4Values[q[j]]);
    }
  }

  static void encode_row(const float* x, void* out, size_t n) { encode_row_ref(x, out, n); }
  static void decode_row(const void* in, float* out, size_t n) { decode_row_ref(in, out, n); }

  // One block (kBlockBytes at `block`) in the int8 matmul's form (int8_block.hpp): the table's
  // levels + 128 as codes, offset 128, no minimum.
  static void to_int8(const uint8_t* block, Int8Block& out) {
    block32::unpack_nibbles(block + 2, out.code);
    for (size_t j = 0; j < 32; ++j) out.code[j] = kIq4Codes[out.code[j]];
    block32::one_scale(out, 128, false, f16_to_f32(read_u16(block)), 0.0f);
  }
};

}  // namespace brise::kernels::BRISE_ISA
