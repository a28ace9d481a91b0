// The GPT-2 split scanner against the pattern itself, run by a real regex engine: Python's
// `regex` module (which knows \p{L} and \p{N}) splits random strings from many scripts and the
// pieces must be the same. Skipped, saying why, when python3 or its regex module is absent.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "mamba/tokenizer/gpt2_split.hpp"
#include "mamba/tokenizer/unicode.hpp"

namespace {

namespace fs = std::filesystem;

// Reads hex lines, writes the regex's pieces as hex joined by '|', one line per input.
constexpr const char* kScript = R"PY(
import sys, regex
pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    for line in f:
        s = bytes.fromhex(line.strip()).decode("utf-8")
        out.write("|".join(p.encode("utf-8").hex() for p in pat.findall(s)) + "\n")
)PY";

std::string hex(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string h;
  for (const char c : s) {
    h += digits[static_cast<unsigned char>(c) >> 4];
    h += digits[static_cast<unsigned char>(c) & 15];
  }
  return h;
}

// Random text from scripts where the Unicode versions of utf8proc and Python agree (assigned
// since long), with the characters the pattern treats specially.
std::string random_text(std::mt19937& rng) {
  static const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {0x20, 0x7E},     {0x20, 0x7E},     {0xA0, 0x24F},    {0x300, 0x36F},     {0x391, 0x3C9},
      {0x410, 0x44F},   {0x5D0, 0x5EA},   {0x660, 0x669},   {0x905, 0x939},     {0x966, 0x96F},
      {0x2000, 0x200A}, {0x2010, 0x2027}, {0x2160, 0x2188}, {0x3000, 0x3002},   {0x3041, 0x3096},
      {0x4E00, 0x4EFF}, {0xAC00, 0xACFF}, {0xFF01, 0xFF5E}, {0x1D400, 0x1D454}, {0x1F600, 0x1F64F}};
  static const std::vector<std::string> specials = {" ",   "  ", "\t", "\n",  "\r\n",   "\v",
                                                    "\f",  "'s", "'t", "'re", "'ve",    "'m",
                                                    "'ll", "'d", "'",  "'S",  "\u0085", "\u2028"};
  std::string s;
  const int n = static_cast<int>(rng() % 25);
  for (int k = 0; k < n; ++k) {
    if (rng() % 3 == 0) {
      s += specials[rng() % specials.size()];
    } else {
      const auto& [lo, hi] = ranges[rng() % ranges.size()];
      mamba::utf8_append(s, lo + static_cast<char32_t>(rng() % (hi - lo + 1)));
    }
  }
  return s;
}

}  // namespace

// The first Python that has the regex module: Debian's (scripts/install-deps.sh installs
// python3-regex for it), else whatever python3 is on PATH.
std::string python_with_regex() {
  for (const char* py : {"/usr/bin/python3", "python3"})
    if (std::system((std::string(py) + " -c 'import regex' >/dev/null 2>&1").c_str()) == 0)
      return py;
  return {};
}

TEST(Gpt2Split, MatchesThePatternRunByPythonRegex) {
  const std::string python = python_with_regex();
  if (python.empty()) {
    GTEST_SKIP() << "python3 with the 'regex' module is not available (apt: python3-regex)";
  }
  const std::string base =
      (fs::temp_directory_path() / ("mamba_split_" + std::to_string(getpid()))).string();
  std::ofstream(base + ".py") << kScript;
  std::mt19937 rng(41);
  std::vector<std::string> inputs;
  {
    std::ofstream in(base + ".in");
    for (int k = 0; k < 20000; ++k) {
      inputs.push_back(random_text(rng));
      in << hex(inputs.back()) << '\n';
    }
  }
  const std::string cmd = python + " '" + base + ".py' '" + base + ".in' '" + base + ".out'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream out(base + ".out");
  std::string line;
  int mismatches = 0;
  for (const std::string& s : inputs) {
    ASSERT_TRUE(std::getline(out, line)) << "the script wrote fewer lines than it was given";
    std::string mine;
    mamba::gpt2_split(s, [&](std::string_view p) {
      if (!mine.empty()) mine += '|';
      mine += hex(p);
    });
    if (mine != line && ++mismatches <= 5) ADD_FAILURE() << "split differs for '" << s << "'";
  }
  EXPECT_EQ(mismatches, 0);
  for (const char* ext : {".py", ".in", ".out"}) fs::remove(base + ext);
}
