// Loading the tokenizer from GGUF metadata beyond the reference cases: GGUFs written here (from
// the shared vocab-only file's own keys) with each tokenizer.ggml.pre variant, a model GGUF with
// tensors, and malformed tokenizer keys, each refused with a mamba::Error naming the key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "mamba/io/gguf.hpp"
#include "mamba/io/gguf_writer.hpp"
#include "mamba/tokenizer/gguf_vocab.hpp"
#include "mamba/tokenizer/load_tokenizer.hpp"

namespace {

namespace fs = std::filesystem;

const std::string kGguf = std::string(MAMBA_DATA_DIR) + "/llama.cpp-vocab/ggml-vocab-mpt.gguf";

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() /
          ("mamba_tok_gguf_" + std::to_string(getpid()) + "_" + name + ".gguf"))
      .string();
}

// The shared file's tokenizer keys, copied into a writer, then changed by `edit`.
std::string write_copy(const std::string& name,
                       const std::function<void(mamba::GgufWriter&)>& edit) {
  const mamba::GgufFile src = mamba::GgufFile::open(kGguf);
  mamba::GgufWriter w;
  for (const std::string& key : src.keys()) {
    if (key.rfind("tokenizer.", 0) != 0 && key != "general.architecture") continue;
    const mamba::GgufFile::RawValue v = src.raw_value(key);
    w.set_raw(key, v.type, v.bytes);
  }
  edit(w);
  const std::string path = temp_path(name);
  w.write(path);
  return path;
}

std::string load_error(const std::string& path) {
  try {
    mamba::load_tokenizer(path);
  } catch (const mamba::Error& e) {
    return e.what();
  }
  return "";
}

#define REQUIRE_GGUF() \
  if (!fs::exists(kGguf)) GTEST_SKIP() << "missing " << kGguf

const std::string kNotNfc = "Cafe\xCC\x81 A\xCC\x8A \xE1\x84\x80\xE1\x85\xA1";  // e+U+0301 ...

}  // namespace

TEST(TokenizerGguf, PreAbsentMeansGptNeox) {
  REQUIRE_GGUF();
  const std::string path = write_copy("no_pre", [](auto& w) { w.remove("tokenizer.ggml.pre"); });
  const mamba::Tokenizer copy = mamba::load_tokenizer(path);
  const mamba::Tokenizer reference = mamba::load_tokenizer_gguf(kGguf);
  fs::remove(path);
  EXPECT_TRUE(copy.options().nfc);
  for (const std::string& s : {kNotNfc, std::string("  Hello\n\n world 123 <|endoftext|>")}) {
    EXPECT_EQ(copy.encode(s), reference.encode(s));
    EXPECT_EQ(copy.encode(s, true), reference.encode(s, true));
  }
}

TEST(TokenizerGguf, PreOlmoIsMptAndGpt2HasNoNormalizer) {
  REQUIRE_GGUF();
  const std::string olmo =
      write_copy("olmo", [](auto& w) { w.set("tokenizer.ggml.pre", std::string("olmo")); });
  const std::string gpt2 =
      write_copy("gpt2", [](auto& w) { w.set("tokenizer.ggml.pre", std::string("gpt-2")); });
  const mamba::Tokenizer t_olmo = mamba::load_tokenizer(olmo);
  const mamba::Tokenizer t_gpt2 = mamba::load_tokenizer(gpt2);
  fs::remove(olmo);
  fs::remove(gpt2);
  EXPECT_TRUE(t_olmo.options().nfc);
  EXPECT_FALSE(t_gpt2.options().nfc);
  // Without NFC the combining marks survive; with it they compose.
  EXPECT_EQ(t_gpt2.decode(t_gpt2.encode(kNotNfc)), kNotNfc);
  EXPECT_EQ(t_olmo.decode(t_olmo.encode(kNotNfc)), mamba::nfc(kNotNfc));
  EXPECT_NE(mamba::nfc(kNotNfc), kNotNfc);
}

TEST(TokenizerGguf, ModelFileWithTensorsAndSpecialIds) {
  REQUIRE_GGUF();
  const std::string path = write_copy("model", [](mamba::GgufWriter& w) {
    w.set("general.architecture", std::string("mamba"));
    w.add_tensor("token_embd.weight", mamba::DType::F32, {4, 2}, std::vector<std::byte>(32));
  });
  const mamba::GgufFile f = mamba::GgufFile::open(path);
  ASSERT_EQ(f.tensors().size(), 1u);
  ASSERT_TRUE(mamba::gguf_has_tokenizer(f));
  const mamba::Tokenizer tok = mamba::tokenizer_from_gguf(f);
  const mamba::GgufFile src = mamba::GgufFile::open(kGguf);
  EXPECT_EQ(static_cast<uint64_t>(tok.eos_id()), src.get_uint("tokenizer.ggml.eos_token_id"));
  EXPECT_EQ(static_cast<uint64_t>(tok.bos_id()), src.get_uint("tokenizer.ggml.bos_token_id"));
  EXPECT_EQ(static_cast<std::size_t>(tok.vocab_size()),
            src.get_string_array("tokenizer.ggml.tokens").size());
  EXPECT_EQ(tok.token(tok.eos_id()), "<|endoftext|>");
  EXPECT_TRUE(tok.is_special(tok.eos_id()));
  // The converter's "[PAD<id>]" placeholders are not matched in text (the reference has none).
  const std::string pad = tok.token(tok.vocab_size() - 1);
  ASSERT_EQ(pad.rfind("[PAD", 0), 0u);
  const std::vector<int32_t> ids = tok.encode(pad, true);
  EXPECT_GT(ids.size(), 1u);
  EXPECT_EQ(tok.decode(ids), pad);
  fs::remove(path);
}

TEST(TokenizerGgufErrors, NoTokenizer) {
  REQUIRE_GGUF();
  mamba::GgufWriter w;
  w.set("general.architecture", std::string("mamba"));
  const std::string path = temp_path("none");
  w.write(path);
  EXPECT_FALSE(mamba::gguf_has_tokenizer(mamba::GgufFile::open(path)));
  const std::string msg = load_error(path);
  fs::remove(path);
  EXPECT_NE(msg.find("tokenizer.ggml.model is absent"), std::string::npos) << msg;
}

TEST(TokenizerGgufErrors, EachBadKeyIsNamed) {
  REQUIRE_GGUF();
  struct Case {
    std::string name, expected;
    std::function<void(mamba::GgufWriter&)> edit;
  };
  const std::vector<Case> cases = {
      {"model", "'llama'", [](auto& w) { w.set("tokenizer.ggml.model", std::string("llama")); }},
      {"pre", "'llama3'", [](auto& w) { w.set("tokenizer.ggml.pre", std::string("llama3")); }},
      {"types", "tokenizer.ggml.token_type",
       [](auto& w) {
         w.set_array("tokenizer.ggml.token_type", std::vector<int32_t>{1, 1});
       }},
      {"merges", "not in the vocabulary",
       [](auto& w) {
         w.set_array("tokenizer.ggml.merges", std::vector<std::string>{"Ġ t", "zzqq Ġ"});
       }},
      {"merge_form", "tokenizer.ggml.merges[0]",
       [](auto& w) { w.set_array("tokenizer.ggml.merges", std::vector<std::string>{"Ġt"}); }},
      {"eos", "tokenizer.ggml.eos_token_id",
       [](auto& w) { w.set("tokenizer.ggml.eos_token_id", uint32_t{1000000}); }},
      {"tokens", "tokenizer.ggml.tokens", [](auto& w) { w.remove("tokenizer.ggml.tokens"); }},
  };
  for (const Case& c : cases) {
    const std::string path = write_copy(c.name, c.edit);
    const std::string msg = load_error(path);
    fs::remove(path);
    EXPECT_NE(msg.find(c.expected), std::string::npos) << c.name << ": '" << msg << "'";
  }
}
