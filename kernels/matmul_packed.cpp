// Quantized weights, packed in groups of 16 rows (kernels/types/packed.hpp), times int8
// activations (matmul_q8) or f32 activations (the exact mode, matmul_packed_exact); packing; and
// the scalar references of both paths, which follow the kernels' summation order exactly (see
// kernels/matmul.hpp).
//
// A tile computes G groups (16 rows each) for T tokens. Its accumulators hold one row per 32-bit
// lane, so every lane is one (row, token) dot product with the same sequence of operations
// whatever G, T, the row range or the thread: that is the determinism contract. Per block of 32:
//   int8:  isum = exact integer sum of the codes times the activations (one vpdpbusd per 4 codes);
//          acc = fma(float(isum), d_w * d_x, acc)
//   exact: for each of the 32 elements in order, acc = fma(float(code) * d_w, x, acc)
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kernels/int8_ops.hpp"
#include "kernels/isa.hpp"
#include "kernels/kernel_set.hpp"
#include "kernels/matmul.hpp"
#include "kernels/matmul_checks.hpp"
#include "kernels/types/all_types.hpp"
#include "kernels/types/packed.hpp"

namespace brise::kernels {

namespace BRISE_ISA {
namespace {

using packed::kGroupRows;

// Calls f.template operator()<Codec>() with the codec of a quantized type.
template <class F>
void with_quantized_codec(const TypeTraits& type, F&& f) {
  switch (type.ggml_id) {
#define BRISE_QUANTIZED_CASE(Codec)    \
  case Codec::kGgmlId:                 \
    if constexpr (Codec::kQuantized) { \
      f.template operator()<Codec>();  \
      return;                          \
    }                                  \
    break;
    BRISE_TENSOR_TYPES(BRISE_QUANTIZED_CASE)
#undef BRISE_QUANTIZED_CASE
  }
  throw std::invalid_argument("matmul: " + std::string(type.name) + " is not a quantized type");
}

using Ops = Int8Ops;
using I = Ops::I;
using F = Ops::F;
constexpr size_t kVecs = kGroupRows / Ops::kRows;  // vectors per group
constexpr size_t kScaleBytes = kGroupRows * packed::kScaleBytes;

struct TileArgs {
  const uint8_t* w;    // the tile's first group
  size_t group_bytes;  // bytes of one group (16 rows)
  size_t n_blocks;     // blocks per row
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
};
using TileFn = void (*)(const TileArgs&);

inline void prefetch_block(const uint8_t* group_block, size_t distance, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64)
    __builtin_prefetch(
        reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(group_block) + distance + off));
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
void q8_tile(const TileArgs& a) {
  constexpr size_t kGroupBlock = packed::group_block_bytes(C::kBlockBytes);
  constexpr size_t kUnits = C::kPayloadBytes / 4;
  constexpr int32_t kBias = C::kSignedCodes ? Ops::kSignedBias : C::kCodeOffset;
  F acc[G][kVecs][T];
  for (auto& g : acc)
    for (auto& v : g)
      for (auto& t : v) t = Ops::zero_f();

  for (size_t b = 0; b < a.n_blocks; ++b) {
    const uint8_t* gb[G];
    for (size_t g = 0; g < G; ++g) {
      gb[g] = a.w + g * a.group_bytes + b * kGroupBlock;
      if constexpr (kPrefetch) prefetch_block(gb[g], a.prefetch, kGroupBlock);
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
  for (auto& g : acc)
    for (auto& v : g)
      for (auto& t : v) t = Ops::zero_f();

  for (size_t b = 0; b < a.n_blocks; ++b) {
    const uint8_t* gb[G];
    F dw[G][kVecs];
    for (size_t g = 0; g < G; ++g) {
      gb[g] = a.w + g * a.group_bytes + b * kGroupBlock;
      if constexpr (kPrefetch) prefetch_block(gb[g], a.prefetch, kGroupBlock);
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

// Tile shapes. Decode: G in 1..kDecodeGroups groups (streams) of one token, prefetching. Prefill:
// G in 1..kGemmGroups groups x T in 1..kGemmTokens tokens.
#if defined(BRISE_AVX512)
constexpr size_t kDecodeGroups = 4;
constexpr size_t kGemmGroups = 2;  // 32 rows x 4 tokens: 8 int + 8 float accumulators
constexpr size_t kGemmTokens = 4;
#else
constexpr size_t kDecodeGroups = 2;  // 16 vector registers of 8 rows: 2 vectors per group
constexpr size_t kGemmGroups = 1;
constexpr size_t kGemmTokens = 2;
#endif
constexpr size_t kDecodeMaxTokens = 1;
constexpr size_t kTokenBlock = 32;  // tokens whose activations are reused across a row panel
constexpr size_t kPanelGroups = 8;
// Decode streams every weight once: prefetch this far ahead in each group.
constexpr size_t kPrefetchBytes = 2048;

template <class C, size_t G, size_t T, bool kPrefetch>
struct Q8Tile {
  static void run(const TileArgs& a) { q8_tile<C, G, T, kPrefetch>(a); }
};
template <class C, size_t G, size_t T, bool kPrefetch>
struct ExactTile {
  static void run(const TileArgs& a) { exact_tile<C, G, T, kPrefetch>(a); }
};

template <template <class, size_t, size_t, bool> class Tile, class C, size_t G, size_t... Ts>
constexpr std::array<TileFn, kGemmTokens> gemm_row(std::index_sequence<Ts...>) {
  return {&Tile<C, G, Ts + 1, false>::run...};
}
template <template <class, size_t, size_t, bool> class Tile, class C, size_t... Gs>
constexpr std::array<std::array<TileFn, kGemmTokens>, kGemmGroups> gemm_table(
    std::index_sequence<Gs...>) {
  return {gemm_row<Tile, C, Gs + 1>(std::make_index_sequence<kGemmTokens>{})...};
}
template <template <class, size_t, size_t, bool> class Tile, class C, size_t... Gs>
constexpr std::array<TileFn, kDecodeGroups> decode_table(std::index_sequence<Gs...>) {
  return {&Tile<C, Gs + 1, 1, true>::run...};
}

template <template <class, size_t, size_t, bool> class Tile, class C>
struct TileTable {
  static constexpr auto kDecode = decode_table<Tile, C>(std::make_index_sequence<kDecodeGroups>{});
  static constexpr auto kGemm = gemm_table<Tile, C>(std::make_index_sequence<kGemmGroups>{});
  static TileFn get(size_t g, size_t t, bool decode) {
    return decode ? kDecode[g - 1] : kGemm[g - 1][t - 1];
  }
};

// Runs tiles over groups [g0, g1) x tokens [0, n_tokens); `base` fills the activation fields.
template <template <class, size_t, size_t, bool> class Tile, class C>
void run_tiles(const WeightMatrix& w, const TileArgs& base, size_t n_tokens, size_t row_begin,
               size_t row_end) {
  const size_t group_bytes = kGroupRows * w.row_bytes;
  const size_t g0 = row_begin / kGroupRows;
  const size_t g1 = (row_end + kGroupRows - 1) / kGroupRows;
  const bool decode = n_tokens <= kDecodeMaxTokens;
  const size_t tile_groups = decode ? kDecodeGroups : kGemmGroups;
  const size_t tile_tokens = decode ? n_tokens : kGemmTokens;
  const size_t token_block = decode ? n_tokens : kTokenBlock;
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
          a.n_blocks = w.cols / C::kBlockElems;
          a.rows = std::min(row_end, (g + ng) * kGroupRows) - g * kGroupRows;
          a.prefetch = decode ? kPrefetchBytes : 0;
          if (a.q) {
            a.q += t * a.x_stride;
            a.d += t * a.block_stride;
            a.s += t * a.block_stride;
          } else {
            a.x += t * a.x_stride;
          }
          a.y += t * a.y_stride + g * kGroupRows;
          TileTable<Tile, C>::get(ng, nt, decode)(a);
        }
        g += ng;
      }
    }
  }
}

}  // namespace

void matmul_q8(const WeightMatrix& w, const Q8Activations& x, size_t n_tokens, float* y,
               size_t y_stride, size_t row_begin, size_t row_end) {
  check_matmul_args(w, n_tokens, x.q != nullptr, y, row_begin, row_end);
  check_q8_args(w, x, n_tokens);
  if (row_begin == row_end || n_tokens == 0) return;
  with_quantized_codec(*w.type, [&]<class C>() {
    const size_t n_blocks = w.cols / C::kBlockElems;
    TileArgs base{};
    base.q = x.q;
    base.d = x.d;
    base.s = x.s;
    base.x_stride = x.cols;
    base.block_stride = n_blocks;
    base.y = y;
    base.y_stride = y_stride;
    run_tiles<Q8Tile, C>(w, base, n_tokens, row_begin, row_end);
  });
}

void matmul_packed_exact(const WeightMatrix& w, const float* x, size_t x_stride, size_t n_tokens,
                         float* y, size_t y_stride, size_t row_begin, size_t row_end) {
  with_quantized_codec(*w.type, [&]<class C>() {
    TileArgs base{};
    base.x = x;
    base.x_stride = x_stride;
    base.y = y;
    base.y_stride = y_stride;
    run_tiles<ExactTile, C>(w, base, n_tokens, row_begin, row_end);
  });
}

}  // namespace BRISE_ISA

#if defined(BRISE_ISA_GENERIC)
using BRISE_ISA::check_matmul_args;
using BRISE_ISA::with_quantized_codec;

namespace {

// The references' dot products over one row of blocks in the file's layout, in the kernels' order.
template <class C>
float q8_dot(const uint8_t* row, const int8_t* q, const float* d, size_t n_blocks) {
  float acc = 0.0f;
  int8_t codes[C::kBlockElems];
  for (size_t b = 0; b < n_blocks; ++b) {
    const uint8_t* block = row + b * C::kBlockBytes;
    C::block_codes(block, codes);
    int32_t isum = 0;
    for (size_t j = 0; j < C::kBlockElems; ++j)
      isum += int32_t{codes[j]} * int32_t{q[b * C::kBlockElems + j]};
    acc = std::fma(static_cast<float>(isum), C::block_scale(block) * d[b], acc);
  }
  return acc;
}

template <class C>
float exact_dot(const uint8_t* row, const float* x, size_t n_blocks) {
  float acc = 0.0f;
  int8_t codes[C::kBlockElems];
  for (size_t b = 0; b < n_blocks; ++b) {
    const uint8_t* block = row + b * C::kBlockBytes;
    C::block_codes(block, codes);
    const float scale = C::block_scale(block);
    for (size_t j = 0; j < C::kBlockElems; ++j)
      acc = std::fma(static_cast<float>(codes[j]) * scale, x[b * C::kBlockElems + j], acc);
  }
  return acc;
}

}  // namespace

size_t WeightMatrix::bytes() const {
  const size_t stored_rows =
      packed ? (rows + packed::kGroupRows - 1) / packed::kGroupRows * packed::kGroupRows : rows;
  return stored_rows * row_bytes;
}

size_t packed_bytes(const WeightMatrix& m) {
  WeightMatrix p = m;
  p.packed = true;
  return p.bytes();
}

void pack_groups(const WeightMatrix& m, void* dst, size_t group_begin, size_t group_end) {
  if (!m.type || !m.type->quantized || m.packed)
    throw std::invalid_argument("pack_groups: needs an unpacked quantized matrix");
  const size_t block_bytes = m.type->block_bytes;
  const size_t n_blocks = m.cols / m.type->block_elems;
  const size_t group_block = packed::group_block_bytes(block_bytes);
  const auto* src = static_cast<const uint8_t*>(m.data);
  for (size_t g = group_begin; g < group_end; ++g) {
    uint8_t* group = static_cast<uint8_t*>(dst) + g * packed::kGroupRows * m.row_bytes;
    for (size_t i = 0; i < packed::kGroupRows; ++i) {
      const size_t r = g * packed::kGroupRows + i;
      for (size_t b = 0; b < n_blocks; ++b) {
        uint8_t zero[512] = {};  // a padding row: scale 0, so it contributes nothing
        const uint8_t* block = r < m.rows ? src + r * m.row_bytes + b * block_bytes : zero;
        packed::pack_block(block, block_bytes, group + b * group_block, i);
      }
    }
  }
}

void unpack_row(const WeightMatrix& p, size_t r, void* out) {
  if (!p.packed || r >= p.rows) throw std::invalid_argument("unpack_row: not a packed row");
  const size_t block_bytes = p.type->block_bytes;
  const size_t group_block = packed::group_block_bytes(block_bytes);
  const auto* group = static_cast<const uint8_t*>(p.data) +
                      r / packed::kGroupRows * packed::kGroupRows * p.row_bytes;
  for (size_t b = 0; b < p.cols / p.type->block_elems; ++b)
    packed::unpack_block(group + b * group_block, block_bytes, r % packed::kGroupRows,
                         static_cast<uint8_t*>(out) + b * block_bytes);
}

void matmul_ref(const WeightMatrix& w, const float* x, size_t x_stride, size_t n_tokens, float* y,
                size_t y_stride, size_t row_begin, size_t row_end) {
  check_matmul_args(w, n_tokens, x != nullptr, y, row_begin, row_end, /*for_reference=*/true);
  const size_t cols = w.cols;
  if (w.type->quantized) {
    with_quantized_codec(*w.type, [&]<class C>() {
      for (size_t t = 0; t < n_tokens; ++t)
        for (size_t r = row_begin; r < row_end; ++r)
          y[t * y_stride + r] = exact_dot<C>(static_cast<const uint8_t*>(w.data) + r * w.row_bytes,
                                             x + t * x_stride, cols / C::kBlockElems);
    });
    return;
  }
  std::vector<float> row(cols);
  for (size_t r = row_begin; r < row_end; ++r) {
    w.type->decode_row_ref(static_cast<const uint8_t*>(w.data) + r * w.row_bytes, row.data(), cols);
    for (size_t t = 0; t < n_tokens; ++t) {
      float sum = 0.0f;
      for (size_t k = 0; k < cols; ++k) sum += row[k] * x[t * x_stride + k];
      y[t * y_stride + r] = sum;
    }
  }
}

void matmul_q8_ref(const WeightMatrix& w, const Q8Activations& x, size_t n_tokens, float* y,
                   size_t y_stride, size_t row_begin, size_t row_end) {
  check_matmul_args(w, n_tokens, x.q != nullptr, y, row_begin, row_end, /*for_reference=*/true);
  BRISE_ISA::check_q8_args(w, x, n_tokens);
  with_quantized_codec(*w.type, [&]<class C>() {
    const size_t n_blocks = w.cols / C::kBlockElems;
    for (size_t t = 0; t < n_tokens; ++t)
      for (size_t r = row_begin; r < row_end; ++r)
        y[t * y_stride + r] = q8_dot<C>(static_cast<const uint8_t*>(w.data) + r * w.row_bytes,
                                        x.q + t * x.cols, x.d + t * n_blocks, n_blocks);
  });
}
#endif  // BRISE_ISA_GENERIC

}  // namespace brise::kernels
