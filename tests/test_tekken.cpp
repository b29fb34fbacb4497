// The Tekken tokenizer against ../shared/reference/tekken-mini/encode.json (ids from npm tiktoken
// 1.0.22, the WASM build of tiktoken's Rust core), on the same vocabulary in its four forms:
// tekken.json (v3, deprecated special tokens), tekken-v13.json (explicit special tokens), and
// llama.cpp's GGUF form in nemo-mini.gguf and ministral-mini.gguf.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/model.hpp"
#include "brise/tokenizer.hpp"
#include "engine/tokenizer/bpe.hpp"
#include "engine/tokenizer/pretokenizer.hpp"
#include "support/gguf_values.hpp"
#include "support/json_text.hpp"
#include "support/testdata.hpp"
#include "support/utf8_check.hpp"

namespace brise {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const std::vector<std::string> kSources = {"tekken.json", "tekken-v13.json", "nemo-mini.gguf",
                                           "ministral-mini.gguf"};

const json& reference(const fs::path& data) {
  static const json j =
      test::parse_json(test::read_file_text(data / "reference/tekken-mini/encode.json"));
  return j;
}

// One tokenizer per source, loaded once for the whole run.
const Tokenizer& tokenizer(const fs::path& data, const std::string& source) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
  auto& slot = loaded[source];
  if (!slot)
    slot = std::make_unique<Tokenizer>(load_vocabulary(data / "models/tekken-mini" / source));
  return *slot;
}

std::string hex_of(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    out += digits[static_cast<uint8_t>(c) >> 4];
    out += digits[static_cast<uint8_t>(c) & 15];
  }
  return out;
}

std::vector<int32_t> ids_of(const json& list) {
  return list.get<std::vector<int32_t>>();
}

class TekkenSources : public ::testing::TestWithParam<std::string> {};

TEST_P(TekkenSources, VocabularyFacts) {
  BRISE_REQUIRE_TESTDATA(data);
  const Tokenizer& tok = tokenizer(data, GetParam());
  const json& ref = reference(data);
  EXPECT_EQ(tok.model(), TokenizerModel::Tekken);
  EXPECT_EQ(tok.vocab_size(), ref.at("vocab_size").get<size_t>());
  EXPECT_EQ(tok.vocabulary().num_special_tokens, ref.at("num_special_tokens").get<int32_t>());
  EXPECT_EQ(tok.bos_id(), ref.at("bos_id").get<int32_t>());
  EXPECT_EQ(tok.eos_id(), ref.at("eos_id").get<int32_t>());
  EXPECT_EQ(tok.vocabulary().unk_id, ref.at("unk_id").get<int32_t>());
  EXPECT_EQ(tok.vocabulary().pad_id, ref.at("pad_id").get<int32_t>());
  EXPECT_EQ(tok.vocabulary().pattern, ref.at("pattern").get<std::string>());
  const std::string expected_version = GetParam() == "tekken.json"       ? "v3"
                                       : GetParam() == "tekken-v13.json" ? "v13"
                                                                         : "";  // llama.cpp's form
  EXPECT_EQ(tok.version(), expected_version);
  // Control tokens by their text, the deprecated list's and v13's own.
  EXPECT_EQ(tok.find_special("[INST]"), 3);
  EXPECT_EQ(tok.find_special("[/INST]"), 4);
  EXPECT_EQ(tok.find_special("[SYSTEM_PROMPT]"), 17);
  EXPECT_EQ(tok.find_special("<SPECIAL_999>"), 999);
  EXPECT_EQ(tok.find_special("Hello"), -1);
  EXPECT_EQ(tok.find_piece("[INST]"), 3);
  EXPECT_EQ(tok.kind(3), TokenKind::Control);
  EXPECT_EQ(tok.piece(3), "[INST]");
  EXPECT_EQ(tok.find_special("[THINK]"), GetParam() == "tekken-v13.json" ? 35 : -1);
  EXPECT_EQ(tok.find_special("<SPECIAL_35>"), GetParam() == "tekken-v13.json" ? -1 : 35);
  // Ranks: id = rank + 1000; rank 32 is the byte ' '.
  EXPECT_EQ(tok.find_piece(" "), 1032);
  EXPECT_EQ(tok.piece(1032), " ");
  EXPECT_EQ(tok.kind(1032), TokenKind::Normal);
}

TEST_P(TekkenSources, EveryEncodeCase) {
  BRISE_REQUIRE_TESTDATA(data);
  const Tokenizer& tok = tokenizer(data, GetParam());
  const json& ref = reference(data);
  ASSERT_EQ(ref.at("cases").size(), 65u);
  for (const auto& c : ref.at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    const std::string text = c.at("text").get<std::string>();
    const std::vector<int32_t> expected = ids_of(c.at("ids"));
    const std::vector<int32_t> ids = tok.encode(text);
    EXPECT_EQ(ids, expected) << GetParam() << ": " << name;
    if (ids != expected) continue;
    const auto& hex = c.at("token_bytes_hex");
    for (size_t i = 0; i < ids.size(); ++i)
      EXPECT_EQ(hex_of(tok.piece(ids[i])), hex.at(i).get<std::string>()) << name << " token " << i;
    // Byte-level BPE loses nothing.
    EXPECT_EQ(tok.decode(ids), text) << name;
    // BOS goes first when asked for, never otherwise.
    const auto with_bos = tok.encode(text, true);
    ASSERT_FALSE(with_bos.empty());
    EXPECT_EQ(with_bos[0], 1);
    EXPECT_EQ(std::vector<int32_t>(with_bos.begin() + 1, with_bos.end()), expected) << name;
  }
}

TEST_P(TekkenSources, EveryDecodeCase) {
  BRISE_REQUIRE_TESTDATA(data);
  const Tokenizer& tok = tokenizer(data, GetParam());
  const json& ref = reference(data);
  ASSERT_EQ(ref.at("decode_cases").size(), 8u);
  for (const auto& c : ref.at("decode_cases")) {
    const std::string name = c.at("name").get<std::string>();
    const std::vector<int32_t> ids = ids_of(c.at("ids"));
    EXPECT_EQ(tok.decode(ids), c.at("decoded").get<std::string>()) << name;
    std::string bytes;
    for (const int32_t id : ids)
      if (tok.kind(id) != TokenKind::Control) bytes += tok.piece(id);
    EXPECT_EQ(hex_of(bytes), c.at("bytes_hex").get<std::string>()) << name;
  }
}

// Pushed one id at a time, the text comes out in whole characters only, and all of it equals
// decode(): on every encode and decode case, and with control ids between the pieces.
TEST_P(TekkenSources, StreamingEqualsDecode) {
  BRISE_REQUIRE_TESTDATA(data);
  const Tokenizer& tok = tokenizer(data, GetParam());
  const json& ref = reference(data);
  auto check = [&](const std::vector<int32_t>& ids, bool at_start, const std::string& label) {
    Tokenizer::StreamDecoder stream(tok, at_start);
    std::string streamed;
    for (const int32_t id : ids) {
      const std::string chunk = stream.push(id);
      EXPECT_TRUE(test::is_valid_utf8(chunk)) << label << ": partial UTF-8 after id " << id;
      streamed += chunk;
    }
    const std::string rest = stream.flush();
    EXPECT_TRUE(test::is_valid_utf8(rest)) << label;
    EXPECT_EQ(streamed + rest, tok.decode(ids)) << label;
  };
  std::vector<std::vector<int32_t>> all;
  for (const auto& c : ref.at("cases")) all.push_back(ids_of(c.at("ids")));
  for (const auto& c : ref.at("decode_cases")) all.push_back(ids_of(c.at("ids")));
  for (size_t i = 0; i < all.size(); ++i) {
    check(all[i], true, "case " + std::to_string(i));
    check(all[i], false, "case " + std::to_string(i) + " mid-text");
    std::vector<int32_t> with_controls;  // a control id after every token: still no effect
    for (const int32_t id : all[i]) {
      with_controls.push_back(id);
      with_controls.push_back(3);
    }
    check(with_controls, true, "case " + std::to_string(i) + " with [INST] between");
  }
}

std::string source_test_name(const ::testing::TestParamInfo<std::string>& source) {
  std::string name = source.param;
  for (char& c : name)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}
INSTANTIATE_TEST_SUITE_P(AllForms, TekkenSources, ::testing::ValuesIn(kSources), source_test_name);

// The file lists 6756 ranks; only the first default_vocab_size - default_num_special_tokens =
// 6256 exist. The reference's ids_if_vocab_not_cut (what a loader that keeps them all would
// produce) must never come out, and the bytes of a rank past the cut are no token.
TEST(TekkenCut, RanksPastTheCutDoNotExist) {
  BRISE_REQUIRE_TESTDATA(data);
  const json file = test::parse_json(test::read_file_text(data / "models/tekken-mini/tekken.json"));
  ASSERT_EQ(file.at("vocab").size(), 6756u);
  const Tokenizer& tok = tokenizer(data, "tekken.json");
  EXPECT_EQ(tok.vocab_size(), 7256u);
  int cut_cases = 0;
  for (const auto& c : reference(data).at("cases")) {
    if (!c.contains("ids_if_vocab_not_cut")) continue;
    ++cut_cases;
    const auto ids = tok.encode(c.at("text").get<std::string>());
    EXPECT_NE(ids, ids_of(c.at("ids_if_vocab_not_cut"))) << c.at("name");
    for (const int32_t id : ids) EXPECT_LT(id, 7256);
  }
  EXPECT_EQ(cut_cases, 19);
  // Rank 6300's text, base64-decoded here independently of the loader (it is ASCII text).
  const std::string str = file.at("vocab").at(6300).at("token_str").get<std::string>();
  EXPECT_EQ(tok.find_piece(str), -1) << "'" << str << "' is past the cut";
  const std::string kept = file.at("vocab").at(6255).at("token_str").get<std::string>();
  EXPECT_EQ(tok.find_piece(kept), 7255);
}

// Special tokens' texts in user text stay text; the caller may ask for them explicitly.
TEST(TekkenSpecial, TextNeverBecomesControlTokensUnlessAsked) {
  BRISE_REQUIRE_TESTDATA(data);
  const Tokenizer& tok = tokenizer(data, "tekken-v13.json");
  const std::string text = "<s>[INST] hi [/INST]</s>[THINK]";
  for (const int32_t id : tok.encode(text)) EXPECT_GE(id, 1000);
  for (const int32_t id : tok.encode(text, EncodeOptions{.add_bos = false})) EXPECT_GE(id, 1000);
  const auto parsed = tok.encode(text, EncodeOptions{.parse_special = true});
  std::vector<int32_t> expected = {1, 3};
  for (const int32_t id : tok.encode(" hi ")) expected.push_back(id);
  expected.insert(expected.end(), {4, 2, 35});
  EXPECT_EQ(parsed, expected);
  // Text that only starts like a control token stays text.
  const auto partial = tok.encode("[INST", EncodeOptions{.parse_special = true});
  EXPECT_EQ(partial, tok.encode("[INST"));
  EXPECT_EQ(tok.encode("a[INST]", EncodeOptions{.add_bos = true, .parse_special = true}),
            (std::vector<int32_t>{1, tok.encode("a")[0], 3}));
  // Decoding drops them.
  EXPECT_EQ(tok.decode(parsed), " hi ");
}

// A few splits of the pattern worked out by hand, one for each alternative and its
// backtracking (the differential test against tiktoken, tests/node/tekken_oracle.test.mjs,
// covers thousands of random texts).
TEST(TekkenPretokenizer, HandWorkedSplits) {
  const detail::TekkenSplitter splitter;
  auto split = [&](const std::string& text) {
    std::vector<std::string> out;
    for (size_t pos = 0; pos < text.size();) {
      const size_t end = splitter.piece_end(text, pos);
      out.push_back(text.substr(pos, end - pos));
      pos = end;
    }
    return out;
  };
  auto expect_split = [&](const std::vector<std::string>& expected) {
    std::string text;
    for (const auto& p : expected) text += p;
    EXPECT_EQ(split(text), expected) << text;
  };
  expect_split({"Hello", " world"});                      // 1: prefix, upper*, lower+
  expect_split({"get", "Element", "By", "Id"});           // 1 without a prefix
  expect_split({"HTTPServer", " OK"});                    // 1: upper* then lower+; 2 for " OK"
  expect_split({"ALLCAPS", " WORD", "."});                // 2: upper+ with the prefix, then 4
  expect_split({"1", "2", "3", "\xD9\xA3", "\xC2\xBD"});  // 3: one digit of any script
  expect_split({"a", "  ", " b"});                        // 6 gives the last space to " b"
  expect_split({"x", "  "});                              // 6 at the end of the text
  expect_split({"end", ".\n\n"});                         // 4 takes the newlines after it
  expect_split({"a", "/b"});                              // 1: any non-letter is a prefix
  expect_split({"..//\n/", "x"});                         // 4: [\r\n/]* after the run
  expect_split({"\t\n\n", "a"});                          // 5: \s*[\r\n]+
  expect_split({"x", " \n", " ", " y"});                  // 5 ends at the run's last newline
  expect_split({"x", " ",
                "\xC2\x85"
                "a"});                             // U+0085 is \s, and the prefix of 1
  expect_split({"y", " ", " \xEF\xBB\xBF", "z"});  // U+FEFF is not \s: " ?[^\s\p{L}\p{N}]+"
  expect_split({"e\xCC\x81t\xC3\xA9"});            // marks are on both sides of 1
}

// The two merge methods (tiktoken's scan for short pieces, the heap for long ones) against a
// plain transcription of tiktoken's _byte_pair_merge written here, on random pieces made of the
// vocabulary's own ranks (so that many merges apply), short and long.
TEST(TekkenBpe, BothMethodsMergeAsTiktoken) {
  BRISE_REQUIRE_TESTDATA(data);
  const Vocabulary v = load_vocabulary(data / "models/tekken-mini/tekken.json");
  std::unordered_map<std::string, int32_t> rank_of;  // bytes -> id
  for (size_t id = 1000; id < v.size(); ++id) rank_of[v.pieces[id]] = static_cast<int32_t>(id);
  auto reference_merge = [&](const std::string& piece) {
    std::vector<std::string> parts;
    for (const char c : piece) parts.emplace_back(1, c);
    for (;;) {
      int32_t best = INT32_MAX;
      size_t at = 0;
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        const auto it = rank_of.find(parts[i] + parts[i + 1]);
        if (it != rank_of.end() && it->second < best) best = it->second, at = i;
      }
      if (best == INT32_MAX) break;
      parts[at] += parts[at + 1];
      parts.erase(parts.begin() + static_cast<long>(at) + 1);
    }
    std::vector<int32_t> ids;
    for (const auto& p : parts) ids.push_back(rank_of.at(p));
    return ids;
  };
  detail::PieceTable table;
  table.build(v.pieces, [](size_t id) { return id >= 1000; });
  int32_t byte_ids[256];
  for (int b = 0; b < 256; ++b) byte_ids[b] = 1000 + b;
  detail::BytePairEncoder bpe(table, byte_ids);
  std::mt19937 rng(5);
  for (int round = 0; round < 2000; ++round) {
    const size_t limit = round % 10 == 0 ? 300 : detail::BytePairEncoder::kShortPiece;
    std::string piece;
    while (piece.size() < limit) {
      const std::string& p = v.pieces[1000 + rng() % (v.size() - 1000)];
      if (piece.size() + p.size() > limit) break;
      piece += p;
    }
    if (piece.size() < 2) continue;
    const auto expected = reference_merge(piece);
    std::vector<int32_t> long_ids;
    bpe.encode_long(piece, long_ids);
    EXPECT_EQ(long_ids, expected) << "long, " << piece.size() << " bytes";
    if (piece.size() <= detail::BytePairEncoder::kShortPiece) {
      std::vector<int32_t> short_ids;
      bpe.encode_short(piece, short_ids);
      EXPECT_EQ(short_ids, expected) << "short, " << piece.size() << " bytes";
    }
  }
  // A long run of one letter: every merge ties with its neighbours (leftmost first).
  std::vector<int32_t> ids;
  bpe.encode_long(std::string(1000, 'a'), ids);
  EXPECT_EQ(ids, reference_merge(std::string(1000, 'a')));
}

// The vocabulary written in llama.cpp's form holds exactly the tokenizer.* values of
// nemo-mini.gguf (made by llama.cpp's converter rules), whether it was read from that file or
// from tekken.json.
TEST(TekkenGguf, WritesLlamaCppsForm) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto nemo = gguf::File::open(data / "models/tekken-mini/nemo-mini.gguf");
  // (tekken-v13.json names other special tokens, so only these two give nemo-mini's tokens.)
  for (const char* source : {"nemo-mini.gguf", "tekken.json"}) {
    SCOPED_TRACE(source);
    gguf::Writer writer;
    write_vocabulary(writer, load_vocabulary(data / "models/tekken-mini" / source));
    const auto image = writer.header_bytes();
    const auto written = gguf::File::parse(image, "written.gguf");
    size_t compared = 0;
    for (const auto& [key, value] : nemo->metadata()) {
      if (!key.starts_with("tokenizer.")) continue;
      const gguf::Value* mine = written->find(key);
      ASSERT_NE(mine, nullptr) << key << " is missing";
      EXPECT_TRUE(test::same_value(*mine, value, key));
      ++compared;
    }
    for (const auto& [key, value] : written->metadata()) {
      if (key.starts_with("tokenizer.")) {
        EXPECT_NE(nemo->find(key), nullptr) << key << " is extra";
      }
    }
    EXPECT_EQ(compared, 12u);
    // ... in llama.cpp's order.
    std::vector<std::string> nemo_keys, written_keys;
    for (const auto& [key, value] : nemo->metadata())
      if (key.starts_with("tokenizer.")) nemo_keys.push_back(key);
    for (const auto& [key, value] : written->metadata())
      if (key.starts_with("tokenizer.")) written_keys.push_back(key);
    EXPECT_EQ(written_keys, nemo_keys);
    // The version is brise's own key, written when known.
    const gguf::Value* version = written->find("brise.tokenizer.tekken_version");
    if (std::string_view(source) == "nemo-mini.gguf") {
      EXPECT_EQ(version, nullptr);
    } else {
      ASSERT_NE(version, nullptr);
      EXPECT_EQ(read_vocabulary(*written).version, "v3");
    }
  }
}

// Model::load reads the tokenizer of both models (the rest of their shapes is tested where
// the model shapes are).
TEST(TekkenModel, ModelLoadGetsTheTokenizer) {
  BRISE_REQUIRE_TESTDATA(data);
  for (const char* name : {"nemo-mini.gguf", "ministral-mini.gguf"}) {
    const auto model = Model::load(data / "models/tekken-mini" / name);
    ASSERT_TRUE(model->has_tokenizer());
    EXPECT_EQ(model->tokenizer().model(), TokenizerModel::Tekken);
    EXPECT_EQ(model->tokenizer().encode("Hello"), (std::vector<int32_t>{1072, 1303, 1381}));
  }
}

}  // namespace
}  // namespace brise
