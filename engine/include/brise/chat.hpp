// Mistral instruct chat templates.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "brise/tokenizer.hpp"

namespace brise {

struct ChatMessage {
  enum class Role { System, User, Assistant } role;
  std::string content;
};

enum class ChatTemplate {
  MistralV1,  // <s>[INST] user [/INST] answer</s>[INST] ... all SentencePiece-encoded text
  MistralV3,  // control tokens [INST]/[/INST] inserted by id
};

// v3 when the vocabulary has [INST]/[/INST] control pieces, else v1.
ChatTemplate detect_chat_template(const Tokenizer& tokenizer);

// Token ids of a conversation ready for the assistant's next answer, exactly as mistral-common
// tokenizes it. System messages (anywhere) are joined by "\n\n" into one system prompt, which
// joins a user message as "{system}\n\n{user}": the first user message in v1, the last one in
// v3 (mistral-common's InstructTokenizerV1 / V3 rules). The other messages must alternate
// user/assistant, starting and ending with user (brise::Error otherwise). An empty assistant
// message encodes as EOS alone.
std::vector<int32_t> format_chat(const Tokenizer& tokenizer, ChatTemplate tmpl,
                                 const std::vector<ChatMessage>& messages);

}  // namespace brise
