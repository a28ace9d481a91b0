// The streaming decoder: multi-byte characters split across tokens are never emitted in
// halves, every chunk is valid UTF-8, and the chunks plus flush() are exactly decode().
#include <gtest/gtest.h>
#include <utf8proc.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "mamba/tokenizer/stream_decoder.hpp"
#include "mamba/tokenizer/tokenizer_json.hpp"

namespace {

const std::string kJson = std::string(MAMBA_DATA_DIR) + "/gpt-neox-20b/tokenizer.json";

// Valid UTF-8 by utf8proc's reading (independent of the decoder under test).
bool valid_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    utf8proc_int32_t cp;
    const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data()) + i,
                                    static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n <= 0) return false;
    i += static_cast<std::size_t>(n);
  }
  return true;
}

std::string utf8(char32_t cp) {
  std::string s;
  mamba::utf8_append(s, static_cast<std::uint32_t>(cp));
  return s;
}

}  // namespace

TEST(StreamDecoder, ByteTokenizerHoldsPartialCharacters) {
  const mamba::Tokenizer tok = mamba::byte_tokenizer();
  for (const char32_t cp : {U'\u00E9', U'\u6211', U'\U0001F600'}) {
    const std::string ch = utf8(cp);
    mamba::StreamDecoder dec(tok);
    std::string emitted;
    for (std::size_t k = 0; k < ch.size(); ++k) {
      const std::string out = dec.put(static_cast<unsigned char>(ch[k]));  // id == byte
      if (k + 1 < ch.size()) {
        EXPECT_EQ(out, "") << "half a character emitted after byte " << k;
        EXPECT_EQ(dec.pending(), k + 1);
      } else {
        EXPECT_EQ(out, ch);
      }
      emitted += out;
    }
    EXPECT_EQ(dec.flush(), "");
    EXPECT_EQ(emitted, ch);
  }
}

TEST(StreamDecoder, FlushEmitsAnUnfinishedCharacterAsReplacement) {
  const mamba::Tokenizer tok = mamba::byte_tokenizer();
  const std::string ch = utf8(U'\U0001F600');
  mamba::StreamDecoder dec(tok);
  EXPECT_EQ(dec.put(static_cast<unsigned char>(ch[0])), "");
  EXPECT_EQ(dec.put(static_cast<unsigned char>(ch[1])), "");
  const std::string rest = dec.flush();
  EXPECT_EQ(rest, tok.decode(std::vector<int32_t>{static_cast<unsigned char>(ch[0]),
                                                  static_cast<unsigned char>(ch[1])}));
  EXPECT_EQ(rest, utf8(0xFFFD));
  EXPECT_EQ(dec.pending(), 0u);
  EXPECT_EQ(dec.flush(), "");
}

TEST(StreamDecoder, RandomBytesChunksAreValidAndAddUpToDecode) {
  const mamba::Tokenizer tok = mamba::byte_tokenizer();
  std::mt19937 rng(11);
  for (int k = 0; k < 3000; ++k) {
    std::vector<int32_t> ids(rng() % 24);
    for (int32_t& id : ids)
      id = static_cast<int32_t>(rng() % 3 ? 0x80 + rng() % 0x80 : rng() % 256);
    mamba::StreamDecoder dec(tok);
    std::string all;
    for (const int32_t id : ids) {
      const std::string chunk = dec.put(id);
      ASSERT_TRUE(valid_utf8(chunk));
      all += chunk;
    }
    all += dec.flush();
    ASSERT_EQ(all, tok.decode(ids));
  }
}

TEST(StreamDecoder, NeoxEmojiAndCjkSplitAcrossTokens) {
  if (!std::filesystem::exists(kJson)) GTEST_SKIP() << "missing " << kJson;
  const mamba::Tokenizer tok = mamba::load_tokenizer_json(kJson);
  const std::string text =
      "Hello \U0001F601 world \U0001F468\u200D\U0001F469\u200D\U0001F467 \u6211\u60F3\u5728"
      "\u5DE5\u4F5C \u1780\u17B6\u1793\u17CB\u178F\u17C2 e\u0301\u0323 \u2705 done";
  const std::vector<int32_t> ids = tok.encode(text);
  mamba::StreamDecoder dec(tok);
  std::string all;
  int held = 0;  // tokens that ended inside a character
  for (const int32_t id : ids) {
    const std::string chunk = dec.put(id);
    ASSERT_TRUE(valid_utf8(chunk)) << "token " << id;
    held += dec.pending() > 0;
    all += chunk;
  }
  EXPECT_EQ(dec.pending(), 0u);
  all += dec.flush();
  EXPECT_EQ(all, tok.decode(ids));
  EXPECT_EQ(all, mamba::nfc(text));
  EXPECT_GT(held, 0) << "no character was split across tokens: the test tests nothing";
}

TEST(StreamDecoder, SkipsSpecialTokensWhenAsked) {
  if (!std::filesystem::exists(kJson)) GTEST_SKIP() << "missing " << kJson;
  const mamba::Tokenizer tok = mamba::load_tokenizer_json(kJson);
  const std::vector<int32_t> ids = tok.encode("a<|endoftext|>b", true);
  mamba::StreamDecoder keep(tok), skip(tok, /*skip_special=*/true);
  std::string kept, skipped;
  for (const int32_t id : ids) {
    kept += keep.put(id);
    skipped += skip.put(id);
  }
  EXPECT_EQ(kept + keep.flush(), tok.decode(ids));
  EXPECT_EQ(skipped + skip.flush(), tok.decode(ids, true));
  EXPECT_NE(kept, skipped);
}
