// Mistral instruct chat templates with tools, token for token as mistral-common builds them, and
// the parsing of a model's tool calls.
//
// A conversation goes the way mistral-common's MistralTokenizer.encode_chat_completion takes it:
//   validate_chat   its MistralRequestValidator (test mode) for the template's version: message
//                   order, tool calls answered by tool results, call ids, function names;
//   normalize_chat  its InstructRequestNormalizer: consecutive messages of one role merged (texts
//                   joined by "\n\n", tool calls concatenated), system messages joined into one
//                   system prompt (v1-v3) or kept in place (v7+), tool call arguments and (v1-v3)
//                   tool results re-written as json.dumps writes them, v11+ tool results put in
//                   the order of their calls;
//   render_chat     its InstructTokenizerV1..V13: the segments of the prompt, each a control
//                   token by name or a text that is encoded on its own;
//   encode_chat_segments   the token ids, control tokens looked up in the vocabulary.
// format_chat does all four.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "brise/tokenizer.hpp"

namespace brise {

// mistral-common's tokenizer versions (TokenizerVersion):
//   v1   "[INST] {user} [/INST]" as text, no tools;
//   v2   [INST]/[/INST] control tokens; tools before the last user message, the JSON list form of
//        tool calls, tool calls and results only after the last user message;
//   v3   the same with call ids ("id", "call_id") and the whole tool history (on a Tekken
//        vocabulary: "v3 Tekken", the same tokens; its text has no space after [INST]);
//   v7   system messages in place as [SYSTEM_PROMPT]...[/SYSTEM_PROMPT], tool results
//        [TOOL_RESULTS]id[TOOL_CONTENT]content[/TOOL_RESULTS], content and tool calls together;
//   v11  tool calls as [TOOL_CALLS]name[CALL_ID]id[ARGS]{json}, one after the other;
//   v13  tool calls as [TOOL_CALLS]name[ARGS]{json}, tools before the FIRST user message, tool
//        results without ids, [THINK]...[/THINK] thinking parts.
enum class ChatTemplate { MistralV1, MistralV2, MistralV3, MistralV7, MistralV11, MistralV13 };

// "v1", "v2", "v3", "v7", "v11", "v13".
std::string_view chat_template_name(ChatTemplate tmpl);
// The template named "v1" ... "v13" (brise::Error for any other name).
ChatTemplate chat_template_from_name(std::string_view name);

// The template of a vocabulary, by this rule:
//   1. a Tekken vocabulary that names its version (tekken.json "version", or brise's GGUF key
//      brise.tokenizer.tekken_version) uses that version (v3 is "v3 Tekken");
//   2. otherwise the control tokens decide: [THINK], [/THINK] and [ARGS] -> v13; [ARGS] and
//      [CALL_ID] -> v11; then a Tekken vocabulary (llama.cpp's GGUF form keeps no version) -> v3,
//      since Tekken v3 and v7 have the same control tokens and v3 is the older (Mistral Nemo,
//      Ministral 8B; pass v7 for the v7 ones); a SentencePiece one with [SYSTEM_PROMPT] and
//      [TOOL_CONTENT] -> v7; with [INST] and [/INST] -> v3 (a tokenizer.model does not say
//      whether it is v2 or v3: v3 is the later); none of them -> v1.
// Callers that know better (a tokenizer.model.v2 file, a Tekken GGUF whose version was lost)
// pass the template explicitly (`brise chat/template --template vN`).
ChatTemplate detect_chat_template(const Tokenizer& tokenizer);

// A function call made by the assistant (OpenAI's tool_calls[i]).
struct ToolCall {
  std::optional<std::string> id;  // absent: no id (mistral-common's "null")
  std::string name;
  std::string arguments = "{}";  // JSON text; text that is not JSON is passed on as a JSON string
};

// A part of a message's content (OpenAI's content array): text, or the model's thinking (v13).
struct ContentPart {
  enum class Kind { Text, Thinking } kind = Kind::Text;
  std::string text;
  bool closed = true;  // Thinking: ends with [/THINK] (false: the thinking goes on)
};

struct ChatMessage {
  enum class Role { System, User, Assistant, Tool } role;
  std::string content;
  // Content given as parts with thinking in them (assistant and system messages of v13); when not
  // empty it is the content and `content` is empty. Text-only parts are given as `content`
  // (joined by "\n\n", as mistral-common joins them).
  std::vector<ContentPart> parts = {};
  std::vector<ToolCall> tool_calls = {};         // assistant
  std::optional<std::string> tool_call_id = {};  // tool: the call it answers
  std::string name = {};                         // tool: the function's name (v2 shows it)
  bool prefix = false;  // assistant, last message: the answer's beginning, to be continued (no EOS)
};

// A function the model may call (OpenAI's {"type": "function", "function": {...}}).
struct ChatTool {
  std::string name;
  std::string description;
  std::string parameters = "{}";  // JSON Schema object as JSON text; its key order is kept
};

struct ChatRequest {
  std::vector<ChatMessage> messages;
  std::vector<ChatTool> tools;
};

// Parses an OpenAI-shaped chat request body: {"messages": [...], "tools": [...]} (mistral-common's
// tests/data/samples/*/sample.json). Messages: "role" system|user|assistant|tool, "content" a
// string, null (assistant) or an array of {"type": "text", "text"} and {"type": "thinking",
// "thinking", "closed"} parts; assistant "tool_calls" [{"id", "type": "function", "function":
// {"name", "arguments" (JSON text or an object)}}] and "prefix"; tool "tool_call_id" and "name".
// Tools: [{"type": "function", "function": {"name", "description", "parameters", "strict"}}]
// ("strict" is accepted and, as in mistral-common, not part of the prompt). The other fields of
// an OpenAI chat completion request (model, temperature, max_tokens, ...) are allowed and do not
// change the prompt. Anything else (an unknown field, an image part, a wrong type) is a
// brise::Error naming its place, e.g. "messages[2].tool_calls[0].function.name".
ChatRequest parse_chat_request(std::string_view json_text);
// A "tools" array alone (`brise chat --tools FILE.json`); {"tools": [...]} is taken too.
std::vector<ChatTool> parse_chat_tools(std::string_view json_text);

// mistral-common's checks of a request for the template's version; brise::Error names the
// message at fault. Among them: the conversation is not empty; it ends with a user or tool
// message, or an assistant message with prefix; roles follow system/user -> anything but tool,
// assistant -> assistant/user/tool, tool -> assistant/tool/user; an assistant message has content
// or tool calls (v1-v3: not both); every tool call is answered by one tool result before the
// next assistant message (v11+: by call id, ids unique); call ids are 9 letters or digits (v3,
// v7, v11) or any text but "null" (v13); function names are 1-64 of [a-zA-Z0-9_-]; v1 has no
// tools; thinking parts only from v13 on.
void validate_chat(ChatTemplate tmpl, const ChatRequest& request);

// A request as the template renders it (mistral-common's InstructRequest).
struct NormalizedChat {
  std::vector<ChatMessage> messages;
  std::string system_prompt;  // v1-v3: the system messages joined by "\n\n"; v7+: empty
  std::vector<ChatTool> tools;
};
NormalizedChat normalize_chat(ChatTemplate tmpl, const ChatRequest& request);

// A piece of a rendered prompt: a control token, or a text encoded on its own.
struct ChatSegment {
  enum class Kind { Text, Control } kind = Kind::Text;
  std::string text;  // Text: the text; Control: the token's name ("<s>", "</s>", "[INST]", ...)
};
std::vector<ChatSegment> render_chat(ChatTemplate tmpl, const NormalizedChat& chat);
// The segments' ids: "<s>"/"</s>" are the vocabulary's BOS/EOS, other control names its control
// tokens of that name (brise::Error naming the token when the vocabulary lacks it), texts are
// encoded without BOS.
std::vector<int32_t> encode_chat_segments(const Tokenizer& tokenizer,
                                          std::span<const ChatSegment> segments);
// The segments as one text, control tokens by name (what mistral-common's tests call the text of
// a prompt on a vocabulary that keeps text as it is).
std::string chat_segments_text(std::span<const ChatSegment> segments);

// Token ids of a conversation ready for the model's next answer: validate, normalize, render,
// encode. Throws brise::Error for a conversation mistral-common refuses.
std::vector<int32_t> format_chat(const Tokenizer& tokenizer, ChatTemplate tmpl,
                                 const ChatRequest& request);
std::vector<int32_t> format_chat(const Tokenizer& tokenizer, ChatTemplate tmpl,
                                 const std::vector<ChatMessage>& messages);

// A model's answer taken apart (the server's and `brise chat`'s view of a tool-calling reply).
struct AssistantReply {
  std::string content;   // the text; all of it, control tokens by name, when a call is malformed
  std::string thinking;  // v13: the text between a leading [THINK] and [/THINK]
  std::vector<ToolCall> tool_calls;
};
// Parses what follows [TOOL_CALLS] in the template's form: v1-v7 a JSON list of {"name",
// "arguments", "id"} objects (or one object); v11 name[CALL_ID]id[ARGS]{json}, repeated; v13
// name[ARGS]{json}, repeated. Calls whose text is malformed (no name, arguments that are not
// JSON, a missing [ARGS]) make no calls: the whole answer comes back as content, never an error.
AssistantReply parse_assistant_reply(ChatTemplate tmpl, std::span<const ChatSegment> output);
// The same on generated ids (an EOS at the end is dropped): control ids split the text, which is
// decoded between them.
AssistantReply parse_assistant_reply(const Tokenizer& tokenizer, ChatTemplate tmpl,
                                     std::span<const int32_t> ids);

}  // namespace brise
