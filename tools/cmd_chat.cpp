// brise chat -m M.gguf [--system TEXT] [--tools FILE.json] [--template vN]: multi-turn chat reading
// one user message per line; with tools, the model's calls are shown and their results read.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "brise/generate.hpp"
#include "cli_args.hpp"
#include "commands.hpp"
#include "generate_stream.hpp"
#include "session_args.hpp"
#include "text_file.hpp"

namespace brise::cli {
namespace {

// One line of input without its line end, or nullopt at the end of input.
std::optional<std::string> read_line(bool interactive, std::string_view prompt) {
  if (interactive) write_stdout(prompt);
  std::string line;
  if (!std::getline(std::cin, line)) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// The conversation on one session: each turn feeds only the tokens the session does not hold.
class Chat {
 public:
  Chat(std::shared_ptr<const Model> model, const SessionOptions& session_options, ChatTemplate tmpl,
       ChatRequest request, GenerateOptions options)
      : model_(std::move(model)),
        session_(model_, session_options),
        tmpl_(tmpl),
        request_(std::move(request)),
        options_(std::move(options)),
        system_messages_(request_.messages.size()) {}

  std::vector<ChatMessage>& messages() { return request_.messages; }

  // Generates the assistant's answer to the conversation so far and adds it to the
  // conversation. Without tools the answer streams as it comes; with tools it is shown once
  // complete, since it may be a call.
  AssistantReply answer() {
    const Tokenizer& tokenizer = model_->tokenizer();
    std::vector<int32_t> ids = prompt_ids();
    // Only the tokens after what the session already holds of this conversation are fed.
    const uint32_t kept = session_.reusable_prefix(ids);
    session_.keep_prefix(kept);
    const auto suffix = std::span<const int32_t>(ids).subspan(kept);
    const bool stream = request_.tools.empty();
    const auto result =
        generate_to_stdout(session_, suffix, options_, stream ? Stream::Answer : Stream::Quiet);
    AssistantReply reply = parse_assistant_reply(tokenizer, tmpl_, result.generated_ids);
    if (stream) {
      reply.content = result.text;
      write_stdout("\n");
    } else if (!reply.content.empty()) {
      write_stdout(reply.content + "\n");
    }
    if (result.stop_reason == StopReason::ContextFull)
      std::fprintf(stderr, "brise chat: [the context is full]\n");
    remember(reply);
    return reply;
  }

 private:
  // The prompt; when it no longer fits, the conversation starts over from its last user message.
  std::vector<int32_t> prompt_ids() {
    std::vector<int32_t> ids = format_chat(model_->tokenizer(), tmpl_, request_);
    const std::optional<uint32_t> limit = session_.position_limit();  // none: every layer windowed
    if (!limit || ids.size() < *limit) return ids;
    std::fprintf(stderr,
                 "brise chat: the conversation (%zu tokens) no longer fits the context of %u; "
                 "starting a new one\n",
                 ids.size(), *limit);
    auto& m = request_.messages;
    size_t last_user = m.size() - 1;
    while (last_user > system_messages_ && m[last_user].role != ChatMessage::Role::User)
      --last_user;
    m.erase(m.begin() + static_cast<std::ptrdiff_t>(system_messages_),
            m.begin() + static_cast<std::ptrdiff_t>(last_user));
    session_.reset();
    ids = format_chat(model_->tokenizer(), tmpl_, request_);
    if (ids.size() >= *limit)
      throw Error("the message (" + std::to_string(ids.size()) +
                  " tokens with the template) does not fit the context of " +
                  std::to_string(*limit) + " tokens");
    return ids;
  }

  // The answer joins the conversation as mistral-common would take it back: calls get ids where
  // the model wrote none the template takes (v2 and v13 write none), content beside calls only
  // from v7 on. An empty answer
  // is left out, so that the next user message joins the last one.
  void remember(AssistantReply& reply) {
    ChatMessage m{ChatMessage::Role::Assistant, reply.content};
    for (ToolCall& call : reply.tool_calls) {
      if (!call.id || !id_fits(*call.id)) {
        char id[16];
        std::snprintf(id, sizeof id, "call%05u", ++calls_);
        call.id = id;
      }
      m.tool_calls.push_back(call);
    }
    const bool v7_or_later = tmpl_ != ChatTemplate::MistralV1 && tmpl_ != ChatTemplate::MistralV2 &&
                             tmpl_ != ChatTemplate::MistralV3;
    if (!m.tool_calls.empty() && !v7_or_later) m.content.clear();
    if (!m.content.empty() || !m.tool_calls.empty()) request_.messages.push_back(std::move(m));
  }

  // Whether the template takes this call id (v3 to v11: 9 letters or digits).
  bool id_fits(const std::string& id) const {
    if (tmpl_ == ChatTemplate::MistralV13 || tmpl_ == ChatTemplate::MistralV2) return !id.empty();
    return id.size() == 9 && std::all_of(id.begin(), id.end(), [](char c) {
             return std::isalnum(static_cast<unsigned char>(c)) != 0;
           });
  }

  std::shared_ptr<const Model> model_;
  Session session_;
  ChatTemplate tmpl_;
  ChatRequest request_;
  GenerateOptions options_;
  size_t system_messages_;  // the --system message(s) at the start, kept when starting over
  unsigned calls_ = 0;
};

}  // namespace

int cmd_chat(const Args& args) {
  SessionArgs session_args;
  SamplingArgs sampling_args;
  std::string system;
  std::optional<std::string> tools_file, template_name;
  int64_t n_predict = 512;
  ArgParser p(
      "chat", "-m MODEL.gguf [--system TEXT] [--tools FILE.json] [--template vN] [options]",
      "Chats with a Mistral instruct model: reads one user message per line from stdin\n"
      "(a \"> \" prompt is shown when stdin is a terminal), streams each answer to stdout\n"
      "and keeps the whole conversation in one session, feeding only the new tokens of\n"
      "each turn. The template (v1 ... v13) follows the vocabulary unless --template says.\n"
      "With --tools, the model may call them: each call is printed as\n"
      "\"[tool call] NAME ID ARGUMENTS\" and its result is read as the next input line.\n"
      "Ends at end of input.");
  session_args.add_to(p);
  p.option("--system", &system, "TEXT", "system prompt");
  p.option("--tools", &tools_file, "FILE.json",
           "the functions the model may call: an OpenAI \"tools\" array");
  p.option("--template", &template_name, "vN", "v1, v2, v3, v7, v11 or v13");
  p.option("-n,--n-predict", &n_predict, "N", "most tokens per answer (default: 512)", 1,
           UINT32_MAX);
  sampling_args.add_to(p);
  if (!p.parse(args)) return 0;
  std::optional<ChatTemplate> chosen;
  if (template_name) {
    try {
      chosen = chat_template_from_name(*template_name);
    } catch (const Error& e) {
      throw UsageError(std::string("--template: ") + e.what());
    }
  }

  const SessionOptions session_options = session_args.session_options();
  const GenerateOptions options = sampling_args.generate_options(n_predict);

  ChatRequest request;
  if (tools_file) {
    const std::string text = read_text_file(*tools_file);
    try {
      request.tools = parse_chat_tools(text);
    } catch (const Error& e) {
      throw Error(*tools_file + ": " + e.what());
    }
  }
  if (!system.empty()) request.messages.push_back({ChatMessage::Role::System, system});
  const auto model = session_args.load_model();
  const ChatTemplate tmpl = chosen ? *chosen : detect_chat_template(model->tokenizer());
  if (!request.tools.empty()) validate_chat(tmpl, {{{ChatMessage::Role::User, ""}}, request.tools});
  Chat chat(model, session_options, tmpl, std::move(request), options);
  const bool interactive = isatty(STDIN_FILENO) != 0;

  while (const auto line = read_line(interactive, "> ")) {
    if (line->find_first_not_of(" \t") == std::string::npos) continue;
    chat.messages().push_back({ChatMessage::Role::User, *line});
    // Answers that call tools get their results, then the model answers again.
    for (AssistantReply reply = chat.answer(); !reply.tool_calls.empty(); reply = chat.answer()) {
      for (const ToolCall& call : reply.tool_calls)
        write_stdout("[tool call] " + call.name + " " + *call.id + " " + call.arguments + "\n");
      for (const ToolCall& call : reply.tool_calls) {
        const auto result = read_line(interactive, "[" + call.name + " result]> ");
        if (!result) return 0;
        ChatMessage m{ChatMessage::Role::Tool, *result};
        m.tool_call_id = call.id;
        m.name = call.name;
        chat.messages().push_back(std::move(m));
      }
    }
  }
  if (interactive) write_stdout("\n");
  return 0;
}

}  // namespace brise::cli
