// y = W x for matrices packed in groups of 16 rows (kernels/types/packed.hpp): the tiles of the
// float types (f32 activations), and of the quantized types that are not row-major (q8_0, q4_0)
// with f32 activations (the exact mode) or int8 ones. kernels/matmul.cpp chooses among the
// kernels at the end of this file.
//
// A tile computes G groups (16 rows each) for T tokens. Its accumulators hold one row per 32-bit
// lane, so every lane is one (row, token) dot product with the same sequence of operations
// whatever G, T, the row range or the thread: that is the determinism contract (matmul.hpp).
//   float: for k in order,             acc = fma(w[k], x[k], acc)
//   exact: for k in order,             acc = fma(float(code[k]) * d_w, x[k], acc)
//   int8:  for each block b of 32,     isum = exact integer sum of codes x int8 activations
//                                      acc = fma(float(isum), d_w * d_x, acc)
// The scalar references (matmul_reference.cpp) follow the same orders, so every path equals its
// reference bit for bit.
#pragma once

#include "kernels/isa.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "kernels/matmul.hpp"
#include "kernels/packed_ops.hpp"
#include "kernels/prefetch.hpp"
#include "kernels/types/f32.hpp"
#include "kernels/types/packed.hpp"

namespace brise::kernels::BRISE_ISA::group_matmul {

using packed::kGroupRows;
using Ops = PackedOps;
using I = Ops::I;
using F = Ops::F;
constexpr size_t kVecs = kGroupRows / Ops::kRows;  // vectors per group
constexpr size_t kScaleBytes = kGroupRows * packed::kScaleBytes;

struct TileArgs {
  const uint8_t* w;    // the tile's first group
  size_t group_bytes;  // bytes of one group (16 rows)
  size_t n_blocks;     // blocks per row (quantized types)
  size_t rows;         // rows of the tile to store (the last group may be partial)
  size_t prefetch;     // bytes to prefetch ahead in each group, or 0
  // int8 activations of the tile's first token, or f32 activations
  const int8_t* q;
  const float* d;
  const int32_t* s;
  const float* x;
  size_t x_stride;      // elements between tokens (of q, or of x)
  size_t block_stride;  // blocks between tokens (of d and s)
  float* y;             // y of the tile's first row and token
  size_t y_stride;
  // Float tiles: columns [k_begin, k_end) of the rows; the accumulators start from `spill` (else
  // zero) when acc_in, and go back to it (else to y) when acc_out.
  size_t k_begin;
  size_t k_end;
  F* spill;
  bool acc_in;
  bool acc_out;
};
using TileFn = void (*)(const TileArgs&);

template <size_t G, size_t T>
void zero(F (&acc)[G][kVecs][T]) {
  for (auto& g : acc)
    for (auto& v : g)
      for (auto& t : v) t = Ops::zero_f();
}

template <size_t G, size_t T>
void store_tile(const TileArgs& a, const F (&acc)[G][kVecs][T]) {
  for (size_t g = 0; g < G; ++g)
    for (size_t v = 0; v < kVecs; ++v) {
      const size_t row0 = g * kGroupRows + v * Ops::kRows;
      if (row0 >= a.rows) continue;
      const size_t n = std::min(Ops::kRows, a.rows - row0);
      for (size_t t = 0; t < T; ++t) Ops::store(a.y + t * a.y_stride + row0, acc[g][v][t], n);
    }
}

template <class C, size_t G, size_t T, bool kPrefetch>
void float_tile(const TileArgs& a) {
  constexpr size_t kElem = C::kBlockBytes;
  constexpr size_t kColumn = kGroupRows * kElem;                   // one element of 16 rows
  constexpr size_t kUnroll = 64 / kColumn < 1 ? 1 : 64 / kColumn;  // columns per cache line
  F acc[G][kVecs][T];
  if (a.acc_in)
    std::memcpy(acc, a.spill, sizeof acc);
  else
    zero(acc);
  const auto column = [&](size_t k) __attribute__((always_inline)) {
    F w[G][kVecs];
    for (size_t g = 0; g < G; ++g)
      for (size_t v = 0; v < kVecs; ++v)
        w[g][v] = C::template load_packed<Ops>(a.w + g * a.group_bytes + k * kColumn +
                                               v * Ops::kRows * kElem);
    for (size_t t = 0; t < T; ++t) {
      const F xv = Ops::splat(a.x[t * a.x_stride + k]);
      for (size_t g = 0; g < G; ++g)
        for (size_t v = 0; v < kVecs; ++v) acc[g][v][t] = Ops::fma(w[g][v], xv, acc[g][v][t]);
    }
  };
  size_t k = a.k_begin;
  for (; k + kUnroll <= a.k_end; k += kUnroll) {
    if constexpr (kPrefetch)
      for (size_t g = 0; g < G; ++g)
        prefetch_ahead(a.w + g * a.group_bytes + k * kColumn, a.prefetch, kUnroll * kColumn);
    for (size_t u = 0; u < kUnroll; ++u) column(k + u);
  }
  for (; k < a.k_end; ++k) column(k);
  if (a.acc_out)
    std::memcpy(a.spill, acc, sizeof acc);
  else
    store_tile<G, T>(a, acc);
}

template <class C, size_t G, size_t T, bool kPrefetch>
void q8_tile(const TileArgs& a) {
  constexpr size_t kGroupBlock = packed::group_block_bytes(C::kBlockBytes);
  constexpr size_t kUnits = C::kPayloadBytes / 4;
  constexpr int32_t kBias = C::kSignedCodes ? Ops::kSignedBias : C::kCodeOffset;
  F acc[G][kVecs][T];
  zero(acc);

  for (size_t b = 0; b < a.n_blocks; ++b) {
    const uint8_t* gb[G];
    for (size_t g = 0; g < G; ++g) {
      gb[g] = a.w + g * a.group_bytes + b * kGroupBlock;
      if constexpr (kPrefetch) prefetch_ahead(gb[g], a.prefetch, kGroupBlock);
    }
    // Integer sums start at -bias x (sum of the block's activation codes).
    I isum[G][kVecs][T];
    for (size_t t = 0; t < T; ++t) {
      const I start = kBias ? Ops::splat32(-kBias * a.s[t * a.block_stride + b]) : Ops::zero();
      for (size_t g = 0; g < G; ++g)
        for (size_t v = 0; v < kVecs; ++v) isum[g][v][t] = start;
    }
    for (size_t u = 0; u < kUnits; ++u) {
      I codes[G][kVecs][C::kStepsPerUnit];
      for (size_t g = 0; g < G; ++g)
        for (size_t v = 0; v < kVecs; ++v) {
          const I raw =
              Ops::load(gb[g] + kScaleBytes + u * packed::kUnitBytes + v * 4 * Ops::kRows);
          C::template decode_unit<Ops>(raw, codes[g][v]);
          if constexpr (C::kSignedCodes)
            for (auto& c : codes[g][v]) c = Ops::prepare_signed(c);
        }
      for (size_t i = 0; i < C::kStepsPerUnit; ++i) {
        const size_t k = b * C::kBlockElems + 4 * C::step(u, i);
        for (size_t t = 0; t < T; ++t) {
          const I act = Ops::broadcast4(a.q + t * a.x_stride + k);
          for (size_t g = 0; g < G; ++g)
            for (size_t v = 0; v < kVecs; ++v)
              isum[g][v][t] = C::kSignedCodes
                                  ? Ops::dot_signed(isum[g][v][t], codes[g][v][i], act)
                                  : Ops::dot_unsigned(isum[g][v][t], codes[g][v][i], act);
        }
      }
    }
    for (size_t g = 0; g < G; ++g)
      for (size_t v = 0; v < kVecs; ++v) {
        const F dw = Ops::scales(gb[g] + v * Ops::kRows * packed::kScaleBytes);
        for (size_t t = 0; t < T; ++t) {
          const F scale = Ops::mul(dw, Ops::splat(a.d[t * a.block_stride + b]));
          acc[g][v][t] = Ops::fma(Ops::to_float(isum[g][v][t]), scale, acc[g][v][t]);
        }
      }
  }
  store_tile<G, T>(a, acc);
}

// Byte J of each lane's 4 codes as the code's value (signed, or unsigned minus the offset).
template <class C, int J>
I code_value(I codes) {
  if constexpr (C::kSignedCodes)
    return Ops::byte_signed<J>(codes);
  else
    return Ops::sub32(Ops::byte_unsigned<J>(codes), Ops::splat32(C::kCodeOffset));
}

template <class C, size_t G, size_t T, bool kPrefetch>
void exact_tile(const TileArgs& a) {
  constexpr size_t kGroupBlock = packed::group_block_bytes(C::kBlockBytes);
  F acc[G][kVecs][T];
  zero(acc);

  for (size_t b = 0; b < a.n_blocks; ++b) {
    const uint8_t* gb[G];
    F dw[G][kVecs];
    for (size_t g = 0; g < G; ++g) {
      gb[g] = a.w + g * a.group_bytes + b * kGroupBlock;
      if constexpr (kPrefetch) prefetch_ahead(gb[g], a.prefetch, kGroupBlock);
      for (size_t v = 0; v < kVecs; ++v)
        dw[g][v] = Ops::scales(gb[g] + v * Ops::kRows * packed::kScaleBytes);
    }
    for (size_t s = 0; s < C::kBlockElems / 4; ++s) {
      I codes[G][kVecs];
      for (size_t g = 0; g < G; ++g)
        for (size_t v = 0; v < kVecs; ++v)
          codes[g][v] = C::template decode_step<Ops>(gb[g] + kScaleBytes + v * 4 * Ops::kRows, s);
      const auto element = [&]<int J>() __attribute__((always_inline)) {
        F w[G][kVecs];
        for (size_t g = 0; g < G; ++g)
          for (size_t v = 0; v < kVecs; ++v)
            w[g][v] = Ops::mul(Ops::to_float(code_value<C, J>(codes[g][v])), dw[g][v]);
        const size_t k = b * C::kBlockElems + 4 * s + J;
        for (size_t t = 0; t < T; ++t) {
          const F xv = Ops::splat(a.x[t * a.x_stride + k]);
          for (size_t g = 0; g < G; ++g)
            for (size_t v = 0; v < kVecs; ++v) acc[g][v][t] = Ops::fma(w[g][v], xv, acc[g][v][t]);
        }
      };
      element.template operator()<0>();
      element.template operator()<1>();
      element.template operator()<2>();
      element.template operator()<3>();
    }
  }
  store_tile<G, T>(a, acc);
}

// Each path's tile shapes (decode: G in 1..kDecodeGroups groups of one token, the streams
// prefetched; prefill: G in 1..kGemmGroups x T in 1..kGemmTokens) and the tokens whose activations
// a row panel reuses. Accumulators: G x kVecs x T of the 32 (AVX-512) or 16 vector registers.
constexpr bool kWide = Ops::kRows == 16;
// Prefill of float weights goes through run_float_gemm: k blocks of a tile's groups, converted to
// f32 once and read by every token tile of the block (FloatPath<F32> tiles).
template <class C>
struct FloatPath {  // AVX-512: 3 x 8 accumulators; per column 3 weight loads, 8 broadcasts
  static constexpr size_t kDecodeGroups = kWide ? 4 : 2;
  static constexpr size_t kGemmGroups = kWide ? 3 : 1;
  static constexpr size_t kGemmTokens = kWide ? 8 : 6;
  static constexpr size_t kTokenBlock = kWide ? 48 : 24;
  static constexpr bool kHasGemm = std::is_same_v<C, F32>;
  template <size_t G, size_t T, bool P>
  static void run(const TileArgs& a) {
    float_tile<C, G, T, P>(a);
  }
};
template <class C>
struct ExactPath {  // each dequantized element serves T tokens
  static constexpr size_t kDecodeGroups = kWide ? 4 : 2;
  static constexpr size_t kGemmGroups = kWide ? 2 : 1;
  static constexpr size_t kGemmTokens = kWide ? 8 : 4;
  static constexpr size_t kTokenBlock = kWide ? 48 : 24;
  static constexpr bool kHasGemm = true;
  template <size_t G, size_t T, bool P>
  static void run(const TileArgs& a) {
    exact_tile<C, G, T, P>(a);
  }
};
template <class C>
struct Int8Path {  // AVX-512: 2 x 4 int and 2 x 4 float accumulators
  static constexpr size_t kDecodeGroups = kWide ? 4 : 2;
  static constexpr size_t kGemmGroups = kWide ? 2 : 1;
  static constexpr size_t kGemmTokens = kWide ? 4 : 2;
  static constexpr size_t kTokenBlock = 32;
  static constexpr bool kHasGemm = true;
  template <size_t G, size_t T, bool P>
  static void run(const TileArgs& a) {
    q8_tile<C, G, T, P>(a);
  }
};
constexpr size_t kPanelGroups = 8;

template <class Path, size_t G, size_t... Ts>
constexpr std::array<TileFn, Path::kGemmTokens> gemm_row(std::index_sequence<Ts...>) {
  return {&Path::template run<G, Ts + 1, false>...};
}
template <class Path, size_t... Gs>
constexpr std::array<std::array<TileFn, Path::kGemmTokens>, Path::kGemmGroups> gemm_table(
    std::index_sequence<Gs...>) {
  return {gemm_row<Path, Gs + 1>(std::make_index_sequence<Path::kGemmTokens>{})...};
}
template <class Path, size_t... Gs>
constexpr std::array<TileFn, Path::kDecodeGroups> decode_table(std::index_sequence<Gs...>) {
  return {&Path::template run<Gs + 1, 1, true>...};
}

template <class Path>
TileFn tile_for(size_t g, size_t t, bool decode) {
  static constexpr auto kDecode =
      decode_table<Path>(std::make_index_sequence<Path::kDecodeGroups>{});
  if (decode) return kDecode[g - 1];
  if constexpr (Path::kHasGemm) {
    static constexpr auto kGemm = gemm_table<Path>(std::make_index_sequence<Path::kGemmGroups>{});
    return kGemm[g - 1][t - 1];
  }
  return nullptr;  // never asked: float prefill reads f32 (run_float_gemm)
}

// Runs tiles over the groups of rows [row_begin, row_end) x tokens [0, n_tokens); `base` holds
// the activations and the output. Decode runs one token at a time (it is chosen for one).
template <class Path, bool kDecode>
void run_tiles(const WeightMatrix& w, const TileArgs& base, size_t n_tokens, size_t row_begin,
               size_t row_end) {
  const size_t group_bytes = kGroupRows * w.row_bytes;
  const size_t g0 = row_begin / kGroupRows;
  const size_t g1 = (row_end + kGroupRows - 1) / kGroupRows;
  constexpr bool decode = kDecode;
  const size_t tile_groups = decode ? Path::kDecodeGroups : Path::kGemmGroups;
  const size_t tile_tokens = decode ? 1 : Path::kGemmTokens;
  const size_t token_block = decode ? 1 : Path::kTokenBlock;
  const size_t panel = decode ? tile_groups : kPanelGroups;
  for (size_t tb = 0; tb < n_tokens; tb += token_block) {
    const size_t tb_end = std::min(n_tokens, tb + token_block);
    for (size_t p = g0; p < g1; p += panel) {
      const size_t p_end = std::min(g1, p + panel);
      for (size_t g = p; g < p_end;) {
        const size_t ng = std::min(tile_groups, p_end - g);
        for (size_t t = tb; t < tb_end; t += tile_tokens) {
          const size_t nt = std::min(tile_tokens, tb_end - t);
          TileArgs a = base;
          a.w = static_cast<const uint8_t*>(w.data) + g * group_bytes;
          a.group_bytes = group_bytes;
          a.n_blocks = w.cols / w.type->block_elems;
          a.rows = std::min(row_end, (g + ng) * kGroupRows) - g * kGroupRows;
          a.prefetch = decode ? kStreamPrefetchBytes : 0;
          if (a.q) {
            a.q += t * a.x_stride;
            a.d += t * a.block_stride;
            a.s += t * a.block_stride;
          } else {
            a.x += t * a.x_stride;
          }
          a.y += t * a.y_stride + g * kGroupRows;
          a.k_begin = 0;
          a.k_end = w.cols;
          tile_for<Path>(ng, nt, decode)(a);
        }
        g += ng;
      }
    }
  }
}

// Prefill with float weights. For each tile of G groups, the columns go in k blocks: a block of
// the G groups is converted to f32 once into `panel` (which L1/L2 keep), then every token tile of
// the token block runs over it, its accumulators waiting in `spill` between blocks. Each lane
// still sums its columns in order, so the result is the one-token path's bit for bit.
template <class C>
void run_float_gemm(const WeightMatrix& w, const TileArgs& base, size_t n_tokens, size_t row_begin,
                    size_t row_end) {
  using Path = FloatPath<F32>;
  constexpr size_t kG = Path::kGemmGroups, kT = Path::kGemmTokens;
  constexpr size_t kBlockCols = 256;  // measured: 64 and 128 slower; 3 x 256 x 64 B = 48 KiB
  constexpr size_t kTileTokens = Path::kTokenBlock;
  static_assert(kTileTokens % kT == 0);
  alignas(64) float panel[kG * kBlockCols * kGroupRows];
  alignas(64) F spill[kTileTokens / kT][kG * kVecs * kT];
  const size_t group_bytes = kGroupRows * w.row_bytes;
  const size_t g0 = row_begin / kGroupRows;
  const size_t g1 = (row_end + kGroupRows - 1) / kGroupRows;
  for (size_t tb = 0; tb < n_tokens; tb += kTileTokens) {
    const size_t tb_end = std::min(n_tokens, tb + kTileTokens);
    for (size_t g = g0; g < g1;) {
      const size_t ng = std::min(kG, g1 - g);
      const uint8_t* groups = static_cast<const uint8_t*>(w.data) + g * group_bytes;
      for (size_t k0 = 0; k0 < w.cols; k0 += kBlockCols) {
        const size_t kn = std::min(kBlockCols, w.cols - k0);
        constexpr bool kConverts = !std::is_same_v<C, F32>;  // f32 is read where it is
        if constexpr (kConverts)
          for (size_t i = 0; i < ng; ++i)  // group i's columns [k0, k0 + kn), widened
            C::decode_row(groups + i * group_bytes + k0 * kGroupRows * C::kBlockBytes,
                          panel + i * kBlockCols * kGroupRows, kn * kGroupRows);
        for (size_t t = tb; t < tb_end; t += kT) {
          const size_t nt = std::min(kT, tb_end - t);
          TileArgs a = base;
          a.w = kConverts ? reinterpret_cast<const uint8_t*>(panel) : groups;
          a.group_bytes = kConverts ? kBlockCols * kGroupRows * sizeof(float) : group_bytes;
          a.rows = std::min(row_end, (g + ng) * kGroupRows) - g * kGroupRows;
          a.prefetch = 0;
          a.x += t * a.x_stride + (kConverts ? k0 : 0);
          a.y += t * a.y_stride + g * kGroupRows;
          a.k_begin = kConverts ? 0 : k0;
          a.k_end = a.k_begin + kn;
          a.spill = spill[(t - tb) / kT];
          a.acc_in = k0 > 0;
          a.acc_out = k0 + kn < w.cols;
          tile_for<Path>(ng, nt, false)(a);
        }
      }
      g += ng;
    }
  }
}

// The tiles' view of x's f32 activations, or of its int8 ones (Q8) when `int8`, and of y.
inline TileArgs tile_args(const MatmulInput& x, bool int8, float* y, size_t y_stride) {
  TileArgs a{};
  if (int8) {
    a.q = x.q8.q;
    a.d = x.q8.d;
    a.s = x.q8.s;
    a.x_stride = x.q8.cols;
    a.block_stride = x.q8.cols / kQ8Block;
  } else {
    a.x = x.x;
    a.x_stride = x.x_stride;
  }
  a.y = y;
  a.y_stride = y_stride;
  return a;
}

// The kernels (MatmulFn) over rows [row_begin, row_end) and every token of x: Path's decode tiles
// (one token at a time, group streams prefetched) or prefill tiles, with f32 or int8 activations.
template <class Path, bool kDecode, bool kInt8>
void tiles(const WeightMatrix& w, const MatmulInput& x, float* y, size_t y_stride, size_t row_begin,
           size_t row_end) {
  run_tiles<Path, kDecode>(w, tile_args(x, kInt8, y, y_stride), x.n_tokens, row_begin, row_end);
}

template <class C>
void float_gemm(const WeightMatrix& w, const MatmulInput& x, float* y, size_t y_stride,
                size_t row_begin, size_t row_end) {
  run_float_gemm<C>(w, tile_args(x, false, y, y_stride), x.n_tokens, row_begin, row_end);
}

template <class C>
inline constexpr MatmulFn float_decode = &tiles<FloatPath<C>, true, false>;
template <class C>
inline constexpr MatmulFn float_prefill = &float_gemm<C>;
template <class C>
inline constexpr MatmulFn exact_decode = &tiles<ExactPath<C>, true, false>;
template <class C>
inline constexpr MatmulFn exact_prefill = &tiles<ExactPath<C>, false, false>;
template <class C>
inline constexpr MatmulFn int8_decode = &tiles<Int8Path<C>, true, true>;
template <class C>
inline constexpr MatmulFn int8_prefill = &tiles<Int8Path<C>, false, true>;

}  // namespace brise::kernels::BRISE_ISA::group_matmul
