// Small kernels, attention and the tensor types' codecs, SIMD vs scalar reference in the same run.
// Bytes/s counts the bytes each call must read and write (for attention: the K and V rows).
//
//   build/bench/bench_kernels [--benchmark_filter=Attention]
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/activation.hpp"
#include "kernels/attention.hpp"
#include "kernels/fp16.hpp"
#include "kernels/matmul.hpp"
#include "kernels/norm.hpp"
#include "kernels/rope.hpp"
#include "kernels/type_traits.hpp"
#include "tests/support/random_vector.hpp"

namespace {

using namespace brise::kernels;

using brise::test::random_vector;

// ---- RMSNorm, n = 4096 (Mistral 7B hidden size) ----

template <auto Fn>
void BM_RmsNorm(benchmark::State& state) {
  const size_t n = 4096;
  const auto x = random_vector(n, -2.0f, 2.0f, 1);
  const auto w = random_vector(n, 0.5f, 1.5f, 2);
  std::vector<float> out(n);
  for (auto _ : state) {
    Fn(x.data(), w.data(), n, 1e-5f, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 3 * n * sizeof(float)));
}
BENCHMARK(BM_RmsNorm<rmsnorm>)->Name("RmsNorm/simd/4096");
BENCHMARK(BM_RmsNorm<rmsnorm_ref>)->Name("RmsNorm/ref/4096");

// ---- RoPE, 32 heads x 128 ----

template <auto Fn>
void BM_Rope(benchmark::State& state) {
  const size_t heads = 32, head_dim = 128;
  std::vector<float> c(head_dim / 2), s(head_dim / 2);
  rope_angles(1234, head_dim, 1e6, c.data(), s.data());
  auto x = random_vector(heads * head_dim, -2.0f, 2.0f, 3);
  for (auto _ : state) {
    // Rotating in place repeatedly keeps the values bounded (a rotation preserves norms).
    Fn(x.data(), heads, head_dim, c.data(), s.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(
      static_cast<int64_t>(state.iterations() * 2 * heads * head_dim * sizeof(float)));
}
BENCHMARK(BM_Rope<rope_apply>)->Name("Rope/simd/32x128");
BENCHMARK(BM_Rope<rope_apply_ref>)->Name("Rope/ref/32x128");

void BM_RopeAngles(benchmark::State& state) {
  std::vector<float> c(64), s(64);
  size_t pos = 0;
  for (auto _ : state) {
    rope_angles(pos++, 128, 1e6, c.data(), s.data());
    benchmark::DoNotOptimize(c.data());
  }
}
BENCHMARK(BM_RopeAngles)->Name("RopeAngles/128");

// ---- SwiGLU, n = 14336 (Mistral 7B FFN width) ----

template <auto Fn>
void BM_SiluMul(benchmark::State& state) {
  const size_t n = 14336;
  const auto g = random_vector(n, -6.0f, 6.0f, 4);
  const auto u = random_vector(n, -2.0f, 2.0f, 5);
  std::vector<float> out(n);
  for (auto _ : state) {
    Fn(g.data(), u.data(), out.data(), n);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 3 * n * sizeof(float)));
}
BENCHMARK(BM_SiluMul<silu_mul>)->Name("SiluMul/simd/14336");
BENCHMARK(BM_SiluMul<silu_mul_ref>)->Name("SiluMul/ref/14336");

// ---- softmax and argmax over a 32768-entry vocabulary ----

template <auto Fn>
void BM_Softmax(benchmark::State& state) {
  const size_t n = 32768;
  const auto x = random_vector(n, -10.0f, 10.0f, 6);
  std::vector<float> y(n);
  for (auto _ : state) {
    y = x;
    Fn(y.data(), n);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 2 * n * sizeof(float)));
}
BENCHMARK(BM_Softmax<softmax>)->Name("Softmax/simd/32768");
BENCHMARK(BM_Softmax<softmax_ref>)->Name("Softmax/ref/32768");

template <auto Fn>
void BM_Argmax(benchmark::State& state) {
  const size_t n = 32768;
  const auto x = random_vector(n, -10.0f, 10.0f, 7);
  for (auto _ : state) benchmark::DoNotOptimize(Fn(x.data(), n));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n * sizeof(float)));
}
BENCHMARK(BM_Argmax<argmax>)->Name("Argmax/simd/32768");
BENCHMARK(BM_Argmax<argmax_ref>)->Name("Argmax/ref/32768");

// ---- attention: group 4, one decode query against `keys` cached positions ----

// Args: keys, cache type 0 = f32 / 1 = f16 / 2 = q8_0, head_dim. Every split of the keys, then
// the fold. 131072 keys of head_dim 64 (64 MiB of f32 cache) do not fit the L3 of the machines
// measured here: the kernel streams them from memory, as a decode at depth does.
template <auto Fn>
void BM_Attention(benchmark::State& state) {
  const size_t keys = static_cast<size_t>(state.range(0));
  const TypeTraits& type = *find_type(state.range(1) == 0   ? "f32"
                                      : state.range(1) == 1 ? "f16"
                                                            : "q8_0");
  const size_t group = 4, head_dim = static_cast<size_t>(state.range(2));
  const auto k = random_vector(keys * head_dim, -1.0f, 1.0f, 8);
  const auto v = random_vector(keys * head_dim, -1.0f, 1.0f, 9);
  const size_t n_blocks = (keys + kKVBlock - 1) / kKVBlock;
  std::vector<std::byte> storage(n_blocks * kv_block_bytes(type, head_dim));
  std::vector<const std::byte*> table(n_blocks);
  for (size_t b = 0; b < n_blocks; ++b) table[b] = &storage[b * kv_block_bytes(type, head_dim)];
  for (size_t p = 0; p < keys; ++p)
    kv_block_store(type, head_dim, &k[p * head_dim], &v[p * head_dim], p % kKVBlock,
                   &storage[p / kKVBlock * kv_block_bytes(type, head_dim)]);
  const auto q = random_vector(group * head_dim, -1.0f, 1.0f, 10);
  const size_t q_bytes = attention_query_bytes(type, head_dim);
  std::vector<std::byte> prepared(group * q_bytes);
  std::vector<AttentionRow> rows(group);
  for (size_t g = 0; g < group; ++g) {
    attention_prepare_query(type, head_dim, &q[g * head_dim], &prepared[g * q_bytes]);
    rows[g] = {&prepared[g * q_bytes], 0, keys};
  }
  std::vector<float> part_o(group * head_dim), total_o(group * head_dim), out(group * head_dim);
  std::vector<AttentionPartial> parts(group), totals(group);
  std::vector<float> scratch(attention_split_scratch_floats(group));
  const KVBlocks blocks{table.data(), 0, n_blocks};
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  for (auto _ : state) {
    for (size_t g = 0; g < group; ++g) {
      parts[g].o = &part_o[g * head_dim];
      totals[g] = {-INFINITY, 0.0f, &total_o[g * head_dim]};
    }
    for (uint64_t split = 0; split * kKVSplit < keys; ++split) {
      Fn(type, head_dim, scale, blocks, split, rows, parts, scratch.data());
      for (size_t g = 0; g < group; ++g) attention_fold(head_dim, parts[g], totals[g]);
    }
    for (size_t g = 0; g < group; ++g) attention_finish(head_dim, totals[g], &out[g * head_dim]);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(
      static_cast<int64_t>(state.iterations() * n_blocks * kv_block_bytes(type, head_dim)));
  state.counters["keys/s"] = benchmark::Counter(static_cast<double>(state.iterations() * keys),
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Attention<attention_split>)
    ->Name("Attention/simd/g4")
    ->ArgNames({"keys", "type", "head_dim"})
    ->ArgsProduct({{512, 4096, 32768, 131072}, {0, 1, 2}, {64, 128}});
BENCHMARK(BM_Attention<attention_split_scalar>)
    ->Name("Attention/ref/g4")
    ->ArgNames({"keys", "type", "head_dim"})
    ->ArgsProduct({{512, 4096, 32768}, {0, 1, 2}, {64, 128}});

// ---- Codecs: a row of every registry type encoded and decoded, SIMD vs scalar reference ----
// 65536 elements (16 rows of 4096, one packed group's worth). Bytes/s counts floats and blocks.

void BM_Codec(benchmark::State& state, const TypeTraits* type, bool encode, bool ref) {
  const size_t n = 16 * 4096;
  const auto x = random_vector(n, -2.0f, 2.0f, 5);
  std::vector<uint8_t> blocks(n / type->block_elems * type->block_bytes);
  std::vector<float> y(n);
  type->encode_row_ref(x.data(), blocks.data(), n);
  for (auto _ : state) {
    if (encode && ref)
      type->encode_row_ref(x.data(), blocks.data(), n);
    else if (encode)
      encode_row(*type, x.data(), blocks.data(), n);
    else if (ref)
      type->decode_row_ref(blocks.data(), y.data(), n);
    else
      decode_row(*type, blocks.data(), y.data(), n);
    benchmark::DoNotOptimize(blocks.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(
      static_cast<int64_t>(state.iterations() * (n * sizeof(float) + blocks.size())));
}

[[maybe_unused]] const bool kCodecsRegistered = [] {
  for (const TypeTraits& type : all_types())
    for (bool encode : {false, true})
      for (bool ref : {false, true}) {
        const std::string name = "Codec/" + std::string(ref ? "ref/" : "simd/") +
                                 std::string(type.name) + (encode ? "/encode" : "/decode");
        benchmark::RegisterBenchmark(name.c_str(), BM_Codec, &type, encode, ref);
      }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
