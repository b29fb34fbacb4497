// brise chat -m M.gguf [--system TEXT]: multi-turn chat reading one user message per line.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <span>
#include <string>
#include <vector>

#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "cli_args.hpp"
#include "commands.hpp"
#include "generate_stream.hpp"
#include "session_args.hpp"

namespace brise::cli {

int cmd_chat(const Args& args) {
  SessionArgs session_args;
  SamplingArgs sampling_args;
  std::string system;
  int64_t n_predict = 512;
  ArgParser p("chat", "-m MODEL.gguf [--system TEXT] [options]",
              "Chats with a Mistral instruct model: reads one user message per line from stdin\n"
              "(a \"> \" prompt is shown when stdin is a terminal), streams each answer to stdout\n"
              "and keeps the whole conversation in one session, feeding only the new tokens of\n"
              "each turn. The format (v1 or v3 [INST] control tokens) follows the vocabulary.\n"
              "Ends at end of input.");
  session_args.add_to(p);
  p.option("--system", &system, "TEXT", "system prompt");
  p.option("-n,--n-predict", &n_predict, "N", "most tokens per answer (default: 512)", 1,
           UINT32_MAX);
  sampling_args.add_to(p);
  if (!p.parse(args)) return 0;

  const SessionOptions session_options = session_args.session_options();
  const GenerateOptions options = sampling_args.generate_options(n_predict);

  const auto model = session_args.load_model();
  const Tokenizer& tokenizer = model->tokenizer();
  const ChatTemplate tmpl = detect_chat_template(tokenizer);
  Session session(model, session_options);
  const std::optional<uint32_t> limit = session.position_limit();  // none: every layer windowed
  const bool interactive = isatty(STDIN_FILENO) != 0;

  std::vector<ChatMessage> messages;
  if (!system.empty()) messages.push_back({ChatMessage::Role::System, system});
  std::string line;
  while (true) {
    if (interactive) write_stdout("> ");
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;

    messages.push_back({ChatMessage::Role::User, line});
    std::vector<int32_t> ids = format_chat(tokenizer, tmpl, messages);
    if (limit && ids.size() >= *limit) {
      // The conversation no longer fits: start over with the system prompt and this message.
      std::fprintf(stderr,
                   "brise chat: the conversation (%zu tokens) no longer fits the context of %u; "
                   "starting a new one\n",
                   ids.size(), *limit);
      messages.erase(messages.begin() + (system.empty() ? 0 : 1), messages.end() - 1);
      ids = format_chat(tokenizer, tmpl, messages);
      session.reset();
      if (ids.size() >= *limit)
        throw Error("the message (" + std::to_string(ids.size()) +
                    " tokens with the template) does not fit the context of " +
                    std::to_string(*limit) + " tokens");
    }
    // Only the tokens after what the session already holds of this conversation are fed.
    const uint32_t kept = session.reusable_prefix(ids);
    session.keep_prefix(kept);
    const auto suffix = std::span<const int32_t>(ids).subspan(kept);

    const auto result = generate_to_stdout(session, suffix, options, Stream::Answer);
    write_stdout("\n");
    if (result.stop_reason == StopReason::ContextFull)
      std::fprintf(stderr, "brise chat: [the context is full]\n");
    messages.push_back({ChatMessage::Role::Assistant, result.text});
  }
  if (interactive) write_stdout("\n");
  return 0;
}

}  // namespace brise::cli
