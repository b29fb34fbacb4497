// brise detokenize -m MODEL --ids "1 2 3": token ids to text, as the model's tokenizer decodes
// them.
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
              "Decodes token ids with the model's tokenizer (SentencePiece or Tekken) and prints\n"
              "the text followed by a newline. MODEL is a GGUF file, a tokenizer.model or a\n"
              "tekken.json.");
  p.option("-m,--model", &model, "MODEL", "GGUF model, tokenizer.model or tekken.json");
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
