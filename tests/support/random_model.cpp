#include "support/random_model.hpp"

#include <random>
#include <string>
#include <vector>

#include "brise/gguf.hpp"
#include "brise/model_config.hpp"
#include "support/gguf_image.hpp"
#include "support/testdata.hpp"

namespace brise::test {

void write_random_model(const std::filesystem::path& path, const Vocabulary& vocab, uint64_t seed) {
  ModelConfig c;
  c.name = "random";
  c.dim = 64, c.n_layers = 2, c.n_heads = 2, c.n_kv_heads = 1, c.head_dim = 32;
  c.hidden_dim = 128, c.vocab_size = static_cast<uint32_t>(vocab.size()), c.context_length = 1024;
  gguf::Writer writer;
  write_model_config(writer, c);
  write_vocabulary(writer, vocab);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uniform(-0.5f, 0.5f);
  std::vector<std::pair<uint64_t, bool>> sizes;  // elements, random (else ones: norms)
  const uint64_t dim = c.dim, vocab_rows = c.vocab_size;
  const auto add = [&](const std::string& name, std::vector<uint64_t> dims, bool random) {
    uint64_t n = 1;
    for (const uint64_t d : dims) n *= d;
    writer.add_tensor(name, std::move(dims), TensorType::F32);
    sizes.emplace_back(n, random);
  };
  add("token_embd.weight", {dim, vocab_rows}, true);
  for (uint32_t l = 0; l < c.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", {dim}, false);
    add(b + "attn_q.weight", {dim, c.q_dim()}, true);
    add(b + "attn_k.weight", {dim, c.kv_dim()}, true);
    add(b + "attn_v.weight", {dim, c.kv_dim()}, true);
    add(b + "attn_output.weight", {c.q_dim(), dim}, true);
    add(b + "ffn_norm.weight", {dim}, false);
    add(b + "ffn_gate.weight", {dim, c.hidden_dim}, true);
    add(b + "ffn_up.weight", {dim, c.hidden_dim}, true);
    add(b + "ffn_down.weight", {c.hidden_dim, dim}, true);
  }
  add("output_norm.weight", {dim}, false);
  add("output.weight", {dim, vocab_rows}, true);
  std::vector<std::vector<float>> data;
  for (const auto& [n, random] : sizes) {
    data.emplace_back(n, 1.0f);
    if (random)
      for (float& x : data.back()) x = uniform(rng);
  }
  write_file_bytes(path, gguf_image(writer, [&](size_t i) {
                     const auto* bytes = reinterpret_cast<const std::byte*>(data[i].data());
                     return std::vector<std::byte>(bytes, bytes + data[i].size() * sizeof(float));
                   }));
}

}  // namespace brise::test
