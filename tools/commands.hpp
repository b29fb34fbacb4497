// The brise subcommands. Each is a function cmd_<name> that takes its arguments (after the
// subcommand name) and returns the process exit code; UsageError means exit 2, brise::Error exit 1
// (handled in main).
#pragma once

#include <string>
#include <vector>

namespace brise::cli {

using Args = std::vector<std::string>;

// Every subcommand once, as X(name, summary), in the order `brise --help` lists them: this list
// declares the functions here and makes main's table of commands.
#define BRISE_COMMANDS(X)                                               \
  X(convert, "convert a Hugging Face or Mistral checkpoint to GGUF")    \
  X(quantize, "quantize a GGUF model (llama-quantize's mixes)")         \
  X(info, "show a GGUF model's hyperparameters, tokenizer and tensors") \
  X(tokenize, "text to token ids")                                      \
  X(detokenize, "token ids to text")                                    \
  X(generate, "generate text from a prompt")                            \
  X(chat, "interactive chat with an instruct model")                    \
  X(template, "a conversation's token ids through the chat template")   \
  X(logits, "write the logits of a token sequence")                     \
  X(synth, "write a model with random weights in real Mistral shapes")  \
  X(bench, "measure prefill and decode speed")                          \
  X(serve, "serve OpenAI's API and a chat page over HTTP")              \
  X(perplexity, "perplexity of a text, KL divergence to a base")

#define BRISE_DECLARE_COMMAND(name, summary) int cmd_##name(const Args& args);
BRISE_COMMANDS(BRISE_DECLARE_COMMAND)
#undef BRISE_DECLARE_COMMAND

}  // namespace brise::cli
