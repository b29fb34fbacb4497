// Bad Tekken vocabularies, each a brise::Error with its exact message: malformed tekken.json
// files (made here from a small valid one) and llama.cpp-form GGUF vocabularies (nemo-mini's,
// rewritten with one thing wrong).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/tokenizer.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

using nlohmann::json;

std::string base64(std::string_view bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 2]);
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? alphabet[v & 63] : '=';
  }
  return out;
}

// A valid tekken.json: the 256 bytes, then "ab", "abc", " a" and one rank past the cut; 20
// special tokens (the deprecated list, version v3).
json small_tekken() {
  json vocab = json::array();
  auto add = [&](const std::string& bytes) {
    vocab.push_back(
        {{"rank", vocab.size()}, {"token_bytes", base64(bytes)}, {"token_str", nullptr}});
  };
  for (int b = 0; b < 256; ++b) add(std::string(1, static_cast<char>(b)));
  for (const char* merged : {"ab", "abc", " a", "past the cut"}) add(merged);
  return {{"config",
           {{"pattern", std::string(kTekkenPattern)},
            {"num_vocab_tokens", 260},
            {"default_vocab_size", 20 + 259},
            {"default_num_special_tokens", 20},
            {"version", "v3"}}},
          {"vocab", vocab}};
}

std::string error_of(const json& j) {
  try {
    (void)parse_tekken_json(j.dump(), "bad.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(TekkenJsonMalformed, TheSmallFileIsValid) {
  const Tokenizer tok(parse_tekken_json(small_tekken().dump(), "small.json"));
  EXPECT_EQ(tok.vocab_size(), 279u);
  // "abc" is a rank; " ab" is not, and merges "ab" (rank 256) before " a" (rank 258).
  EXPECT_EQ(tok.encode("abc ab"), (std::vector<int32_t>{20 + 257, 20 + 32, 20 + 256}));
  EXPECT_EQ(tok.find_piece("past the cut"), -1);
  EXPECT_EQ(tok.version(), "v3");
}

TEST(TekkenJsonMalformed, EachProblemIsAClearError) {
  struct Case {
    const char* what;
    std::function<void(json&)> change;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"not JSON", nullptr, "bad.json: invalid JSON"},
      {"bad base64", [](json& j) { j["vocab"][3]["token_bytes"] = "A!=="; },
       "bad.json: vocab[3]: token_bytes 'A!==' is not valid base64"},
      {"base64 of a wrong length", [](json& j) { j["vocab"][3]["token_bytes"] = "AwM"; },
       "bad.json: vocab[3]: token_bytes 'AwM' is not valid base64"},
      {"padding inside", [](json& j) { j["vocab"][3]["token_bytes"] = "Aw==AwM="; },
       "bad.json: vocab[3]: token_bytes 'Aw==AwM=' is not valid base64"},
      {"empty bytes", [](json& j) { j["vocab"][3]["token_bytes"] = ""; },
       "bad.json: vocab[3]: token_bytes is empty"},
      {"ranks out of order", [](json& j) { j["vocab"][5]["rank"] = 6; },
       "bad.json: vocab[5]: rank 6 is out of order (ranks are listed 0, 1, 2, ...: expected 5)"},
      {"rank duplicated", [](json& j) { j["vocab"][6]["rank"] = 5; },
       "bad.json: vocab[6]: rank 5 is out of order (ranks are listed 0, 1, 2, ...: expected 6)"},
      {"bytes duplicated", [](json& j) { j["vocab"][257]["token_bytes"] = base64("ab"); },
       "bad.json: vocab[257]: its bytes are those of vocab[256]"},
      {"a single byte missing", [](json& j) { j["vocab"][65]["token_bytes"] = base64("zz"); },
       "bad.json: tokenizer vocabulary: rank 65 (token 85) is not the single byte 0x41: Tekken's "
       "ranks 0-255 are the 256 bytes in order"},
      {"cut larger than the list", [](json& j) { j["config"]["default_vocab_size"] = 20 + 261; },
       "bad.json: config.default_vocab_size - default_num_special_tokens = 261 ranks, but vocab "
       "lists only 260"},
      {"duplicate special tokens",
       [](json& j) {
         j["config"]["version"] = "v13";
         j["special_tokens"] = json::array();
         for (const char* s : {"<unk>", "<s>", "</s>", "[INST]", "[INST]"})
           j["special_tokens"].push_back(
               {{"rank", j["special_tokens"].size()}, {"token_str", s}, {"is_control", true}});
       },
       "bad.json: special token 4 '[INST]' duplicates special token 3"},
      {"a listed special token clashes with the filler",
       [](json& j) {
         j["special_tokens"] = json::array();
         for (const char* s : {"<unk>", "<s>", "</s>", "<SPECIAL_5>"})
           j["special_tokens"].push_back(
               {{"rank", j["special_tokens"].size()}, {"token_str", s}, {"is_control", true}});
       },
       "bad.json: special token 5 '<SPECIAL_5>' duplicates special token 3"},
      {"unknown version", [](json& j) { j["config"]["version"] = "v99"; },
       "bad.json: config.version 'v99' is unknown (known: v1 v2 v3 v7 v11 v13)"},
      {"no version", [](json& j) { j["config"].erase("version"); },
       "bad.json: config: missing key 'version'"},
      {"v13 without special tokens", [](json& j) { j["config"]["version"] = "v13"; },
       "bad.json: version v13 needs a 'special_tokens' list"},
      {"another pattern", [](json& j) { j["config"]["pattern"] = "\\w+|\\s+"; },
       "bad.json: tokenizer vocabulary: pre-tokenizer pattern '\\w+|\\s+' is not supported (brise "
       "matches exactly the pattern of Tekken files)"},
      {"num_vocab_tokens disagrees", [](json& j) { j["config"]["num_vocab_tokens"] = 300; },
       "bad.json: config.num_vocab_tokens is 300 but vocab lists 260 tokens"},
      {"no room for ranks", [](json& j) { j["config"]["default_num_special_tokens"] = 279; },
       "bad.json: config.default_vocab_size 279 and default_num_special_tokens 279 leave no room "
       "for ranks"},
      {"more special tokens than the count",
       [](json& j) {
         j["config"]["default_num_special_tokens"] = 2;
         j["config"]["default_vocab_size"] = 2 + 259;
         j["special_tokens"] = json::array();
         for (const char* s : {"<unk>", "<s>", "</s>"})
           j["special_tokens"].push_back(
               {{"rank", j["special_tokens"].size()}, {"token_str", s}, {"is_control", true}});
       },
       "bad.json: special_tokens lists 3 tokens but config.default_num_special_tokens is 2"},
      {"no BOS",
       [](json& j) {
         j["config"]["default_num_special_tokens"] = 1;
         j["config"]["default_vocab_size"] = 1 + 259;
       },
       "bad.json: the special tokens have no '<s>' (BOS) or no '</s>' (EOS)"},
      {"special rank out of order",
       [](json& j) {
         j["special_tokens"] = {{{"rank", 1}, {"token_str", "<s>"}, {"is_control", true}}};
       },
       "bad.json: special_tokens[0]: rank 1 is out of order (expected 0)"},
      {"an unknown key in an entry", [](json& j) { j["vocab"][7]["score"] = 1.5; },
       "bad.json: vocab[7]: unexpected key 'score'"},
      {"token_str of a wrong type", [](json& j) { j["vocab"][7]["token_str"] = 7; },
       "bad.json: vocab[7]: token_str must be a string or null"},
      {"vocab not an array", [](json& j) { j["vocab"] = "none"; },
       "bad.json: key 'vocab' must be an array, got string"},
      {"no config", [](json& j) { j.erase("config"); }, "bad.json: missing key 'config'"},
      {"fewer than 256 ranks",
       [](json& j) {
         j["vocab"].erase(j["vocab"].begin() + 200, j["vocab"].end());
         j["config"]["num_vocab_tokens"] = 200;
         j["config"]["default_vocab_size"] = 220;
       },
       "bad.json: tokenizer vocabulary: Tekken needs the 256 single bytes as ranks 0-255, but it "
       "has only 200 ranks"},
  };
  for (const auto& c : cases) {
    std::string message;
    if (!c.change) {
      try {
        (void)parse_tekken_json("{\"config\": [", "bad.json");
        message = "(accepted)";
      } catch (const Error& e) {
        message = e.what();
      }
      EXPECT_EQ(message.substr(0, c.error.size()), c.error) << c.what;
      continue;
    }
    json j = small_tekken();
    c.change(j);
    EXPECT_EQ(error_of(j), c.error) << c.what;
  }
}

TEST(TekkenJsonMalformed, FilesThroughLoadVocabulary) {
  const auto dir = test::scratch_dir("TekkenJsonMalformed_Files");
  const auto path = dir / "tekken.json";
  json j = small_tekken();
  j["config"]["version"] = "v2.5";
  std::ofstream(path) << j.dump();
  try {
    (void)load_vocabulary(path);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              path.string() + ": config.version 'v2.5' is unknown (known: v1 v2 v3 v7 v11 v13)");
  }
  EXPECT_THROW((void)read_tekken_json(dir / "missing.json"), Error);
}

// --- llama.cpp's GGUF form ---------------------------------------------------------------------

// nemo-mini.gguf's tokenizer metadata, copied into a writer, `change`d, and read back.
std::string gguf_error(const gguf::File& nemo, const std::function<void(gguf::Writer&)>& change,
                       std::string_view skip = "") {
  gguf::Writer w;
  for (const auto& [key, value] : nemo.metadata())
    if (key.starts_with("tokenizer.") && key != skip) w.set(key, value);
  if (change) change(w);
  const auto image = w.header_bytes();
  try {
    (void)Tokenizer(read_vocabulary(*gguf::File::parse(image, "bad.gguf")));
  } catch (const Error& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(TekkenGgufMalformed, EachProblemIsAClearError) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto nemo = gguf::File::open(data / "models/tekken-mini/nemo-mini.gguf");
  EXPECT_EQ(gguf_error(*nemo, nullptr), "(accepted)");
  const std::string merges = "bad.gguf: metadata 'tokenizer.ggml.merges': ";
  auto with_merge = [&](const std::string& merge) {
    return [merge, &nemo](gguf::Writer& w) {
      auto items = nemo->get("tokenizer.ggml.merges").as_array("merges").items;
      items[17] = merge;
      gguf::Array a;
      a.elem_type = gguf::ValueType::STRING;
      a.items = items;
      w.set("tokenizer.ggml.merges", a);
    };
  };
  EXPECT_EQ(gguf_error(*nemo, nullptr, "tokenizer.ggml.merges"),
            merges + "missing: a 'gpt2' vocabulary needs its merges (llama.cpp's form of Tekken)");
  EXPECT_EQ(gguf_error(*nemo,
                       [](gguf::Writer& w) {
                         w.set("tokenizer.ggml.merges",
                               gguf::make_array(std::vector<std::string>{}));
                       }),
            merges + "is empty: a 'gpt2' vocabulary needs its merges");
  EXPECT_EQ(gguf_error(*nemo, with_merge("Ġ zzqx")),
            merges + "merge 17 'Ġ zzqx' names 'zzqx', which is not a token");
  EXPECT_EQ(gguf_error(*nemo, with_merge("\xE4\xB8\xAD a")),
            merges + "merge 17 '\xE4\xB8\xAD a' names '\xE4\xB8\xAD', which is not a token");
  EXPECT_EQ(gguf_error(*nemo, with_merge("ab")), merges + "merge 17 'ab' is not two tokens");
  EXPECT_EQ(gguf_error(*nemo, with_merge("x y z")), merges + "merge 17 'x y z' is not two tokens");
  EXPECT_EQ(gguf_error(*nemo, with_merge("q q")),
            merges + "merge 17 'q q' makes a token that does not exist");

  const std::string pre = "bad.gguf: metadata 'tokenizer.ggml.pre': ";
  EXPECT_EQ(gguf_error(*nemo, nullptr, "tokenizer.ggml.pre"),
            pre +
                "tokenizer model 'gpt2' is not supported without a pre-tokenizer (brise reads "
                "'gpt2' vocabularies with Tekken's pre-tokenizer, 'tekken', only)");
  EXPECT_EQ(gguf_error(*nemo, [](gguf::Writer& w) { w.set("tokenizer.ggml.pre", "llama-bpe"); }),
            pre +
                "tokenizer model 'gpt2' is not supported with pre-tokenizer 'llama-bpe' (brise "
                "reads 'gpt2' vocabularies with Tekken's pre-tokenizer, 'tekken', only)");

  const size_t n = nemo->get("tokenizer.ggml.tokens").as_array("tokens").items.size();
  auto with_type = [n](size_t at, int32_t type) {
    return [=](gguf::Writer& w) {
      std::vector<int32_t> types(n, 1);
      std::fill_n(types.begin(), 1000, 3);
      types[at] = type;
      w.set("tokenizer.ggml.token_type", gguf::make_array(types));
    };
  };
  const std::string types = "bad.gguf: metadata 'tokenizer.ggml.token_type': ";
  EXPECT_EQ(gguf_error(*nemo, with_type(3000, 3)),
            types +
                "token 3000 has type 3; a Tekken vocabulary has control tokens (3) first, "
                "then normal tokens (1)");
  EXPECT_EQ(gguf_error(*nemo, with_type(1500, 6)),
            types +
                "token 1500 has type 6; a Tekken vocabulary has control tokens (3) first, "
                "then normal tokens (1)");
  auto with_token = [&](size_t at, const std::string& text) {
    return [=, &nemo](gguf::Writer& w) {
      auto tokens = nemo->get("tokenizer.ggml.tokens").as_array("tokens");
      tokens.items[at] = text;
      w.set("tokenizer.ggml.tokens", tokens);
    };
  };
  EXPECT_EQ(gguf_error(*nemo, with_token(1300, "a b")),
            "bad.gguf: metadata 'tokenizer.ggml.tokens': token 1300 'a b' is not in GPT-2's "
            "byte-to-unicode form");
  EXPECT_EQ(gguf_error(*nemo, with_token(4, "[INST]")),
            "bad.gguf: tokenizer vocabulary: special token 4 '[INST]' duplicates special token 3");
  EXPECT_EQ(gguf_error(*nemo, [](gguf::Writer& w) { w.set("tokenizer.ggml.bos_token_id", 1500u); }),
            "bad.gguf: tokenizer vocabulary: bos_id 1500 is not a special token (0-999)");
  EXPECT_EQ(
      gguf_error(*nemo,
                 [n](gguf::Writer& w) {
                   std::vector<float> scores(n, 0.0f);
                   scores[2000] = -1.0f;
                   w.set("tokenizer.ggml.scores", gguf::make_array(scores));
                 }),
      "bad.gguf: metadata 'tokenizer.ggml.scores': token 2000 has a score; Tekken's are all 0");
}

// A vocabulary built in code gets the same checks from the Tokenizer.
TEST(TekkenVocabularyChecks, TheTokenizerChecksWhatItIsGiven) {
  const Vocabulary good = parse_tekken_json(small_tekken().dump(), "small.json");
  auto error_of_vocab = [](const Vocabulary& v) -> std::string {
    try {
      (void)Tokenizer(v);
    } catch (const Error& e) {
      return e.what();
    }
    return "(accepted)";
  };
  EXPECT_EQ(error_of_vocab(good), "(accepted)");
  Vocabulary v = good;
  v.pattern = "\\s+";
  EXPECT_EQ(error_of_vocab(v),
            "tokenizer vocabulary: pre-tokenizer pattern '\\s+' is not supported (brise matches "
            "exactly the pattern of Tekken files)");
  v = good;
  v.num_special_tokens = 0;
  EXPECT_EQ(error_of_vocab(v),
            "tokenizer vocabulary: Tekken needs at least one special token and one rank, but it "
            "has 0 special tokens in 279 tokens");
  v = good;
  v.kinds[5] = TokenKind::Normal;
  EXPECT_EQ(error_of_vocab(v),
            "tokenizer vocabulary: token 5 has type 1, but in Tekken tokens below 20 are control "
            "tokens (3) and the rest normal (1)");
  v = good;
  v.version = "v8";
  EXPECT_EQ(error_of_vocab(v),
            "tokenizer vocabulary: unknown Tekken version 'v8' (known: v1 v2 v3 v7 v11 v13)");
  v = good;
  v.eos_id = -1;
  EXPECT_EQ(error_of_vocab(v), "tokenizer vocabulary: eos_id -1 is not a special token (0-19)");
  v = good;
  v.scores.pop_back();
  EXPECT_EQ(error_of_vocab(v),
            "tokenizer vocabulary: 279 pieces but 278 scores and 279 token types");
  // The writer refuses what the Tokenizer refuses, before writing anything.
  gguf::Writer w;
  EXPECT_THROW(write_vocabulary(w, v), Error);
  EXPECT_TRUE(w.header_bytes().size() < 64);
}

}  // namespace
}  // namespace brise
