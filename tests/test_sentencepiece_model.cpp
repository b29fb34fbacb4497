// parse_sentencepiece_model: the real models, models written by an independent protobuf writer,
// unknown fields of every wire type, and malformed input (truncations, bad varints, huge lengths,
// wrong wire types, bad values), which must only ever raise brise::Error.
#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <string>

#include "brise/error.hpp"
#include "brise/tokenizer.hpp"
#include "support/same_vocabulary.hpp"
#include "support/testdata.hpp"
#include "tokenizer_test_models.hpp"

namespace brise {
namespace {

using test::as_bytes;
using test::ModelSpec;
using test::ProtoWriter;
using test::write_model;

// A small valid BPE model without byte fallback.
ModelSpec small_spec() {
  ModelSpec spec;
  Vocabulary& v = spec.vocab;
  const std::pair<const char*, TokenKind> pieces[] = {{"<unk>", TokenKind::Unknown},
                                                      {"<s>", TokenKind::Control},
                                                      {"</s>", TokenKind::Control},
                                                      {"\xE2\x96\x81", TokenKind::Normal},
                                                      {"a", TokenKind::Normal},
                                                      {"b", TokenKind::Normal},
                                                      {"ab", TokenKind::Normal},
                                                      {"\xE2\x96\x81"
                                                       "ab",
                                                       TokenKind::Normal},
                                                      {"<sep>", TokenKind::UserDefined},
                                                      {"zz", TokenKind::Unused}};
  float score = 0.0f;
  for (const auto& [text, kind] : pieces) {
    v.pieces.emplace_back(text);
    v.scores.push_back(score -= 0.5f);
    v.kinds.push_back(kind);
  }
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.pad_id = -1;
  v.byte_fallback = false;
  v.add_dummy_prefix = true;
  v.remove_extra_whitespaces = false;
  return spec;
}

Vocabulary parse(const std::string& bytes, const std::string& name = "test.model") {
  return parse_sentencepiece_model(as_bytes(bytes), name);
}

// Parses and returns the error message ("" when it parsed). Any other exception fails the test.
std::string error_of(const std::string& bytes) {
  try {
    parse(bytes);
    return "";
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-brise exception: " << e.what();
    return "non-brise exception";
  }
}

TEST(SentencePieceModel, RealModels) {
  BRISE_REQUIRE_TESTDATA(data);
  const Vocabulary v1 = read_sentencepiece_model(data / "tokenizers/mistral-v1/tokenizer.model");
  EXPECT_EQ(v1.size(), 32000u);
  EXPECT_EQ(v1.pieces[1], "<s>");
  EXPECT_EQ(v1.pieces[3], "<0x00>");
  EXPECT_EQ(v1.kinds[3], TokenKind::Byte);
  EXPECT_EQ(v1.unk_surface, " \xE2\x81\x87 ");
  const Vocabulary t = read_sentencepiece_model(data / "tokenizers/tok512/tokenizer.model");
  EXPECT_EQ(t.size(), 512u);
  EXPECT_TRUE(t.remove_extra_whitespaces);
  // llama2.c trained tok512 with unk_surface given as the escaped text \342\201\207; the
  // vectors' decode of <unk> shows SentencePiece uses it literally.
  EXPECT_EQ(t.unk_surface, " \\342\\201\\207 ");
}

TEST(SentencePieceModel, RoundTripsThroughAnIndependentWriter) {
  BRISE_REQUIRE_TESTDATA(data);
  for (const char* name : {"mistral-v1", "mistral-v3", "tok512"}) {
    ModelSpec spec;
    spec.vocab = read_sentencepiece_model(data / "tokenizers" / name / "tokenizer.model");
    spec.write_unk_surface = true;
    test::expect_same_vocabulary(parse(write_model(spec)), spec.vocab);
    spec.unknown_fields = true;
    test::expect_same_vocabulary(parse(write_model(spec)), spec.vocab);
  }
}

TEST(SentencePieceModel, SmallModelParsesWithDefaults) {
  ModelSpec spec = small_spec();
  spec.unknown_fields = true;
  const Vocabulary v = parse(write_model(spec));
  test::expect_same_vocabulary(v, spec.vocab);
  EXPECT_TRUE(v.add_bos);
  EXPECT_FALSE(v.add_eos);
  EXPECT_EQ(v.unk_surface, " \xE2\x81\x87 ");  // the proto default when unk_surface is absent

  // A model whose normalizer_spec is absent takes the proto defaults (remove_extra_whitespaces
  // is true there) and a trainer_spec without ids takes unk 0, bos 1, eos 2, pad -1.
  ProtoWriter w;
  const std::pair<const char*, int> minimal[] = {{"<unk>", 2}, {"<s>", 3}, {"</s>", 3}, {"a", 0}};
  for (const auto& [text, type] : minimal) {
    ProtoWriter piece;
    piece.bytes_field(1, text);
    if (type != 0) piece.int32_field(3, type);
    w.bytes_field(1, piece.str());
  }
  ProtoWriter trainer;
  trainer.int32_field(3, 2);
  w.bytes_field(2, trainer.str());
  const Vocabulary d = parse(w.str());
  EXPECT_EQ(d.unk_id, 0);
  EXPECT_EQ(d.bos_id, 1);
  EXPECT_EQ(d.eos_id, 2);
  EXPECT_EQ(d.pad_id, -1);
  EXPECT_TRUE(d.add_dummy_prefix);
  EXPECT_TRUE(d.remove_extra_whitespaces);
  EXPECT_FALSE(d.byte_fallback);
  EXPECT_EQ(d.scores[3], 0.0f);
  EXPECT_EQ(d.kinds[3], TokenKind::Normal);
}

TEST(SentencePieceModel, EveryTruncationIsAnErrorOrAValidPrefix) {
  ModelSpec spec = small_spec();
  spec.unknown_fields = true;
  const std::string bytes = write_model(spec);
  int errors = 0;
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::string message = error_of(bytes.substr(0, n));
    if (message.empty()) continue;  // cut at a field boundary after the trainer_spec
    ++errors;
    EXPECT_EQ(message.rfind("test.model: ", 0), 0u)
        << "message does not name the file: " << message;
  }
  EXPECT_GT(errors, static_cast<int>(bytes.size()) * 9 / 10);
}

TEST(SentencePieceModel, ByteCorruptionOnlyRaisesBriseErrors) {
  const std::string bytes = write_model(small_spec());
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (const char value : {'\x00', '\x7F', '\x80', '\xFF'}) {
      std::string corrupt = bytes;
      corrupt[i] = value;
      (void)error_of(corrupt);
    }
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string junk(std::uniform_int_distribution<int>(0, 64)(rng), '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    (void)error_of(junk);
  }
}

TEST(SentencePieceModel, BadVarints) {
  // A tag that never ends, an 11-byte varint, and a 10th byte that overflows 64 bits.
  EXPECT_NE(error_of("\x80\x80\x80"), "");
  EXPECT_NE(error_of(std::string(11, '\x80') + "\x01").find("varint"), std::string::npos);
  const std::string overflow = "\x08" + std::string(9, '\xFF') + "\x02";
  EXPECT_NE(error_of(overflow).find("overflows"), std::string::npos);
  // A varint value cut by the end of its message.
  ProtoWriter w;
  w.bytes_field(2, "\x18\x80");  // trainer_spec { model_type: <truncated> }
  EXPECT_NE(error_of(w.str()).find("trainer_spec"), std::string::npos);
}

TEST(SentencePieceModel, LengthsPastTheEnd) {
  ProtoWriter huge;
  huge.tag(1, 2);
  huge.varint(uint64_t{1} << 62);
  huge.varint(0);
  EXPECT_NE(error_of(huge.str()).find("remain"), std::string::npos);
  ProtoWriter by_one;
  by_one.tag(1, 2);
  by_one.varint(3);
  by_one.varint(0);
  by_one.varint(0);
  EXPECT_NE(error_of(by_one.str()).find("claims 3 bytes"), std::string::npos);
  // Inside a piece: the string's length runs past the piece's own end.
  ProtoWriter piece;
  piece.tag(1, 2);
  piece.varint(50);
  piece.bytes_field(2, "abc");
  ProtoWriter model;
  model.bytes_field(1, piece.str());
  EXPECT_NE(error_of(model.str()).find("pieces[0]"), std::string::npos);
}

TEST(SentencePieceModel, WrongWireTypesNameTheField) {
  ProtoWriter pieces_as_varint;
  pieces_as_varint.int32_field(1, 5);
  EXPECT_NE(error_of(pieces_as_varint.str()).find("ModelProto.pieces[0]"), std::string::npos);

  ProtoWriter score_as_varint, m1;
  score_as_varint.bytes_field(1, "a");
  score_as_varint.int32_field(2, 1);
  m1.bytes_field(1, score_as_varint.str());
  const std::string e1 = error_of(m1.str());
  EXPECT_NE(e1.find("pieces[0].score"), std::string::npos) << e1;
  EXPECT_NE(e1.find("expected wire type fixed32"), std::string::npos) << e1;

  ProtoWriter trainer, m2;
  trainer.bytes_field(35, "yes");
  m2.bytes_field(2, trainer.str());
  EXPECT_NE(error_of(m2.str()).find("trainer_spec.byte_fallback"), std::string::npos);

  ProtoWriter normalizer, m3;
  normalizer.int32_field(1, 3);
  m3.bytes_field(3, normalizer.str());
  EXPECT_NE(error_of(m3.str()).find("normalizer_spec.name"), std::string::npos);

  ProtoWriter trainer_as_fixed;
  trainer_as_fixed.float_field(2, 1.0f);
  EXPECT_NE(error_of(trainer_as_fixed.str()).find("trainer_spec"), std::string::npos);
}

TEST(SentencePieceModel, InvalidTagsAndGroups) {
  EXPECT_NE(error_of("\x0E").find("invalid wire type 6"), std::string::npos);
  EXPECT_NE(error_of("\x0F").find("invalid wire type 7"), std::string::npos);
  EXPECT_NE(error_of(std::string(1, '\0')).find("invalid field number 0"), std::string::npos);
  EXPECT_NE(error_of("\x0C").find("end-group"), std::string::npos);  // stray end group
  EXPECT_NE(error_of("\xA3\x06\x08\x01").find("unterminated"), std::string::npos);  // group 100
  EXPECT_NE(error_of("\xA3\x06\xAC\x06").find("does not match"), std::string::npos);
  // Groups nested beyond any sensible depth.
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "\xA3\x06";
  EXPECT_NE(error_of(deep).find("nested"), std::string::npos);
  // A well-formed unknown group is skipped.
  ModelSpec spec = small_spec();
  std::string with_group = write_model(spec) + "\xA3\x06\x08\x01\xA4\x06";
  EXPECT_EQ(error_of(with_group), "");
}

TEST(SentencePieceModel, UnsupportedModelsAreClearErrors) {
  const std::string unsupported = "only BPE with an identity normalizer is supported";
  ModelSpec unigram = small_spec();
  unigram.model_type = 1;
  EXPECT_NE(error_of(write_model(unigram)).find(unsupported + " (model_type is UNIGRAM)"),
            std::string::npos);
  ModelSpec nfkc = small_spec();
  nfkc.normalizer_name = "nmt_nfkc";
  nfkc.precompiled_charsmap = std::string("\x04\x00\x00\x00\x01\x02\x03\x04zz", 10);
  EXPECT_NE(error_of(write_model(nfkc)).find(unsupported), std::string::npos);
  EXPECT_NE(error_of(write_model(nfkc)).find("nmt_nfkc"), std::string::npos);
  ModelSpec suffix = small_spec();
  suffix.treat_whitespace_as_suffix = true;
  EXPECT_NE(error_of(write_model(suffix)).find(unsupported), std::string::npos);
  ModelSpec unescaped = small_spec();
  unescaped.escape_whitespaces = false;
  EXPECT_NE(error_of(write_model(unescaped)).find(unsupported), std::string::npos);
}

TEST(SentencePieceModel, BadPiecesAndIds) {
  {
    ModelSpec s = small_spec();
    s.vocab.pieces[5] = "a";  // duplicates pieces[4]
    EXPECT_NE(error_of(write_model(s)).find("pieces[5].piece: 'a' duplicates pieces[4]"),
              std::string::npos);
  }
  {
    ModelSpec s = small_spec();
    s.vocab.pieces[4] = "";
    EXPECT_NE(error_of(write_model(s)).find("pieces[4].piece: piece must not be empty"),
              std::string::npos);
  }
  {
    ModelSpec s = small_spec();
    s.vocab.kinds[4] = static_cast<TokenKind>(9);
    EXPECT_NE(error_of(write_model(s)).find("unknown piece type 9"), std::string::npos);
  }
  {
    ModelSpec s = small_spec();
    s.vocab.bos_id = 10;  // 10 pieces
    EXPECT_NE(error_of(write_model(s)).find("trainer_spec.bos_id: 10 is out of range"),
              std::string::npos);
    s.vocab.bos_id = -2;
    EXPECT_NE(error_of(write_model(s)).find("trainer_spec.bos_id: -2 is out of range"),
              std::string::npos);
  }
  {
    ModelSpec s = small_spec();
    s.vocab.unk_id = 4;  // not the UNKNOWN piece
    EXPECT_NE(error_of(write_model(s)).find("trainer_spec.unk_id"), std::string::npos);
    s.vocab.kinds[0] = TokenKind::Normal;  // no UNKNOWN piece at all
    EXPECT_NE(error_of(write_model(s)).find("no piece has type UNKNOWN"), std::string::npos);
  }
  {
    ModelSpec s = small_spec();
    s.vocab.kinds[4] = TokenKind::Byte;  // "a" as a byte piece, without byte_fallback
    EXPECT_NE(error_of(write_model(s)).find("byte_fallback is false"), std::string::npos);
    s.vocab.byte_fallback = true;
    EXPECT_NE(error_of(write_model(s)).find("not of the form <0xNN>"), std::string::npos);
    s.vocab.pieces[4] = "<0x41>";
    EXPECT_NE(error_of(write_model(s)).find("only 1 of the 256 byte pieces"), std::string::npos);
  }
  {
    ModelSpec s = small_spec();
    s.vocab.scores[4] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_NE(error_of(write_model(s)).find("pieces[4].score: score is NaN"), std::string::npos);
  }
  EXPECT_NE(error_of("").find("no pieces"), std::string::npos);
}

TEST(SentencePieceModel, AbsurdPieceCountsAreBoundedByTheInput) {
  // Two megabytes of empty pieces: the parser must fail on the first one, not allocate for all.
  std::string many;
  for (int i = 0; i < (1 << 20); ++i) many += std::string("\x0A\x00", 2);
  EXPECT_NE(error_of(many).find("pieces[0].piece: piece must not be empty"), std::string::npos);
}

TEST(SentencePieceModel, MissingFileIsAnError) {
  EXPECT_THROW(read_sentencepiece_model("/nonexistent/tokenizer.model"), Error);
}

}  // namespace
}  // namespace brise
