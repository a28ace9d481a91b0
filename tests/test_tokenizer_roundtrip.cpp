// Properties of the GPT-NeoX tokenizer on text no reference file lists: decode(encode(s)) is
// NFC(s) (NFC from utf8proc directly) for random Unicode, emoji, CJK, combining marks, code
// and runs of white space; arbitrary bytes (invalid UTF-8) never crash and come back as the
// documented policy says. Also the building blocks: the NFC shortcut, the split, the UTF-8
// decoder, against utf8proc.
#include <gtest/gtest.h>
#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "mamba/tokenizer/byte_level.hpp"
#include "mamba/tokenizer/gpt2_split.hpp"
#include "mamba/tokenizer/tokenizer_json.hpp"
#include "mamba/tokenizer/unicode.hpp"

namespace {

const std::string kJson = std::string(MAMBA_DATA_DIR) + "/gpt-neox-20b/tokenizer.json";

std::string utf8proc_nfc(const std::string& s) {
  utf8proc_uint8_t* out = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                              static_cast<utf8proc_ssize_t>(s.size()), &out,
                              static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  EXPECT_GE(n, 0) << "utf8proc rejected a test string";
  std::string r =
      n >= 0 ? std::string(reinterpret_cast<char*>(out), static_cast<std::size_t>(n)) : s;
  std::free(out);
  return r;
}

bool representable(const mamba::Tokenizer& tok, char byte) {
  return tok.token_id(mamba::bytes_to_byte_level(std::string(1, byte))).has_value();
}

// What the documented policy says encode+decode_bytes gives for any bytes: each run that
// utf8proc accepts as UTF-8 in NFC, every other byte as it is when the vocabulary has a token
// for it (GPT-NeoX has none for the bytes that never occur in UTF-8: C0, C1, F5..FF).
std::string policy_expected(const mamba::Tokenizer& tok, const std::string& s) {
  std::string out, run;
  for (std::size_t i = 0; i < s.size();) {
    utf8proc_int32_t cp;
    const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data()) + i,
                                    static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n > 0) {
      run.append(s, i, static_cast<std::size_t>(n));
      i += static_cast<std::size_t>(n);
    } else {
      out += utf8proc_nfc(run);
      run.clear();
      if (representable(tok, s[i])) out += s[i];
      ++i;
    }
  }
  return out + utf8proc_nfc(run);
}

std::string utf8(char32_t cp) {
  std::string s;
  mamba::utf8_append(s, static_cast<std::uint32_t>(cp));
  return s;
}

// Random text drawn from many scripts and from the characters that stress the tokenizer.
std::string random_text(std::mt19937& rng, int length) {
  static const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {0x20, 0x7E},     {0x20, 0x7E},       {0x20, 0x7E},      {0xA0, 0x17F},      {0x300, 0x36F},
      {0x370, 0x3FF},   {0x400, 0x4FF},     {0x590, 0x6FF},    {0x900, 0x97F},     {0x1100, 0x11FF},
      {0xAC00, 0xD7A3}, {0x3040, 0x30FF},   {0x4E00, 0x9FFF},  {0x1F300, 0x1FAFF}, {0x2000, 0x206F},
      {0xFE00, 0xFE0F}, {0x1D400, 0x1D7FF}, {0x10000, 0x10FFF}};
  static const std::vector<std::string> specials = {
      " ",    "  ", "    ", "\t",     "\n",     "\r\n",   "\n\n\n",
      " \t ", "'s", "'ll",  "\u00a0", "\u3000", "\u200d", "<|endoftext|>"};
  std::string s;
  for (int k = 0; k < length; ++k) {
    if (rng() % 5 == 0) {
      s += specials[rng() % specials.size()];
      continue;
    }
    const auto& [lo, hi] = ranges[rng() % ranges.size()];
    char32_t cp = lo + static_cast<char32_t>(rng() % (hi - lo + 1));
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
    s += utf8(cp);
  }
  return s;
}

const mamba::Tokenizer* neox() {
  static const mamba::Tokenizer* tok = std::filesystem::exists(kJson)
                                           ? new mamba::Tokenizer(mamba::load_tokenizer_json(kJson))
                                           : nullptr;
  return tok;
}

}  // namespace

TEST(Unicode, NfcMatchesUtf8proc) {
  std::mt19937 rng(1);
  for (int k = 0; k < 2000; ++k) {
    const std::string s = random_text(rng, 1 + static_cast<int>(rng() % 40));
    ASSERT_EQ(mamba::nfc(s), utf8proc_nfc(s)) << s;
  }
  // A combining mark after an ASCII letter composes with it.
  EXPECT_EQ(mamba::nfc("e" + utf8(0x301)), utf8(0xE9));
}

TEST(Unicode, DecoderAgreesWithUtf8procOnRandomBytes) {
  std::mt19937 rng(2);
  for (int k = 0; k < 20000; ++k) {
    std::string s(1 + rng() % 6, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 3 == 0 ? 0x80 + rng() % 0x80 : rng() % 256);
    const mamba::Utf8Char c = mamba::utf8_next(s, 0);
    utf8proc_int32_t cp;
    const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                    static_cast<utf8proc_ssize_t>(s.size()), &cp);
    if (n > 0) {
      ASSERT_TRUE(c.valid());
      ASSERT_EQ(c.cp, cp);
      ASSERT_EQ(c.len, static_cast<std::uint32_t>(n));
    } else {
      ASSERT_FALSE(c.valid());
    }
  }
}

TEST(Unicode, SplitPiecesConcatenateToTheInput) {
  std::mt19937 rng(3);
  for (int k = 0; k < 2000; ++k) {
    std::string s = random_text(rng, static_cast<int>(rng() % 30));
    if (k % 2) s += static_cast<char>(0x80 + rng() % 0x80);  // and some invalid bytes
    std::string joined;
    int pieces = 0;
    mamba::gpt2_split(s, [&](std::string_view p) {
      ASSERT_FALSE(p.empty());
      joined += p;
      ++pieces;
    });
    ASSERT_EQ(joined, s);
  }
}

TEST(TokenizerRoundTrip, RandomUnicodeDecodesToNfc) {
  const mamba::Tokenizer* tok = neox();
  if (tok == nullptr) GTEST_SKIP() << "missing " << kJson;
  std::mt19937 rng(4);
  for (int k = 0; k < 3000; ++k) {
    const std::string s = random_text(rng, static_cast<int>(rng() % 60));
    const std::vector<int32_t> ids = tok->encode(s, /*parse_special=*/false);
    ASSERT_EQ(tok->decode(ids), utf8proc_nfc(s)) << s;
    for (const int32_t id : ids) ASSERT_LT(id, tok->vocab_size());
  }
}

// With special tokens parsed, the reference matches them in the raw text and normalizes the
// text between them on its own (so a combining mark after <|endoftext|> does not compose
// with its '>').
TEST(TokenizerRoundTrip, RandomUnicodeWithSpecialTokensDecodesToNfcBetweenThem) {
  const mamba::Tokenizer* tok = neox();
  if (tok == nullptr) GTEST_SKIP() << "missing " << kJson;
  const std::string eot = "<|endoftext|>";
  std::mt19937 rng(7);
  int specials_seen = 0;
  for (int k = 0; k < 3000; ++k) {
    const std::string s = random_text(rng, static_cast<int>(rng() % 60));
    std::string expected;
    std::size_t pos = 0;
    for (std::size_t hit; (hit = s.find(eot, pos)) != std::string::npos; pos = hit + eot.size()) {
      expected += utf8proc_nfc(s.substr(pos, hit - pos)) + eot;
    }
    expected += utf8proc_nfc(s.substr(pos));
    const std::vector<int32_t> ids = tok->encode(s, /*parse_special=*/true);
    specials_seen += static_cast<int>(std::count(ids.begin(), ids.end(), tok->eos_id()));
    ASSERT_EQ(tok->decode(ids), expected) << s;
  }
  EXPECT_GT(specials_seen, 0);
}

TEST(TokenizerRoundTrip, EmojiCjkCombiningCodeAndWhitespace) {
  const mamba::Tokenizer* tok = neox();
  if (tok == nullptr) GTEST_SKIP() << "missing " << kJson;
  const std::vector<std::string> texts = {
      "\U0001F468\u200D\U0001F469\u200D\U0001F467 family, \U0001F1EB\U0001F1F7 flag, \u2764\uFE0F",
      "\u6211\u60F3\u5728apple\u5DE5\u4F5C1314151\u5929\uFF5E \u3053\u3093\u306B\u3061\u306F",
      "e\u0301 a\u0308 o\u0302\u0323 \u1100\u1161\u11A8 A\u030A\u212B",
      "int main(int argc, char** argv) {\n\treturn argv[0][0] == '#' ? 1 : 0;\n}\n",
      "def f(x):\n    if x:\n        return  x**2  # squared\n\n\n",
      std::string(100, ' ') + "x" + std::string(49, ' ') + "\t\t\t\n\n \n",
      "                        ",
      "\r\n\r\n\v\f \u0085\u2028\u2029",
      "I'm you'll we've they're it's I'd 'S 'LL",
      ""};
  for (const std::string& s : texts) {
    EXPECT_EQ(tok->decode(tok->encode(s)), utf8proc_nfc(s)) << s;
  }
}

TEST(TokenizerRoundTrip, ArbitraryBytesFollowTheInvalidUtf8Policy) {
  const mamba::Tokenizer* tok = neox();
  if (tok == nullptr) GTEST_SKIP() << "missing " << kJson;
  std::mt19937 rng(5);
  for (int k = 0; k < 3000; ++k) {
    std::string s(rng() % 50, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    if (k % 3 == 0) s += random_text(rng, 5);
    const std::vector<int32_t> ids = tok->encode(s, true);
    ASSERT_EQ(tok->decode_bytes(ids), policy_expected(*tok, s));
    const std::string text = tok->decode(ids);  // always valid UTF-8
    ASSERT_TRUE(mamba::utf8_is_valid(text));
  }
  // Every byte the vocabulary has a token for comes back exactly, alone and all together.
  std::string all;
  int representable_bytes = 0;
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    if (!representable(*tok, one[0])) continue;
    ++representable_bytes;
    all += one;
    EXPECT_EQ(tok->decode_bytes(tok->encode(one)), one) << b;
  }
  EXPECT_EQ(tok->decode_bytes(tok->encode(all)), all);
  EXPECT_GE(representable_bytes, 243);  // all but C0, C1, F5..FF in GPT-NeoX
}

TEST(TokenizerRoundTrip, EncodeIsDeterministicAcrossCacheStates) {
  const mamba::Tokenizer* tok = neox();
  if (tok == nullptr) GTEST_SKIP() << "missing " << kJson;
  std::mt19937 rng(6);
  const std::string s = random_text(rng, 500);
  tok->clear_cache();
  const std::vector<int32_t> cold = tok->encode(s);
  const std::vector<int32_t> warm = tok->encode(s);
  EXPECT_EQ(cold, warm);
}

TEST(TokenizerRoundTrip, IdsOutsideTheVocabularyAreAnError) {
  const mamba::Tokenizer* tok = neox();
  if (tok == nullptr) GTEST_SKIP() << "missing " << kJson;
  const std::vector<int32_t> bad = {tok->vocab_size()};
  EXPECT_THROW(tok->decode(bad), mamba::ArgumentError);
  const std::vector<int32_t> negative = {-1};
  EXPECT_THROW(tok->decode(negative), mamba::ArgumentError);
}

// One tokenizer serves several threads (the word cache is shared and guarded).
TEST(TokenizerRoundTrip, ConcurrentEncodesMatchSerialOnes) {
  const mamba::Tokenizer* tok = neox();
  if (tok == nullptr) GTEST_SKIP() << "missing " << kJson;
  std::mt19937 rng(8);
  std::vector<std::string> texts;
  for (int k = 0; k < 400; ++k) texts.push_back(random_text(rng, 80));
  std::vector<std::vector<int32_t>> serial;
  for (const std::string& s : texts) serial.push_back(tok->encode(s));
  tok->clear_cache();
  std::vector<std::vector<std::vector<int32_t>>> parallel(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < parallel.size(); ++t) {
    threads.emplace_back([&, t] {
      for (const std::string& s : texts) parallel[t].push_back(tok->encode(s));
    });
  }
  for (std::thread& th : threads) th.join();
  for (const auto& results : parallel) EXPECT_EQ(results, serial);
}
