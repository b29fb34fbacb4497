// Mistral instruct formats, token for token as mistral-common's InstructTokenizerV1 and
// InstructTokenizerV3 (SentencePiece) build them:
//   v1: BOS, encode("[INST] {user} [/INST]"), encode("{answer}") EOS, ...
//       the system prompt goes before the FIRST user message (mistral-common's V1 rule);
//   v3: BOS, [INST], encode("{user}"), [/INST], encode("{answer}" minus trailing spaces) EOS, ...
//       [INST]/[/INST] are control ids inserted directly (SentencePiece never produces them from
//       text) and the system prompt goes before the LAST user message.
// In both the system prompt joins the user text as "{system}\n\n{user}".
#include "brise/chat.hpp"

#include <string>
#include <string_view>

#include "brise/error.hpp"

namespace brise {
namespace {

int32_t control_id(const Tokenizer& tokenizer, std::string_view piece) {
  const int32_t id = tokenizer.find_piece(piece);
  return id >= 0 && tokenizer.kind(id) == TokenKind::Control ? id : -1;
}

const char* role_name(ChatMessage::Role role) {
  switch (role) {
    case ChatMessage::Role::System:
      return "system";
    case ChatMessage::Role::User:
      return "user";
    case ChatMessage::Role::Assistant:
      return "assistant";
  }
  return "?";
}

void append(std::vector<int32_t>& out, const std::vector<int32_t>& ids) {
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace

ChatTemplate detect_chat_template(const Tokenizer& tokenizer) {
  return control_id(tokenizer, "[INST]") >= 0 && control_id(tokenizer, "[/INST]") >= 0
             ? ChatTemplate::MistralV3
             : ChatTemplate::MistralV1;
}

std::vector<int32_t> format_chat(const Tokenizer& tokenizer, ChatTemplate tmpl,
                                 const std::vector<ChatMessage>& messages) {
  // System messages, wherever they are, form one system prompt (as mistral-common's request
  // normaliser does); the rest must be user, assistant, user, ..., user.
  std::string system;
  std::vector<const ChatMessage*> turns;
  for (const ChatMessage& m : messages) {
    if (m.role == ChatMessage::Role::System) {
      if (m.content.empty()) continue;
      if (!system.empty()) system += "\n\n";
      system += m.content;
    } else {
      turns.push_back(&m);
    }
  }
  if (turns.empty()) throw Error("chat: the conversation has no user message");
  for (size_t i = 0; i < turns.size(); ++i) {
    const auto expected = i % 2 == 0 ? ChatMessage::Role::User : ChatMessage::Role::Assistant;
    if (turns[i]->role != expected)
      throw Error("chat: message " + std::to_string(i + 1) + " (not counting system messages) is " +
                  role_name(turns[i]->role) + ", expected " + role_name(expected) +
                  ": roles must alternate user/assistant, starting with user");
  }
  if (turns.back()->role != ChatMessage::Role::User)
    throw Error("chat: the conversation must end with a user message");

  const int32_t bos = tokenizer.bos_id(), eos = tokenizer.eos_id();
  if (bos < 0 || eos < 0) throw Error("chat: the tokenizer has no BOS or EOS id");
  int32_t inst = -1, end_inst = -1;
  if (tmpl == ChatTemplate::MistralV3) {
    inst = control_id(tokenizer, "[INST]");
    end_inst = control_id(tokenizer, "[/INST]");
    if (inst < 0 || end_inst < 0)
      throw Error(
          "chat: the v3 template needs [INST] and [/INST] control pieces in the vocabulary");
  }

  size_t first_user = 0, last_user = turns.size() - 1;  // user turns are the even indices
  std::vector<int32_t> ids = {bos};
  for (size_t i = 0; i < turns.size(); ++i) {
    const std::string& content = turns[i]->content;
    if (turns[i]->role == ChatMessage::Role::User) {
      const size_t system_turn = tmpl == ChatTemplate::MistralV1 ? first_user : last_user;
      const std::string text =
          i == system_turn && !system.empty() ? system + "\n\n" + content : content;
      if (tmpl == ChatTemplate::MistralV1) {
        append(ids, tokenizer.encode("[INST] " + text + " [/INST]"));
      } else {
        ids.push_back(inst);
        append(ids, tokenizer.encode(text));
        ids.push_back(end_inst);
      }
    } else {
      std::string_view answer = content;
      if (tmpl == ChatTemplate::MistralV3)
        answer = answer.substr(0, answer.find_last_not_of(' ') + 1);  // npos + 1 == 0
      // An empty answer (the model stopped at once) is just EOS, so a chat can go on.
      if (!answer.empty()) append(ids, tokenizer.encode(answer));
      ids.push_back(eos);
    }
  }
  return ids;
}

}  // namespace brise
