#include "brise/convert.hpp"

#include <chrono>
#include <cstring>
#include <set>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/model_config.hpp"
#include "brise/tokenizer.hpp"
#include "engine/convert/checkpoint.hpp"
#include "engine/convert/checkpoint_tokenizer.hpp"
#include "engine/convert/quantize_rules.hpp"
#include "engine/convert/tensor_writer.hpp"
#include "engine/gguf/tensor_encoding.hpp"

namespace brise {
namespace fs = std::filesystem;
namespace {

// Row `r` of the interleaved (native/GGUF) layout is row `source_row(r)` of a Hugging Face
// q_proj/k_proj matrix, whose heads were permuted for rotate-half RoPE:
// hf[h*hd + j*hd/2 + i] = native[h*hd + 2i + j].
uint64_t source_row(uint64_t r, uint64_t rows, uint32_t unpermute_heads) {
  if (unpermute_heads == 0) return r;
  const uint64_t hd = rows / unpermute_heads;
  const uint64_t h = r / hd, within = r % hd, i = within / 2, j = within % 2;
  return h * hd + j * (hd / 2) + i;
}

// Converts one row of `cols` source elements into the target encoding.
void convert_row(TensorType src, const std::byte* in, TensorType dst, std::byte* out, size_t cols,
                 float* scratch) {
  if (src == dst) {  // bit-exact copy, also keeps every bf16/f16 bit pattern
    std::memcpy(out, in, cols * tensor_type_info(src).block_bytes);
    return;
  }
  decode_row(src, in, scratch, cols);
  encode_row(scratch, dst, out, cols);
}

struct Planned {
  const CheckpointWeight* weight;
  TensorType type;
  uint64_t rows, cols;
};

void refuse_to_overwrite_inputs(const Checkpoint& ck, const fs::path& tokenizer,
                                const fs::path& output) {
  std::error_code ec;
  if (fs::is_directory(output, ec)) throw Error(output.string() + ": is a folder, not a file name");
  if (!fs::exists(output, ec)) return;
  std::vector<fs::path> inputs = ck.weight_files;
  if (!tokenizer.empty()) inputs.push_back(tokenizer);
  for (const char* cfg : {"config.json", "params.json", "model.safetensors.index.json"})
    inputs.push_back(ck.dir / cfg);
  for (const auto& in : inputs)
    if (fs::exists(in, ec) && fs::equivalent(in, output, ec))
      throw Error(output.string() + ": refusing to overwrite the checkpoint's own file " +
                  in.string());
}

}  // namespace

ConvertResult convert_checkpoint(const fs::path& checkpoint_dir, const fs::path& output,
                                 const ConvertOptions& options,
                                 const WriteProgressCallback& progress) {
  const auto start = std::chrono::steady_clock::now();
  Checkpoint ck = open_checkpoint(checkpoint_dir);
  const fs::path tokenizer_path =
      options.tokenizer.empty() ? find_checkpoint_tokenizer(checkpoint_dir) : options.tokenizer;
  refuse_to_overwrite_inputs(ck, tokenizer_path, output);

  ModelConfig config = ck.config;
  if (!options.name.empty()) config.name = options.name;
  if (options.sliding_window) config.override_sliding_window(*options.sliding_window);
  if (options.context_length) config.context_length = *options.context_length;
  config.validate(checkpoint_dir.string());

  const Vocabulary vocab =
      read_checkpoint_vocabulary(checkpoint_dir, tokenizer_path, config.vocab_size);

  ConvertResult result;
  result.notes = ck.notes;
  result.type = options.mix ? quant_mix_base_type(*options.mix) : options.type.value_or(ck.dtype);
  if (is_quantized(ck.dtype))  // cannot happen with safetensors sources, kept for clarity
    throw Error("quantized checkpoints cannot be converted");

  gguf::Writer writer;
  write_model_config(writer, config);
  if (options.mix) {  // as llama-quantize writes them
    writer.set("general.quantization_version", uint32_t{2});
    writer.set("general.file_type", static_cast<uint32_t>(*options.mix));
  } else {
    write_file_type(writer, result.type);
  }
  write_vocabulary(writer, vocab);

  std::vector<QuantRuleChoice> mix_types;  // a mix's type for each weight
  if (options.mix) {
    std::vector<std::vector<uint64_t>> dims;
    for (const auto& w : ck.weights) dims.push_back({w.shape.rbegin(), w.shape.rend()});
    std::vector<QuantRuleTensor> tensors;
    for (size_t i = 0; i < ck.weights.size(); ++i)
      tensors.push_back({ck.weights[i].gguf_name, dims[i], TensorType::F32});
    QuantRuleOptions rules;
    rules.mix = *options.mix;
    mix_types =
        choose_tensor_types(rules, config.n_layers, config.n_heads, config.n_kv_heads, tensors);
    for (const auto& c : mix_types)
      if (!c.note.empty()) result.notes.push_back(c.note);
  }

  std::vector<Planned> plan;
  std::set<std::string> fallback_notes;
  for (const auto& w : ck.weights) {
    const uint64_t rows = w.shape.size() == 2 ? w.shape[0] : 1;
    const uint64_t cols = w.shape.back();
    TensorType type = w.is_norm ? TensorType::F32 : result.type;
    if (options.mix) type = w.is_norm ? TensorType::F32 : mix_types[plan.size()].type;
    if (cols % tensor_type_info(type).block_elems != 0) {
      type = TensorType::F16;
      fallback_notes.insert(w.gguf_name.substr(w.gguf_name.find('.') + 1));
    }
    plan.push_back({&w, type, rows, cols});
    std::vector<uint64_t> dims{cols};
    if (w.shape.size() == 2) dims.push_back(rows);
    writer.add_tensor(w.gguf_name, dims, type);
  }
  for (const auto& n : fallback_notes)
    result.notes.push_back("rows of " + n + " are not a multiple of " +
                           std::to_string(tensor_type_info(result.type).block_elems) +
                           ": stored as f16 instead of " +
                           std::string(tensor_type_name(result.type)));

  write_gguf(
      output, writer, checkpoint_dir.string(),
      [&](size_t ti) {
        const Planned& t = plan[ti];
        const SafetensorsTensor& src = *t.weight->source;
        const uint64_t in_row_bytes = t.cols * tensor_type_info(src.dtype).block_bytes;
        TensorData data;
        data.make_row = [&t, &src, in_row_bytes](uint64_t r, float* scratch, std::byte* out) {
          const uint64_t s = source_row(r, t.rows, t.weight->unpermute_heads);
          convert_row(src.dtype, src.data.data() + s * in_row_bytes, t.type, out, t.cols, scratch);
        };
        return data;
      },
      progress, start);

  result.n_tensors = plan.size();
  result.file_bytes = writer.file_size();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace brise
