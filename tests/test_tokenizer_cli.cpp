// mamba-tokenize, run as a program on the shared GPT-NeoX tokenizer: ids match the reference
// cases, --decode gives the text back, and mistakes exit 1 with one line on stderr.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

const std::string kBin = std::string(MAMBA_BIN_DIR) + "/mamba-tokenize";
const std::string kDataDir = std::string(MAMBA_DATA_DIR);
const std::string kJsonDir = kDataDir + "/gpt-neox-20b";
const std::string kGguf = kDataDir + "/llama.cpp-vocab/ggml-vocab-mpt.gguf";

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_all(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// A file name of this process's own, so that test processes running at once do not collide.
std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("mamba_tokenize_" + std::to_string(getpid()) + "_" + name))
      .string();
}

struct ProgramRun {
  int status;
  std::string out, err;
};

// Runs mamba-tokenize with the given (already quoted) arguments.
ProgramRun run_cli(const std::string& args) {
  const std::string out = temp_path("run.out");
  const std::string err = temp_path("run.err");
  const std::string cmd = quote(kBin) + " " + args + " >" + quote(out) + " 2>" + quote(err);
  const int raw = std::system(cmd.c_str());
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, read_all(out), read_all(err)};
}

std::string temp_file(const std::string& name, const std::string& text) {
  const std::string path = temp_path(name);
  write_all(path, text);
  return path;
}

int count_lines(const std::string& s) {
  int n = 0;
  for (const char c : s) n += c == '\n';
  return n;
}

#define REQUIRE_BINARY_AND_DATA()                                                         \
  if (!fs::exists(kBin)) GTEST_SKIP() << "missing " << kBin << " (build mamba-tokenize)"; \
  if (!fs::exists(kGguf + ".inp") || !fs::exists(kJsonDir))                               \
  GTEST_SKIP() << "missing " << kGguf << ".inp or " << kJsonDir

}  // namespace

TEST(TokenizeCli, IdsMatchTheReferenceCases) {
  REQUIRE_BINARY_AND_DATA();
  const std::string inp = read_all(kGguf + ".inp");
  std::istringstream expected_lines(read_all(kGguf + ".out"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  int checked = 0;
  std::size_t pos = 0;
  for (std::size_t end; (end = inp.find(sep, pos)) != std::string::npos; pos = end + sep.size()) {
    std::string expected;
    std::getline(expected_lines, expected);
    if (!expected.empty() && expected[0] == ' ') expected.erase(0, 1);  // the leading space
    const std::string input = temp_file("case.txt", inp.substr(pos, end - pos));
    // Alternate the three kinds of -m: GGUF, tokenizer.json, model directory.
    const std::string model = checked % 3 == 0   ? kGguf
                              : checked % 3 == 1 ? kJsonDir + "/tokenizer.json"
                                                 : kJsonDir;
    const ProgramRun r = run_cli("-m " + quote(model) + " -f " + quote(input));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, expected + "\n") << "case " << checked;
    ++checked;
  }
  EXPECT_EQ(checked, 46);
}

TEST(TokenizeCli, DecodeRoundTrips) {
  REQUIRE_BINARY_AND_DATA();
  const std::string text = "Hello, y'all!  How are you \U0001F601 ?\u6211\u60F3\n\tdone  ";
  const ProgramRun enc = run_cli("-m " + quote(kJsonDir) + " -p " + quote(text));
  ASSERT_EQ(enc.status, 0) << enc.err;
  ASSERT_EQ(count_lines(enc.out), 1);
  const ProgramRun dec = run_cli("-m " + quote(kJsonDir) + " --decode -p " + quote(enc.out));
  ASSERT_EQ(dec.status, 0) << dec.err;
  EXPECT_EQ(dec.out, text + "\n");
  // Ids from a file, and special tokens kept only with --special.
  const ProgramRun eot =
      run_cli("-m " + quote(kGguf) + " --special -p " + quote("a<|endoftext|>b"));
  ASSERT_EQ(eot.status, 0) << eot.err;
  const std::string ids = temp_file("ids.txt", eot.out);
  EXPECT_EQ(run_cli("-m " + quote(kGguf) + " --decode --special -f " + quote(ids)).out,
            "a<|endoftext|>b\n");
  EXPECT_EQ(run_cli("-m " + quote(kGguf) + " --decode -f " + quote(ids)).out, "ab\n");
}

TEST(TokenizeCli, MistakesExitOneWithOneLine) {
  if (!fs::exists(kBin)) GTEST_SKIP() << "missing " << kBin << " (build mamba-tokenize)";
  const std::vector<std::string> bad = {
      "--no-such-flag",
      "-m " + quote(kJsonDir + "/no-such-file.json") + " -p hi",
      "-m " + quote(kJsonDir) + " -f " + quote(kJsonDir + "/no-such-input.txt"),
      "-m " + quote(kJsonDir),
      "-m " + quote(kJsonDir) + " -p a -f b",
      "-m " + quote(kJsonDir) + " --decode -p " + quote("12 x 3"),
      "-m " + quote(kJsonDir) + " --decode -p 99999999",
      "-m " + quote(MAMBA_FIXTURES_DIR) + " -p hi",  // a directory without tokenizer.json
      "-p hi -m",
      "-m " + quote(kJsonDir) + " -f " + quote(kJsonDir),  // a directory as the input
  };
  for (const std::string& args : bad) {
    const ProgramRun r = run_cli(args);
    EXPECT_EQ(r.status, 1) << args;
    EXPECT_EQ(count_lines(r.err), 1) << args << ": " << r.err;
    EXPECT_EQ(r.out, "") << args;
  }
}

TEST(TokenizeCli, Help) {
  if (!fs::exists(kBin)) GTEST_SKIP() << "missing " << kBin << " (build mamba-tokenize)";
  const ProgramRun r = run_cli("--help");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("usage: mamba-tokenize"), std::string::npos);
}
