// Loading tokenizer.json: the byte tokenizer (file and in-memory forms agree; id == byte) and
// malformed files, each refused with a mamba::Error that names what was wrong.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "mamba/tokenizer/load_tokenizer.hpp"
#include "mamba/tokenizer/tokenizer_json.hpp"

namespace {

const std::string kFixture = std::string(MAMBA_FIXTURES_DIR) + "/byte_tokenizer.json";

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The message of the mamba::Error that loading `text` throws ("" when nothing is thrown).
std::string load_error(const std::string& text) {
  try {
    mamba::tokenizer_from_json(text, "test.json");
  } catch (const mamba::Error& e) {
    return e.what();
  }
  return "";
}

// The byte tokenizer's JSON with one change applied.
template <class F>
std::string byte_json_with(F&& change) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(mamba::byte_tokenizer_json());
  change(j);
  return j.dump();
}

}  // namespace

TEST(ByteTokenizer, FixtureIsTheInMemoryTokenizer) {
  const std::string text = read_all(kFixture);
  if (text.empty()) GTEST_SKIP() << "missing " << kFixture;
  // Same JSON document (the fixture was written by an independent bytes_to_unicode).
  EXPECT_EQ(nlohmann::json::parse(text), nlohmann::json::parse(mamba::byte_tokenizer_json()));
  const mamba::Tokenizer from_file = mamba::load_tokenizer(kFixture);
  const mamba::Tokenizer in_memory = mamba::byte_tokenizer();
  ASSERT_EQ(from_file.vocab_size(), 256);
  ASSERT_EQ(in_memory.vocab_size(), 256);
  for (int32_t id = 0; id < 256; ++id) {
    EXPECT_EQ(from_file.token(id), in_memory.token(id));
    EXPECT_EQ(in_memory.token_bytes(id), std::string(1, static_cast<char>(id)));
  }
}

TEST(ByteTokenizer, TokenIdIsByteValueAndNothingIsNormalizedOrSplit) {
  const mamba::Tokenizer tok = mamba::byte_tokenizer();
  EXPECT_FALSE(tok.options().nfc);
  EXPECT_FALSE(tok.options().use_regex);
  std::mt19937 rng(21);
  for (int k = 0; k < 500; ++k) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    if (k == 0) s = "e\xCC\x81  \t\n<|endoftext|> it's";  // would change under NFC or a split
    const std::vector<int32_t> ids = tok.encode(s, true);
    ASSERT_EQ(ids.size(), s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
      ASSERT_EQ(ids[i], static_cast<unsigned char>(s[i]));
    }
    ASSERT_EQ(tok.decode_bytes(ids), s);
  }
}

TEST(TokenizerJsonErrors, NotJson) {
  const std::string msg = load_error("{\"model\": {\"type\": \"BPE\", ");
  EXPECT_NE(msg.find("test.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
}

TEST(TokenizerJsonErrors, MissingModel) {
  const std::string msg = load_error(byte_json_with([](auto& j) { j.erase("model"); }));
  EXPECT_NE(msg.find("no \"model\" section"), std::string::npos) << msg;
}

TEST(TokenizerJsonErrors, ModelThatIsNotBpe) {
  const std::string msg =
      load_error(byte_json_with([](auto& j) { j["model"]["type"] = "WordPiece"; }));
  EXPECT_NE(msg.find("WordPiece"), std::string::npos) << msg;
}

TEST(TokenizerJsonErrors, MissingVocab) {
  const std::string msg = load_error(byte_json_with([](auto& j) { j["model"].erase("vocab"); }));
  EXPECT_NE(msg.find("model.vocab"), std::string::npos) << msg;
}

TEST(TokenizerJsonErrors, MergeNamingUnknownToken) {
  const std::string msg = load_error(byte_json_with([](auto& j) {
    j["model"]["merges"].push_back("a zq");  // "zq" is no token of the byte tokenizer
  }));
  EXPECT_NE(msg.find("merge 0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'zq', not in the vocabulary"), std::string::npos) << msg;
}

TEST(TokenizerJsonErrors, MergeWhoseResultIsUnknown) {
  const std::string msg = load_error(byte_json_with([](auto& j) {
    j["model"]["merges"].push_back(nlohmann::ordered_json::array({"a", "b"}));  // no "ab"
  }));
  EXPECT_NE(msg.find("the merged token 'ab'"), std::string::npos) << msg;
}

TEST(TokenizerJsonErrors, MalformedMerge) {
  const std::string msg =
      load_error(byte_json_with([](auto& j) { j["model"]["merges"].push_back("abc"); }));
  EXPECT_NE(msg.find("not two tokens"), std::string::npos) << msg;
}

TEST(TokenizerJsonErrors, DuplicateIds) {
  const std::string msg = load_error(byte_json_with(
      [](auto& j) { j["model"]["vocab"]["b"] = j["model"]["vocab"]["a"].template get<int>(); }));
  EXPECT_NE(msg.find("duplicate id"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'a'"), std::string::npos) << msg;
}

TEST(TokenizerJsonErrors, DuplicateAddedTokenIds) {
  const std::string msg = load_error(byte_json_with([](auto& j) {
    j["added_tokens"].push_back({{"id", 0}, {"content", "<x>"}, {"special", true}});
    j["added_tokens"].push_back({{"id", 0}, {"content", "<y>"}, {"special", true}});
  }));
  EXPECT_NE(msg.find("duplicate id 0 in added_tokens"), std::string::npos) << msg;
}

TEST(TokenizerJsonErrors, IdPastTheVocabulary) {
  const std::string msg = load_error(byte_json_with([](auto& j) {
    j["model"]["vocab"]["ab"] = 300;  // 256 tokens, then a gap
  }));
  EXPECT_NE(msg.find("300 is past the vocabulary"), std::string::npos) << msg;
}

TEST(TokenizerJsonErrors, IdFarPastTheVocabularyAllocatesNothingHuge) {
  const std::string msg =
      load_error(byte_json_with([](auto& j) { j["model"]["vocab"]["ab"] = int64_t{1} << 50; }));
  EXPECT_NE(msg.find(std::to_string(int64_t{1} << 50) + " is past the vocabulary"),
            std::string::npos)
      << msg;
}

TEST(TokenizerJsonErrors, GapInTheIds) {
  // 257 entries (256 bytes + one added token sharing id 0) cannot fill 0..256.
  const std::string msg = load_error(byte_json_with([](auto& j) {
    j["added_tokens"].push_back({{"id", 0}, {"content", "<x>"}, {"special", true}});
    j["model"]["vocab"]["ab"] = 256;
    j["model"]["vocab"].erase("a");
  }));
  EXPECT_NE(msg.find("no token has id " + std::to_string(int{'a'})), std::string::npos) << msg;
}

TEST(TokenizerJsonErrors, AddedTokenPastTheVocabulary) {
  const std::string msg = load_error(byte_json_with([](auto& j) {
    j["added_tokens"].push_back({{"id", 1000}, {"content", "<x>"}, {"special", true}});
  }));
  EXPECT_NE(msg.find("1000 is past the vocabulary"), std::string::npos) << msg;
}

TEST(TokenizerJsonErrors, UnsupportedNormalizerAndPreTokenizer) {
  std::string msg = load_error(byte_json_with([](auto& j) {
    j["normalizer"] = {{"type", "Lowercase"}};
  }));
  EXPECT_NE(msg.find("normalizer 'Lowercase'"), std::string::npos) << msg;
  msg = load_error(byte_json_with([](auto& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }));
  EXPECT_NE(msg.find("pre_tokenizer 'Whitespace'"), std::string::npos) << msg;
}

TEST(TokenizerJsonErrors, MissingFileNamesThePath) {
  try {
    mamba::load_tokenizer("no/such/tokenizer.json");
    FAIL() << "no error";
  } catch (const mamba::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/tokenizer.json"), std::string::npos);
  }
}

TEST(TokenizerJsonErrors, DirectoryGivenAsFile) {
  try {
    mamba::load_tokenizer_json(MAMBA_FIXTURES_DIR);
    FAIL() << "no error";
  } catch (const mamba::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
}

TEST(TokenizerJsonErrors, ValidChangesStillLoad) {
  // The same edits done right load, so the tests above fail for the reason they name.
  EXPECT_EQ(load_error(byte_json_with([](auto& j) {
              j["model"]["vocab"]["ab"] = 256;
              j["model"]["merges"].push_back("a b");
              j["added_tokens"].push_back({{"id", 257}, {"content", "<x>"}, {"special", true}});
            })),
            "");
  const mamba::Tokenizer tok = mamba::tokenizer_from_json(
      byte_json_with([](auto& j) {
        j["model"]["vocab"]["ab"] = 256;
        j["model"]["merges"].push_back(nlohmann::ordered_json::array({"a", "b"}));
      }),
      "test.json");
  EXPECT_EQ(tok.encode("cab"), (std::vector<int32_t>{'c', 256}));
}
