#include "brise/model.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>
#include <stdexcept>
#include <utility>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "engine/gguf/tensor_encoding.hpp"
#include "engine/runtime/huge_pages.hpp"
#include "engine/runtime/model_weights.hpp"
#include "kernels/kernel_set.hpp"

namespace brise {
namespace {

// Looks up a matrix of `rows` x `cols` (GGUF dims [cols, rows]) and checks its shape; `sizes`
// says where the sizes come from, for the message.
kernels::WeightMatrix matrix(const gguf::File& file, const std::string& name, uint32_t rows,
                             uint32_t cols, std::set<std::string>& used,
                             const std::string& sizes = "") {
  const gguf::TensorInfo& t = file.tensor(name);
  used.insert(name);
  if (t.dims.size() != 2 || t.dims[0] != cols || t.dims[1] != rows)
    throw Error(file.name() + ": tensor '" + name + "' has dims " +
                [&] {
                  std::string s = "[";
                  for (size_t i = 0; i < t.dims.size(); ++i)
                    s += (i ? ", " : "") + std::to_string(t.dims[i]);
                  return s + "]";
                }() +
                " but the hyperparameters need [" + std::to_string(cols) + ", " +
                std::to_string(rows) + "]" + (sizes.empty() ? "" : " (" + sizes + ")"));
  kernels::WeightMatrix w;
  w.data = t.data;
  w.type = &type_traits(t.type);
  w.rows = rows;
  w.cols = cols;
  w.row_bytes = t.n_bytes / rows;
  return w;
}

const float* norm(const gguf::File& file, const std::string& name, uint32_t dim,
                  std::set<std::string>& used) {
  const gguf::TensorInfo& t = file.tensor(name);
  used.insert(name);
  if (t.dims.size() != 1 || t.dims[0] != dim)
    throw Error(file.name() + ": tensor '" + name + "' must be a vector of " + std::to_string(dim) +
                " values");
  if (t.type != TensorType::F32)
    throw Error(file.name() + ": tensor '" + name + "' is " +
                std::string(tensor_type_name(t.type)) + "; norm weights must be f32");
  return reinterpret_cast<const float*>(t.data);
}

// Memory for a matrix's copy, on 2 MiB pages (huge_pages.hpp).
std::byte* matrix_memory(size_t bytes, ModelWeights& weights) {
  void* dst = allocate_on_huge_pages(bytes);
  if (!dst) throw Error("out of memory copying a " + std::to_string(bytes) + "-byte matrix");
  weights.packed.emplace_back(static_cast<std::byte*>(dst));
  return static_cast<std::byte*>(dst);
}

// Replaces a matrix by its copy in memory, made by all threads: packed for the kernels
// (kernels/matmul.hpp) where the kernel set has a kernel over packed rows for the type
// (kernels::packs_rows), else byte for byte.
void copy_to_memory(kernels::WeightMatrix& w, ModelWeights& weights) {
  const bool packed = kernels::packs_rows(*w.type);
  std::byte* dst = matrix_memory(packed ? kernels::packed_bytes(w) : w.bytes(), weights);
  const auto groups =
      static_cast<int64_t>((w.rows + kernels::kMatmulRowAlign - 1) / kernels::kMatmulRowAlign);
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < groups; ++g) {
    const size_t first = static_cast<size_t>(g) * kernels::kMatmulRowAlign;
    if (packed) {
      kernels::pack_groups(w, dst, static_cast<size_t>(g), static_cast<size_t>(g) + 1);
    } else {
      const size_t rows = std::min(kernels::kMatmulRowAlign, w.rows - first);
      std::memcpy(dst + first * w.row_bytes,
                  static_cast<const std::byte*>(w.data) + first * w.row_bytes, rows * w.row_bytes);
    }
  }
  w.data = dst;
  w.packed = packed;
}

}  // namespace

std::shared_ptr<const Model> Model::load(const std::filesystem::path& path,
                                         const std::function<void(uint64_t, uint64_t)>& progress) {
  try {
    kernels::kernel_set();  // BRISE_ISA's errors surface here, not inside a forward pass
  } catch (const std::runtime_error& e) {
    throw Error(e.what());
  }
  std::shared_ptr<Model> m(new Model());
  m->weights_ = std::make_unique<ModelWeights>();
  ModelWeights& weights = *m->weights_;
  m->file_ = gguf::File::open(path);
  const gguf::File& file = *m->file_;
  m->config_ = read_model_config(file);
  const ModelConfig& c = m->config_;

  if (file.find("tokenizer.ggml.tokens")) {
    Vocabulary vocab = read_vocabulary(file);
    try {
      m->tokenizer_ = std::make_unique<Tokenizer>(std::move(vocab));
    } catch (const Error& e) {  // the tokenizer's own checks do not know the file's name
      throw Error(file.name() + ": " + e.what());
    }
    if (m->tokenizer_->vocab_size() != c.vocab_size)
      throw Error(file.name() + ": the tokenizer has " +
                  std::to_string(m->tokenizer_->vocab_size()) +
                  " tokens but the model's vocab_size is " + std::to_string(c.vocab_size));
  }

  std::set<std::string> used;
  // head_dim need not be dim / n_heads (Nemo: 32 heads of 128 over dim 5120).
  const std::string q_sizes = std::to_string(c.n_heads) + " heads x head_dim " +
                              std::to_string(c.head_dim) + ", dim " + std::to_string(c.dim);
  const std::string kv_sizes = std::to_string(c.n_kv_heads) + " kv heads x head_dim " +
                               std::to_string(c.head_dim) + ", dim " + std::to_string(c.dim);
  weights.token_embedding = matrix(file, "token_embd.weight", c.vocab_size, c.dim, used);
  for (uint32_t i = 0; i < c.n_layers; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    LayerWeights l;
    l.attention_norm = norm(file, b + "attn_norm.weight", c.dim, used);
    l.wq = matrix(file, b + "attn_q.weight", c.q_dim(), c.dim, used, q_sizes);
    l.wk = matrix(file, b + "attn_k.weight", c.kv_dim(), c.dim, used, kv_sizes);
    l.wv = matrix(file, b + "attn_v.weight", c.kv_dim(), c.dim, used, kv_sizes);
    l.wo = matrix(file, b + "attn_output.weight", c.dim, c.q_dim(), used, q_sizes);
    l.ffn_norm = norm(file, b + "ffn_norm.weight", c.dim, used);
    l.w1 = matrix(file, b + "ffn_gate.weight", c.hidden_dim, c.dim, used);
    l.w2 = matrix(file, b + "ffn_down.weight", c.dim, c.hidden_dim, used);
    l.w3 = matrix(file, b + "ffn_up.weight", c.hidden_dim, c.dim, used);
    weights.layers.push_back(l);
  }
  weights.output_norm = norm(file, "output_norm.weight", c.dim, used);
  if (file.find_tensor("output.weight")) {
    weights.output = matrix(file, "output.weight", c.vocab_size, c.dim, used);
  } else {
    // llama.cpp omits the classifier of models with tied embeddings.
    weights.output = weights.token_embedding;
    weights.tied = true;
  }
  for (const auto& t : file.tensors())
    if (!used.count(t.name))
      throw Error(file.name() + ": unexpected tensor '" + t.name +
                  "' (not part of the Mistral architecture)");

  // Copy the matrices into memory, packed for the kernels where the kernel set has a kernel over
  // packed rows (kernels::packs_rows), then let the mapping's copy go: its pages leave the
  // resident set, so memory stays about the file's size. A tied embedding's mapping stays (its
  // rows are looked up as stored), so the classifier gets a copy only when it is packed.
  uint64_t total = 0, done = 0;
  for (const kernels::WeightMatrix* w : weights.matrices()) total += w->bytes();
  for (kernels::WeightMatrix* w : weights.matrices()) {
    const bool tied_output = weights.tied && w == &weights.output;
    const void* stored = w->data;
    if (!tied_output || kernels::packs_rows(*w->type)) copy_to_memory(*w, weights);
    if (!tied_output) {
      for (const auto& t : file.tensors())
        if (t.data == stored) file.release(t);
      weights.released.push_back(stored);
    }
    done += w->bytes();
    if (progress) progress(done, total);
  }
  return m;
}

Model::~Model() = default;

bool Model::tied_embeddings() const {
  return weights_->tied;
}

std::vector<kernels::WeightMatrix*> ModelWeights::matrices() {
  std::vector<kernels::WeightMatrix*> all;
  for (auto& l : layers)
    for (kernels::WeightMatrix* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w1, &l.w2, &l.w3})
      all.push_back(w);
  all.push_back(&output);
  return all;
}

std::vector<const kernels::WeightMatrix*> ModelWeights::matrices() const {
  std::vector<const kernels::WeightMatrix*> all;
  for (kernels::WeightMatrix* w : const_cast<ModelWeights*>(this)->matrices()) all.push_back(w);
  return all;
}

std::vector<MatrixView> Model::matrices() const {
  std::vector<MatrixView> views;
  for (const kernels::WeightMatrix* w : std::as_const(*weights_).matrices())
    views.push_back({static_cast<TensorType>(w->type->ggml_id),
                     w->rows,
                     w->cols,
                     {static_cast<const std::byte*>(w->data), w->bytes()}});
  return views;
}

const Tokenizer& Model::tokenizer() const {
  if (!tokenizer_) throw Error(file_->name() + ": the model file holds no tokenizer");
  return *tokenizer_;
}

void Model::prefetch(const std::function<void(uint64_t, uint64_t)>& progress) const {
  // The matrices were read when they were copied and their mapping released: page in the
  // tensors still read from the mapping (norms, the embedding).
  std::vector<const gguf::TensorInfo*> mapped;
  uint64_t total = 0, done = 0;
  for (const auto& t : file_->tensors()) {
    bool released = false;
    for (const void* r : weights_->released) released = released || r == t.data;
    if (released) continue;
    mapped.push_back(&t);
    total += t.n_bytes;
  }
  constexpr uint64_t kPage = 4096, kReport = 64u << 20;
  uint64_t next_report = 0;
  volatile uint8_t sink = 0;  // keeps the page reads from being optimised away
  for (const gguf::TensorInfo* t : mapped) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(t->data);
    for (uint64_t off = 0; off < t->n_bytes; off += kPage) {
      sink = sink + bytes[off];
      if (progress && done + off >= next_report) {
        progress(done + off, total);
        next_report = done + off + kReport;
      }
    }
    done += t->n_bytes;
  }
  if (progress) progress(total, total);
}

uint64_t Model::weight_bytes_per_token() const {
  const ModelWeights& w = *weights_;
  uint64_t bytes = w.output.bytes() + w.token_embedding.row_bytes + uint64_t{config_.dim} * 4;
  for (const auto& l : w.layers)
    bytes += l.wq.bytes() + l.wk.bytes() + l.wv.bytes() + l.wo.bytes() + l.w1.bytes() +
             l.w2.bytes() + l.w3.bytes() + uint64_t{config_.dim} * 8;
  return bytes;
}

}  // namespace brise
