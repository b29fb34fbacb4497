// y = W x for float weights (f32, f16, bf16) and f32 activations: one token (GEMV) or a chunk of
// tokens (GEMM) with one register-tiled microkernel; quantized weights go to matmul_packed.cpp.
// Also the scalar references of both, and the row encoders of every type.
//
// Determinism: each (row, token) dot product owns one accumulator batch. Lane l of it sums
// w[k] * x[k] for k = l, l + kLanes, l + 2 kLanes, ... in increasing k with one FMA per step; the
// cols % kLanes leftover elements come last as one zero-padded batch; the batch is then reduced
// by xsimd::hadd. The tile shape (R rows x T tokens), the token and k blocking, and the row range
// decide only which dot products are computed together and where the accumulator batch waits
// between k blocks (registers or an exact spill to memory), never the arithmetic, so GEMV, GEMM
// and any split of rows give bit-identical results.
#include "kernels/matmul.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "kernels/isa.hpp"
#include "kernels/kernel_set.hpp"
#include "kernels/matmul_checks.hpp"
#include "kernels/types/all_types.hpp"

namespace brise::kernels::BRISE_ISA {
namespace {

// Where a tile's accumulators come from and go to.
struct TileArgs {
  const uint8_t* w;  // first row of the tile
  size_t row_bytes;
  const float* x;  // first token of the tile
  size_t x_stride;
  size_t k_begin;  // whole chunks in [k_begin, k_end)
  size_t k_end;
  size_t tail;  // 0, or elements [k_end, k_end + tail) as one zero-padded batch (last block)
  float* acc;   // spilled accumulators [R][acc_row_stride][kLanes] or nullptr
  size_t acc_row_stride;
  size_t prefetch;  // bytes to prefetch ahead of each weight row, or 0
  bool acc_in;      // start from the spilled accumulators (else from zero)
  bool acc_out;     // spill the accumulators (else reduce them into y)
  float* y;         // y for the first row and token of the tile
  size_t y_stride;
};

using TileFn = void (*)(const TileArgs&);

// A hint to fetch the line `offset` bytes past p. The address may lie past the end of the matrix
// (the last tile looks ahead into nothing), which a prefetch never faults on; it is formed as an
// integer so that no out-of-bounds pointer is ever made.
inline void prefetch_at(const uint8_t* p, size_t offset) {
  __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) + offset));
}

// kPrefetch is a template parameter, not a branch in the loop: any extra code in the loop can
// make GCC keep the accumulators in memory instead of registers (checked in the disassembly).
template <class W, size_t R, size_t T, bool kPrefetch>
void tile(const TileArgs& a) {
  Batch acc[R][T];
  for (size_t r = 0; r < R; ++r)
    for (size_t t = 0; t < T; ++t)
      acc[r][t] =
          a.acc_in ? Batch::load_aligned(a.acc + (r * a.acc_row_stride + t) * kLanes) : Batch(0.0f);

  const uint8_t* rows[R];
  for (size_t r = 0; r < R; ++r) rows[r] = a.w + r * a.row_bytes;

  // One step of chunk k for every row and token of the tile: each activation batch and each
  // weight batch is loaded once.
  static_assert(W::kSteps == 1, "float weights: one batch per chunk");
  const auto step = [&](size_t k) __attribute__((always_inline)) {
    Batch xv[T];
    for (size_t t = 0; t < T; ++t) xv[t] = load_pinned(a.x + t * a.x_stride + k);
    for (size_t r = 0; r < R; ++r) {
      Batch w[1];
      W::load(rows[r], k, w);
      for (size_t t = 0; t < T; ++t) acc[r][t] = fmadd(w[0], xv[t], acc[r][t]);
    }
  };

  size_t k = a.k_begin;
  if constexpr (kPrefetch) {
    // Decode streams each weight once: ask for it early so enough lines are in flight. A tile's
    // rows lie back to back in memory and so do the tiles that follow, so once the distance runs
    // past the end of a row it moves on to the same row of the next tile (R rows further): that
    // tile then starts with its first lines on the way instead of cold (+20 % on 8 KiB rows).
    // A distance longer than a row (quantized types) already reaches later tiles as it is.
    const size_t first_past_row =
        a.prefetch >= a.row_bytes
            ? a.k_end
            : (a.row_bytes - a.prefetch + W::kChunkBytes - 1) / W::kChunkBytes * W::kChunk;
    const size_t k_wrap = std::clamp(first_past_row, a.k_begin, a.k_end);
    // Steps up to k_stop, prefetching `extra` bytes further than the distance.
    const auto prefetching_steps = [&](size_t k_stop, size_t extra) __attribute__((always_inline)) {
      for (; k < k_stop; k += W::kChunk) {
        const size_t ahead = (k / W::kChunk) * W::kChunkBytes + a.prefetch + extra;
        for (size_t r = 0; r < R; ++r) prefetch_at(rows[r], ahead);
        step(k);
      }
    };
    prefetching_steps(k_wrap, 0);
    prefetching_steps(a.k_end, (R - 1) * a.row_bytes);  // into the next tile's rows
  } else {
    for (; k < a.k_end; k += W::kChunk) step(k);
  }
  if (a.tail) {
    Batch w[R];
    for (size_t r = 0; r < R; ++r) w[r] = W::load_tail(rows[r], a.k_end, a.tail);
    for (size_t t = 0; t < T; ++t) {
      const Batch xv = load_partial(a.x + t * a.x_stride + a.k_end, a.tail);
      for (size_t r = 0; r < R; ++r) acc[r][t] = fmadd(w[r], xv, acc[r][t]);
    }
  }

  if (a.acc_out) {
    for (size_t r = 0; r < R; ++r)
      for (size_t t = 0; t < T; ++t)
        acc[r][t].store_aligned(a.acc + (r * a.acc_row_stride + t) * kLanes);
  } else {
    for (size_t r = 0; r < R; ++r)
      for (size_t t = 0; t < T; ++t) a.y[t * a.y_stride + r] = xsimd::hadd(acc[r][t]);
  }
}

// Tiling, tuned on Zen 5 (AVX-512, 48 KiB L1D, 1 MiB L2 per core) with bench/bench_matmul.cpp.
// Decode (1-2 tokens) is memory-bound: 8 weight rows stream per tile, software-prefetched
// (measured: 1, 2, 4 or 12-16 rows per tile, or no prefetch, stream slower).
constexpr size_t kDecodeTileRows = 8;
constexpr size_t kDecodeMaxTokens = 2;
// Prefill: 6 rows x 4 tokens = 24 accumulators; a step loads 6 weight and 4 activation batches
// (each once, see load_pinned) for 24 FMAs (measured: 4x6, 8x3, 4x4, 6x3 are slower).
constexpr size_t kGemmTileRows = 6;
constexpr size_t kGemmTileTokens = 4;

// The tiles of each shape: decode R in 1..kDecodeTileRows x T in 1..kDecodeMaxTokens,
// prefetching; prefill R in 1..kGemmTileRows x T in 1..kGemmTileTokens. Prefill reads 16-bit
// weights converted to f32 (run_blocks), so only f32 has prefill tiles.
template <class W, bool kPrefetch, size_t R, size_t Tmax, size_t... Ts>
constexpr std::array<TileFn, Tmax> tiles_for_rows(std::index_sequence<Ts...>) {
  return {&tile<W, R, Ts + 1, kPrefetch>...};
}
template <class W, bool kPrefetch, size_t Tmax, size_t... Rs>
constexpr auto tile_table(std::index_sequence<Rs...>) {
  return std::array<std::array<TileFn, Tmax>, sizeof...(Rs)>{
      tiles_for_rows<W, kPrefetch, Rs + 1, Tmax>(std::make_index_sequence<Tmax>{})...};
}

template <class W>
struct TileTable {
  static TileFn get(size_t r, size_t t, bool prefetch) {
    static constexpr auto kDecode =
        tile_table<W, true, kDecodeMaxTokens>(std::make_index_sequence<kDecodeTileRows>{});
    if (prefetch) return kDecode[r - 1][t - 1];
    if constexpr (std::is_same_v<W, F32>) {
      static constexpr auto kGemm =
          tile_table<W, false, kGemmTileTokens>(std::make_index_sequence<kGemmTileRows>{});
      return kGemm[r - 1][t - 1];
    }
    return nullptr;  // never asked: prefill converts 16-bit weights to f32
  }
};

// Activations of a token block are reused across a row panel from L2.
constexpr size_t kTokenBlock = 48;
// Columns per k block: rows up to 1.5x this run in one block, longer rows (Mistral's w2, 14336)
// in blocks whose accumulators wait in memory for a panel of rows. (Measured: 512-2048 column
// blocks, which keep a tile's rows in L1, lose more to the accumulator traffic than they gain.)
constexpr size_t kKBlock = 4096;
constexpr size_t kPanelRows = 24;

static_assert(kTokenBlock % kGemmTileTokens == 0 && kPanelRows % kGemmTileRows == 0);
static_assert(kDecodeTileRows * kDecodeMaxTokens <= 24 && kGemmTileRows * kGemmTileTokens <= 24);

// Blocking parameters of one call.
struct Blocking {
  size_t tile_rows;    // R of the main tiles (the rows left at a panel's end use a smaller R)
  size_t tile_tokens;  // T of the main tiles
  size_t panel_rows;   // rows whose accumulators are spilled together between k blocks
  size_t token_block;  // tokens whose activations are reused across a row panel
  size_t k_block;      // elements per k block (a multiple of every kChunk)
  size_t prefetch;     // software prefetch distance in bytes (0: none)
};

template <class W>
Blocking choose_blocking(size_t n_tokens, size_t cols) {
  Blocking b{};
  if (n_tokens <= kDecodeMaxTokens) {
    b.prefetch = W::kPrefetchBytes;
    b.tile_rows = kDecodeTileRows;
    b.tile_tokens = n_tokens;
    b.panel_rows = kDecodeTileRows;
    b.token_block = n_tokens;
    b.k_block = std::max(cols, W::kChunk);  // one block (never 0, so the k loop advances)
    return b;
  }
  b.tile_rows = kGemmTileRows;
  b.tile_tokens = std::min(n_tokens, kGemmTileTokens);
  b.panel_rows = kPanelRows;
  b.token_block = kTokenBlock;
  b.k_block = kKBlock;
  if (cols <= kKBlock + kKBlock / 2) b.k_block = std::max(cols, W::kChunk);  // one block
  return b;
}

// Prefill converts 16-bit weights to f32 once per row tile and k block, into a scratch panel that
// every token tile then reads as f32 weights: the conversions cost a token block's worth of tiles
// less, and the values (and so the sums) are the ones the one-token path converts on the fly.
constexpr size_t kPanelCols = kKBlock + kKBlock / 2 + kLanes;  // the longest k block, and a tail

template <class W>
void run_blocks(const WeightMatrix& w, const float* x, size_t x_stride, size_t n_tokens, float* y,
                size_t y_stride, size_t row_begin, size_t row_end, const Blocking& b, float* spill,
                float* panel) {
  constexpr bool kConverts = !std::is_same_v<W, F32>;
  const size_t cols = w.cols;
  const size_t full = cols - cols % W::kChunk;  // whole chunks; the rest is the zero-padded tail
  const size_t tail = cols - full;
  const auto* base = static_cast<const uint8_t*>(w.data);
  const bool blocked_k = spill != nullptr;

  for (size_t tb = 0; tb < n_tokens; tb += b.token_block) {
    const size_t tb_end = std::min(n_tokens, tb + b.token_block);
    for (size_t rp = row_begin; rp < row_end; rp += b.panel_rows) {
      const size_t rp_end = std::min(row_end, rp + b.panel_rows);
      // One pass when the whole row fits one k block (also when there are no whole chunks).
      for (size_t kb = 0; kb == 0 || kb < full; kb += b.k_block) {
        const size_t kb_end = std::min(full, kb + b.k_block);
        const bool first = kb == 0;
        const bool last = kb_end == full;
        for (size_t r = rp; r < rp_end;) {
          const size_t nr = std::min(b.tile_rows, rp_end - r);
          const bool converted = kConverts && b.prefetch == 0;
          const size_t seg = kb_end - kb + (last ? tail : 0);  // elements of this k block
          const size_t panel_stride = (seg + kLanes - 1) / kLanes * kLanes;
          if (converted)
            for (size_t i = 0; i < nr; ++i)
              W::decode_row(base + (r + i) * w.row_bytes + kb * W::kBlockBytes,
                            panel + i * panel_stride, seg);
          for (size_t t = tb; t < tb_end; t += b.tile_tokens) {
            const size_t nt = std::min(b.tile_tokens, tb_end - t);
            TileArgs a;
            a.w = base + r * w.row_bytes;
            a.row_bytes = w.row_bytes;
            a.x = x + t * x_stride;
            a.x_stride = x_stride;
            a.k_begin = kb;
            a.k_end = kb_end;
            a.tail = last ? tail : 0;
            if (converted) {  // the panel's row i holds elements [kb, kb + seg) of row r + i
              a.w = reinterpret_cast<const uint8_t*>(panel);
              a.row_bytes = panel_stride * sizeof(float);
              a.x += kb;
              a.k_begin = 0;
              a.k_end = kb_end - kb;
            }
            a.acc = blocked_k ? spill + ((r - rp) * b.token_block + (t - tb)) * kLanes : nullptr;
            a.acc_row_stride = b.token_block;
            a.prefetch = b.prefetch;
            a.acc_in = blocked_k && !first;
            a.acc_out = blocked_k && !last;
            a.y = y + t * y_stride + r;
            a.y_stride = y_stride;
            if (converted)
              TileTable<F32>::get(nr, nt, false)(a);
            else
              TileTable<W>::get(nr, nt, b.prefetch != 0)(a);
          }
          r += nr;
        }
      }
    }
  }
}

template <class W>
void run(const WeightMatrix& w, const float* x, size_t x_stride, size_t n_tokens, float* y,
         size_t y_stride, size_t row_begin, size_t row_end) {
  const Blocking b = choose_blocking<W>(n_tokens, w.cols);
  const size_t full = w.cols - w.cols % W::kChunk;
  alignas(64) float panel[std::is_same_v<W, F32> ? 1 : kGemmTileRows * kPanelCols];  // 144 KiB
  if (b.k_block >= full) {
    run_blocks<W>(w, x, x_stride, n_tokens, y, y_stride, row_begin, row_end, b, nullptr, panel);
    return;
  }
  alignas(64) float spill[kPanelRows * kTokenBlock * kLanes];  // 72 KiB with AVX-512
  run_blocks<W>(w, x, x_stride, n_tokens, y, y_stride, row_begin, row_end, b, spill, panel);
}

}  // namespace

void matmul(const WeightMatrix& w, const float* x, size_t x_stride, size_t n_tokens, float* y,
            size_t y_stride, size_t row_begin, size_t row_end) {
  check_matmul_args(w, n_tokens, x != nullptr, y, row_begin, row_end);
  if (row_begin == row_end || n_tokens == 0) return;
  if (w.type->quantized) {
    matmul_packed_exact(w, x, x_stride, n_tokens, y, y_stride, row_begin, row_end);
    return;
  }
  switch (w.type->ggml_id) {
    case F32::kGgmlId:
      return run<F32>(w, x, x_stride, n_tokens, y, y_stride, row_begin, row_end);
    case F16::kGgmlId:
      return run<F16>(w, x, x_stride, n_tokens, y, y_stride, row_begin, row_end);
    case BF16::kGgmlId:
      return run<BF16>(w, x, x_stride, n_tokens, y, y_stride, row_begin, row_end);
  }
  throw std::invalid_argument("matmul: no f32-activation kernel for " + std::string(w.type->name));
}

void encode_row(const TypeTraits& type, const float* x, void* out, size_t n) {
  switch (type.ggml_id) {
#define BRISE_ENCODE_CASE(Codec) \
  case Codec::kGgmlId:           \
    return Codec::encode_row(x, out, n);
    BRISE_TENSOR_TYPES(BRISE_ENCODE_CASE)
#undef BRISE_ENCODE_CASE
  }
  throw std::invalid_argument("encode_row: unknown type " + std::string(type.name));
}

void decode_row(const TypeTraits& type, const void* in, float* out, size_t n) {
  switch (type.ggml_id) {
#define BRISE_DECODE_CASE(Codec) \
  case Codec::kGgmlId:           \
    return Codec::decode_row(in, out, n);
    BRISE_TENSOR_TYPES(BRISE_DECODE_CASE)
#undef BRISE_DECODE_CASE
  }
  throw std::invalid_argument("decode_row: unknown type " + std::string(type.name));
}

}  // namespace brise::kernels::BRISE_ISA
