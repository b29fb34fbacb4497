// brise convert CHECKPOINT_DIR -o OUT.gguf [--type T] [--sliding-window N|none] ...
#include <omp.h>

#include <cstdio>
#include <iostream>

#include "brise/convert.hpp"
#include "cli_args.hpp"
#include "commands.hpp"
#include "format.hpp"
#include "progress.hpp"

namespace brise::cli {

int cmd_convert(const Args& args) {
  std::string dir, output, type, window, tokenizer, name;
  int64_t context = 0, threads = 0;
  ArgParser p(
      "convert", "CHECKPOINT_DIR -o OUT.gguf [options]",
      "Converts a Hugging Face (config.json + model*.safetensors) or Mistral-native\n"
      "(params.json + consolidated.safetensors) checkpoint and its tokenizer (tokenizer.model,\n"
      "or tekken.json for Nemo, Small 3.x, Ministral) into one GGUF file in llama.cpp's\n"
      "form. Of a model with a vision encoder (Mistral Small 3.1/3.2) the text model is\n"
      "converted. The file appears only when the conversion succeeded.");
  p.positional("CHECKPOINT_DIR", &dir, "folder holding the checkpoint");
  p.option("-o,--output", &output, "OUT.gguf", "file to write (required)");
  p.option("--type", &type, "TYPE",
           tensor_type_names() +
               " for the matrices (default: the checkpoint's dtype;\n"
               "      norm weights stay f32), or a llama.cpp mix of per-tensor types (Q4_K_M,\n"
               "      Q3_K_S, ...: see brise quantize --help)");
  p.option("--sliding-window", &window, "N|none",
           "sliding attention window to record: of the windowed layers (of every layer without\n"
           "      a per-layer pattern), or none (default: the checkpoint's)");
  p.option("--context-length", &context, "N", "context length to record (default: the config's)", 1,
           1 << 24);
  p.option("--tokenizer", &tokenizer, "FILE",
           "tokenizer.model or tekken.json to use (default: the folder's)");
  p.option("--name", &name, "NAME", "general.name (default: the folder's name)");
  p.option("-t,--threads", &threads, "N", "threads for quantization (default: all cores)", 1, 1024);
  if (!p.parse(args)) return 0;
  if (output.empty()) throw UsageError("missing -o OUT.gguf");

  ConvertOptions options;
  if (!type.empty()) {
    options.type = tensor_type_from_name(type);
    if (!options.type) options.mix = quant_mix_from_name(type);
    if (!options.type && !options.mix)
      throw UsageError("--type must be " + tensor_type_names() + ", or a llama.cpp mix (" +
                       quant_mix_names() + "), got '" + type + "'");
  }
  if (!window.empty()) options.sliding_window = parse_recorded_window(window);
  if (context > 0) options.context_length = static_cast<uint32_t>(context);
  options.tokenizer = tokenizer;
  options.name = name;
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));

  ProgressLine line;
  const auto result = convert_checkpoint(dir, output, options, write_progress_on(line));
  line.finish();
  for (const auto& note : result.notes) std::cerr << "note: " << note << "\n";
  std::printf(
      "wrote %s: %zu tensors, %s, %s, in %.1f s\n", output.c_str(), result.n_tensors,
      std::string(options.mix ? quant_mix_name(*options.mix) : tensor_type_name(result.type))
          .c_str(),
      format_bytes(result.file_bytes).c_str(), result.seconds);
  return 0;
}

}  // namespace brise::cli
