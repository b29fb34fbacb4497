// Small facts about Mistral's chat formats shared by the validator, the normalizer, the renderer
// and the reply parser (engine/generate/chat_*.cpp).
#pragma once

#include <string>
#include <string_view>

#include "brise/chat.hpp"

namespace brise::chat_rules {

// The version number (1, 2, 3, 7, 11, 13), for "from version N on" rules.
int version(ChatTemplate tmpl);

// mistral-common's role names.
const char* role_name(ChatMessage::Role role);

// "messages[i]" (the place errors name).
std::string message_place(size_t index);

// mistral-common's rule for function names: ^[a-zA-Z0-9_-]{1,64}$.
bool is_function_name(std::string_view name);

// Python's truthiness of a message's content: a non-empty string or a non-empty list of parts.
inline bool has_content(const ChatMessage& m) {
  return !m.content.empty() || !m.parts.empty();
}

}  // namespace brise::chat_rules
