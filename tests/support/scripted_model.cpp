#include "support/scripted_model.hpp"

#include <gtest/gtest.h>

#include <string>

#include "brise/gguf.hpp"
#include "brise/model_config.hpp"
#include "support/gguf_image.hpp"
#include "support/testdata.hpp"

namespace brise::test {

void write_scripted_model(const std::filesystem::path& path, const Vocabulary& vocab,
                          const std::vector<std::pair<int32_t, int32_t>>& next) {
  ModelConfig c;
  c.name = "scripted";
  c.dim = 64, c.n_layers = 1, c.n_heads = 2, c.n_kv_heads = 1, c.head_dim = 32;
  c.hidden_dim = 64, c.vocab_size = static_cast<uint32_t>(vocab.size()), c.context_length = 1024;
  ASSERT_LE(next.size(), c.dim);
  gguf::Writer writer;
  write_model_config(writer, c);
  write_vocabulary(writer, vocab);
  const uint64_t dim = c.dim, vocab_rows = c.vocab_size;
  std::vector<std::pair<std::string, std::vector<float>>> tensors;
  const auto add = [&](std::string name, std::vector<uint64_t> dims, std::vector<float> data) {
    uint64_t n = 1;
    for (const uint64_t d : dims) n *= d;
    data.resize(n, 0.0f);
    writer.add_tensor(name, std::move(dims), TensorType::F32);
    tensors.emplace_back(std::move(name), std::move(data));
  };
  std::vector<float> embedding(dim * vocab_rows, 0.0f), output(dim * vocab_rows, 0.0f);
  for (size_t k = 0; k < next.size(); ++k) {
    embedding[static_cast<uint64_t>(next[k].first) * dim + k] = 1.0f;
    output[static_cast<uint64_t>(next[k].second) * dim + k] = 1.0f;
  }
  const std::vector<float> ones(dim, 1.0f);
  add("token_embd.weight", {dim, vocab_rows}, embedding);
  add("blk.0.attn_norm.weight", {dim}, ones);
  add("blk.0.attn_q.weight", {dim, c.q_dim()}, {});
  add("blk.0.attn_k.weight", {dim, c.kv_dim()}, {});
  add("blk.0.attn_v.weight", {dim, c.kv_dim()}, {});
  add("blk.0.attn_output.weight", {c.q_dim(), dim}, {});
  add("blk.0.ffn_norm.weight", {dim}, ones);
  add("blk.0.ffn_gate.weight", {dim, c.hidden_dim}, {});
  add("blk.0.ffn_up.weight", {dim, c.hidden_dim}, {});
  add("blk.0.ffn_down.weight", {c.hidden_dim, dim}, {});
  add("output_norm.weight", {dim}, ones);
  add("output.weight", {dim, vocab_rows}, output);
  write_file_bytes(path, gguf_image(writer, [&](size_t i) {
                     const std::vector<float>& values = tensors[i].second;
                     const auto* bytes = reinterpret_cast<const std::byte*>(values.data());
                     return std::vector<std::byte>(bytes, bytes + values.size() * sizeof(float));
                   }));
}

}  // namespace brise::test
