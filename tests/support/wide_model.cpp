#include "support/wide_model.hpp"

#include <string>

#include "brise/synth.hpp"
#include "support/end_to_end_types.hpp"

namespace brise::test {
namespace {

SynthSpec wide_spec(TensorType type) {
  SynthSpec spec;
  spec.config.name = "wide";
  spec.config.dim = 256;
  spec.config.n_layers = 2;
  spec.config.n_heads = 4;
  spec.config.n_kv_heads = 2;
  spec.config.head_dim = 64;
  spec.config.hidden_dim = 768;
  spec.config.vocab_size = 512;
  spec.config.context_length = 1024;
  spec.config.rope_theta = 10000.0;
  spec.config.sliding_window = 300;  // the ring wraps inside a 512-token chunk
  spec.type = type;
  spec.seed = 7;
  return spec;
}

}  // namespace

std::filesystem::path write_wide_model(const std::filesystem::path& dir, TensorType type) {
  const auto path = dir / ("wide-" + std::string(tensor_type_name(type)) + ".gguf");
  write_synthetic_model(path, wide_spec(type));
  return path;
}

std::filesystem::path write_wide_interleaved_model(const std::filesystem::path& dir,
                                                   TensorType type) {
  SynthSpec spec = wide_spec(type);
  spec.config.name = "wide-interleaved";
  spec.config.head_dim = 128;
  spec.config.sliding_window_pattern = {true, false};
  const auto path = dir / ("wide-interleaved-" + std::string(tensor_type_name(type)) + ".gguf");
  write_synthetic_model(path, spec);
  return path;
}

void for_each_wide_model(
    const std::filesystem::path& dir,
    const std::function<void(const kernels::TypeTraits&, const std::shared_ptr<const Model>&,
                             bool)>& run) {
  for (const kernels::TypeTraits& t : kernels::all_types()) {
    if (!end_to_end_type(t)) continue;
    const auto model = Model::load(write_wide_model(dir, static_cast<TensorType>(t.ggml_id)));
    for (bool exact : {false, true})
      if (!exact || t.quantized) run(t, model, exact);
  }
}

}  // namespace brise::test
