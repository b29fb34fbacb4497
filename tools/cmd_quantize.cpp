// brise quantize IN.gguf OUT.gguf TYPE [--pure] [--output-type T] [--embedding-type T] ...
#include <omp.h>

#include <cstdio>
#include <iostream>
#include <map>

#include "brise/quantize.hpp"
#include "cli_args.hpp"
#include "commands.hpp"
#include "format.hpp"
#include "progress.hpp"

namespace brise::cli {
int cmd_quantize(const Args& args) {
  std::string input, output, type, output_type, embedding_type;
  bool pure = false, allow_requantize = false, dry_run = false;
  int64_t threads = 0;
  ArgParser p("quantize", "IN.gguf OUT.gguf TYPE [options]",
              "Quantizes a GGUF model, choosing each tensor's type as llama.cpp's llama-quantize\n"
              "does for the mix TYPE (Q4_K_M keeps some attn_v/ffn_down matrices and the output\n"
              "in Q6_K, ...). The file appears only when quantization succeeded.");
  p.positional("IN.gguf", &input, "model to quantize (f32, f16 or bf16 matrices)");
  p.positional("OUT.gguf", &output, "file to write");
  p.positional(
      "TYPE", &type,
      "llama-quantize's file type, any case: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K,\n"
      "      Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, IQ4_NL, IQ4_XS,\n"
      "      F16, BF16, F32 (Q3_K, Q4_K, Q5_K mean Q3_K_M, Q4_K_M, Q5_K_M)");
  p.flag("--pure", &pure,
         "every matrix (embedding and output too) in TYPE's base type; no mix, no fallbacks");
  p.option("--output-type,--output-tensor-type", &output_type, "T",
           "type of output.weight: " + tensor_type_names());
  p.option("--embedding-type,--token-embedding-type", &embedding_type, "T",
           "type of token_embd.weight");
  p.flag("--allow-requantize", &allow_requantize,
         "accept already quantized matrices (dequantized, then quantized again)");
  p.flag("--dry-run", &dry_run, "print each tensor's type and write nothing");
  p.option("-t,--threads", &threads, "N", "threads (default: all cores)", 1, 1024);
  if (!p.parse(args)) return 0;

  QuantizeOptions options;
  const auto mix = quant_mix_from_name(type);
  if (!mix) throw UsageError("TYPE must be " + quant_mix_names() + ", got '" + type + "'");
  options.mix = *mix;
  options.pure = pure;
  options.allow_requantize = allow_requantize;
  if (!output_type.empty()) options.output_type = parse_tensor_type(output_type, "--output-type");
  if (!embedding_type.empty())
    options.embedding_type = parse_tensor_type(embedding_type, "--embedding-type");
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));

  if (dry_run) {
    const auto file = gguf::File::open(input);
    const auto plan = plan_quantization(*file, options);
    std::map<std::string, size_t> counts;
    for (const auto& t : plan.tensors) {
      std::printf("%-32s %-18s %-6s -> %s\n", t.name.c_str(), format_dims(t.dims).c_str(),
                  std::string(tensor_type_name(t.from)).c_str(),
                  std::string(tensor_type_name(t.to)).c_str());
      ++counts[std::string(tensor_type_name(t.to))];
    }
    for (const auto& note : plan.notes) std::cerr << "note: " << note << "\n";
    std::printf("general.file_type = %u (%s)%s;", plan.file_type,
                std::string(quant_mix_name(options.mix)).c_str(), pure ? ", pure" : "");
    for (const auto& [name, n] : counts) std::printf(" %zu %s", n, name.c_str());
    std::printf("\n");
    return 0;
  }

  ProgressLine line;
  const auto result = quantize_model(input, output, options, write_progress_on(line));
  line.finish();
  for (const auto& note : result.plan.notes) std::cerr << "note: " << note << "\n";
  std::printf("wrote %s: %zu tensors, %s%s, %s (from %s), in %.1f s\n", output.c_str(),
              result.plan.tensors.size(), std::string(quant_mix_name(options.mix)).c_str(),
              pure ? " pure" : "", format_bytes(result.file_bytes).c_str(),
              format_bytes(result.input_bytes).c_str(), result.seconds);
  return 0;
}

}  // namespace brise::cli
