// Grouped-query attention over segmented KV views: SIMD vs scalar reference (f32 and f16 rows)
// on awkward shapes, hand-computed cases, and bit-identical results whatever the segmentation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/attention.hpp"
#include "kernels/type_traits.hpp"

namespace brise::kernels {
namespace {

const TypeTraits* const kF32 = find_type("f32");
const TypeTraits* const kF16 = find_type("f16");

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr uint16_t kF16NaN = 0x7E00;

// K and V rows of `keys` positions, every value exactly representable in f16 so that the same
// keys can be viewed as f32 or f16 rows. Padding between head_dim and row_stride is NaN: a read
// past head_dim would poison the result.
struct KVData {
  size_t keys = 0;
  size_t head_dim = 0;
  size_t row_stride = 0;
  std::vector<float> k32, v32;
  std::vector<uint16_t> k16, v16;
  float max_abs_v = 0.0f;
};

// A random f16 of magnitude in [1/16, 4): its bits and its exact f32 value (decoded here, not
// by the library's converter).
void random_f16(std::mt19937& rng, uint16_t* bits, float* value) {
  const uint32_t sign = rng() & 1;
  const uint32_t exponent = 11 + rng() % 6;  // 2^-4 .. 2^1
  const uint32_t mantissa = rng() % 1024;
  *bits = static_cast<uint16_t>(sign << 15 | exponent << 10 | mantissa);
  const float v =
      std::ldexp(1.0f + static_cast<float>(mantissa) / 1024.0f, static_cast<int>(exponent) - 15);
  *value = sign ? -v : v;
}

KVData make_kv(size_t keys, size_t head_dim, size_t row_stride, unsigned seed) {
  KVData kv;
  kv.keys = keys;
  kv.head_dim = head_dim;
  kv.row_stride = row_stride;
  kv.k32.assign(keys * row_stride, kNaN);
  kv.v32.assign(keys * row_stride, kNaN);
  kv.k16.assign(keys * row_stride, kF16NaN);
  kv.v16.assign(keys * row_stride, kF16NaN);
  std::mt19937 rng(seed);
  for (size_t r = 0; r < keys; ++r) {
    for (size_t d = 0; d < head_dim; ++d) {
      const size_t at = r * row_stride + d;
      random_f16(rng, &kv.k16[at], &kv.k32[at]);
      random_f16(rng, &kv.v16[at], &kv.v32[at]);
      kv.max_abs_v = std::max(kv.max_abs_v, std::fabs(kv.v32[at]));
    }
  }
  return kv;
}

std::vector<float> random_queries(size_t group, size_t q_stride, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> q(group * q_stride);
  for (float& x : q) x = dist(rng);
  return q;
}

// A view of the whole of `kv` as one segment. `segments` owns the storage the view points to.
KVView whole_view(const KVData& kv, const TypeTraits* type, std::vector<KVSegment>& segments) {
  const bool f16 = type == kF16;
  segments = {KVSegment{f16 ? static_cast<const void*>(kv.k16.data()) : kv.k32.data(),
                        f16 ? static_cast<const void*>(kv.v16.data()) : kv.v32.data(), kv.keys}};
  return KVView{type, kv.head_dim, kv.row_stride, segments};
}

// The same keys split at `cuts` (ascending, may repeat: empty segments), each piece copied into
// its own buffer at an element offset that varies its alignment.
struct SplitKV {
  std::vector<std::vector<float>> buffers32;
  std::vector<std::vector<uint16_t>> buffers16;
  std::vector<KVSegment> segments;
  KVView view;
};

void make_split(const KVData& kv, const TypeTraits* type, const std::vector<size_t>& cuts,
                unsigned seed, SplitKV& split) {
  std::mt19937 rng(seed);
  std::vector<size_t> bounds = {0};
  bounds.insert(bounds.end(), cuts.begin(), cuts.end());
  bounds.push_back(kv.keys);
  const size_t stride = kv.row_stride;
  split.segments.clear();
  split.buffers32.assign(bounds.size() * 2, {});
  split.buffers16.assign(bounds.size() * 2, {});
  for (size_t s = 0; s + 1 < bounds.size(); ++s) {
    const size_t begin = bounds[s], count = bounds[s + 1] - begin;
    const size_t pad_k = rng() % 16, pad_v = rng() % 16;
    auto& k32 = split.buffers32[2 * s];
    auto& v32 = split.buffers32[2 * s + 1];
    auto& k16 = split.buffers16[2 * s];
    auto& v16 = split.buffers16[2 * s + 1];
    k32.assign(pad_k + count * stride + 1, kNaN);
    v32.assign(pad_v + count * stride + 1, kNaN);
    k16.assign(pad_k + count * stride + 1, kF16NaN);
    v16.assign(pad_v + count * stride + 1, kF16NaN);
    std::copy_n(kv.k32.begin() + begin * stride, count * stride, k32.begin() + pad_k);
    std::copy_n(kv.v32.begin() + begin * stride, count * stride, v32.begin() + pad_v);
    std::copy_n(kv.k16.begin() + begin * stride, count * stride, k16.begin() + pad_k);
    std::copy_n(kv.v16.begin() + begin * stride, count * stride, v16.begin() + pad_v);
    if (type == kF16) {
      split.segments.push_back({k16.data() + pad_k, v16.data() + pad_v, count});
    } else {
      split.segments.push_back({k32.data() + pad_k, v32.data() + pad_v, count});
    }
  }
  split.view = KVView{type, kv.head_dim, stride, split.segments};
}

using AttentionFn = void (*)(const float*, size_t, size_t, const KVView&, float, float*, size_t);

// Runs `fn` into an output pre-filled with NaN (the kernel must not read it; the padding between
// heads must stay untouched).
std::vector<float> run(AttentionFn fn, const std::vector<float>& q, size_t q_stride, size_t group,
                       const KVView& view, float scale, size_t out_stride) {
  std::vector<float> out(group * out_stride, kNaN);
  fn(q.data(), q_stride, group, view, scale, out.data(), out_stride);
  for (size_t g = 0; g < group; ++g) {
    for (size_t d = view.head_dim; d < out_stride; ++d) {
      EXPECT_TRUE(std::isnan(out[g * out_stride + d])) << "padding written, g=" << g;
    }
  }
  return out;
}

bool bit_identical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Largest |simd - ref| over the head_dim values of each head, in units of max|V| (the outputs
// are convex combinations of V rows, so max|V| bounds them).
double max_scaled_error(const std::vector<float>& simd, const std::vector<float>& ref, size_t group,
                        size_t head_dim, size_t out_stride, float max_abs_v) {
  double worst = 0.0;
  for (size_t g = 0; g < group; ++g) {
    for (size_t d = 0; d < head_dim; ++d) {
      const size_t at = g * out_stride + d;
      worst = std::max(worst, std::fabs(static_cast<double>(simd[at]) - ref[at]) / max_abs_v);
    }
  }
  return worst;
}

TEST(Attention, MatchesReferenceOnAwkwardShapesF32AndF16) {
  double worst = 0.0;
  for (size_t head_dim : {8, 12, 64, 100, 128}) {
    for (size_t group : {1, 3, 4, 8, 32}) {
      for (size_t keys : {1, 31, 32, 33, 1000}) {
        // Vary strides so that heads and rows are not packed.
        const size_t row_stride = head_dim + (keys % 2 ? 4 : 0);
        const size_t q_stride = head_dim + (group % 2 ? 3 : 0);
        const size_t out_stride = head_dim + (group % 4 ? 0 : 2);
        const auto kv = make_kv(keys, head_dim, row_stride, static_cast<unsigned>(keys + head_dim));
        const auto q = random_queries(group, q_stride, static_cast<unsigned>(group * 7 + head_dim));
        // A flat softmax (usual 1/sqrt(d)) and a sharp one (scores spread over tens).
        for (float sharpness : {1.0f, 8.0f}) {
          const float scale = sharpness / std::sqrt(static_cast<float>(head_dim));
          SCOPED_TRACE(testing::Message() << "head_dim=" << head_dim << " group=" << group
                                          << " keys=" << keys << " scale=" << scale);
          std::vector<KVSegment> seg32, seg16;
          const KVView v32 = whole_view(kv, kF32, seg32);
          const KVView v16 = whole_view(kv, kF16, seg16);
          const auto simd32 = run(attention, q, q_stride, group, v32, scale, out_stride);
          const auto ref32 = run(attention_ref, q, q_stride, group, v32, scale, out_stride);
          const auto simd16 = run(attention, q, q_stride, group, v16, scale, out_stride);
          const auto ref16 = run(attention_ref, q, q_stride, group, v16, scale, out_stride);
          const double err =
              max_scaled_error(simd32, ref32, group, head_dim, out_stride, kv.max_abs_v);
          worst = std::max(worst, err);
          ASSERT_LE(err, 1e-5);
          // f16 rows hold the same values: widening is exact, so results are the same bits.
          ASSERT_TRUE(bit_identical(simd16, simd32));
          ASSERT_TRUE(bit_identical(ref16, ref32));
        }
      }
    }
  }
  RecordProperty("worst_error_over_max_abs_v", std::to_string(worst));
}

TEST(Attention, LargeAndOddGroupSizes) {
  // 9 = a full block of 8 plus 1; 70 needs two passes over the keys (64 + 6 heads).
  for (size_t group : {2, 5, 7, 9, 16, 70}) {
    const size_t head_dim = 24, keys = 77;
    SCOPED_TRACE(testing::Message() << "group=" << group);
    const auto kv = make_kv(keys, head_dim, head_dim, 11);
    const auto q = random_queries(group, head_dim, 12);
    std::vector<KVSegment> segs;
    const KVView view = whole_view(kv, kF32, segs);
    const float scale = 2.0f;
    const auto simd = run(attention, q, head_dim, group, view, scale, head_dim);
    const auto ref = run(attention_ref, q, head_dim, group, view, scale, head_dim);
    EXPECT_LE(max_scaled_error(simd, ref, group, head_dim, head_dim, kv.max_abs_v), 1e-5);
  }
}

TEST(Attention, SingleKeyReturnsItsValueExactly) {
  for (const TypeTraits* type : {kF32, kF16}) {
    const auto kv = make_kv(1, 100, 100, 5);
    const auto q = random_queries(3, 100, 6);
    std::vector<KVSegment> segs;
    const KVView view = whole_view(kv, type, segs);
    for (AttentionFn fn : {attention, attention_ref}) {
      const auto out = run(fn, q, 100, 3, view, 0.3f, 100);
      for (size_t g = 0; g < 3; ++g) {
        for (size_t d = 0; d < 100; ++d) ASSERT_EQ(out[g * 100 + d], kv.v32[d]) << g << "," << d;
      }
    }
  }
}

TEST(Attention, HandComputedWeights) {
  // head_dim 2, q = (1, 0), scale 1: scores are k_j[0]. Scores 0, ln 3 and ln 4 give weights
  // 1/8, 3/8, 4/8.
  const float k[3][2] = {{0.0f, 5.0f}, {std::log(3.0f), -1.0f}, {std::log(4.0f), 2.0f}};
  const float v[3][2] = {{8.0f, 0.0f}, {0.0f, 8.0f}, {16.0f, -8.0f}};
  const std::vector<float> q = {1.0f, 0.0f};
  const KVSegment seg{k, v, 3};
  const KVView view{kF32, 2, 2, std::span<const KVSegment>(&seg, 1)};
  const double expected[2] = {8.0 / 8 + 16.0 * 4 / 8, 8.0 * 3 / 8 - 8.0 * 4 / 8};
  for (AttentionFn fn : {attention, attention_ref}) {
    const auto out = run(fn, q, 2, 1, view, 1.0f, 2);
    EXPECT_NEAR(out[0], expected[0], 1e-5);
    EXPECT_NEAR(out[1], expected[1], 1e-5);
  }
}

TEST(Attention, IdenticalKeysAverageTheValues) {
  const size_t head_dim = 33, keys = 100;
  auto kv = make_kv(keys, head_dim, head_dim, 9);
  for (size_t r = 1; r < keys; ++r) {
    std::copy_n(kv.k32.begin(), head_dim, kv.k32.begin() + r * head_dim);
  }
  const auto q = random_queries(2, head_dim, 10);
  std::vector<KVSegment> segs;
  const KVView view = whole_view(kv, kF32, segs);
  const auto out = run(attention, q, head_dim, 2, view, 1.0f, head_dim);
  for (size_t d = 0; d < head_dim; ++d) {
    double mean = 0.0;
    for (size_t r = 0; r < keys; ++r) mean += kv.v32[r * head_dim + d];
    mean /= keys;
    EXPECT_NEAR(out[d], mean, 1e-5 * kv.max_abs_v);
    EXPECT_NEAR(out[head_dim + d], mean, 1e-5 * kv.max_abs_v);
  }
}

TEST(Attention, RunningMaxRisingAndFallingAcrossTiles) {
  // Scores that climb (every tile raises the running max) or fall, up to about +-60.
  const size_t head_dim = 16, keys = 300;
  for (bool rising : {true, false}) {
    auto kv = make_kv(keys, head_dim, head_dim, 21);
    const auto q = random_queries(4, head_dim, 22);
    for (size_t r = 0; r < keys; ++r) {
      const float t = (rising ? static_cast<float>(r) : static_cast<float>(keys - r)) / keys;
      for (size_t d = 0; d < head_dim; ++d) kv.k32[r * head_dim + d] = q[d] * 20.0f * t;
    }
    std::vector<KVSegment> segs;
    const KVView view = whole_view(kv, kF32, segs);
    const auto simd = run(attention, q, head_dim, 4, view, 1.0f, head_dim);
    const auto ref = run(attention_ref, q, head_dim, 4, view, 1.0f, head_dim);
    EXPECT_LE(max_scaled_error(simd, ref, 4, head_dim, head_dim, kv.max_abs_v), 1e-5) << rising;
  }
}

TEST(Attention, SegmentationGivesBitIdenticalResults) {
  struct Case {
    size_t head_dim, group, keys;
  };
  for (const Case c :
       {Case{128, 4, 1000}, Case{100, 9, 257}, Case{12, 3, 33}, Case{8, 1, 64}, Case{64, 32, 95}}) {
    const auto kv = make_kv(c.keys, c.head_dim, c.head_dim + 3, static_cast<unsigned>(c.keys));
    const auto q = random_queries(c.group, c.head_dim, 31);
    const float scale = 4.0f / std::sqrt(static_cast<float>(c.head_dim));
    for (const TypeTraits* type : {kF32, kF16}) {
      std::vector<KVSegment> whole_segs;
      const KVView whole = whole_view(kv, type, whole_segs);
      const auto expected = run(attention, q, c.head_dim, c.group, whole, scale, c.head_dim);
      std::mt19937 rng(static_cast<unsigned>(c.keys * 3 + c.group));
      for (int trial = 0; trial < 20; ++trial) {
        // 0 to 5 cuts anywhere, repeats allowed (empty segments), often inside a tile.
        std::vector<size_t> cuts(rng() % 6);
        for (size_t& cut : cuts) cut = rng() % (c.keys + 1);
        std::sort(cuts.begin(), cuts.end());
        SplitKV split;
        make_split(kv, type, cuts, rng(), split);
        SCOPED_TRACE(testing::Message()
                     << "head_dim=" << c.head_dim << " group=" << c.group << " keys=" << c.keys
                     << " f16=" << (type == kF16) << " segments=" << split.segments.size());
        const auto out = run(attention, q, c.head_dim, c.group, split.view, scale, c.head_dim);
        ASSERT_TRUE(bit_identical(out, expected));
      }
    }
  }
}

TEST(Attention, RollingCacheWrapPlusPrefillChunkMatchesContiguousKeys) {
  // A rolling cache of capacity 64 whose oldest key sits at slot 40, followed by a chunk of 20
  // new keys in a separate buffer: segments [40, 64), [0, 40), chunk.
  const size_t head_dim = 128, capacity = 64, start = 40, chunk = 20;
  const size_t keys = capacity + chunk;
  const auto kv = make_kv(keys, head_dim, head_dim, 41);  // keys in attention order
  std::vector<float> cache_k(capacity * head_dim), cache_v(capacity * head_dim);
  for (size_t i = 0; i < capacity; ++i) {
    const size_t slot = (start + i) % capacity;
    std::copy_n(kv.k32.begin() + i * head_dim, head_dim, cache_k.begin() + slot * head_dim);
    std::copy_n(kv.v32.begin() + i * head_dim, head_dim, cache_v.begin() + slot * head_dim);
  }
  const float* chunk_k = kv.k32.data() + capacity * head_dim;
  const float* chunk_v = kv.v32.data() + capacity * head_dim;
  const KVSegment segs[3] = {
      {cache_k.data() + start * head_dim, cache_v.data() + start * head_dim, capacity - start},
      {cache_k.data(), cache_v.data(), start},
      {chunk_k, chunk_v, chunk}};
  const KVView wrapped{kF32, head_dim, head_dim, segs};
  std::vector<KVSegment> whole_segs;
  const KVView whole = whole_view(kv, kF32, whole_segs);
  const auto q = random_queries(4, head_dim, 42);
  const float scale = 1.0f / std::sqrt(128.0f);
  const auto a = run(attention, q, head_dim, 4, wrapped, scale, head_dim);
  const auto b = run(attention, q, head_dim, 4, whole, scale, head_dim);
  EXPECT_TRUE(bit_identical(a, b));
  const auto ref = run(attention_ref, q, head_dim, 4, wrapped, scale, head_dim);
  EXPECT_LE(max_scaled_error(a, ref, 4, head_dim, head_dim, kv.max_abs_v), 1e-5);
}

TEST(Attention, EmptyViewYieldsZeros) {
  // A precondition violation that callers never commit; documented to give zeros, not NaN.
  const auto q = random_queries(2, 8, 1);
  const KVView empty{kF32, 8, 8, {}};
  for (AttentionFn fn : {attention, attention_ref}) {
    const auto out = run(fn, q, 8, 2, empty, 1.0f, 8);
    for (float x : out) EXPECT_EQ(x, 0.0f);
  }
}

}  // namespace
}  // namespace brise::kernels
