// brise: convert, inspect, tokenize, run and benchmark Mistral-architecture models.
#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>
#include <new>
#include <string_view>

#include "brise/error.hpp"
#include "cli_args.hpp"
#include "commands.hpp"

namespace {

struct Command {
  std::string_view name;
  int (*run)(const brise::cli::Args&);
  std::string_view summary;
};

constexpr Command kCommands[] = {
    {"convert", brise::cli::cmd_convert, "convert a Hugging Face or Mistral checkpoint to GGUF"},
    {"quantize", brise::cli::cmd_quantize, "quantize a GGUF model (llama-quantize's mixes)"},
    {"info", brise::cli::cmd_info, "show a GGUF model's hyperparameters, tokenizer and tensors"},
    {"tokenize", brise::cli::cmd_tokenize, "text to token ids"},
    {"detokenize", brise::cli::cmd_detokenize, "token ids to text"},
    {"generate", brise::cli::cmd_generate, "generate text from a prompt"},
    {"chat", brise::cli::cmd_chat, "interactive chat with an instruct model"},
    {"template", brise::cli::cmd_template, "a conversation's token ids through the chat template"},
    {"logits", brise::cli::cmd_logits, "write the logits of a token sequence"},
    {"synth", brise::cli::cmd_synth, "write a model with random weights in real Mistral shapes"},
    {"bench", brise::cli::cmd_bench, "measure prefill and decode speed"},
    {"serve", brise::cli::cmd_serve, "serve OpenAI's API and a chat page over HTTP"},
    {"perplexity", brise::cli::cmd_perplexity, "perplexity of a text, KL divergence to a base"},
};

void print_usage(std::FILE* to) {
  std::fprintf(to, "usage: brise <command> [options]   (brise <command> --help for details)\n\n");
  for (const auto& c : kCommands)
    std::fprintf(to, "  %-11.*s %.*s\n", static_cast<int>(c.name.size()), c.name.data(),
                 static_cast<int>(c.summary.size()), c.summary.data());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  const std::string_view name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  for (const auto& c : kCommands) {
    if (c.name != name) continue;
    brise::cli::Args args(argv + 2, argv + argc);
    try {
      return c.run(args);
    } catch (const brise::cli::UsageError& e) {
      std::cerr << "brise " << name << ": " << e.what() << " (see brise " << name << " --help)\n";
      return 2;
    } catch (const brise::Error& e) {
      std::cerr << "brise " << name << ": error: " << e.what() << "\n";
      return 1;
    } catch (const std::bad_alloc&) {
      std::cerr << "brise " << name << ": error: out of memory\n";
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "brise " << name << ": error: " << e.what() << "\n";
      return 1;
    }
  }
  std::fprintf(stderr, "brise: unknown command '%.*s'\n\n", static_cast<int>(name.size()),
               name.data());
  print_usage(stderr);
  return 2;
}
