// mamba-generate as a user runs it: the binary, its output files, its exit codes and messages.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mamba/mamba.hpp>
#include <sstream>

#include "reference_fixture.hpp"

namespace {

struct CliResult {
  int exit_code;
  std::string out, err;
};

CliResult run(const std::string& args) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string out = (dir / ("mg_out_" + std::to_string(::getpid()))).string();
  const std::string err = (dir / ("mg_err_" + std::to_string(::getpid()))).string();
  const std::string cmd =
      std::string(MAMBA_BIN_DIR) + "/mamba-generate " + args + " >" + out + " 2>" + err;
  const int status = std::system(cmd.c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  CliResult r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

std::string join(const std::vector<int32_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s.append(i ? "," : "").append(std::to_string(v[i]));
  return s;
}

// Both families, from safetensors and from GGUF, without the caller saying which.
TEST(CliGenerate, LogitsOutMatchesTheReference) {
  for (const std::string name : {"untied_bias", "mamba2_groups", "gguf_models/mamba2_q8_0"}) {
    SCOPED_TRACE(name);
    const auto ref = ReferenceFixture::load(name);
    const std::string model =
        std::filesystem::exists(ref.dir + "/model.gguf") ? ref.dir + "/model.gguf" : ref.dir;
    const std::string path =
        (std::filesystem::temp_directory_path() / ("logits_" + std::to_string(::getpid())))
            .string();
    const CliResult r =
        run("-m " + model + " --tokens " + join(ref.tokens) + " --logits-out " + path);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::ifstream in(path, std::ios::binary);
    std::vector<float> got(ref.logits.size() + 1);
    in.read(reinterpret_cast<char*>(got.data()), got.size() * sizeof(float));
    EXPECT_EQ(in.gcount(), static_cast<std::streamsize>(ref.logits.size() * sizeof(float)));
    got.pop_back();
    EXPECT_LE(relative_error(got, ref.logits), 1e-5);
    std::filesystem::remove(path);
  }
}

// A Mamba-2 prompt cache: the second run reuses the saved state and prints the same tokens.
TEST(CliGenerate, Mamba2PromptCacheGivesTheSameTokens) {
  const auto ref = ReferenceFixture::load("mamba2_tiny");
  const std::string cache =
      (std::filesystem::temp_directory_path() / ("m2_cache_" + std::to_string(::getpid())))
          .string();
  std::filesystem::remove(cache);
  const std::string args = "-m " + ref.dir + " --tokens " + join(ref.tokens) + " -n 8 --temp 0 ";
  const CliResult plain = run(args);
  const CliResult miss = run(args + "--prompt-cache " + cache);
  const CliResult hit = run(args + "--prompt-cache " + cache);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  ASSERT_EQ(hit.exit_code, 0) << hit.err;
  EXPECT_EQ(miss.out, plain.out);
  EXPECT_EQ(hit.out, plain.out);
  EXPECT_TRUE(std::filesystem::exists(cache));
  std::filesystem::remove(cache);
}

TEST(CliGenerate, GreedyTokensEqualTheLibrary) {
  const auto ref = ReferenceFixture::load("tiny");
  const CliResult r = run("-m " + ref.dir + " --tokens " + join(ref.tokens) + " -n 12 --temp 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // the same loop through the API
  const auto model = mamba::Model::load(ref.dir);
  auto state = model.new_state();
  auto logits = model.prefill(ref.tokens, state);
  std::string want;
  for (int i = 0; i < 12; ++i) {
    const int32_t next = std::max_element(logits.begin(), logits.end()) - logits.begin();
    want.append(i ? " " : "").append(std::to_string(next));
    logits = model.step(next, state);
  }
  EXPECT_EQ(r.out, want + "\n");
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos) << r.err;  // the timing line
  EXPECT_TRUE(run("-m " + ref.dir + " --tokens 1 -n 2 --quiet").err.empty());
}

TEST(CliGenerate, ErrorsExitOneWithOneLine) {
  const std::string m = std::string("-m ").append(ReferenceFixture::load("tiny").dir);
  const std::vector<std::string> cases = {"-m /nonexistent/model --tokens 1",
                                          m + " --tokens 1,x",
                                          m + " --tokens 1 -n -4",
                                          m + " --bogus",
                                          m,
                                          m + " --tokens 99999",
                                          m + " --tokens 1 -n"};
  for (const std::string& args : cases) {
    SCOPED_TRACE(args);
    const CliResult r = run(args);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(r.out.empty());
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;  // exactly one line
    EXPECT_EQ(r.err.rfind("mamba-generate: ", 0), 0u) << r.err;
  }
}

TEST(CliGenerate, HelpExitsZero) {
  const CliResult r = run("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--logits-out"), std::string::npos);
  EXPECT_NE(r.out.find("--float-dot"), std::string::npos);
}

// Greedy decoding of a 4-bit model with float activations (--float-dot) and with the default
// 8-bit ones: both run; on this fixture's first tokens they agree.
TEST(CliGenerate, FloatDotDecodes) {
  const auto ref = ReferenceFixture::load("gguf_models/q4_0");
  const std::string args =
      "-m " + ref.dir + "/model.gguf --tokens " + join(ref.tokens) + " -n 4 --temp 0 --quiet";
  const CliResult exact = run(args + " --float-dot"), int8 = run(args);
  ASSERT_EQ(exact.exit_code, 0) << exact.err;
  ASSERT_EQ(int8.exit_code, 0) << int8.err;
  EXPECT_FALSE(exact.out.empty());
  EXPECT_EQ(exact.out, int8.out);
}

}  // namespace
