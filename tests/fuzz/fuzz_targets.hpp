// The fuzz targets: one function per input format, each taking arbitrary bytes. They are shared
// by the libFuzzer executables (tests/fuzz/fuzz_main.cpp) and by the regression test of the
// normal build (tests/test_fuzz_regressions.cpp), which replays every input checked into
// tests/fuzz/regressions/<target>/.
//
// The contract every target checks: hostile input may only ever raise brise::Error. Any other
// exception escapes (libFuzzer reports it as a crash, the regression test as a failure); memory
// errors and undefined behaviour are caught by ASan/UBSan; allocations beyond -malloc_limit_mb
// and slow inputs by libFuzzer. Where a result can be checked independently, it is (UTF-8
// validity, decode == streamed decode, encode/decode round trips).
#pragma once

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "brise/chat.hpp"
#include "brise/constraint.hpp"
#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/model.hpp"
#include "brise/sampler.hpp"
#include "brise/session.hpp"
#include "brise/tokenizer.hpp"
#include "engine/convert/checkpoint.hpp"
#include "engine/convert/safetensors.hpp"
#include "engine/tokenizer/pretokenizer.hpp"
#include "serve/api.hpp"

namespace brise::fuzz {

using Bytes = std::span<const uint8_t>;

// A broken invariant (not a rejected input): escapes the targets' catch clauses on purpose.
struct InvariantViolation : std::logic_error {
  using std::logic_error::logic_error;
};

inline void require(bool ok, const std::string& what) {
  if (!ok) throw InvariantViolation(what);
}

inline std::span<const std::byte> as_bytes(Bytes b) {
  return {reinterpret_cast<const std::byte*>(b.data()), b.size()};
}
inline std::string_view as_text(Bytes b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF), written here
// independently of the tokenizer's own validator.
inline bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i - 1 < n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

// A folder for the targets that must go through a path (configs, Model::load): in /dev/shm when
// it exists, one per process, removed at exit.
inline const std::filesystem::path& scratch_folder() {
  struct Folder {
    std::filesystem::path path;
    Folder() {
      std::error_code ec;
      const std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec)
                                             ? std::filesystem::path("/dev/shm")
                                             : std::filesystem::temp_directory_path();
      path = base / ("brise-fuzz-" + std::to_string(::getpid()));
      std::filesystem::create_directories(path);
    }
    ~Folder() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Folder folder;
  return folder.path;
}

inline void write_file(const std::filesystem::path& path, Bytes bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw std::runtime_error("fuzz harness: cannot write " + path.string());
}

// Sums of the bytes read are stored here so that the reads are not optimised away.
inline volatile uint64_t g_sink = 0;

// --- shared checks of a tokenizer ----------------------------------------------------------------

// Encodes a few texts and decodes every id (bounded, for speed) at once and as a stream. A
// tokenizer that was constructed without error must do all of this without raising anything.
inline void exercise_tokenizer(const Tokenizer& tok) {
  static const char* const kTexts[] = {"",
                                       " ",
                                       "Hello world",
                                       "  two  spaces\n\ttab",
                                       "caf\xC3\xA9 \xF0\x9F\x98\x80 \xE4\xB8\xAD",
                                       "[INST] <s> </s>"};
  try {
    for (const char* text : kTexts) {
      const auto ids = tok.encode(text, tok.bos_id() >= 0);
      for (const int32_t id : ids)
        require(id >= 0 && size_t(id) < tok.vocab_size(),
                "encode produced an id outside the vocab");
      (void)tok.decode(ids);
    }
    const size_t n = std::min<size_t>(tok.vocab_size(), 4096);
    std::vector<int32_t> all(n);
    for (size_t i = 0; i < n; ++i) all[i] = static_cast<int32_t>(i);
    (void)tok.decode(all);
    Tokenizer::StreamDecoder stream(tok, true);
    for (const int32_t id : all) (void)stream.push(id);
    (void)stream.flush();
  } catch (const Error& e) {
    throw InvariantViolation(std::string("an accepted tokenizer raised: ") + e.what());
  }
}

// --- (a) GGUF -------------------------------------------------------------------------------

inline void touch_value(const gguf::Value& v, uint64_t& sink) {
  sink += static_cast<uint64_t>(v.type());
  (void)gguf::value_type_name(v.type());
  switch (v.type()) {
    case gguf::ValueType::STRING:
      for (const char c : v.as_string("v")) sink += static_cast<uint8_t>(c);
      break;
    case gguf::ValueType::ARRAY:
      for (const auto& item : v.as_array("v").items) touch_value(item, sink);
      break;
    case gguf::ValueType::F32:
    case gguf::ValueType::F64:
      sink += static_cast<uint64_t>(v.as_float("v") != 0);
      break;
    case gguf::ValueType::BOOL:
      sink += v.as_bool("v");
      break;
    default:
      try {
        sink += v.as_uint("v");
      } catch (const Error&) {
        sink += static_cast<uint64_t>(v.as_int("v"));
      }
  }
}

inline void touch_file(const gguf::File& f) {
  uint64_t sink = f.version() + f.alignment() + f.data_offset();
  for (const auto& [key, value] : f.metadata()) {
    sink += key.size();
    require(f.find(key) != nullptr, "metadata key not found again: " + key);
    touch_value(value, sink);
  }
  for (const auto& t : f.tensors()) {
    require(t.data != nullptr || t.n_bytes == 0, "tensor without data");
    require(f.find_tensor(t.name) == &t, "tensor not found again: " + t.name);
    const auto* begin = reinterpret_cast<const uint8_t*>(t.data);
    for (uint64_t i = 0; i < t.n_bytes; ++i) sink += begin[i];
    (void)t.row_length();
    (void)t.n_rows();
  }
  g_sink = sink;
}

// Parses as the engine does (and as `brise info` does, accepting foreign tensor types), reads
// every value, sums every tensor byte, then the model config and the tokenizer.
inline void gguf_target(Bytes data) {
  std::shared_ptr<const gguf::File> file;
  try {
    file = gguf::File::parse(as_bytes(data), "fuzz.gguf");
  } catch (const Error&) {
    try {
      gguf::ReadLimits foreign;
      foreign.accept_foreign_tensor_types = true;
      touch_file(*gguf::File::parse(as_bytes(data), "fuzz.gguf", foreign));
    } catch (const Error&) {
    }
    return;
  }
  touch_file(*file);
  try {
    (void)read_model_config(*file);
  } catch (const Error&) {
  }
  std::unique_ptr<Tokenizer> tok;
  try {
    tok = std::make_unique<Tokenizer>(read_vocabulary(*file));
  } catch (const Error&) {
    return;
  }
  exercise_tokenizer(*tok);
}

// --- (b) safetensors header and shard index -------------------------------------------------

inline void safetensors_target(Bytes data) {
  try {
    const auto f = SafetensorsFile::parse(as_bytes(data), "fuzz.safetensors");
    uint64_t sink = 0;
    for (const auto& t : f->tensors()) {
      require(f->find(t.name) != nullptr, "tensor not found again");
      uint64_t elements = 1;
      for (const uint64_t d : t.shape) elements *= d;
      require(elements == t.n_elements, "n_elements disagrees with the shape");
      for (const std::byte b : t.data) sink += static_cast<uint8_t>(b);
    }
    g_sink = sink;
  } catch (const Error&) {
  }
  try {
    const auto index = parse_shard_index(as_text(data), "fuzz.index.json");
    for (const auto& [tensor, shard] : index)
      require(!shard.empty() && shard.find('/') == std::string::npos && shard != "..",
              "shard index accepted a path: " + shard);
  } catch (const Error&) {
  }
}

// --- (c) config.json / params.json ---------------------------------------------------------

// The first byte chooses the file name (config.json or params.json); the rest is its content.
inline void config_target(Bytes data) {
  if (data.empty()) return;
  const std::filesystem::path dir = scratch_folder() / "checkpoint";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir);
  write_file(dir / ((data[0] & 1) ? "params.json" : "config.json"), data.subspan(1));
  try {
    CheckpointLayout layout;
    bool tied = false;
    const ModelConfig c = read_checkpoint_config(dir, &layout, &tied);
    c.validate("fuzz");  // what was returned must be a valid config
  } catch (const Error&) {
  }
}

// --- (d) SentencePiece model ----------------------------------------------------------------

inline void sentencepiece_target(Bytes data) {
  std::unique_ptr<Tokenizer> tok;
  try {
    Vocabulary vocab = parse_sentencepiece_model(as_bytes(data), "fuzz.model");
    require(vocab.scores.size() == vocab.pieces.size() && vocab.kinds.size() == vocab.pieces.size(),
            "parsed vocabulary has inconsistent sizes");
    tok = std::make_unique<Tokenizer>(std::move(vocab));
  } catch (const Error&) {
    return;
  }
  exercise_tokenizer(*tok);
}

// --- (e), (f) tokenizer encode and decode with fixed real tokenizers ------------------------

struct FixedTokenizers {
  std::unique_ptr<Tokenizer> mistral_v3, tok512, tekken;
  std::unique_ptr<Tokenizer> tekken_v13;  // tekken-mini's v13 vocabulary ([ARGS], [CALL_ID], ...)
};

// Loaded once from $BRISE_TESTDATA (the libFuzzer mains call this from LLVMFuzzerInitialize;
// the regression test calls it after locating the data).
inline FixedTokenizers& fixed_tokenizers() {
  static FixedTokenizers t;
  return t;
}
inline void load_fixed_tokenizers(const std::filesystem::path& data) {
  auto& t = fixed_tokenizers();
  if (t.mistral_v3) return;
  t.mistral_v3 = std::make_unique<Tokenizer>(
      read_sentencepiece_model(data / "tokenizers/mistral-v3/tokenizer.model"));
  t.tok512 = std::make_unique<Tokenizer>(
      read_sentencepiece_model(data / "tokenizers/tok512/tokenizer.model"));
  t.tekken = std::make_unique<Tokenizer>(read_tekken_json(data / "models/tekken-mini/tekken.json"));
  t.tekken_v13 =
      std::make_unique<Tokenizer>(read_tekken_json(data / "models/tekken-mini/tekken-v13.json"));
}

// First byte: bit 0x80 adds BOS, value % 4 == 3 picks tok512 (which collapses whitespace),
// else Mistral v3. The rest is the text.
inline void encode_target(Bytes data) {
  if (data.empty()) return;
  const auto& fixed = fixed_tokenizers();
  require(fixed.mistral_v3 != nullptr, "fixed tokenizers not loaded");
  const bool small = (data[0] & 3) == 3;
  const Tokenizer& tok = small ? *fixed.tok512 : *fixed.mistral_v3;
  const bool bos = (data[0] & 0x80) != 0;
  const std::string_view text = as_text(data.subspan(1));
  std::vector<int32_t> ids;
  try {
    ids = tok.encode(text, bos);
  } catch (const Error&) {
    require(!valid_utf8(text), "encode rejected valid UTF-8");
    return;
  }
  require(valid_utf8(text), "encode accepted invalid UTF-8");
  for (const int32_t id : ids)
    require(id >= 0 && size_t(id) < tok.vocab_size(), "encode produced an id outside the vocab");
  require(!bos || (!ids.empty() && ids[0] == tok.bos_id()), "BOS missing");
  const std::string decoded = tok.decode(ids);
  require(valid_utf8(decoded), "decode produced invalid UTF-8");
  // Mistral's tokenizer keeps whitespace and falls back to bytes, so every text comes back
  // unchanged, except that a literal U+2581 in the text decodes as a space.
  if (!small && text.find("\xE2\x96\x81") == std::string_view::npos)
    require(decoded == text, "round trip changed the text");
}

// Each pair of bytes after the first is one id: values below 0xFF00 are taken modulo the vocab
// size, the rest map to out-of-range ids (-1, vocab, INT32_MIN, ...). First byte: value % 4 == 3
// picks tok512, else Mistral v3; bit 0x80 starts the stream decoder mid-text.
inline void decode_target(Bytes data) {
  if (data.empty()) return;
  const auto& fixed = fixed_tokenizers();
  require(fixed.mistral_v3 != nullptr, "fixed tokenizers not loaded");
  const Tokenizer& tok = (data[0] & 3) == 3 ? *fixed.tok512 : *fixed.mistral_v3;
  const auto vocab = static_cast<int32_t>(tok.vocab_size());
  const int32_t bad[] = {-1, vocab, vocab + 1, INT32_MIN, INT32_MAX, -vocab};
  std::vector<int32_t> ids;
  size_t first_bad = SIZE_MAX;
  for (size_t i = 1; i + 1 < data.size(); i += 2) {
    const unsigned v = data[i] | (unsigned{data[i + 1]} << 8);
    if (v < 0xFF00) {
      ids.push_back(static_cast<int32_t>(v % static_cast<unsigned>(vocab)));
    } else {
      if (first_bad == SIZE_MAX) first_bad = ids.size();
      ids.push_back(bad[(v - 0xFF00) % std::size(bad)]);
    }
  }
  std::string whole;
  try {
    whole = tok.decode(ids);
    require(first_bad == SIZE_MAX, "decode accepted an id outside the vocabulary");
    require(valid_utf8(whole), "decode produced invalid UTF-8");
  } catch (const Error&) {
    require(first_bad != SIZE_MAX, "decode rejected valid ids");
  }
  const bool at_start = (data[0] & 0x80) == 0;
  Tokenizer::StreamDecoder stream(tok, at_start);
  std::string streamed;
  for (size_t i = 0; i < ids.size(); ++i) {
    try {
      const std::string part = stream.push(ids[i]);
      require(i != first_bad, "StreamDecoder accepted an id outside the vocabulary");
      streamed += part;
    } catch (const Error&) {
      require(i == first_bad, "StreamDecoder rejected a valid id");
      return;
    }
  }
  streamed += stream.flush();
  require(valid_utf8(streamed), "StreamDecoder produced invalid UTF-8");
  if (at_start) require(streamed == whole, "streamed decode differs from decode");
}

// --- (i) Tekken: tekken.json, the pre-splitter, encode and decode ----------------------------

// Decodes `ids` at once and as a stream: the same text, valid UTF-8, no partial character
// pushed out. Ids must be in range.
inline void check_tekken_decode(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  const std::string whole = tok.decode(ids);
  require(valid_utf8(whole), "Tekken decode produced invalid UTF-8");
  Tokenizer::StreamDecoder stream(tok, true);
  std::string streamed;
  for (const int32_t id : ids) {
    const std::string part = stream.push(id);
    require(valid_utf8(part), "Tekken StreamDecoder pushed out part of a character");
    streamed += part;
  }
  streamed += stream.flush();
  require(streamed == whole, "Tekken streamed decode differs from decode");
}

// Text through the fixed Tekken tokenizer: the pre-splitter's pieces tile valid text at
// character boundaries, encode loses nothing (byte-level BPE), stream == decode.
inline void check_tekken_text(const Tokenizer& tok, std::string_view text, bool parse_special) {
  std::vector<int32_t> ids;
  try {
    ids = tok.encode(text, EncodeOptions{.parse_special = parse_special});
  } catch (const Error&) {
    require(!valid_utf8(text), "Tekken encode rejected valid UTF-8");
    return;
  }
  require(valid_utf8(text), "Tekken encode accepted invalid UTF-8");
  const detail::TekkenSplitter splitter;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = splitter.piece_end(text, pos);
    require(end > pos && end <= text.size(), "a pre-tokenizer piece is empty or runs past the end");
    require(end == text.size() || (static_cast<uint8_t>(text[end]) & 0xC0) != 0x80,
            "a pre-tokenizer piece ends inside a character");
    pos = end;
  }
  for (const int32_t id : ids)
    require(id >= 0 && size_t(id) < tok.vocab_size(), "encode produced an id outside the vocab");
  if (!parse_special) {
    for (const int32_t id : ids)
      require(id >= tok.vocabulary().num_special_tokens, "plain text produced a control token");
    require(tok.decode(ids) == text, "Tekken round trip changed the text");
  }
  check_tekken_decode(tok, ids);
}

// First byte % 5: 0 or 1, the rest is a tekken.json (a vocabulary that loads must work); 2, the
// rest is text for the fixed tekken-mini tokenizer (3: with parse_special); 4, the rest is pairs
// of bytes, each an id for it (modulo the vocabulary size).
inline void tekken_target(Bytes data) {
  if (data.empty()) return;
  const auto& fixed = fixed_tokenizers();
  require(fixed.tekken != nullptr, "fixed tokenizers not loaded");
  const Bytes rest = data.subspan(1);
  switch (data[0] % 5) {
    case 0:
    case 1: {
      std::unique_ptr<Tokenizer> tok;
      try {
        Vocabulary v = parse_tekken_json(as_text(rest), "fuzz.json");
        require(v.model == TokenizerModel::Tekken, "tekken.json gave another model");
        tok = std::make_unique<Tokenizer>(std::move(v));
      } catch (const Error&) {
        return;
      }
      exercise_tokenizer(*tok);
      check_tekken_text(*tok, "Hello world, caf\xC3\xA9 \xF0\x9F\x98\x80 123\n\n  x", false);
      return;
    }
    case 2:
    case 3:
      check_tekken_text(*fixed.tekken, as_text(rest), data[0] % 5 == 3);
      return;
    default: {
      std::vector<int32_t> ids;
      const auto n = static_cast<unsigned>(fixed.tekken->vocab_size());
      for (size_t i = 0; i + 1 < rest.size(); i += 2)
        ids.push_back(static_cast<int32_t>((rest[i] | (unsigned{rest[i + 1]} << 8)) % n));
      check_tekken_decode(*fixed.tekken, ids);
    }
  }
}

// --- (g) model load and forward pass ---------------------------------------------------------

// The input is a GGUF file followed by a tail: the last byte b gives the number of tokens
// (b % 8 + 1), the KV cache type (bit 3) and the prefill chunk ((b >> 4) % 4 + 1); the 2 bytes
// per token before it are the token ids (modulo the vocab size; 0xFFFF is an out-of-range id).
// The file goes through Model::load (a path: it is written to /dev/shm), then prefill and one
// decode step.
inline void model_target(Bytes data) {
  if (data.empty()) return;
  const uint8_t b = data.back();
  const size_t n_tokens = b % 8 + 1;
  Bytes file = data.first(data.size() - 1);
  std::vector<uint16_t> raw(n_tokens, 1);
  if (file.size() >= 2 * n_tokens) {
    const Bytes tail = file.last(2 * n_tokens);
    for (size_t i = 0; i < n_tokens; ++i) raw[i] = tail[2 * i] | (uint16_t{tail[2 * i + 1]} << 8);
    file = file.first(file.size() - 2 * n_tokens);
  }
  const std::filesystem::path path = scratch_folder() / "model.gguf";
  write_file(path, file);
  std::shared_ptr<const Model> model;
  try {
    model = Model::load(path);
  } catch (const Error&) {
    return;
  }
  const uint32_t vocab = model->config().vocab_size;
  std::vector<int32_t> ids(n_tokens);
  for (size_t i = 0; i < n_tokens; ++i)
    ids[i] = raw[i] == 0xFFFF ? static_cast<int32_t>(vocab) : raw[i] % vocab;
  SessionOptions options;
  options.threads = 1;
  options.kv_type = (b & 8) ? TensorType::F16 : TensorType::F32;
  options.prefill_chunk = (b >> 4) % 4 + 1;
  try {
    Session session(model, options);
    const auto logits = session.prefill(ids);
    require(logits.size() == vocab, "logits size");
    int32_t best = 0;
    for (uint32_t i = 0; i < vocab; ++i) {
      require(std::isfinite(logits[i]), "non-finite logit returned without an error");
      if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
    }
    (void)session.decode(best);
    if (model->has_tokenizer()) (void)model->tokenizer().decode(session.tokens());
  } catch (const Error&) {
  }
}

// brise serve's request parser: the first byte picks the endpoint, the rest is the body. Only
// ApiError may come out; an accepted request holds valid UTF-8 text and values in range that the
// sampler accepts, and every error renders as OpenAI's error object.
inline void request_target(Bytes data) {
  if (data.empty()) return;
  const auto endpoint =
      data[0] & 1 ? serve::Endpoint::Completions : serve::Endpoint::ChatCompletions;
  const std::string_view body = as_text(data.subspan(1));
  try {
    const serve::ApiRequest r = serve::parse_request(endpoint, body);
    for (const auto& m : r.chat.messages)
      require(valid_utf8(m.content), "message content not UTF-8");
    for (const auto& p : r.prompts) require(valid_utf8(p.text), "prompt not UTF-8");
    require(valid_utf8(r.model), "model not UTF-8");
    for (const auto& s : r.stop) require(valid_utf8(s) && !s.empty(), "bad stop string");
    require(!r.max_tokens ||
                (*r.max_tokens >= 1 && *r.max_tokens <= serve::ParseLimits{}.max_tokens_limit),
            "max_tokens out of range");
    require(endpoint != serve::Endpoint::ChatCompletions || !r.chat.messages.empty(),
            "no messages");
    require(endpoint != serve::Endpoint::Completions || !r.prompts.empty(), "no prompt");
    require(r.n >= 1, "n below 1");
    try {
      Sampler sampler(r.sampling);
    } catch (const Error& e) {
      require(false, std::string("accepted sampling parameters the sampler rejects: ") + e.what());
    }
  } catch (const serve::ApiError& e) {
    require(e.status == 400, "a parse error that is not a 400");
    const std::string text =
        serve::error_body(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    require(text.find("\"error\"") != std::string::npos, "error object without 'error'");
  }
}

// --- (j) chat: OpenAI request bodies through every template, and answers taken apart ----------

// The first byte picks the template (value % 6: v1, v2, v3, v7, v11, v13) and the vocabulary
// (bit 0x80: tekken-mini's tekken.json, else Mistral v3); the rest is a request body. Only
// brise::Error may come out of formatting; an accepted conversation gives ids of the vocabulary.
// Then the same bytes, two at a time, are ids of an answer: taking it apart never raises, and
// what comes out is valid UTF-8.
inline void chat_target(Bytes data) {
  if (data.empty()) return;
  static constexpr ChatTemplate kTemplates[] = {ChatTemplate::MistralV1,  ChatTemplate::MistralV2,
                                                ChatTemplate::MistralV3,  ChatTemplate::MistralV7,
                                                ChatTemplate::MistralV11, ChatTemplate::MistralV13};
  const ChatTemplate tmpl = kTemplates[data[0] % 6];
  const Tokenizer& tok =
      data[0] & 0x80 ? *fixed_tokenizers().tekken : *fixed_tokenizers().mistral_v3;
  try {
    const ChatRequest request = parse_chat_request(as_text(data.subspan(1)));
    for (const int32_t id : format_chat(tok, tmpl, request))
      require(id >= 0 && static_cast<size_t>(id) < tok.vocab_size(), "an id out of the vocabulary");
  } catch (const Error&) {
  }
  std::vector<int32_t> ids;
  for (size_t i = 1; i + 1 < data.size(); i += 2)
    ids.push_back(static_cast<int32_t>((data[i] | (data[i + 1] << 8)) % tok.vocab_size()));
  try {
    const AssistantReply reply = parse_assistant_reply(tok, tmpl, ids);
    require(valid_utf8(reply.content) && valid_utf8(reply.thinking), "reply text not UTF-8");
    for (const ToolCall& call : reply.tool_calls)
      require(
          !call.name.empty() && valid_utf8(call.arguments) && (!call.id || valid_utf8(*call.id)),
          "a malformed tool call");
  } catch (const Error& e) {
    require(false, std::string("taking an answer apart raised: ") + e.what());
  }
}

// --- (k) schema: JSON Schemas compiled into constraints, and their masks walked -------------
// The first byte picks what is compiled: value % 4 == 0 or 1, the rest as a JSON Schema
// (response_format) on tok512, whose byte fallback spells any bytes; 2, a forced tool call whose
// one tool has the rest as its parameters (v3 form, on Mistral v3); 3, the same in the v13 form
// on tekken-mini's v13 vocabulary. A refusal may only be a brise::Error. A constraint taken is
// walked with a budget of 48 tokens, each chosen from the mask by a hash of the input: while the
// grammar is not finished the mask is never empty, and the matcher takes every token its mask
// allowed.
inline void schema_target(Bytes data) {
  if (data.empty()) return;
  const auto& fixed = fixed_tokenizers();
  require(fixed.tok512 && fixed.mistral_v3 && fixed.tekken_v13, "fixed tokenizers not loaded");
  const std::string_view rest = as_text(data.subspan(1));
  const int mode = data[0] % 4;
  const Tokenizer& tok = mode < 2    ? *fixed.tok512
                         : mode == 2 ? *fixed.mistral_v3
                                     : *fixed.tekken_v13;
  std::shared_ptr<const Constraint> constraint;
  try {
    if (mode < 2) {
      constraint = Constraint::json_schema(tok, rest);
    } else {
      const ChatTool tool{"f", "", std::string(rest)};
      constraint = Constraint::tool_calls(
          tok, mode == 2 ? ChatTemplate::MistralV3 : ChatTemplate::MistralV13, {&tool, 1});
    }
  } catch (const Error&) {
    return;
  }
  ConstraintMatcher matcher(constraint);
  uint64_t hash = 0xcbf29ce484222325ull;
  for (const uint8_t b : data) hash = (hash ^ b) * 0x100000001b3ull;
  std::vector<int32_t> ids;
  for (uint32_t left = 48; left > 0 && !matcher.finished(); --left) {
    const auto mask = matcher.allowed(left);
    ids.clear();
    for (size_t w = 0; w < mask.size(); ++w)
      for (uint64_t bits = mask[w]; bits != 0; bits &= bits - 1)
        ids.push_back(static_cast<int32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(bits))));
    require(!ids.empty(), "an empty mask before the grammar finished");
    const int32_t id = ids[hash % ids.size()];
    require(static_cast<size_t>(id) < tok.vocab_size(), "a masked id outside the vocabulary");
    require(matcher.accept(id), "the matcher refused a token its mask allowed");
    if (id == tok.eos_id()) break;
    hash = (hash ^ static_cast<uint64_t>(id)) * 0x100000001b3ull;
  }
}

// --- registry --------------------------------------------------------------------------------

struct Target {
  const char* name;
  void (*run)(Bytes);
  bool needs_testdata;  // uses the fixed tokenizers
};

inline constexpr Target kTargets[] = {
    {"gguf", gguf_target, false},     {"safetensors", safetensors_target, false},
    {"config", config_target, false}, {"sentencepiece", sentencepiece_target, false},
    {"encode", encode_target, true},  {"decode", decode_target, true},
    {"model", model_target, false},   {"request", request_target, false},
    {"tekken", tekken_target, true},  {"chat", chat_target, true},
    {"schema", schema_target, true},
};

inline const Target* find_target(std::string_view name) {
  for (const auto& t : kTargets)
    if (name == t.name) return &t;
  return nullptr;
}

}  // namespace brise::fuzz
