// tekken.json, as mistral-common's Tekkenizer.from_file reads it (tokens/tokenizers/tekken.py):
// the checks it makes with asserts become errors that name the file and the entry.
#include <fstream>
#include <unordered_map>

#include "brise/error.hpp"
#include "brise/tokenizer.hpp"
#include "engine/gguf/json_util.hpp"
#include "engine/tokenizer/tekken.hpp"

namespace brise {
namespace {

using nlohmann::json;

// Tekkenizer.DEPRECATED_SPECIAL_TOKENS: the special tokens of files without a special_tokens list
// (allowed up to version v7); the rest up to default_num_special_tokens are "<SPECIAL_i>".
constexpr const char* kDeprecatedSpecialTokens[] = {"<unk>",
                                                    "<s>",
                                                    "</s>",
                                                    "[INST]",
                                                    "[/INST]",
                                                    "[AVAILABLE_TOOLS]",
                                                    "[/AVAILABLE_TOOLS]",
                                                    "[TOOL_RESULTS]",
                                                    "[/TOOL_RESULTS]",
                                                    "[TOOL_CALLS]",
                                                    "[IMG]",
                                                    "<pad>",
                                                    "[IMG_BREAK]",
                                                    "[IMG_END]",
                                                    "[PREFIX]",
                                                    "[MIDDLE]",
                                                    "[SUFFIX]",
                                                    "[SYSTEM_PROMPT]",
                                                    "[/SYSTEM_PROMPT]",
                                                    "[TOOL_CONTENT]"};

// Strict base64 (RFC 4648 alphabet, '=' padding to a multiple of 4, nothing else), as the
// files write it; false on anything else.
bool decode_base64(std::string_view in, std::string& out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  out.clear();
  if (in.size() % 4 != 0) return false;
  for (size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    const int pad = last ? (in[i + 3] == '=') + (in[i + 2] == '=' && in[i + 3] == '=') : 0;
    int v[4];
    for (int k = 0; k < 4 - pad; ++k)
      if ((v[k] = value(in[i + static_cast<size_t>(k)])) < 0) return false;
    const uint32_t bits = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) |
                          (pad < 2 ? uint32_t(v[2]) << 6 : 0) | (pad < 1 ? uint32_t(v[3]) : 0);
    out += static_cast<char>(bits >> 16);
    if (pad < 2) out += static_cast<char>((bits >> 8) & 0xFF);
    if (pad < 1) out += static_cast<char>(bits & 0xFF);
  }
  return true;
}

class TekkenJsonReader {
 public:
  TekkenJsonReader(std::string_view text, std::string name)
      : name_(std::move(name)), root_(json_util::parse(text, name_)) {}

  Vocabulary read() {
    if (!root_.is_object()) fail("a tekken.json is a JSON object with 'config' and 'vocab'");
    const json& config = member(root_, "config", json::value_t::object, name_);
    const std::string where = name_ + ": config";
    Vocabulary v;
    v.model = TokenizerModel::Tekken;
    v.add_dummy_prefix = false;
    v.byte_fallback = false;
    v.pattern = required_string(config, "pattern", where);
    v.version = required_string(config, "version", where);
    if (!detail::is_known_tekken_version(v.version))
      fail("config.version '" + v.version +
           "' is unknown (known: " + detail::known_tekken_versions() + ")");
    const uint64_t vocab_size = json_util::require_uint(config, "default_vocab_size", where);
    const uint64_t num_special =
        json_util::require_uint(config, "default_num_special_tokens", where);
    const json& vocab = member(root_, "vocab", json::value_t::array, name_);
    if (const auto listed = json_util::get_uint(config, "num_vocab_tokens", where);
        listed && *listed != vocab.size())
      fail("config.num_vocab_tokens is " + std::to_string(*listed) + " but vocab lists " +
           std::to_string(vocab.size()) + " tokens");
    if (num_special == 0 || num_special >= vocab_size || vocab_size > (uint64_t{1} << 31))
      fail("config.default_vocab_size " + std::to_string(vocab_size) +
           " and default_num_special_tokens " + std::to_string(num_special) +
           " leave no room for ranks");
    // The vocabulary cut: only the first default_vocab_size - default_num_special_tokens ranks
    // are used (mistral-common's _reload_mergeable_ranks(vocab, max_vocab)).
    const uint64_t ranks = vocab_size - num_special;
    if (ranks > vocab.size())
      fail("config.default_vocab_size - default_num_special_tokens = " + std::to_string(ranks) +
           " ranks, but vocab lists only " + std::to_string(vocab.size()));
    v.num_special_tokens = static_cast<int32_t>(num_special);
    read_special_tokens(v, static_cast<size_t>(num_special));
    read_ranks(v, vocab, static_cast<size_t>(ranks));
    v.scores.assign(v.pieces.size(), 0.0f);
    v.kinds.assign(v.pieces.size(), TokenKind::Normal);
    std::fill_n(v.kinds.begin(), num_special, TokenKind::Control);
    v.add_bos = true;
    v.add_eos = false;
    try {
      detail::validate_tekken(v);
    } catch (const Error& e) {
      throw Error(name_ + ": " + e.what());
    }
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const { throw Error(name_ + ": " + problem); }

  const json& member(const json& obj, const char* key, json::value_t type,
                     const std::string& where) const {
    const auto it = obj.find(key);
    if (it == obj.end()) throw Error(where + ": missing key '" + key + "'");
    if (it->type() != type)
      throw Error(where + ": key '" + key + "' must be " +
                  (type == json::value_t::object ? "an object" : "an array") + ", got " +
                  it->type_name());
    return *it;
  }

  std::string required_string(const json& obj, const char* key, const std::string& where) const {
    auto s = json_util::get_string(obj, key, where);
    if (!s) throw Error(where + ": missing key '" + key + "'");
    return *s;
  }

  // Every listed entry is checked (a file with a broken entry past the cut is broken too); the
  // first `used` become the vocabulary.
  void read_ranks(Vocabulary& v, const json& vocab, size_t used) const {
    std::unordered_map<std::string, size_t> seen;
    seen.reserve(used);
    std::string bytes;
    for (size_t i = 0; i < vocab.size(); ++i) {
      const json& entry = vocab[i];
      const std::string where = name_ + ": vocab[" + std::to_string(i) + "]";
      if (!entry.is_object()) throw Error(where + ": must be an object");
      for (const auto& [key, value] : entry.items())
        if (key != "rank" && key != "token_bytes" && key != "token_str")
          throw Error(where + ": unexpected key '" + key + "'");
      const uint64_t rank = json_util::require_uint(entry, "rank", where);
      if (rank != i)
        throw Error(where + ": rank " + std::to_string(rank) + " is out of order (ranks are " +
                    "listed 0, 1, 2, ...: expected " + std::to_string(i) + ")");
      const std::string b64 = required_string(entry, "token_bytes", where);
      if (!decode_base64(b64, bytes))
        throw Error(where + ": token_bytes '" + b64 + "' is not valid base64");
      if (bytes.empty()) throw Error(where + ": token_bytes is empty");
      if (const auto it = entry.find("token_str");
          it != entry.end() && !it->is_string() && !it->is_null())
        throw Error(where + ": token_str must be a string or null");
      if (i >= used) continue;
      if (const auto [it, added] = seen.emplace(bytes, i); !added)
        throw Error(where + ": its bytes are those of vocab[" + std::to_string(it->second) + "]");
      v.pieces.push_back(bytes);
    }
  }

  void read_special_tokens(Vocabulary& v, size_t count) const {
    std::vector<std::string> texts;
    const auto list = root_.find("special_tokens");
    if (list == root_.end() || list->is_null()) {
      // mistral-common: versions above v7 must list their special tokens.
      if (std::stoi(v.version.substr(1)) > 7)
        fail("version " + v.version + " needs a 'special_tokens' list");
      texts.assign(std::begin(kDeprecatedSpecialTokens), std::end(kDeprecatedSpecialTokens));
      if (texts.size() > count) texts.resize(count);
    } else {
      if (!list->is_array()) fail("special_tokens must be an array");
      if (list->size() > count)
        fail("special_tokens lists " + std::to_string(list->size()) +
             " tokens but config.default_num_special_tokens is " + std::to_string(count));
      for (size_t i = 0; i < list->size(); ++i) {
        const json& entry = (*list)[i];
        const std::string where = name_ + ": special_tokens[" + std::to_string(i) + "]";
        if (!entry.is_object()) throw Error(where + ": must be an object");
        const uint64_t rank = json_util::require_uint(entry, "rank", where);
        if (rank != i)
          throw Error(where + ": rank " + std::to_string(rank) + " is out of order (expected " +
                      std::to_string(i) + ")");
        std::string text = required_string(entry, "token_str", where);
        if (text.empty()) throw Error(where + ": token_str is empty");
        (void)json_util::get_bool(entry, "is_control", where);
        texts.push_back(std::move(text));
      }
    }
    for (size_t i = texts.size(); i < count; ++i)
      texts.push_back("<SPECIAL_" + std::to_string(i) + ">");
    std::unordered_map<std::string, size_t> ids;
    for (size_t i = 0; i < texts.size(); ++i) {
      if (const auto [it, added] = ids.emplace(texts[i], i); !added)
        fail("special token " + std::to_string(i) + " '" + texts[i] +
             "' duplicates special token " + std::to_string(it->second));
    }
    auto id_of = [&](const char* text) -> int32_t {
      const auto it = ids.find(text);
      return it == ids.end() ? -1 : static_cast<int32_t>(it->second);
    };
    v.bos_id = id_of("<s>");
    v.eos_id = id_of("</s>");
    v.unk_id = id_of("<unk>");
    v.pad_id = id_of("<pad>");
    if (v.bos_id < 0 || v.eos_id < 0)
      fail("the special tokens have no '<s>' (BOS) or no '</s>' (EOS)");
    v.pieces = std::move(texts);
  }

  std::string name_;
  json root_;
};

}  // namespace

Vocabulary parse_tekken_json(std::string_view text, const std::string& name) {
  return TekkenJsonReader(text, name).read();
}

Vocabulary read_tekken_json(const std::filesystem::path& path) {
  constexpr uintmax_t kMaxBytes = uintmax_t{1} << 30;
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(path.string() + ": cannot open tekken.json: " + ec.message());
  if (size > kMaxBytes)
    throw Error(path.string() + ": " + std::to_string(size) +
                " bytes is too large for a tekken.json");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open tekken.json");
  std::string text(static_cast<size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (!in) throw Error(path.string() + ": read error");
  return parse_tekken_json(text, path.string());
}

}  // namespace brise
