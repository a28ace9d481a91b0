// The GPT-NeoX-20B tokenizer against the reference: the 46 llama.cpp test cases (inputs and the
// ids the Hugging Face tokenizer gives them), loaded both from the vocab-only GGUF and from
// tokenizer.json.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "mamba/tokenizer/gguf_vocab.hpp"
#include "mamba/tokenizer/load_tokenizer.hpp"
#include "mamba/tokenizer/tokenizer_json.hpp"

namespace {

const std::string kGguf = std::string(MAMBA_DATA_DIR) + "/llama.cpp-vocab/ggml-vocab-mpt.gguf";
const std::string kJson = std::string(MAMBA_DATA_DIR) + "/gpt-neox-20b/tokenizer.json";

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct Case {
  std::string input;
  std::vector<int32_t> ids;
};

// .inp: inputs, each followed by a line "__ggml_vocab_test__"; .out: one line of ids per case.
std::vector<Case> read_cases() {
  const std::string inp = read_all(kGguf + ".inp");
  const std::string out = read_all(kGguf + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  std::size_t pos = 0;
  // The first input has no separator before it; each input ends at "\n__ggml_vocab_test__\n".
  while (pos < inp.size()) {
    const std::size_t end = inp.find(sep, pos == 0 ? 0 : pos);
    std::size_t stop = end;
    if (end == std::string::npos) break;
    cases.push_back({inp.substr(pos, stop - pos), {}});
    pos = end + sep.size();
  }
  std::istringstream lines(out);
  std::string line;
  std::size_t k = 0;
  while (std::getline(lines, line) && k < cases.size()) {
    std::istringstream ids(line);
    int32_t id;
    while (ids >> id) cases[k].ids.push_back(id);
    ++k;
  }
  EXPECT_EQ(k, cases.size()) << "the .out file has fewer lines than the .inp file has cases";
  return cases;
}

void expect_all_cases(const mamba::Tokenizer& tok) {
  const std::vector<Case> cases = read_cases();
  ASSERT_EQ(cases.size(), 46u);
  int exact = 0;
  for (std::size_t k = 0; k < cases.size(); ++k) {
    const std::vector<int32_t> got = tok.encode(cases[k].input, /*parse_special=*/false);
    EXPECT_EQ(got, cases[k].ids) << "case " << k << ": '" << cases[k].input << "'";
    exact += got == cases[k].ids;
    // Decoding gives the text back (these inputs are already NFC).
    EXPECT_EQ(tok.decode(got), cases[k].input) << "case " << k;
  }
  EXPECT_EQ(exact, 46);
}

bool data_present(const std::string& path) {
  return std::filesystem::exists(path);
}

}  // namespace

TEST(TokenizerReference, CasesFromVocabOnlyGguf) {
  if (!data_present(kGguf) || !data_present(kGguf + ".inp")) GTEST_SKIP() << "missing " << kGguf;
  expect_all_cases(mamba::load_tokenizer_gguf(kGguf));
}

TEST(TokenizerReference, CasesFromTokenizerJson) {
  if (!data_present(kJson) || !data_present(kGguf + ".inp")) {
    GTEST_SKIP() << "missing " << kJson << " or " << kGguf << ".inp";
  }
  expect_all_cases(mamba::load_tokenizer_json(kJson));
}

TEST(TokenizerReference, LoadTokenizerDetectsFormatAndDirectory) {
  if (!data_present(kJson) || !data_present(kGguf)) GTEST_SKIP() << "missing " << kJson;
  const mamba::Tokenizer from_dir =
      mamba::load_tokenizer(std::filesystem::path(kJson).parent_path());
  const mamba::Tokenizer from_gguf = mamba::load_tokenizer(kGguf);
  EXPECT_EQ(from_dir.vocab_size(), 50277);
  // The GGUF's vocabulary is padded to 50432 for the model; the tokens both have agree.
  ASSERT_GE(from_gguf.vocab_size(), from_dir.vocab_size());
  for (int32_t id = 0; id < from_dir.vocab_size(); ++id) {
    ASSERT_EQ(from_gguf.token_bytes(id), from_dir.token_bytes(id)) << "id " << id;
  }
  EXPECT_EQ(from_gguf.eos_id(), from_dir.eos_id());
  EXPECT_EQ(from_dir.token(from_dir.eos_id()), "<|endoftext|>");
}

TEST(TokenizerReference, SpecialTokensParsedOnlyWhenAsked) {
  if (!data_present(kJson)) GTEST_SKIP() << "missing " << kJson;
  const mamba::Tokenizer tok = mamba::load_tokenizer_json(kJson);
  const std::string text = "Hello<|endoftext|>world";
  const std::vector<int32_t> with = tok.encode(text, true);
  const std::vector<int32_t> without = tok.encode(text, false);
  // Parsed: the special token's id sits between the encodings of the two halves.
  std::vector<int32_t> expected = tok.encode("Hello");
  expected.push_back(tok.eos_id());
  for (int32_t id : tok.encode("world")) expected.push_back(id);
  EXPECT_EQ(with, expected);
  // Not parsed: encoded as plain text, so the id of <|endoftext|> never appears.
  EXPECT_EQ(std::count(without.begin(), without.end(), tok.eos_id()), 0);
  EXPECT_EQ(tok.decode(without), text);
  EXPECT_EQ(tok.decode(with), text);
  EXPECT_EQ(tok.decode(with, /*skip_special=*/true), "Helloworld");
}
