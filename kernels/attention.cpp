// Attention over KV blocks (kernels/attention.hpp): a split's partial for a set of query rows,
// block by block, and the fold of partials. Every SIMD loop below computes, lane by lane, what
// attention_split_scalar computes element by element (the specification): a key's score is one
// multiply-add chain over head_dim, d = 0 first; an output element one chain over the block's
// keys, oldest first, after the rescale; the block's exp sum one fixed tree
// (attention_math.hpp). Which rows share a pass, and so which tiles run, changes no result.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/attention.hpp"
#include "kernels/attention_math.hpp"
#include "kernels/isa.hpp"
#include "kernels/kernel_set.hpp"
#include "kernels/simd_f16.hpp"
#include "kernels/types/type_list.hpp"

namespace brise::kernels::BRISE_ISA {
namespace {

using namespace attention_math;

constexpr size_t kNB = kBlockBatches;
// Rows handled by one pass over a block's keys (larger calls are cut into such pieces).
constexpr size_t kMaxRows = 128;
// Vector registers of the set: AVX-512 has 32, AVX2 and SSE 16.
constexpr size_t kRegisters = kWidth == 16 ? 32 : 16;

// ---- element loads ----

template <class Elem>
Batch load(const Elem* p) {
  if constexpr (std::is_same_v<Elem, float>) {
    return Batch::load_unaligned(p);
  } else {
    return load_f16_batch(p);
  }
}
template <class Elem>
float load_scalar(const Elem* p) {
  if constexpr (std::is_same_v<Elem, float>) {
    return *p;
  } else {
    return load_f16_scalar(p);
  }
}

// kWidth int8 values widened to f32 (exact).
Batch load_i8(const int8_t* p) {
#if defined(BRISE_AVX512)
  return _mm512_cvtepi32_ps(
      _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
#else
  alignas(64) float f[kWidth];
  for (size_t i = 0; i < kWidth; ++i) f[i] = static_cast<float>(p[i]);
  return Batch::load_aligned(f);
#endif
}

// ---- integer dot products of 4 key codes (stored + 128) with 4 query codes, per 32-bit lane ----
// `init(offset)` starts a lane's sum; after the 8 steps of a 32-element block every lane holds
// sum k * q exactly, however the set gets there.

#if defined(BRISE_AVX512)
struct I8Dot {
  using V = __m512i;
  static V load_key(const uint8_t* p) {
#if defined(BRISE_AVX512_VNNI)
    return _mm512_loadu_si512(p);
#else
    return _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_set1_epi8(static_cast<char>(0x80)));
#endif
  }
  static V init(int32_t offset) {
#if defined(BRISE_AVX512_VNNI)
    return _mm512_set1_epi32(offset);  // -128 x the query block's code sum
#else
    (void)offset;
    return _mm512_setzero_si512();
#endif
  }
  static V dot(V acc, V key, int32_t q4) {
    const V q = _mm512_set1_epi32(q4);
#if defined(BRISE_AVX512_VNNI)
    return _mm512_dpbusd_epi32(acc, key, q);
#else
    // |k| x (q with k's sign): the products fit 16 bits (|k|, |q| <= 127).
    const V qs = _mm512_mask_sub_epi8(q, _mm512_movepi8_mask(key), _mm512_setzero_si512(), q);
    const V pairs = _mm512_maddubs_epi16(_mm512_abs_epi8(key), qs);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(pairs, _mm512_set1_epi16(1)));
#endif
  }
  static Batch to_float(V v) {
    return _mm512_cvtepi32_ps(v);
  }
};
#endif

#if !defined(BRISE_AVX512) && defined(BRISE_AVX2)
struct I8DotAvx2 {
  using V = __m256i;
  static V load_key(const uint8_t* p) {
    const V k = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
#if defined(BRISE_AVX_VNNI)
    return k;
#else
    return _mm256_xor_si256(k, _mm256_set1_epi8(static_cast<char>(0x80)));
#endif
  }
  static V init(int32_t offset) {
#if defined(BRISE_AVX_VNNI)
    return _mm256_set1_epi32(offset);
#else
    (void)offset;
    return _mm256_setzero_si256();
#endif
  }
  static V dot(V acc, V key, int32_t q4) {
    const V q = _mm256_set1_epi32(q4);
#if defined(BRISE_AVX_VNNI)
    return _mm256_dpbusd_avx_epi32(acc, key, q);
#else
    const V pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(key), _mm256_sign_epi8(q, key));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
#endif
  }
  static Batch to_float(V v) {
    return Batch(_mm256_cvtepi32_ps(v));
  }
};
#endif

// Any width, plain integers.
struct I8DotScalar {
  struct V {
    int32_t lane[kWidth];
  };
  static V load_key(const uint8_t* p) {
    V k;
    std::memcpy(k.lane, p, sizeof k.lane);
    return k;
  }
  static V init(int32_t) { return V{}; }
  static V dot(V acc, V key, int32_t q4) {
    int8_t q[4];
    std::memcpy(q, &q4, 4);
    for (size_t l = 0; l < kWidth; ++l) {
      uint8_t k[4];
      std::memcpy(k, &key.lane[l], 4);
      for (int i = 0; i < 4; ++i) acc.lane[l] += (static_cast<int32_t>(k[i]) - 128) * q[i];
    }
    return acc;
  }
  static Batch to_float(V v) {
    alignas(64) float f[kWidth];
    for (size_t l = 0; l < kWidth; ++l) f[l] = static_cast<float>(v.lane[l]);
    return Batch::load_aligned(f);
  }
};

#if defined(BRISE_AVX512)
using Dot = I8Dot;
#elif defined(BRISE_AVX2)
using Dot = std::conditional_t<kWidth == 8, I8DotAvx2, I8DotScalar>;
#else
using Dot = I8DotScalar;
#endif

// ---- the q8_0 block's parts and a prepared query's (kernels/attention_cache.cpp) ----

struct Q8Block {
  const uint8_t* k_codes;    // [head_dim / 4][kKVBlock][4], code + 128
  const uint16_t* k_scales;  // [head_dim / 32][kKVBlock]
  const int8_t* v_codes;     // [kKVBlock][head_dim]
  const uint16_t* v_scales;  // [head_dim / 32][kKVBlock]
  Q8Block(const std::byte* b, size_t head_dim) {
    const size_t blocks = head_dim / 32;
    k_codes = reinterpret_cast<const uint8_t*>(b);
    k_scales = reinterpret_cast<const uint16_t*>(b + head_dim * kKVBlock);
    v_codes = reinterpret_cast<const int8_t*>(b + head_dim * kKVBlock + blocks * kKVBlock * 2);
    v_scales =
        reinterpret_cast<const uint16_t*>(b + 2 * head_dim * kKVBlock + blocks * kKVBlock * 2);
  }
};

struct Q8Query {
  const int8_t* codes = nullptr;
  const float* scales = nullptr;
  const int32_t* offsets = nullptr;
  Q8Query() = default;
  Q8Query(const void* q, size_t head_dim) {
    const auto* b = static_cast<const std::byte*>(q);
    codes = reinterpret_cast<const int8_t*>(b);
    scales = reinterpret_cast<const float*>(b + head_dim);
    offsets = reinterpret_cast<const int32_t*>(b + head_dim + head_dim / 32 * 4);
  }
};

// ---- the next block, fetched while this one is computed ----

// A part of the next block (bytes [0, bytes) from p), asked for a share at a time over the steps
// of a loop over this block. The blocks of one KV head lie a whole ring row apart in the cache
// (kernels/attention.hpp's callers store [block][head]), so the hardware prefetcher, which stops
// at page boundaries, would start every block cold; a block ahead is ~1000 cycles of FMAs ahead.
// Into L2 (prefetcht2), not L1: a block and the next one fill L1 (32 KiB at f32, head_dim 64), and
// fetched into L1 they evicted the block being read (Zen 4, 1B q4_0 at depth 4096, decode: f32
// cache 38.0 tok/s into L1, 45.2 into L2).
class Ahead {
 public:
  Ahead() = default;
  Ahead(const std::byte* p, size_t bytes, size_t steps)
      : p_(reinterpret_cast<uintptr_t>(p)),
        bytes_(bytes),
        per_step_((bytes + steps * 64 - 1) / (steps * 64) * 64) {}
  void step(size_t i) const {
    if (p_ == 0) return;
    const size_t end = std::min(bytes_, (i + 1) * per_step_);
    for (size_t off = i * per_step_; off < end; off += 64)
      __builtin_prefetch(reinterpret_cast<const void*>(p_ + off), 0, 1);
  }

 private:
  uintptr_t p_ = 0;  // 0: nothing to fetch
  size_t bytes_ = 0, per_step_ = 0;
};

// ---- scores: s[r][j] = scale * q_r . k_j for the kKVBlock keys of a block ----

// f32/f16 keys: element d of the block's keys is one row of the transposed K.
template <class Elem, size_t N>
void float_scores(const std::byte* block, size_t head_dim, const void* const* q, float scale,
                  float* const* s, const Ahead& ahead) {
  const auto* kt = reinterpret_cast<const Elem*>(block);
  const float* qf[N];
  for (size_t r = 0; r < N; ++r) qf[r] = static_cast<const float*>(q[r]);
  Batch acc[N][kNB];
  for (size_t r = 0; r < N; ++r)
    for (size_t v = 0; v < kNB; ++v) acc[r][v] = Batch(0.0f);
  for (size_t d = 0; d < head_dim; ++d) {
    ahead.step(d);
    Batch k[kNB];
    for (size_t v = 0; v < kNB; ++v) k[v] = load(kt + d * kKVBlock + v * kWidth);
    for (size_t r = 0; r < N; ++r) {
      const Batch qd(qf[r][d]);
      for (size_t v = 0; v < kNB; ++v) acc[r][v] = madd(qd, k[v], acc[r][v]);
    }
  }
  for (size_t r = 0; r < N; ++r)
    for (size_t v = 0; v < kNB; ++v) (acc[r][v] * Batch(scale)).store_unaligned(s[r] + v * kWidth);
}

// q8_0 keys: per 32-element block an exact integer dot product, then
// f = fma(float(isum), d_k * d_q, f).
template <size_t N>
void q8_scores(const std::byte* block, size_t head_dim, const void* const* q, float scale,
               float* const* s, const Ahead& ahead) {
  const Q8Block b(block, head_dim);
  Q8Query qq[N];
  for (size_t r = 0; r < N; ++r) qq[r] = Q8Query(q[r], head_dim);
  Batch acc[N][kNB];
  for (size_t r = 0; r < N; ++r)
    for (size_t v = 0; v < kNB; ++v) acc[r][v] = Batch(0.0f);
  for (size_t kb = 0; kb < head_dim / 32; ++kb) {
    typename Dot::V isum[N][kNB];
    for (size_t r = 0; r < N; ++r)
      for (size_t v = 0; v < kNB; ++v) isum[r][v] = Dot::init(qq[r].offsets[kb]);
    for (size_t g = 0; g < 8; ++g) {
      ahead.step(kb * 8 + g);
      const uint8_t* codes = b.k_codes + (kb * 8 + g) * kKVBlock * 4;
      typename Dot::V key[kNB];
      for (size_t v = 0; v < kNB; ++v) key[v] = Dot::load_key(codes + v * kWidth * 4);
      for (size_t r = 0; r < N; ++r) {
        int32_t q4;
        std::memcpy(&q4, qq[r].codes + kb * 32 + g * 4, 4);
        for (size_t v = 0; v < kNB; ++v) isum[r][v] = Dot::dot(isum[r][v], key[v], q4);
      }
    }
    Batch dk[kNB];
    for (size_t v = 0; v < kNB; ++v)
      dk[v] = load_f16_batch(b.k_scales + kb * kKVBlock + v * kWidth);
    for (size_t r = 0; r < N; ++r) {
      const Batch dq(qq[r].scales[kb]);
      for (size_t v = 0; v < kNB; ++v)
        acc[r][v] = madd(Dot::to_float(isum[r][v]), dk[v] * dq, acc[r][v]);
    }
  }
  for (size_t r = 0; r < N; ++r)
    for (size_t v = 0; v < kNB; ++v) (acc[r][v] * Batch(scale)).store_unaligned(s[r] + v * kWidth);
}

// ---- the online softmax of one row over one block ----

// The online softmax of rows over one block: row a's scores s[a] (kKVBlock floats) are masked
// outside [lo[a], hi[a]), its running max and sum (part[a]) updated, its scores turned into
// exp(score - max), and corr[a] set to the factor that rescales what it accumulated so far.
// A row's block is kNB batches held in registers; the rescale factors of kWidth rows are one
// exp_batch (each lane exp_scalar's value).
void block_softmax(float* const* s, const size_t* lo, const size_t* hi,
                   AttentionPartial* const* part, size_t n, float* corr) {
  static_assert(kKVBlock == 32);
  alignas(64) static constexpr float kIota[kKVBlock] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                                        11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                                        22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
  for (size_t a0 = 0; a0 < n; a0 += kWidth) {
    const size_t m = std::min(kWidth, n - a0);
    alignas(64) float old_max[kWidth], new_max[kWidth];
    for (size_t t = 0; t < kWidth; ++t) old_max[t] = new_max[t] = 0.0f;
    for (size_t t = 0; t < m; ++t) {
      const size_t a = a0 + t;
      Batch x[kNB];
      for (size_t v = 0; v < kNB; ++v) x[v] = Batch::load_unaligned(s[a] + v * kWidth);
      if (lo[a] != 0 || hi[a] != kKVBlock) {
        const Batch first(static_cast<float>(lo[a])), end(static_cast<float>(hi[a]));
        for (size_t v = 0; v < kNB; ++v) {
          const Batch slot = Batch::load_aligned(kIota + v * kWidth);
          x[v] = xsimd::select(slot >= first && slot < end, x[v], Batch(kNegInf));
          x[v].store_unaligned(s[a] + v * kWidth);
        }
      }
      old_max[t] = part[a]->max;
      new_max[t] = MaxOp::f(part[a]->max, tree_batches<MaxOp>(x));
    }
    (exp_batch(Batch::load_aligned(old_max) - Batch::load_aligned(new_max))).store_aligned(old_max);
    for (size_t t = 0; t < m; ++t) {
      const size_t a = a0 + t;
      corr[a] = old_max[t];
      Batch e[kNB];
      for (size_t v = 0; v < kNB; ++v) {
        e[v] = exp_batch(Batch::load_unaligned(s[a] + v * kWidth) - Batch(new_max[t]));
        e[v].store_unaligned(s[a] + v * kWidth);
      }
      part[a]->sum = madd(part[a]->sum, corr[a], tree_batches<AddOp>(e));
      part[a]->max = new_max[t];
    }
  }
}

// ---- o += p . V over slots [lo, hi) of a block, after o *= corr ----

// Rows' o whose batches stay in registers across a slice's keys.
template <size_t S>
constexpr size_t pv_rows() {
  return std::clamp<size_t>((kRegisters - S - 2) / S, 1, 8);
}

// Output elements [d0, d0 + S * kWidth) of R rows; value(j, x) is batch x of key j's slice and
// weight(r, j) the weight of key j in row r.
template <size_t R, size_t S, class Value, class Weight>
void pv_slice(size_t d0, size_t lo, size_t hi, const float* corr, float* const* o,
              const Value& value, const Weight& weight, const Ahead& ahead) {
  Batch acc[R][S];
  for (size_t r = 0; r < R; ++r) {
    for (size_t x = 0; x < S; ++x) {
      acc[r][x] = Batch::load_unaligned(o[r] + d0 + x * kWidth);
      if (corr[r] != 1.0f) acc[r][x] = acc[r][x] * Batch(corr[r]);
    }
  }
  for (size_t j = lo; j < hi; ++j) {
    ahead.step(j);
    Batch vx[S];
    for (size_t x = 0; x < S; ++x) vx[x] = value(j, x);
    for (size_t r = 0; r < R; ++r) {
      const Batch w(weight(r, j));
      for (size_t x = 0; x < S; ++x) acc[r][x] = madd(w, vx[x], acc[r][x]);
    }
  }
  for (size_t r = 0; r < R; ++r)
    for (size_t x = 0; x < S; ++x) acc[r][x].store_unaligned(o[r] + d0 + x * kWidth);
}

// f32/f16 values: R rows over the whole head.
template <class Elem, size_t R>
void float_pv(const std::byte* block, size_t head_dim, size_t lo, size_t hi, const float* const* p,
              const float* corr, float* const* o, const Ahead& ahead) {
  const auto* vr = reinterpret_cast<const Elem*>(block) + head_dim * kKVBlock;
  const auto weight = [&](size_t r, size_t j) { return p[r][j]; };
  size_t d0 = 0;
  constexpr size_t kWide = 4;
  for (; d0 + kWide * kWidth <= head_dim; d0 += kWide * kWidth) {
    pv_slice<R, kWide>(
        d0, lo, hi, corr, o,
        [&](size_t j, size_t x) { return load(vr + j * head_dim + d0 + x * kWidth); }, weight,
        d0 == 0 ? ahead : Ahead());
  }
  for (; d0 + kWidth <= head_dim; d0 += kWidth) {
    pv_slice<R, 1>(
        d0, lo, hi, corr, o, [&](size_t j, size_t) { return load(vr + j * head_dim + d0); }, weight,
        d0 == 0 ? ahead : Ahead());
  }
  for (; d0 < head_dim; ++d0) {
    for (size_t r = 0; r < R; ++r) {
      float acc = o[r][d0];
      if (corr[r] != 1.0f) acc = acc * corr[r];
      for (size_t j = lo; j < hi; ++j)
        acc = madd(p[r][j], load_scalar(vr + j * head_dim + d0), acc);
      o[r][d0] = acc;
    }
  }
}

// q8_0 values: key j's weight in a 32-element block is p_j * d_v(j, block).
template <size_t R>
void q8_pv(const std::byte* block, size_t head_dim, size_t lo, size_t hi, const float* const* p,
           const float* corr, float* const* o, const Ahead& ahead) {
  const Q8Block b(block, head_dim);
  constexpr size_t kSlice = 32 / kWidth;
  alignas(64) float w[R][kKVBlock];
  for (size_t kb = 0; kb < head_dim / 32; ++kb) {
    for (size_t r = 0; r < R; ++r) {
      for (size_t v = 0; v < kNB; ++v) {
        const Batch dv = load_f16_batch(b.v_scales + kb * kKVBlock + v * kWidth);
        (Batch::load_unaligned(p[r] + v * kWidth) * dv).store_aligned(w[r] + v * kWidth);
      }
    }
    pv_slice<R, kSlice>(
        kb * 32, lo, hi, corr, o,
        [&](size_t j, size_t x) {
          return load_i8(b.v_codes + j * head_dim + kb * 32 + x * kWidth);
        },
        [&](size_t r, size_t j) { return w[r][j]; }, kb == 0 ? ahead : Ahead());
  }
}

// ---- one cache type's split ----

// Calls f(std::integral_constant<size_t, n>) for a run-time count 1 <= n <= N.
template <size_t N, class F>
void with_count(size_t n, F&& f) {
  if constexpr (N > 1) {
    if (n < N) {
      with_count<N - 1>(n, f);
      return;
    }
  }
  f(std::integral_constant<size_t, N>{});
}

template <class Elem>
struct FloatKind {
  // Rows whose score batches stay in registers together (kNB accumulators each; the key batches
  // of one element take kNB more).
  static constexpr size_t kScoreRows = std::clamp<size_t>((kRegisters - 2 * kNB) / kNB, 1, 12);
  static constexpr size_t kPvRows = pv_rows<4>();
  // The loop steps of scores and pv, over which the next block's K and V parts are fetched.
  static size_t score_steps(size_t hd) { return hd; }
  template <size_t N>
  static void scores(const std::byte* b, size_t hd, const void* const* q, float sc, float* const* s,
                     const Ahead& ahead) {
    float_scores<Elem, N>(b, hd, q, sc, s, ahead);
  }
  template <size_t R>
  static void pv(const std::byte* b, size_t hd, size_t lo, size_t hi, const float* const* p,
                 const float* corr, float* const* o, const Ahead& ahead) {
    float_pv<Elem, R>(b, hd, lo, hi, p, corr, o, ahead);
  }
};

struct Q8Kind {
  // Each row holds kNB integer and kNB float accumulators.
  static constexpr size_t kScoreRows = std::clamp<size_t>((kRegisters - 2 * kNB) / (2 * kNB), 1, 6);
  static constexpr size_t kPvRows = pv_rows<32 / kWidth>();
  static size_t score_steps(size_t hd) { return hd / 4; }
  template <size_t N>
  static void scores(const std::byte* b, size_t hd, const void* const* q, float sc, float* const* s,
                     const Ahead& ahead) {
    q8_scores<N>(b, hd, q, sc, s, ahead);
  }
  template <size_t R>
  static void pv(const std::byte* b, size_t hd, size_t lo, size_t hi, const float* const* p,
                 const float* corr, float* const* o, const Ahead& ahead) {
    q8_pv<R>(b, hd, lo, hi, p, corr, o, ahead);
  }
};

// Up to kMaxRows rows: for each block of the split, the scores of every row with a key in it
// (kScoreRows rows per pass over the keys), each row's softmax update, then the values: rows
// that take the whole block kPvRows at a time, the others (a window's first block, a prefill
// chunk's last) alone over their own slots.
template <class Kind>
void split_rows(const TypeTraits& type, size_t head_dim, float scale, const KVBlocks& blocks,
                uint64_t split, const AttentionRow* rows, AttentionPartial* out, size_t n,
                float* scratch) {
  const size_t k_bytes = kv_block_k_bytes(type, head_dim);
  const size_t v_bytes = kv_block_bytes(type, head_dim) - k_bytes;
  for (size_t r = 0; r < n; ++r) {
    out[r].max = kNegInf;
    out[r].sum = 0.0f;
    std::fill_n(out[r].o, head_dim, 0.0f);
  }
  constexpr uint64_t kPerSplit = kKVSplit / kKVBlock;
  size_t active[kMaxRows], full[kMaxRows];
  size_t lo[kMaxRows], hi[kMaxRows];
  float corr[kMaxRows];
  for (uint64_t b = split * kPerSplit; b < (split + 1) * kPerSplit; ++b) {
    const uint64_t p0 = b * kKVBlock, p1 = p0 + kKVBlock;
    size_t na = 0;
    for (size_t r = 0; r < n; ++r) {
      if (rows[r].begin >= p1 || rows[r].end <= p0) continue;
      lo[na] = std::max(rows[r].begin, p0) - p0;
      hi[na] = std::min(rows[r].end, p1) - p0;
      active[na++] = r;
    }
    if (na == 0) continue;
    const std::byte* block = blocks.blocks[b - blocks.first];
    const bool has_next = b + 1 < (split + 1) * kPerSplit && b + 1 - blocks.first < blocks.count;
    const std::byte* next = has_next ? blocks.blocks[b + 1 - blocks.first] : nullptr;
    // The first pass over the keys fetches the next block's K part, the first pass over the
    // values its V part.
    Ahead k_ahead(next, k_bytes, Kind::score_steps(head_dim));
    Ahead v_ahead(next ? next + k_bytes : nullptr, v_bytes, kKVBlock);

    for (size_t i = 0; i < na; i += Kind::kScoreRows) {
      const size_t m = std::min(Kind::kScoreRows, na - i);
      const void* q[Kind::kScoreRows];
      float* s[Kind::kScoreRows];
      for (size_t t = 0; t < m; ++t) {
        q[t] = rows[active[i + t]].q;
        s[t] = scratch + active[i + t] * kKVBlock;
      }
      with_count<Kind::kScoreRows>(m, [&](auto count) {
        Kind::template scores<count()>(block, head_dim, q, scale, s, k_ahead);
      });
      k_ahead = Ahead();
    }
    float* srow[kMaxRows];
    AttentionPartial* prow[kMaxRows];
    for (size_t a = 0; a < na; ++a) {
      srow[a] = scratch + active[a] * kKVBlock;
      prow[a] = &out[active[a]];
    }
    block_softmax(srow, lo, hi, prow, na, corr);
    size_t nf = 0;
    for (size_t a = 0; a < na; ++a) {
      if (lo[a] == 0 && hi[a] == kKVBlock) {
        full[nf++] = a;
      } else {
        const float* p = scratch + active[a] * kKVBlock;
        Kind::template pv<1>(block, head_dim, lo[a], hi[a], &p, &corr[a], &out[active[a]].o,
                             Ahead());
      }
    }
    for (size_t i = 0; i < nf; i += Kind::kPvRows) {
      const size_t m = std::min(Kind::kPvRows, nf - i);
      const float* p[Kind::kPvRows];
      float c[Kind::kPvRows];
      float* o[Kind::kPvRows];
      for (size_t t = 0; t < m; ++t) {
        const size_t a = full[i + t];
        p[t] = scratch + active[a] * kKVBlock;
        c[t] = corr[a];
        o[t] = out[active[a]].o;
      }
      with_count<Kind::kPvRows>(m, [&](auto count) {
        Kind::template pv<count()>(block, head_dim, 0, kKVBlock, p, c, o, v_ahead);
      });
      v_ahead = Ahead();
    }
  }
}

template <class Kind>
void split_typed(const TypeTraits& type, size_t head_dim, float scale, const KVBlocks& blocks,
                 uint64_t split, std::span<const AttentionRow> rows,
                 std::span<AttentionPartial> out, float* scratch) {
  for (size_t r0 = 0; r0 < rows.size(); r0 += kMaxRows) {
    const size_t n = std::min(kMaxRows, rows.size() - r0);
    split_rows<Kind>(type, head_dim, scale, blocks, split, rows.data() + r0, out.data() + r0, n,
                     scratch);
  }
}

// ---- the specification: one row, one element at a time ----

// Scores of a row's keys [lo, hi) in a block; the others -inf.
void scalar_scores(const TypeTraits& type, size_t head_dim, const std::byte* block, const void* q,
                   float scale, size_t lo, size_t hi, float* s) {
  for (size_t j = 0; j < kKVBlock; ++j) s[j] = kNegInf;
  for (size_t j = lo; j < hi; ++j) {
    float acc = 0.0f;
    if (type.ggml_id == ggml_type::Q8_0) {
      const Q8Block b(block, head_dim);
      const Q8Query qq(q, head_dim);
      for (size_t kb = 0; kb < head_dim / 32; ++kb) {
        int32_t isum = 0;
        for (size_t i = 0; i < 32; ++i) {
          const size_t d = kb * 32 + i;
          const int32_t k = b.k_codes[(d / 4 * kKVBlock + j) * 4 + d % 4] - 128;
          isum += k * qq.codes[d];
        }
        const float dk = load_f16_scalar(b.k_scales + kb * kKVBlock + j);
        acc = madd(static_cast<float>(isum), dk * qq.scales[kb], acc);
      }
    } else {
      const auto* qf = static_cast<const float*>(q);
      for (size_t d = 0; d < head_dim; ++d) {
        const float k =
            type.ggml_id == ggml_type::F16
                ? load_f16_scalar(reinterpret_cast<const uint16_t*>(block) + d * kKVBlock + j)
                : reinterpret_cast<const float*>(block)[d * kKVBlock + j];
        acc = madd(qf[d], k, acc);
      }
    }
    s[j] = acc * scale;
  }
}

// Element d of key j's value times its weight's factor: (value, weight factor).
void scalar_value(const TypeTraits& type, size_t head_dim, const std::byte* block, size_t j,
                  size_t d, float* value, float* factor) {
  const size_t k_bytes = kv_block_k_bytes(type, head_dim);
  if (type.ggml_id == ggml_type::Q8_0) {
    const Q8Block b(block, head_dim);
    *value = static_cast<float>(b.v_codes[j * head_dim + d]);
    *factor = load_f16_scalar(b.v_scales + d / 32 * kKVBlock + j);
  } else if (type.ggml_id == ggml_type::F16) {
    *value = load_f16_scalar(reinterpret_cast<const uint16_t*>(block + k_bytes) + j * head_dim + d);
    *factor = 1.0f;
  } else {
    *value = reinterpret_cast<const float*>(block + k_bytes)[j * head_dim + d];
    *factor = 1.0f;
  }
}

}  // namespace

void attention_split(const TypeTraits& type, size_t head_dim, float scale, const KVBlocks& blocks,
                     uint64_t split, std::span<const AttentionRow> rows,
                     std::span<AttentionPartial> out, float* scratch) {
  switch (type.ggml_id) {
    case ggml_type::F16:
      return split_typed<FloatKind<uint16_t>>(type, head_dim, scale, blocks, split, rows, out,
                                              scratch);
    case ggml_type::Q8_0:
      return split_typed<Q8Kind>(type, head_dim, scale, blocks, split, rows, out, scratch);
    default:
      return split_typed<FloatKind<float>>(type, head_dim, scale, blocks, split, rows, out,
                                           scratch);
  }
}

void attention_split_scalar(const TypeTraits& type, size_t head_dim, float scale,
                            const KVBlocks& blocks, uint64_t split,
                            std::span<const AttentionRow> rows, std::span<AttentionPartial> out,
                            float* scratch) {
  constexpr uint64_t kPerSplit = kKVSplit / kKVBlock;
  const bool q8 = type.ggml_id == ggml_type::Q8_0;
  for (size_t r = 0; r < rows.size(); ++r) {
    AttentionPartial& part = out[r];
    part.max = kNegInf;
    part.sum = 0.0f;
    std::fill_n(part.o, head_dim, 0.0f);
    float* s = scratch;
    for (uint64_t b = split * kPerSplit; b < (split + 1) * kPerSplit; ++b) {
      const uint64_t p0 = b * kKVBlock, p1 = p0 + kKVBlock;
      if (rows[r].begin >= p1 || rows[r].end <= p0) continue;
      const size_t lo = std::max(rows[r].begin, p0) - p0, hi = std::min(rows[r].end, p1) - p0;
      const std::byte* block = blocks.blocks[b - blocks.first];
      scalar_scores(type, head_dim, block, rows[r].q, scale, lo, hi, s);
      const float new_max = MaxOp::f(part.max, tree_max_scalar(s));
      const float corr = exp_scalar(part.max - new_max);
      for (size_t j = 0; j < kKVBlock; ++j) s[j] = exp_scalar(s[j] - new_max);
      part.sum = madd(part.sum, corr, tree_sum_scalar(s));
      part.max = new_max;
      for (size_t d = 0; d < head_dim; ++d) {
        float acc = part.o[d];
        if (corr != 1.0f) acc = acc * corr;
        for (size_t j = lo; j < hi; ++j) {
          float value, factor;
          scalar_value(type, head_dim, block, j, d, &value, &factor);
          acc = madd(q8 ? s[j] * factor : s[j], value, acc);
        }
        part.o[d] = acc;
      }
    }
  }
}

void attention_fold(size_t head_dim, const AttentionPartial& part, AttentionPartial& total) {
  if (part.sum == 0.0f) return;  // no key in that split
  if (total.sum == 0.0f) {
    total.max = part.max;
    total.sum = part.sum;
    std::copy_n(part.o, head_dim, total.o);
    return;
  }
  const float m = std::max(total.max, part.max);
  const float a = exp_scalar(total.max - m), b = exp_scalar(part.max - m);
  total.sum = madd(total.sum, a, part.sum * b);
  total.max = m;
  size_t d = 0;
  for (; d + kWidth <= head_dim; d += kWidth) {
    const Batch o = Batch::load_unaligned(total.o + d);
    madd(o, Batch(a), Batch::load_unaligned(part.o + d) * Batch(b)).store_unaligned(total.o + d);
  }
  for (; d < head_dim; ++d) total.o[d] = madd(total.o[d], a, part.o[d] * b);
}

void attention_finish(size_t head_dim, const AttentionPartial& total, float* out) {
  // An empty total (no key: a caller's bug) gives zeros, not 0/0; a NaN sum stays NaN.
  const float inv = total.sum == 0.0f ? 0.0f : 1.0f / total.sum;
  size_t d = 0;
  for (; d + kWidth <= head_dim; d += kWidth)
    (Batch::load_unaligned(total.o + d) * Batch(inv)).store_unaligned(out + d);
  for (; d < head_dim; ++d) out[d] = total.o[d] * inv;
}

}  // namespace brise::kernels::BRISE_ISA
