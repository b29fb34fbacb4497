// brise detokenize -m MODEL --ids "1 2 3": token ids to text, as SentencePiece decodes them.
#include <iostream>
#include <optional>
#include <string>

#include "brise/tokenizer.hpp"
#include "cli_args.hpp"
#include "commands.hpp"

namespace brise::cli {

int cmd_detokenize(const Args& args) {
  std::string model;
  std::optional<std::string> ids_text;
  ArgParser p("detokenize", "-m MODEL --ids \"ID ID ...\"",
              "Decodes token ids with the model's SentencePiece tokenizer and prints the text\n"
              "followed by a newline. MODEL is a GGUF file or a tokenizer.model.");
  p.option("-m,--model", &model, "MODEL", "GGUF model or SentencePiece tokenizer.model");
  p.option("--ids", &ids_text, "IDS", "token ids separated by spaces or commas");
  if (!p.parse(args)) return 0;
  if (model.empty()) throw UsageError("missing -m MODEL");
  if (!ids_text) throw UsageError("missing --ids");

  const std::vector<int32_t> ids = parse_id_list(*ids_text, "--ids");
  const Tokenizer tokenizer(load_vocabulary(model));
  std::cout << tokenizer.decode(ids) << "\n";
  std::cout.flush();
  return std::cout.good() ? 0 : 1;
}

}  // namespace brise::cli
