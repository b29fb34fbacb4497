// brise template -m MODEL CONVERSATION.json [--template vN] [--json]: the token ids of a
// conversation (an OpenAI-shaped request body) through the model's chat template, for debugging
// prompts: what the model sees, token for token.
#include <iostream>
#include <string>

#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "brise/tokenizer.hpp"
#include "cli_args.hpp"
#include "commands.hpp"
#include "text_file.hpp"
#include "token_print.hpp"

namespace brise::cli {

int cmd_template(const Args& args) {
  std::string model, conversation;
  std::optional<std::string> template_name;
  bool as_json = false;
  ArgParser p(
      "template", "-m MODEL CONVERSATION.json [--template vN] [--json]",
      "Formats a conversation with the model's chat template, as mistral-common does,\n"
      "and prints its token ids on one line, then their pieces joined on the next (the\n"
      "text of mistral-common's tests: control tokens by name, SentencePiece spaces as\n"
      "\"\xE2\x96\x81\"). CONVERSATION.json is an OpenAI chat request body:\n"
      "{\"messages\": [...], \"tools\": [...]}. MODEL is a GGUF file or a tokenizer.model.");
  p.option("-m,--model", &model, "MODEL", "GGUF model or SentencePiece tokenizer.model");
  p.positional("CONVERSATION.json", &conversation, "the request body: messages and tools");
  p.option("--template", &template_name, "vN",
           "v1, v2, v3, v7, v11 or v13 (default: the vocabulary's, see the README)");
  p.flag("--json", &as_json, "print {\"ids\":[...],\"pieces\":[...]} instead");
  if (!p.parse(args)) return 0;
  if (model.empty()) throw UsageError("missing -m MODEL");

  ChatTemplate tmpl{};
  if (template_name) {
    try {
      tmpl = chat_template_from_name(*template_name);
    } catch (const Error& e) {
      throw UsageError(std::string("--template: ") + e.what());
    }
  }
  const std::string body = read_text_file(conversation);
  ChatRequest request;
  try {
    request = parse_chat_request(body);
  } catch (const Error& e) {
    throw Error(conversation + ": " + e.what());
  }
  const Tokenizer tokenizer(load_vocabulary(model));
  if (!template_name) tmpl = detect_chat_template(tokenizer);
  const std::vector<int32_t> ids = format_chat(tokenizer, tmpl, request);
  if (as_json) {
    std::cout << ids_and_pieces_json(tokenizer, ids) << "\n";
  } else {
    std::string text;
    for (const int32_t id : ids) text += tokenizer.piece(id);
    std::cout << ids_text(ids) << "\n" << text << "\n";
  }
  std::cout.flush();
  return std::cout.good() ? 0 : 1;
}

}  // namespace brise::cli
