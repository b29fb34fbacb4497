// brise tokenize -m MODEL (-p TEXT | -f FILE) [--bos] [--special] [--json]: text to token ids.
// MODEL is a GGUF file, a SentencePiece tokenizer.model or a Tekken tekken.json.
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "brise/error.hpp"
#include "brise/tokenizer.hpp"
#include "cli_args.hpp"
#include "commands.hpp"

namespace brise::cli {
namespace {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open text file");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path + ": read error");
  return text;
}

}  // namespace

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
    nlohmann::json pieces = nlohmann::json::array();
    for (const int32_t id : ids) pieces.push_back(std::string(tokenizer.piece(id)));
    const nlohmann::json out = {{"ids", ids}, {"pieces", pieces}};
    // A piece that is not valid UTF-8 on its own is shown with U+FFFD rather than failing.
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
  }
  std::cout.flush();
  return std::cout.good() ? 0 : 1;
}

}  // namespace brise::cli
