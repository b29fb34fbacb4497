#include "kernels/attention.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/fp16.hpp"
#include "kernels/isa.hpp"
#include "kernels/kernel_set.hpp"
#include "kernels/simd_f16.hpp"
#include "kernels/types/type_list.hpp"

namespace brise::kernels {

namespace {
bool is_f16(const KVView& kv) {
  return kv.type && kv.type->ggml_id == ggml_type::F16;
}
}  // namespace

#if defined(BRISE_ISA_GENERIC)
namespace {
// Reads element d of a row of the view as f32 (reference path).
float kv_element(const KVView& kv, const void* base, size_t row, size_t d) {
  const size_t at = row * kv.row_stride + d;
  if (is_f16(kv)) return f16_to_f32(static_cast<const uint16_t*>(base)[at]);
  return static_cast<const float*>(base)[at];
}
}  // namespace

void attention_ref(const float* q, size_t q_stride, size_t group, const KVView& kv, float scale,
                   float* out, size_t out_stride) {
  const size_t head_dim = kv.head_dim;
  for (size_t g = 0; g < group; ++g) {
    const float* qg = q + g * q_stride;
    std::vector<double> scores;
    for (const KVSegment& seg : kv.segments) {
      for (size_t r = 0; r < seg.count; ++r) {
        double dot = 0.0;
        for (size_t d = 0; d < head_dim; ++d)
          dot += static_cast<double>(qg[d]) * kv_element(kv, seg.k, r, d);
        scores.push_back(dot * scale);
      }
    }
    double max = -std::numeric_limits<double>::infinity();
    for (double s : scores) max = std::max(max, s);
    double sum = 0.0;
    for (double& s : scores) {
      s = std::exp(s - max);
      sum += s;
    }
    std::vector<double> acc(head_dim, 0.0);
    size_t j = 0;
    for (const KVSegment& seg : kv.segments) {
      for (size_t r = 0; r < seg.count; ++r, ++j) {
        for (size_t d = 0; d < head_dim; ++d) acc[d] += scores[j] * kv_element(kv, seg.v, r, d);
      }
    }
    float* og = out + g * out_stride;
    for (size_t d = 0; d < head_dim; ++d)
      og[d] = sum > 0.0 ? static_cast<float>(acc[d] / sum) : 0.0f;
  }
}
#endif

namespace BRISE_ISA {
namespace {

using Batch = xsimd::batch<float>;
constexpr size_t kWidth = Batch::size;
constexpr size_t kTile = kAttentionTile;
static_assert(kTile % kWidth == 0, "a tile of scores is a whole number of batches");

// Query heads whose dot products share each converted K/V register: their accumulators stay in
// registers, so this is bounded by the register file (8 heads + K/V + scratch fit in 16 regs).
constexpr size_t kHeadBlock = 8;
// Heads whose softmax state (running max and sum) lives on the stack in one pass over the keys.
// A larger group takes several passes, each re-reading the keys.
constexpr size_t kHeadsPerPass = 64;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// How rows of one element type are read as f32.
struct F32Rows {
  using Elem = float;
  static Batch load(const float* p) { return Batch::load_unaligned(p); }
  static float scalar(const float* p) { return *p; }
};
struct F16Rows {
  using Elem = uint16_t;
  static Batch load(const uint16_t* p) { return load_f16_batch(p); }
  static float scalar(const uint16_t* p) { return load_f16_scalar(p); }
};

// Row pointers of up to kTile consecutive keys of the view (a tile may straddle segments).
template <class Elem>
struct Tile {
  const Elem* k[kTile];
  const Elem* v[kTile];
  size_t count = 0;
};

// Walks the view's keys in order, one tile at a time.
template <class Elem>
class TileCursor {
 public:
  explicit TileCursor(const KVView& kv) : kv_(kv) {}

  // Fills `tile` with the next up to kTile keys; false when none are left.
  bool next(Tile<Elem>& tile) {
    tile.count = 0;
    while (tile.count < kTile && segment_ < kv_.segments.size()) {
      const KVSegment& seg = kv_.segments[segment_];
      if (offset_ == seg.count) {
        ++segment_;
        offset_ = 0;
        continue;
      }
      const size_t take = std::min(kTile - tile.count, seg.count - offset_);
      const Elem* k = static_cast<const Elem*>(seg.k) + offset_ * kv_.row_stride;
      const Elem* v = static_cast<const Elem*>(seg.v) + offset_ * kv_.row_stride;
      for (size_t j = 0; j < take; ++j) {
        tile.k[tile.count + j] = k + j * kv_.row_stride;
        tile.v[tile.count + j] = v + j * kv_.row_stride;
      }
      tile.count += take;
      offset_ += take;
    }
    return tile.count > 0;
  }

 private:
  const KVView& kv_;
  size_t segment_ = 0;
  size_t offset_ = 0;
};

// The softmax state of one pass's heads.
struct RunningSoftmax {
  float max[kHeadsPerPass];
  float sum[kHeadsPerPass];
};

// Every scalar multiply-add below is an explicit std::fma, like the SIMD lanes: left to the
// compiler, contraction could differ between the f32 and f16 instantiations (or between builds),
// and the results must be reproducible bit for bit.
//
// Processes one tile for G query heads: scores, online softmax update, V accumulation into
// out (which holds the unnormalised weighted sum so far, scaled to the running max).
template <class Rows, size_t G>
void attend_tile(const float* q, size_t q_stride, const Tile<typename Rows::Elem>& tile,
                 size_t head_dim, float scale, float* out, size_t out_stride, float* run_max,
                 float* run_sum) {
  alignas(64) float p[G][kTile];

  // Scores: each K row is converted once and multiplied into all G heads.
  for (size_t j = 0; j < tile.count; ++j) {
    const auto* k = tile.k[j];
    Batch acc[G];
    for (size_t g = 0; g < G; ++g) acc[g] = Batch(0.0f);
    size_t d = 0;
    for (; d + kWidth <= head_dim; d += kWidth) {
      const Batch kb = Rows::load(k + d);
      for (size_t g = 0; g < G; ++g) {
        acc[g] = xsimd::fma(Batch::load_unaligned(q + g * q_stride + d), kb, acc[g]);
      }
    }
    float dot[G];
    for (size_t g = 0; g < G; ++g) dot[g] = xsimd::hadd(acc[g]);
    for (; d < head_dim; ++d) {
      const float kd = Rows::scalar(k + d);
      for (size_t g = 0; g < G; ++g) dot[g] = std::fma(q[g * q_stride + d], kd, dot[g]);
    }
    for (size_t g = 0; g < G; ++g) p[g][j] = dot[g] * scale;
  }
  // Missing keys of a short last tile weigh exp(-inf) = 0.
  for (size_t g = 0; g < G; ++g) {
    for (size_t j = tile.count; j < kTile; ++j) p[g][j] = kNegInf;
  }

  // Online softmax: new running max, rescale factor for what was accumulated, tile weights.
  float correction[G];
  for (size_t g = 0; g < G; ++g) {
    Batch m = Batch::load_aligned(p[g]);
    for (size_t j = kWidth; j < kTile; j += kWidth)
      m = xsimd::max(m, Batch::load_aligned(p[g] + j));
    alignas(64) float lanes[kWidth];
    m.store_aligned(lanes);
    float new_max = run_max[g];
    for (float l : lanes) new_max = std::max(new_max, l);
    correction[g] = std::exp(run_max[g] - new_max);  // 0 on the first tile (max was -inf)
    run_max[g] = new_max;
    const Batch mb(new_max);
    Batch s(0.0f);
    for (size_t j = 0; j < kTile; j += kWidth) {
      const Batch e = xsimd::exp(Batch::load_aligned(p[g] + j) - mb);
      e.store_aligned(p[g] + j);
      s += e;
    }
    run_sum[g] = std::fma(run_sum[g], correction[g], xsimd::hadd(s));
  }

  // V accumulation: for each slice of head_dim, the G output slices stay in registers across
  // the tile's rows, and each V slice is converted once.
  size_t d = 0;
  for (; d + kWidth <= head_dim; d += kWidth) {
    Batch o[G];
    for (size_t g = 0; g < G; ++g) {
      o[g] = Batch::load_unaligned(out + g * out_stride + d) * Batch(correction[g]);
    }
    for (size_t j = 0; j < tile.count; ++j) {
      const Batch vb = Rows::load(tile.v[j] + d);
      for (size_t g = 0; g < G; ++g) o[g] = xsimd::fma(Batch(p[g][j]), vb, o[g]);
    }
    for (size_t g = 0; g < G; ++g) o[g].store_unaligned(out + g * out_stride + d);
  }
  for (; d < head_dim; ++d) {
    float o[G];
    for (size_t g = 0; g < G; ++g) o[g] = out[g * out_stride + d] * correction[g];
    for (size_t j = 0; j < tile.count; ++j) {
      const float vd = Rows::scalar(tile.v[j] + d);
      for (size_t g = 0; g < G; ++g) o[g] = std::fma(p[g][j], vd, o[g]);
    }
    for (size_t g = 0; g < G; ++g) out[g * out_stride + d] = o[g];
  }
}

// Runs attend_tile for a block of `heads` (<= kHeadBlock) heads with a compile-time count.
template <class Rows, size_t G = kHeadBlock>
void attend_tile_block(size_t heads, const float* q, size_t q_stride,
                       const Tile<typename Rows::Elem>& tile, size_t head_dim, float scale,
                       float* out, size_t out_stride, float* run_max, float* run_sum) {
  if constexpr (G > 1) {
    if (heads < G) {
      attend_tile_block<Rows, G - 1>(heads, q, q_stride, tile, head_dim, scale, out, out_stride,
                                     run_max, run_sum);
      return;
    }
  }
  attend_tile<Rows, G>(q, q_stride, tile, head_dim, scale, out, out_stride, run_max, run_sum);
}

template <class Rows>
void attention_typed(const float* q, size_t q_stride, size_t group, const KVView& kv, float scale,
                     float* out, size_t out_stride) {
  const size_t head_dim = kv.head_dim;
  for (size_t pass0 = 0; pass0 < group; pass0 += kHeadsPerPass) {
    const size_t heads = std::min(kHeadsPerPass, group - pass0);
    RunningSoftmax state;
    for (size_t h = 0; h < heads; ++h) {
      state.max[h] = kNegInf;
      state.sum[h] = 0.0f;
      std::fill_n(out + (pass0 + h) * out_stride, head_dim, 0.0f);
    }
    TileCursor<typename Rows::Elem> cursor(kv);
    Tile<typename Rows::Elem> tile;
    while (cursor.next(tile)) {
      // The tile's rows come from memory once; later head blocks find them in cache.
      for (size_t b0 = 0; b0 < heads; b0 += kHeadBlock) {
        const size_t h0 = pass0 + b0;
        attend_tile_block<Rows>(std::min(kHeadBlock, heads - b0), q + h0 * q_stride, q_stride, tile,
                                head_dim, scale, out + h0 * out_stride, out_stride, state.max + b0,
                                state.sum + b0);
      }
    }
    for (size_t h = 0; h < heads; ++h) {
      // An empty view leaves sum 0: write zeros rather than 0/0.
      const float inv = state.sum[h] > 0.0f ? 1.0f / state.sum[h] : 0.0f;
      float* o = out + (pass0 + h) * out_stride;
      for (size_t d = 0; d < head_dim; ++d) o[d] *= inv;
    }
  }
}

}  // namespace

void attention(const float* q, size_t q_stride, size_t group, const KVView& kv, float scale,
               float* out, size_t out_stride) {
  if (is_f16(kv)) {
    attention_typed<F16Rows>(q, q_stride, group, kv, scale, out, out_stride);
  } else {
    attention_typed<F32Rows>(q, q_stride, group, kv, scale, out, out_stride);
  }
}

}  // namespace BRISE_ISA
}  // namespace brise::kernels
