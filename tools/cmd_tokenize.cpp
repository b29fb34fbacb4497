// brise tokenize -m MODEL (-p TEXT | -f FILE) [--bos] [--special] [--json]: text to token ids.
// MODEL is a GGUF file, a SentencePiece tokenizer.model or a Tekken tekken.json.
#include <iostream>
#include <optional>
#include <string>

#include "brise/error.hpp"
#include "brise/tokenizer.hpp"
#include "cli_args.hpp"
#include "commands.hpp"
#include "text_file.hpp"
#include "token_print.hpp"

namespace brise::cli {

int cmd_tokenize(const Args& args) {
  std::string model;
  std::optional<std::string> prompt, file;
  bool bos = false, special = false, as_json = false;
  ArgParser p("tokenize", "-m MODEL (-p TEXT | -f FILE) [--bos] [--special] [--json]",
              "Encodes text with the model's tokenizer (SentencePiece or Tekken) and prints the\n"
              "token ids, separated by spaces, on one line. MODEL is a GGUF file, a\n"
              "tokenizer.model or a tekken.json.");
  p.option("-m,--model", &model, "MODEL", "GGUF model, tokenizer.model or tekken.json");
  p.option("-p,--prompt", &prompt, "TEXT", "the text to encode");
  p.option("-f,--file", &file, "FILE", "encode the contents of FILE (bytes as they are)");
  p.flag("--bos", &bos, "put the BOS token first");
  p.flag("--special", &special,
         "text that spells a control token ([INST], <s>, ...) becomes that token");
  p.flag("--json", &as_json, "print {\"ids\":[...],\"pieces\":[...]} instead");
  if (!p.parse(args)) return 0;
  if (model.empty()) throw UsageError("missing -m MODEL");
  if (prompt.has_value() == file.has_value()) throw UsageError("give exactly one of -p and -f");

  const std::string text = prompt ? *prompt : read_text_file(*file);
  const Tokenizer tokenizer(load_vocabulary(model));
  const std::vector<int32_t> ids =
      tokenizer.encode(text, EncodeOptions{.add_bos = bos, .parse_special = special});
  if (as_json) {
    std::cout << ids_and_pieces_json(tokenizer, ids) << "\n";
  } else {
    std::cout << ids_text(ids) << "\n";
  }
  std::cout.flush();
  return std::cout.good() ? 0 : 1;
}

}  // namespace brise::cli
