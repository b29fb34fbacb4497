// Tokenizer against the SentencePiece 0.1.97 vectors in ../shared/tokenizers/vectors: every case
// id for id, pieces, decoded text and the decode_cases, for mistral-v1, mistral-v3 and tok512.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/tokenizer.hpp"
#include "support/json_text.hpp"
#include "support/same_vocabulary.hpp"
#include "support/testdata.hpp"
#include "support/utf8_check.hpp"

namespace brise {
namespace {

using nlohmann::json;

struct Loaded {
  json vectors;
  Tokenizer tokenizer;
};

Loaded load(const std::filesystem::path& data, const std::string& name) {
  json vectors =
      test::parse_json(test::read_file_text(data / "tokenizers" / "vectors" / (name + ".json")));
  Tokenizer tokenizer(read_sentencepiece_model(data / "tokenizers" / name / "tokenizer.model"));
  return {std::move(vectors), std::move(tokenizer)};
}

std::vector<std::string> pieces_of(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (const int32_t id : ids) out.emplace_back(tok.piece(id));
  return out;
}

using test::is_valid_utf8;

// Streams `ids` one at a time; every chunk must be complete UTF-8 and the whole must equal
// decode().
void expect_stream_matches(const Tokenizer& tok, const std::vector<int32_t>& ids,
                           const std::string& label) {
  Tokenizer::StreamDecoder stream(tok, /*at_start=*/true);
  std::string streamed;
  for (const int32_t id : ids) {
    const std::string chunk = stream.push(id);
    EXPECT_TRUE(is_valid_utf8(chunk)) << label << ": chunk after id " << id << " is not UTF-8";
    streamed += chunk;
  }
  streamed += stream.flush();
  EXPECT_EQ(streamed, tok.decode(ids)) << label;
}

class TokenizerVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerVectors, HeaderFactsMatch) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto [v, tok] = load(data, GetParam());
  const Vocabulary& vocab = tok.vocabulary();
  EXPECT_EQ(tok.vocab_size(), v["vocab_size"].get<size_t>());
  EXPECT_EQ(tok.bos_id(), v["bos_id"].get<int32_t>());
  EXPECT_EQ(tok.eos_id(), v["eos_id"].get<int32_t>());
  EXPECT_EQ(vocab.unk_id, v["unk_id"].get<int32_t>());
  EXPECT_EQ(vocab.pad_id, v["pad_id"].get<int32_t>());
  EXPECT_EQ(vocab.byte_fallback, v["byte_fallback"].get<bool>());
  EXPECT_EQ(vocab.add_dummy_prefix, v["add_dummy_prefix"].get<bool>());
  EXPECT_EQ(vocab.remove_extra_whitespaces, v["remove_extra_whitespaces"].get<bool>());
  EXPECT_TRUE(vocab.add_bos);
  EXPECT_FALSE(vocab.add_eos);
  const std::pair<const char*, TokenKind> kinds[] = {
      {"NORMAL", TokenKind::Normal},   {"UNKNOWN", TokenKind::Unknown},
      {"CONTROL", TokenKind::Control}, {"USER_DEFINED", TokenKind::UserDefined},
      {"UNUSED", TokenKind::Unused},   {"BYTE", TokenKind::Byte}};
  for (const auto& [name, kind] : kinds) {
    const auto expected = v["piece_type_counts"].value(name, 0);
    EXPECT_EQ(std::count(vocab.kinds.begin(), vocab.kinds.end(), kind), expected) << name;
  }
  for (const auto& [id, piece] : v["control_pieces"].items()) {
    EXPECT_EQ(tok.piece(std::stoi(id)), piece.get<std::string>());
    EXPECT_EQ(tok.kind(std::stoi(id)), TokenKind::Control);
    EXPECT_EQ(tok.find_piece(piece.get<std::string>()), std::stoi(id));
  }
}

TEST_P(TokenizerVectors, EncodesEveryCase) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto [v, tok] = load(data, GetParam());
  ASSERT_GE(v["cases"].size(), 31u);
  for (const auto& c : v["cases"]) {
    const std::string text = c["text"];
    const std::string name = c["name"];
    const auto ids = tok.encode(text);
    EXPECT_EQ(ids, c["ids"].get<std::vector<int32_t>>()) << name;
    EXPECT_EQ(tok.encode(text, /*add_bos=*/true), c["ids_with_bos"].get<std::vector<int32_t>>())
        << name;
    EXPECT_EQ(pieces_of(tok, ids), c["pieces"].get<std::vector<std::string>>()) << name;
  }
}

TEST_P(TokenizerVectors, DecodesEveryCase) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto [v, tok] = load(data, GetParam());
  for (const auto& c : v["cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.decode(ids), c["decoded"].get<std::string>()) << c["name"];
    EXPECT_EQ(tok.decode(c["ids_with_bos"].get<std::vector<int32_t>>()),
              c["decoded"].get<std::string>())
        << c["name"];
    if (c["decode_roundtrips"].get<bool>()) {
      EXPECT_EQ(tok.decode(ids), c["text"].get<std::string>()) << c["name"];
    }
  }
}

TEST_P(TokenizerVectors, DecodeCases) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto [v, tok] = load(data, GetParam());
  ASSERT_FALSE(v["decode_cases"].empty());
  for (const auto& c : v["decode_cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(pieces_of(tok, ids), c["pieces"].get<std::vector<std::string>>()) << c["name"];
    EXPECT_EQ(tok.decode(ids), c["decoded"].get<std::string>()) << c["name"];
  }
}

TEST_P(TokenizerVectors, StreamingDecodeEqualsDecode) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto [v, tok] = load(data, GetParam());
  for (const auto& c : v["cases"]) {
    expect_stream_matches(tok, c["ids"].get<std::vector<int32_t>>(), c["name"]);
    expect_stream_matches(tok, c["ids_with_bos"].get<std::vector<int32_t>>(), c["name"]);
  }
  for (const auto& c : v["decode_cases"])
    expect_stream_matches(tok, c["ids"].get<std::vector<int32_t>>(), c["name"]);
}

TEST_P(TokenizerVectors, StreamingHoldsBackSplitCharacters) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto [v, tok] = load(data, GetParam());
  // "é" as two byte pieces, then "😀" as four: nothing comes out until a character is whole.
  const int32_t c3 = tok.find_piece("<0xC3>"), a9 = tok.find_piece("<0xA9>");
  const int32_t f0 = tok.find_piece("<0xF0>"), x9f = tok.find_piece("<0x9F>"),
                x98 = tok.find_piece("<0x98>"), x80 = tok.find_piece("<0x80>");
  Tokenizer::StreamDecoder stream(tok, true);
  EXPECT_EQ(stream.push(c3), "");
  EXPECT_EQ(stream.push(a9), "\xC3\xA9");
  EXPECT_EQ(stream.push(f0), "");
  EXPECT_EQ(stream.push(x9f), "");
  EXPECT_EQ(stream.push(x98), "");
  EXPECT_EQ(stream.push(x80), "\xF0\x9F\x98\x80");
  // A truncated character comes out as U+FFFD per byte at flush, as decode() gives it.
  EXPECT_EQ(stream.push(f0), "");
  EXPECT_EQ(stream.push(x9f), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(tok.decode(std::vector<int32_t>{f0, x9f}), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_P(TokenizerVectors, StreamingContinuationKeepsLeadingSpace) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto [v, tok] = load(data, GetParam());
  const auto ids = tok.encode("Hello world");
  std::string at_start, continued;
  Tokenizer::StreamDecoder first(tok, true), next(tok, false);
  for (const int32_t id : ids) {
    at_start += first.push(id);
    continued += next.push(id);
  }
  EXPECT_EQ(at_start, "Hello world");
  EXPECT_EQ(continued, " Hello world");
}

TEST_P(TokenizerVectors, InvalidUtf8IsAnError) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto [v, tok] = load(data, GetParam());
  const std::string bad[] = {"abc\xFF", "ab\xC3", "\xC0\xAF", "x\xED\xA0\x80", "\xF4\x90\x80\x80"};
  const size_t at[] = {3, 2, 0, 1, 0};
  for (size_t i = 0; i < std::size(bad); ++i) {
    try {
      tok.encode(bad[i]);
      ADD_FAILURE() << "no error for case " << i;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), "invalid UTF-8 at byte " + std::to_string(at[i])) << i;
    }
  }
}

TEST_P(TokenizerVectors, OutOfRangeIdsAreErrors) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto [v, tok] = load(data, GetParam());
  const auto n = static_cast<int32_t>(tok.vocab_size());
  EXPECT_THROW(tok.decode(std::vector<int32_t>{1, n}), Error);
  EXPECT_THROW(tok.decode(std::vector<int32_t>{-1}), Error);
  EXPECT_THROW(tok.piece(n), Error);
  EXPECT_THROW(tok.kind(-5), Error);
  Tokenizer::StreamDecoder stream(tok);
  EXPECT_THROW(stream.push(n), Error);
  EXPECT_EQ(tok.find_piece("no such piece, surely"), -1);
}

INSTANTIATE_TEST_SUITE_P(SentencePiece, TokenizerVectors,
                         ::testing::Values("mistral-v1", "mistral-v3", "tok512"),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string name = p.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

TEST(Tokenizer, InstTextIsNotTheControlToken) {
  BRISE_REQUIRE_TESTDATA(data);
  const Tokenizer tok(read_sentencepiece_model(data / "tokenizers/mistral-v3/tokenizer.model"));
  EXPECT_EQ(tok.find_piece("[INST]"), 3);
  EXPECT_EQ(tok.find_piece("[/INST]"), 4);
  EXPECT_EQ(tok.kind(3), TokenKind::Control);
  const auto ids = tok.encode("[INST]");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 3), 0);
  EXPECT_GT(ids.size(), 1u);
  EXPECT_EQ(tok.decode(ids), "[INST]");
  // A control id in a sequence decodes to nothing.
  EXPECT_EQ(tok.decode(std::vector<int32_t>{3}), "");
}

TEST(Tokenizer, CopiesAreIndependentOfTheOriginal) {
  BRISE_REQUIRE_TESTDATA(data);
  std::vector<int32_t> expected;
  std::optional<Tokenizer> copy;
  {
    const Tokenizer original(read_sentencepiece_model(data / "tokenizers/tok512/tokenizer.model"));
    expected = original.encode("Once upon a time");
    copy.emplace(original);
  }
  EXPECT_EQ(copy->encode("Once upon a time"), expected);
}

TEST(Tokenizer, CorpusFileMatchesItsVector) {
  BRISE_REQUIRE_TESTDATA(data);
  // The benchmark's corpus is the news_fr_full case: read from disk, it must encode the same.
  const auto v =
      test::parse_json(test::read_file_text(data / "tokenizers" / "vectors" / "mistral-v1.json"));
  const Tokenizer tok(read_sentencepiece_model(data / "tokenizers/mistral-v1/tokenizer.model"));
  const std::string corpus = test::read_file_text(data / "corpus" / "mistral-news-fr.txt");
  bool found = false;
  for (const auto& c : v["cases"]) {
    if (c["text"].get<std::string>() != corpus) continue;
    found = true;
    EXPECT_EQ(tok.encode(corpus), c["ids"].get<std::vector<int32_t>>());
  }
  EXPECT_TRUE(found) << "the vectors should contain the whole news article";
}

// --- GGUF ---

std::vector<std::byte> gguf_image(const gguf::Writer& writer) {
  auto bytes = writer.header_bytes();
  EXPECT_EQ(bytes.size(), writer.file_size());  // no tensors: the header is the whole file
  return bytes;
}

TEST(TokenizerGguf, VocabularyRoundTrips) {
  BRISE_REQUIRE_TESTDATA(data);
  for (const char* name : {"mistral-v1", "mistral-v3", "tok512"}) {
    Vocabulary original = read_sentencepiece_model(data / "tokenizers" / name / "tokenizer.model");
    original.add_eos = true;  // non-default values must survive too
    original.pad_id = 2;
    gguf::Writer writer;
    write_vocabulary(writer, original);
    const auto image = gguf_image(writer);
    const auto file = gguf::File::parse(image, name);
    const Vocabulary back = read_vocabulary(*file);
    test::expect_same_vocabulary(back, original);
    EXPECT_EQ(file->get("tokenizer.ggml.model").as_string("model"), "llama");
    EXPECT_EQ(file->get("tokenizer.ggml.padding_token_id").type(), gguf::ValueType::U32);
    EXPECT_EQ(file->get("tokenizer.ggml.token_type").as_array("types").elem_type,
              gguf::ValueType::I32);
    const Tokenizer a(original), b(back);
    const std::string text = "Round trip: caf\xC3\xA9 \xF0\x9F\x98\x80  end";
    EXPECT_EQ(a.encode(text), b.encode(text)) << name;
  }
}

TEST(TokenizerGguf, AbsentPadAndBosAreOmittedAndReadBack) {
  BRISE_REQUIRE_TESTDATA(data);
  Vocabulary v = read_sentencepiece_model(data / "tokenizers/tok512/tokenizer.model");
  v.bos_id = -1;
  gguf::Writer writer;
  write_vocabulary(writer, v);
  const auto image = gguf_image(writer);
  const auto file = gguf::File::parse(image, "nobos.gguf");
  EXPECT_EQ(file->find("tokenizer.ggml.padding_token_id"), nullptr);
  EXPECT_EQ(file->find("tokenizer.ggml.bos_token_id"), nullptr);
  const Vocabulary back = read_vocabulary(*file);
  EXPECT_EQ(back.bos_id, -1);
  EXPECT_EQ(back.pad_id, -1);
}

// What llama.cpp writes for a SentencePiece model: the arrays and ids, none of brise's keys.
gguf::Writer llama_cpp_style(const Vocabulary& v, bool with_ids) {
  gguf::Writer w;
  w.set("general.architecture", "llama");
  w.set("tokenizer.ggml.model", "llama");
  w.set("tokenizer.ggml.tokens", gguf::make_array(v.pieces));
  w.set("tokenizer.ggml.scores", gguf::make_array(v.scores));
  std::vector<int32_t> types;
  for (const TokenKind k : v.kinds) types.push_back(static_cast<int32_t>(k));
  w.set("tokenizer.ggml.token_type", gguf::make_array(types));
  if (with_ids) {
    w.set("tokenizer.ggml.bos_token_id", uint32_t{1});
    w.set("tokenizer.ggml.eos_token_id", uint32_t{2});
    w.set("tokenizer.ggml.unknown_token_id", uint32_t{0});
  }
  return w;
}

TEST(TokenizerGguf, LlamaCppFilesTakeSentencePieceDefaults) {
  BRISE_REQUIRE_TESTDATA(data);
  const Vocabulary v = read_sentencepiece_model(data / "tokenizers/mistral-v1/tokenizer.model");
  for (const bool with_ids : {false, true}) {
    const auto image = gguf_image(llama_cpp_style(v, with_ids));
    const Vocabulary r = read_vocabulary(*gguf::File::parse(image, "llama.gguf"));
    EXPECT_EQ(r.bos_id, 1);
    EXPECT_EQ(r.eos_id, 2);
    EXPECT_EQ(r.unk_id, 0);
    EXPECT_EQ(r.pad_id, -1);
    EXPECT_TRUE(r.add_bos);
    EXPECT_FALSE(r.add_eos);
    EXPECT_TRUE(r.add_dummy_prefix);
    EXPECT_FALSE(r.remove_extra_whitespaces);
    EXPECT_TRUE(r.byte_fallback);  // the <0x00>..<0xFF> pieces are there
    const auto ids = Tokenizer(r).encode("Hello world");
    EXPECT_EQ(ids, (std::vector<int32_t>{22557, 1526}));
  }
  // Without byte pieces, byte_fallback defaults to false.
  Vocabulary no_bytes = v;
  for (auto& k : no_bytes.kinds)
    if (k == TokenKind::Byte) k = TokenKind::Unused;
  const auto image = gguf_image(llama_cpp_style(no_bytes, true));
  EXPECT_FALSE(read_vocabulary(*gguf::File::parse(image, "llama.gguf")).byte_fallback);
}

std::string read_error(gguf::Writer& w) {
  const auto image = gguf_image(w);
  try {
    read_vocabulary(*gguf::File::parse(image, "bad.gguf"));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TokenizerGguf, BadMetadataIsAClearError) {
  BRISE_REQUIRE_TESTDATA(data);
  const Vocabulary v = read_sentencepiece_model(data / "tokenizers/tok512/tokenizer.model");
  auto expect_error = [&](const std::function<void(gguf::Writer&)>& change, const char* needle) {
    gguf::Writer w = llama_cpp_style(v, true);
    change(w);
    const std::string message = read_error(w);
    EXPECT_NE(message.find(needle), std::string::npos)
        << "'" << message << "' lacks '" << needle << "'";
  };
  expect_error([](gguf::Writer& w) { w.set("tokenizer.ggml.model", "gpt2"); },
               "tokenizer model 'gpt2' is not supported");
  expect_error([](gguf::Writer& w) { w.set("tokenizer.ggml.model", uint32_t{1}); },
               "tokenizer.ggml.model");
  expect_error([](gguf::Writer& w) { w.set("tokenizer.ggml.tokens", "not an array"); },
               "tokenizer.ggml.tokens");
  expect_error(
      [](gguf::Writer& w) {
        w.set("tokenizer.ggml.scores", gguf::make_array(std::vector<float>{1.0f}));
      },
      "1 scores for 512 tokens");
  expect_error(
      [&](gguf::Writer& w) { w.set("tokenizer.ggml.token_type", gguf::make_array(v.pieces)); },
      "expected an array of i32, got an array of string");
  expect_error(
      [&](gguf::Writer& w) {
        std::vector<int32_t> types(v.size(), 1);
        types[7] = 42;
        w.set("tokenizer.ggml.token_type", gguf::make_array(types));
      },
      "token 7 has unknown type 42");
  expect_error([](gguf::Writer& w) { w.set("tokenizer.ggml.bos_token_id", uint32_t{512}); },
               "token id 512 is out of range");
  expect_error([](gguf::Writer& w) { w.set("tokenizer.ggml.add_bos_token", uint32_t{1}); },
               "tokenizer.ggml.add_bos_token");
  expect_error([](gguf::Writer& w) { w.set("brise.tokenizer.byte_fallback", "yes"); },
               "brise.tokenizer.byte_fallback");
  gguf::Writer missing;
  missing.set("tokenizer.ggml.model", "llama");
  EXPECT_NE(read_error(missing).find("tokenizer.ggml.tokens"), std::string::npos);
}

TEST(TokenizerGguf, LoadVocabularyRecognisesBothFormats) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto model_path = data / "tokenizers/mistral-v3/tokenizer.model";
  const Vocabulary from_model = load_vocabulary(model_path);
  test::expect_same_vocabulary(from_model, read_sentencepiece_model(model_path));
  gguf::Writer writer;
  write_vocabulary(writer, from_model);
  const auto image = gguf_image(writer);
  const auto path = test::scratch_dir("TokenizerGguf_Load") / "vocab.gguf";
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(image.data()),
             static_cast<std::streamsize>(image.size()));
  test::expect_same_vocabulary(load_vocabulary(path), from_model);
  EXPECT_THROW(load_vocabulary(path.parent_path() / "missing.gguf"), Error);
}

}  // namespace
}  // namespace brise
