#include "responses.hpp"

#include <random>

namespace brise::serve {
namespace {

json token_bytes_json(const std::string& bytes) {
  json out = json::array();
  for (const char c : bytes) out.push_back(static_cast<unsigned char>(c));
  return out;
}

}  // namespace

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

json Shapes::base(const char* object) const {
  return {{"id", id},
          {"object", object},
          {"created", created},
          {"model", model},
          {"system_fingerprint", "brise"}};
}

json Shapes::whole(json choices, const Usage& u) const {
  json j = base(chat ? "chat.completion" : "text_completion");
  j["choices"] = std::move(choices);
  j["usage"] = usage_json(u);
  return j;
}

json Shapes::chunk(json choice) const {
  json j = base(chat ? "chat.completion.chunk" : "text_completion");
  j["choices"] = json::array({std::move(choice)});
  if (usage_field) j["usage"] = nullptr;
  return j;
}

json Shapes::usage_chunk(const Usage& u) const {
  json j = base(chat ? "chat.completion.chunk" : "text_completion");
  j["choices"] = json::array();
  j["usage"] = usage_json(u);
  return j;
}

std::string token_text(const Tokenizer& tokenizer, int32_t id) {
  const TokenKind kind = tokenizer.kind(id);
  if (kind == TokenKind::Control) return {};
  const std::string_view piece = tokenizer.piece(id);
  if (tokenizer.model() == TokenizerModel::Tekken) return std::string(piece);
  if (kind == TokenKind::Unknown) return tokenizer.vocabulary().unk_surface;
  if (kind == TokenKind::Byte && piece.size() == 6)  // <0xNN>
    return std::string(1,
                       static_cast<char>(std::stoi(std::string(piece.substr(3, 2)), nullptr, 16)));
  std::string out;
  static constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

json chat_logprobs(const Tokenizer& tokenizer, std::span<const TokenLogprobs> tokens) {
  const auto entry = [&](const TokenLogprob& t) {
    const std::string text = token_text(tokenizer, t.id);
    return json{{"token", text}, {"logprob", t.logprob}, {"bytes", token_bytes_json(text)}};
  };
  json content = json::array();
  for (const TokenLogprobs& t : tokens) {
    json e = entry(t.chosen);
    e["top_logprobs"] = json::array();
    for (const TokenLogprob& alt : t.top) e["top_logprobs"].push_back(entry(alt));
    content.push_back(std::move(e));
  }
  return {{"content", std::move(content)}, {"refusal", nullptr}};
}

json completion_logprobs(const Tokenizer& tokenizer, std::span<const TokenLogprobs> tokens,
                         size_t& offset) {
  json out = {{"tokens", json::array()},
              {"token_logprobs", json::array()},
              {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  for (const TokenLogprobs& t : tokens) {
    const std::string text = token_text(tokenizer, t.chosen.id);
    out["tokens"].push_back(text);
    out["token_logprobs"].push_back(t.chosen.logprob);
    json top = json::object();
    for (const TokenLogprob& alt : t.top) {
      const std::string alt_text = token_text(tokenizer, alt.id);
      if (!top.contains(alt_text)) top[alt_text] = alt.logprob;  // two ids may share a text
    }
    out["top_logprobs"].push_back(std::move(top));
    out["text_offset"].push_back(offset);
    offset += text.size();
  }
  return out;
}

json tool_call_json(const ToolCall& call, const std::string& id) {
  return {{"id", id},
          {"type", "function"},
          {"function", {{"name", call.name}, {"arguments", call.arguments}}}};
}

std::string random_call_id() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id;
  for (int i = 0; i < 9; ++i) id += alphabet[rng() % 62];
  return id;
}

void assign_call_ids(std::vector<ToolCall>& calls) {
  for (ToolCall& call : calls) call.id = random_call_id();
}

}  // namespace brise::serve
