// Differential test against libsentencepiece (Debian's 0.1.97): thousands of generated texts
// (many Unicode blocks, whitespace runs, emoji sequences, vocabulary soup) must encode to the same
// ids, and those ids (and random id sequences) must decode to the same text. Besides the three
// real tokenizer.model files, variants built from tok512 cover user-defined and unused pieces,
// no byte fallback and other normalizer flags.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "brise/tokenizer.hpp"
#include "support/testdata.hpp"
#include "tokenizer_test_models.hpp"

#if BRISE_HAVE_SENTENCEPIECE
#include <sentencepiece_processor.h>
#endif

namespace brise {
namespace {

#if BRISE_HAVE_SENTENCEPIECE

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Random texts built from segments of many kinds, with a fixed seed.
class TextGenerator {
 public:
  TextGenerator(uint32_t seed, const Vocabulary& vocab) : rng_(seed), vocab_(vocab) {}

  std::string next() {
    std::string s;
    const int segments = uniform(1, 12);
    for (int i = 0; i < segments; ++i) segment(s);
    return s;
  }

 private:
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  uint32_t in(uint32_t lo, uint32_t hi) {
    return std::uniform_int_distribution<uint32_t>(lo, hi)(rng_);
  }
  void run(std::string& s, uint32_t lo, uint32_t hi, int max_len) {
    for (int n = uniform(1, max_len); n > 0; --n) append_utf8(s, in(lo, hi));
  }

  void segment(std::string& s) {
    switch (uniform(0, 17)) {
      case 0:
        run(s, 'a', 'z', 12);
        break;
      case 1:
        run(s, 'A', 'Z', 4);
        break;
      case 2:
        run(s, '0', '9', 8);
        break;
      case 3:  // ASCII punctuation and symbols
        run(s, 0x21, 0x7E, 6);
        break;
      case 4:  // Latin-1, Latin Extended (NBSP incl.)
        run(s, 0xA0, 0x24F, 6);
        break;
      case 5:  // CJK
        run(s, 0x4E00, 0x9FFF, 6);
        break;
      case 6:  // Hiragana, Katakana
        run(s, 0x3040, 0x30FF, 6);
        break;
      case 7:  // Hebrew, Arabic (RTL)
        run(s, 0x0590, 0x06FF, 8);
        break;
      case 8:  // letters with combining marks
        for (int n = uniform(1, 5); n > 0; --n) {
          append_utf8(s, in('a', 'z'));
          run(s, 0x300, 0x36F, 2);
        }
        break;
      case 9:
        emoji(s);
        break;
      case 10: {  // rare planes: historic scripts, CJK ext. B, tags, private use
        const uint32_t starts[] = {0x10000, 0x10330, 0x1D400, 0x20000, 0xE0020, 0xF0000, 0x10FF00};
        const uint32_t start = starts[uniform(0, 6)];
        run(s, start, start + 0xFF, 4);
        break;
      }
      case 11: {  // whitespace runs
        const uint32_t spaces[] = {' ', ' ', ' ', '\t', '\n', '\r', 0xA0, 0x3000, 0x2009, 0x2581};
        for (int n = uniform(1, 6); n > 0; --n) append_utf8(s, spaces[uniform(0, 9)]);
        break;
      }
      case 12:  // control characters, NUL included
        run(s, 0x00, 0x1F, 2);
        break;
      case 13: {  // any code point at all
        uint32_t cp = in(1, 0x10FFFF);
        if (cp >= 0xD800 && cp < 0xE000) cp -= 0x800;
        append_utf8(s, cp);
        break;
      }
      default: {  // vocabulary soup: real pieces make BPE do real merging
        for (int n = uniform(1, 8); n > 0; --n) {
          const auto id = static_cast<size_t>(in(0, static_cast<uint32_t>(vocab_.size() - 1)));
          if (vocab_.kinds[id] != TokenKind::Normal && vocab_.kinds[id] != TokenKind::UserDefined)
            continue;
          // The piece's text as it would appear in input: "▁" stands for a space.
          std::string_view piece = vocab_.pieces[id];
          for (size_t p; (p = piece.find("\xE2\x96\x81")) != std::string_view::npos;) {
            s.append(piece.substr(0, p));
            s += ' ';
            piece.remove_prefix(p + 3);
          }
          s.append(piece);
        }
      }
    }
  }

  void emoji(std::string& s) {
    switch (uniform(0, 3)) {
      case 0:
        run(s, 0x1F300, 0x1FAFF, 3);
        break;
      case 1:  // ZWJ family sequence
        for (int n = uniform(2, 4); n > 0; --n) {
          append_utf8(s, in(0x1F466, 0x1F469));
          if (n > 1) append_utf8(s, 0x200D);
        }
        break;
      case 2:  // flag: two regional indicators
        append_utf8(s, in(0x1F1E6, 0x1F1FF));
        append_utf8(s, in(0x1F1E6, 0x1F1FF));
        break;
      default:  // skin tone and variation selector
        append_utf8(s, in(0x1F44A, 0x1F450));
        append_utf8(s, in(0x1F3FB, 0x1F3FF));
        append_utf8(s, 0xFE0F);
    }
  }

  std::mt19937 rng_;
  const Vocabulary& vocab_;
};

void compare(const std::string& model_bytes, const std::string& label, int texts, uint32_t seed) {
  sentencepiece::SentencePieceProcessor sp;
  const auto status = sp.LoadFromSerializedProto(model_bytes);
  ASSERT_TRUE(status.ok()) << label << ": sentencepiece cannot load it: " << status.ToString();
  const Tokenizer tok(parse_sentencepiece_model(test::as_bytes(model_bytes), label));
  ASSERT_EQ(static_cast<size_t>(sp.GetPieceSize()), tok.vocab_size());

  TextGenerator gen(seed, tok.vocabulary());
  int failures = 0;
  for (int i = 0; i < texts && failures < 5; ++i) {
    const std::string text = gen.next();
    std::vector<int> expected;
    ASSERT_TRUE(sp.Encode(text, &expected).ok());
    const auto ids = tok.encode(text);
    if (std::vector<int>(ids.begin(), ids.end()) != expected) {
      ADD_FAILURE() << label << " text #" << i << " encodes differently: '" << text << "'";
      ++failures;
      continue;
    }
    std::string decoded;
    ASSERT_TRUE(sp.Decode(expected, &decoded).ok());
    if (tok.decode(ids) != decoded) {
      ADD_FAILURE() << label << " text #" << i << " decodes differently: '" << text << "'";
      ++failures;
    }
  }

  // Random id sequences: byte pieces in odd orders, control and unknown ids anywhere.
  std::mt19937 rng(seed + 1);
  const auto n = static_cast<int>(tok.vocab_size());
  for (int i = 0; i < texts / 2 && failures < 5; ++i) {
    std::vector<int> ids(std::uniform_int_distribution<int>(0, 12)(rng));
    for (int& id : ids) {
      // Half the time pick from the low ids (special and byte pieces in these models).
      id = std::uniform_int_distribution<int>(0, (rng() & 1) ? std::min(n - 1, 300) : n - 1)(rng);
    }
    std::string expected;
    ASSERT_TRUE(sp.Decode(ids, &expected).ok());
    const std::vector<int32_t> ours(ids.begin(), ids.end());
    if (tok.decode(ours) != expected) {
      ADD_FAILURE() << label << " random ids #" << i << " decode differently";
      ++failures;
    }
    Tokenizer::StreamDecoder stream(tok, true);
    std::string streamed;
    for (const int32_t id : ours) streamed += stream.push(id);
    streamed += stream.flush();
    EXPECT_EQ(streamed, expected) << label << " random ids #" << i << " (streamed)";
  }
}

std::string model_file(const std::filesystem::path& data, const char* name) {
  return test::read_file_text(data / "tokenizers" / name / "tokenizer.model");
}

TEST(TokenizerOracle, MistralV1) {
  BRISE_REQUIRE_TESTDATA(data);
  compare(model_file(data, "mistral-v1"), "mistral-v1", 3000, 11);
}

TEST(TokenizerOracle, MistralV3) {
  BRISE_REQUIRE_TESTDATA(data);
  compare(model_file(data, "mistral-v3"), "mistral-v3", 3000, 23);
}

TEST(TokenizerOracle, Tok512) {
  BRISE_REQUIRE_TESTDATA(data);
  compare(model_file(data, "tok512"), "tok512", 3000, 37);
}

test::ModelSpec tok512_spec(const std::filesystem::path& data) {
  const std::string bytes = model_file(data, "tok512");
  test::ModelSpec spec;
  spec.vocab = parse_sentencepiece_model(test::as_bytes(bytes), "tok512");
  spec.write_unk_surface = true;
  return spec;
}

TEST(TokenizerOracle, NormalizerFlagVariants) {
  BRISE_REQUIRE_TESTDATA(data);
  for (const bool dummy : {false, true}) {
    for (const bool remove : {false, true}) {
      test::ModelSpec spec = tok512_spec(data);
      spec.vocab.add_dummy_prefix = dummy;
      spec.vocab.remove_extra_whitespaces = remove;
      compare(test::write_model(spec),
              "tok512 dummy=" + std::to_string(dummy) + " remove=" + std::to_string(remove), 800,
              41);
    }
  }
}

TEST(TokenizerOracle, WithoutByteFallbackUnknownRunsMerge) {
  BRISE_REQUIRE_TESTDATA(data);
  test::ModelSpec spec = tok512_spec(data);
  spec.vocab.byte_fallback = false;
  for (auto& kind : spec.vocab.kinds)
    if (kind == TokenKind::Byte) kind = TokenKind::Unused;
  compare(test::write_model(spec), "tok512 without byte fallback", 1000, 43);
}

TEST(TokenizerOracle, UserDefinedAndUnusedPieces) {
  BRISE_REQUIRE_TESTDATA(data);
  test::ModelSpec spec = tok512_spec(data);
  Vocabulary& v = spec.vocab;
  // Every 5th multi-character normal piece becomes unused: BPE may pass through it but must
  // split it again. Every 11th becomes user-defined.
  int seen = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v.kinds[i] != TokenKind::Normal || v.pieces[i].size() < 2) continue;
    ++seen;
    if (seen % 5 == 0)
      v.kinds[i] = TokenKind::Unused;
    else if (seen % 11 == 0)
      v.kinds[i] = TokenKind::UserDefined;
  }
  for (const char* extra :
       {"<mask>", "a b", "\xE2\x96\x81\xE2\x96\x81", "\xF0\x9F\x98\x80", "ab", "abc", " x", "y "}) {
    if (std::find(v.pieces.begin(), v.pieces.end(), extra) != v.pieces.end()) continue;
    v.pieces.emplace_back(extra);
    v.scores.push_back(0.0f);
    v.kinds.push_back(TokenKind::UserDefined);
  }
  compare(test::write_model(spec), "tok512 user-defined+unused", 1500, 47);
  spec.vocab.remove_extra_whitespaces = false;
  compare(test::write_model(spec), "tok512 user-defined+unused, spaces kept", 1500, 53);
}

TEST(TokenizerOracle, UnkSurfaceIsTheModels) {
  BRISE_REQUIRE_TESTDATA(data);
  test::ModelSpec spec = tok512_spec(data);
  spec.vocab.unk_surface = "<?>";
  compare(test::write_model(spec), "tok512 unk_surface", 200, 59);
}

#else

TEST(TokenizerOracle, SkippedWithoutSentencePiece) {
  GTEST_SKIP() << "libsentencepiece was not found at configure time: differential test skipped";
}

#endif

}  // namespace
}  // namespace brise
