#include "choice.hpp"

#include <algorithm>

#include "api.hpp"

namespace brise::serve {

ChoiceState::ChoiceState(const Tokenizer& tokenizer, ChoiceSetup setup)
    : tokenizer_(tokenizer), setup_(std::move(setup)) {
  content_ = setup_.echo;
  offset_ = setup_.echo.size();
  if (!setup_.chat && setup_.logprobs) {
    size_t start = offset_;
    whole_logprobs_ = completion_logprobs(tokenizer_, {}, start);
  }
}

json ChoiceState::chunk_choice(json delta_or_text, const json& logprobs, const char* finish) const {
  json c = {{"index", setup_.index}};
  c[setup_.chat ? "delta" : "text"] = std::move(delta_or_text);
  c["logprobs"] = logprobs;
  c["finish_reason"] = finish ? json(finish) : json(nullptr);
  return c;
}

// The logprobs of these tokens for a chunk, and kept for the whole response.
json ChoiceState::logprobs_json(std::span<const TokenLogprobs> tokens) {
  if (!setup_.logprobs || tokens.empty()) return nullptr;
  if (setup_.chat) return chat_logprobs(tokenizer_, tokens);
  json part = completion_logprobs(tokenizer_, tokens, offset_);
  for (const char* key : {"tokens", "token_logprobs", "top_logprobs", "text_offset"})
    for (const json& v : part[key]) whole_logprobs_[key].push_back(v);
  return part;
}

std::optional<json> ChoiceState::opening() const {
  if (setup_.chat) return chunk_choice({{"role", "assistant"}, {"content", ""}}, nullptr, nullptr);
  if (!setup_.echo.empty()) return chunk_choice(setup_.echo, nullptr, nullptr);
  return std::nullopt;
}

void ChoiceState::on_text(const JobEvent& e, std::vector<json>& chunks) {
  logprobs_.insert(logprobs_.end(), e.logprobs.begin(), e.logprobs.end());
  // The token that opens the tool calls has no text: text in its event came before it.
  const auto calls_at = std::find(e.ids.begin(), e.ids.end(), setup_.tool_calls_id);
  const bool was_in_calls = !tail_.empty();
  if (setup_.tool_calls_id >= 0 && (was_in_calls || calls_at != e.ids.end())) {
    const auto from = was_in_calls ? e.ids.begin() : calls_at;
    tail_.insert(tail_.end(), from, e.ids.end());
    const size_t before = static_cast<size_t>(from - e.ids.begin());
    std::vector<TokenLogprobs> shown(e.logprobs.begin(),
                                     e.logprobs.begin() + std::min(before, e.logprobs.size()));
    if (before < e.logprobs.size())
      held_.insert(held_.end(), e.logprobs.begin() + static_cast<ptrdiff_t>(before),
                   e.logprobs.end());
    if (was_in_calls) return;
    content_ += e.text;
    if (!e.text.empty() || !shown.empty())
      chunks.push_back(chunk_choice({{"content", e.text}}, logprobs_json(shown), nullptr));
    return;
  }
  content_ += e.text;
  if (e.text.empty() && e.logprobs.empty()) return;
  const json lp = logprobs_json(e.logprobs);
  chunks.push_back(setup_.chat ? chunk_choice({{"content", e.text}}, lp, nullptr)
                               : chunk_choice(e.text, lp, nullptr));
}

void ChoiceState::on_done(const JobEvent& e, std::vector<json>& chunks) {
  done_ = true;
  usage_ = e.usage;
  const StopReason reason = e.stop_reason == StopReason::MaxTokens && setup_.length_is_complete
                                ? StopReason::Eos
                                : e.stop_reason;
  finish_ = finish_reason_name(reason);
  if (tail_.empty()) {
    chunks.push_back(
        chunk_choice(setup_.chat ? json::object() : json(""), nullptr, finish_.c_str()));
    return;
  }
  AssistantReply reply = parse_assistant_reply(tokenizer_, setup_.tmpl, tail_);
  const json held = logprobs_json(held_);
  if (reply.tool_calls.empty()) {  // malformed: the call text is content after all
    content_ += reply.content;
    chunks.push_back(chunk_choice({{"content", reply.content}}, held, nullptr));
  } else {
    calls_ = std::move(reply.tool_calls);
    assign_call_ids(calls_);
    // OpenAI's stream form: a delta with each call's id and name, then its arguments.
    for (size_t i = 0; i < calls_.size(); ++i) {
      json head = tool_call_json(calls_[i], *calls_[i].id);
      head["index"] = i;
      head["function"]["arguments"] = "";
      chunks.push_back(chunk_choice({{"tool_calls", json::array({head})}},
                                    i == 0 ? held : json(nullptr), nullptr));
      chunks.push_back(chunk_choice(
          {{"tool_calls",
            json::array({{{"index", i}, {"function", {{"arguments", calls_[i].arguments}}}}})}},
          nullptr, nullptr));
    }
    if ((reason != StopReason::MaxTokens && reason != StopReason::ContextFull) ||
        setup_.calls_are_whole)
      finish_ = "tool_calls";
  }
  chunks.push_back(chunk_choice(json::object(), nullptr, finish_.c_str()));
}

json ChoiceState::whole() const {
  json c = {{"index", setup_.index}};
  if (setup_.chat) {
    json message = {{"role", "assistant"}, {"content", content_}, {"refusal", nullptr}};
    if (!calls_.empty()) {
      if (content_.empty()) message["content"] = nullptr;
      message["tool_calls"] = json::array();
      for (const ToolCall& call : calls_)
        message["tool_calls"].push_back(tool_call_json(call, *call.id));
    }
    c["message"] = std::move(message);
    c["logprobs"] = setup_.logprobs ? chat_logprobs(tokenizer_, logprobs_) : json(nullptr);
  } else {
    c["text"] = content_;
    c["logprobs"] = setup_.logprobs ? whole_logprobs_ : json(nullptr);
  }
  c["finish_reason"] = finish_;
  return c;
}

}  // namespace brise::serve
