#include "brise/quantize.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <set>

#include "brise/error.hpp"
#include "engine/convert/quantize_rules.hpp"
#include "engine/convert/tensor_writer.hpp"
#include "engine/gguf/tensor_encoding.hpp"

namespace brise {
namespace fs = std::filesystem;
namespace {

struct MixName {
  QuantMix mix;
  std::string_view name;
  TensorType base;
};

// llama-quantize's names (tools/quantize/quantize.cpp) and llama_ftype_get_default_type.
constexpr std::array<MixName, 19> kMixes{{
    {QuantMix::Q4_0, "Q4_0", TensorType::Q4_0},
    {QuantMix::Q4_1, "Q4_1", TensorType::Q4_1},
    {QuantMix::Q5_0, "Q5_0", TensorType::Q5_0},
    {QuantMix::Q5_1, "Q5_1", TensorType::Q5_1},
    {QuantMix::Q2_K, "Q2_K", TensorType::Q2_K},
    {QuantMix::Q3_K_S, "Q3_K_S", TensorType::Q3_K},
    {QuantMix::Q3_K_M, "Q3_K_M", TensorType::Q3_K},
    {QuantMix::Q3_K_L, "Q3_K_L", TensorType::Q3_K},
    {QuantMix::Q4_K_S, "Q4_K_S", TensorType::Q4_K},
    {QuantMix::Q4_K_M, "Q4_K_M", TensorType::Q4_K},
    {QuantMix::Q5_K_S, "Q5_K_S", TensorType::Q5_K},
    {QuantMix::Q5_K_M, "Q5_K_M", TensorType::Q5_K},
    {QuantMix::Q6_K, "Q6_K", TensorType::Q6_K},
    {QuantMix::Q8_0, "Q8_0", TensorType::Q8_0},
    {QuantMix::IQ4_NL, "IQ4_NL", TensorType::IQ4_NL},
    {QuantMix::IQ4_XS, "IQ4_XS", TensorType::IQ4_XS},
    {QuantMix::F16, "F16", TensorType::F16},
    {QuantMix::BF16, "BF16", TensorType::BF16},
    {QuantMix::F32, "F32", TensorType::F32},
}};

bool same_name(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

const MixName& mix_entry(QuantMix mix) {
  for (const auto& m : kMixes)
    if (m.mix == mix) return m;
  throw Error("unknown quantization mix " + std::to_string(static_cast<uint32_t>(mix)));
}

// Keys llama-quantize drops from the copied metadata or sets itself (at the end, in this order).
bool is_replaced_key(std::string_view key) {
  return key == "general.file_type" || key == "general.quantization_version" ||
         key == "general.alignment" || key == "split.no" || key == "split.count" ||
         key == "split.tensors.count";
}

struct ModelFacts {
  uint32_t n_layers = 0, n_head = 0, n_head_kv = 0;
};

ModelFacts model_facts(const gguf::File& file) {
  const std::string arch = file.get_string("general.architecture");
  if (arch != "llama")
    throw Error(file.name() + ": architecture '" + arch +
                "': brise quantizes llama-architecture (Mistral, Llama) models only");
  const auto u32 = [&](const std::string& key) -> uint32_t {
    const uint64_t v = file.get_uint(key);
    if (v > 1'000'000)
      throw Error(file.name() + ": " + key + " = " + std::to_string(v) + " is not plausible");
    return static_cast<uint32_t>(v);
  };
  if (file.get_uint_or(arch + ".expert_count").value_or(0) > 1)
    throw Error(file.name() + ": mixture-of-experts models are not supported");
  ModelFacts f;
  f.n_layers = u32(arch + ".block_count");
  f.n_head = u32(arch + ".attention.head_count");
  f.n_head_kv = file.find(arch + ".attention.head_count_kv")
                    ? u32(arch + ".attention.head_count_kv")
                    : f.n_head;
  return f;
}

// Fails early, before any output exists, when a codec is not usable (e.g. not written yet).
void probe_codec(TensorType type, bool encode) {
  const uint32_t n = tensor_type_info(type).block_elems;
  std::vector<float> x(n, 0.5f);
  std::vector<std::byte> block(tensor_type_info(type).block_bytes);
  try {
    if (encode)
      encode_row(x.data(), type, block.data(), n);
    else
      decode_row(type, block.data(), x.data(), n);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("brise cannot " + std::string(encode ? "encode " : "decode ") +
                std::string(tensor_type_name(type)) + " tensors: " + e.what());
  }
}

}  // namespace

std::optional<QuantMix> quant_mix_from_name(std::string_view name) {
  for (const auto& m : kMixes)
    if (same_name(m.name, name)) return m.mix;
  if (same_name(name, "Q3_K")) return QuantMix::Q3_K_M;
  if (same_name(name, "Q4_K")) return QuantMix::Q4_K_M;
  if (same_name(name, "Q5_K")) return QuantMix::Q5_K_M;
  uint32_t id = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
  if (ec == std::errc() && end == name.data() + name.size() && !name.empty())
    for (const auto& m : kMixes)
      if (static_cast<uint32_t>(m.mix) == id) return m.mix;
  return std::nullopt;
}

std::string_view quant_mix_name(QuantMix mix) {
  return mix_entry(mix).name;
}

std::string quant_mix_names() {
  std::string s;
  for (size_t i = 0; i < kMixes.size(); ++i) {
    if (i > 0) s += i + 1 == kMixes.size() ? " or " : ", ";
    s += kMixes[i].name;
  }
  return s;
}

TensorType quant_mix_base_type(QuantMix mix) {
  return mix_entry(mix).base;
}

QuantizePlan plan_quantization(const gguf::File& model, const QuantizeOptions& options) {
  const ModelFacts facts = model_facts(model);
  QuantRuleOptions rule;
  rule.mix = options.mix;
  rule.pure = options.pure;
  rule.output_type = options.output_type;
  rule.embedding_type = options.embedding_type;
  std::vector<QuantRuleTensor> tensors;
  tensors.reserve(model.tensors().size());
  for (const auto& t : model.tensors()) {
    QuantRuleTensor r;
    r.name = t.name;
    r.dims = t.dims;
    r.type = t.type;
    tensors.push_back(r);
  }
  std::vector<QuantRuleChoice> choices;
  try {
    choices = choose_tensor_types(rule, facts.n_layers, facts.n_head, facts.n_head_kv, tensors);
  } catch (const Error& e) {
    throw Error(model.name() + ": " + e.what());
  }
  QuantizePlan plan;
  plan.file_type = static_cast<uint32_t>(options.mix);
  for (size_t i = 0; i < choices.size(); ++i) {
    const auto& t = model.tensors()[i];
    plan.tensors.push_back({t.name, t.dims, t.type, choices[i].type});
    if (!choices[i].note.empty()) plan.notes.push_back(choices[i].note);
  }
  return plan;
}

QuantizeResult quantize_model(const fs::path& input, const fs::path& output,
                              const QuantizeOptions& options,
                              const WriteProgressCallback& progress) {
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  if (fs::is_directory(output, ec)) throw Error(output.string() + ": is a folder, not a file name");
  const auto file = gguf::File::open(input);
  if (fs::exists(output, ec) && fs::equivalent(input, output, ec))
    throw Error(output.string() + ": refusing to overwrite the input file");

  QuantizeResult result;
  result.plan = plan_quantization(*file, options);
  result.input_bytes = file->file_size();
  const auto& plan = result.plan.tensors;

  std::set<TensorType> encodes, decodes;
  for (const auto& e : plan) {
    if (e.from == e.to) continue;
    if (is_quantized(e.from) && !options.allow_requantize)
      throw Error(input.string() + ": tensor '" + e.name + "' is already quantized (" +
                  std::string(tensor_type_name(e.from)) +
                  "); quantizing it again loses more quality than quantizing the f32/f16/bf16 "
                  "model (give --allow-requantize to do it anyway)");
    encodes.insert(e.to);
    decodes.insert(e.from);
  }
  for (TensorType t : decodes) probe_codec(t, false);
  for (TensorType t : encodes) probe_codec(t, true);

  gguf::Writer writer;
  for (const auto& [key, value] : file->metadata())
    if (!is_replaced_key(key)) writer.set(key, value);
  writer.set("general.quantization_version", uint32_t{2});
  writer.set("general.file_type", result.plan.file_type);
  for (const auto& e : plan) writer.add_tensor(e.name, e.dims, e.to);

  write_gguf(
      output, writer, input.string(),
      [&](size_t ti) {
        const QuantizePlanEntry& e = plan[ti];
        const gguf::TensorInfo& src = file->tensors()[ti];
        TensorData data;
        data.written = [&file, &src] { file->release(src); };
        if (e.from == e.to) {
          data.bytes = {src.data, static_cast<size_t>(src.n_bytes)};
          return data;
        }
        const uint64_t cols = src.row_length(), in_row_bytes = src.n_bytes / src.n_rows();
        data.make_row = [&e, &src, cols, in_row_bytes](uint64_t r, float* row, std::byte* out) {
          decode_row(e.from, src.data + r * in_row_bytes, row, cols);
          if (!std::all_of(row, row + cols, [](float v) { return std::isfinite(v); }))
            throw Error("row " + std::to_string(r) + " holds a NaN or infinite value");
          encode_row(row, e.to, out, cols);
        };
        return data;
      },
      progress, start);

  result.file_bytes = writer.file_size();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace brise
