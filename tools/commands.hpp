// The brise subcommands. Each takes its arguments (after the subcommand name) and returns the
// process exit code; UsageError means exit 2, brise::Error exit 1 (handled in main).
#pragma once

#include <string>
#include <vector>

namespace brise::cli {

using Args = std::vector<std::string>;

int cmd_convert(const Args& args);
int cmd_info(const Args& args);
int cmd_tokenize(const Args& args);
int cmd_detokenize(const Args& args);
int cmd_generate(const Args& args);
int cmd_chat(const Args& args);
int cmd_template(const Args& args);
int cmd_logits(const Args& args);
int cmd_synth(const Args& args);
int cmd_bench(const Args& args);
int cmd_serve(const Args& args);
int cmd_perplexity(const Args& args);
int cmd_quantize(const Args& args);

}  // namespace brise::cli
