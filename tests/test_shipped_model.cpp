// The model in the box (models/tiny-shakespeare, trained by scripts/train_tiny.py): its held-out
// loss in C++ equals the training script's float64 figure, greedy generation repeats, and
// mamba-generate runs on it as a user would run it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mamba/mamba.hpp>
#include <sstream>

#include "reference_fixture.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kModel = std::string(MAMBA_SOURCE_DIR) + "/models/tiny-shakespeare";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ShippedModel, HeldOutLossMatchesTheTrainingScript) {
  const auto slice = nlohmann::json::parse(slurp(kModel + "/heldout_slice.json"));
  const std::string corpus_path =
      std::string(MAMBA_DATA_DIR) + "/corpus/" + slice["corpus"].get<std::string>();
  if (!fs::exists(corpus_path)) GTEST_SKIP() << "corpus not found at " << corpus_path;
  const std::string corpus = slurp(corpus_path);
  const auto offset = slice["offset"].get<size_t>(), length = slice["length"].get<size_t>();
  ASSERT_LE(offset + length, corpus.size());
  ASSERT_GE(offset, slice["heldout_start"].get<size_t>());  // never trained on

  const auto model = mamba::Model::load(kModel);
  std::vector<int32_t> bytes;
  for (size_t i = 0; i < length; ++i) bytes.push_back(static_cast<uint8_t>(corpus[offset + i]));
  auto state = model.new_state();
  const auto logits = model.prefill(bytes, state, mamba::Logits::All);
  // logits at slice position i predict byte i+1: mean natural-log cross-entropy
  const int64_t V = model.vocab_size();
  double total = 0;
  for (size_t i = 0; i + 1 < length; ++i) {
    const float* row = &logits[i * V];
    const double mx = *std::max_element(row, row + V);
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(double(row[v]) - mx);
    total += mx + std::log(sum) - row[bytes[i + 1]];
  }
  const double loss = total / double(length - 1);
  EXPECT_NEAR(loss, slice["loss_nats_per_byte"].get<double>(), 1e-3);
  EXPECT_LT(loss, 2.0);  // a trained model, not noise (uniform would be log 256 = 5.5)
}

TEST(ShippedModel, GreedyGenerationIsDeterministic) {
  const auto model = mamba::Model::load(kModel);
  const auto tok = mamba::load_tokenizer(kModel);
  const mamba::Generator gen(model, &tok);
  std::string text[2];
  for (auto& t : text) {
    auto state = model.new_state();
    mamba::Sampler greedy(mamba::SamplerParams{.temperature = 0});
    mamba::GenerateParams params{.max_tokens = 80};
    gen.generate(tok.encode("ROMEO:"), state, greedy, params, [&](const mamba::TokenEvent& e) {
      t += e.text;
      return true;
    });
  }
  EXPECT_EQ(text[0], text[1]);
  EXPECT_EQ(text[0].size(), 80u);  // one byte per token, no EOS in a byte model
}

// A decoded token's conv and x_proj run over parts of the channels (d_inner 384: three of 128,
// x_proj split by its columns into partial sums); prefill's run over all of them at once. Step by
// step gives prefill's logits, to float rounding; losing a part moves them by more than 1e-2.
TEST(ShippedModel, StepsGiveThePrefillsLogits) {
  const auto model = mamba::Model::load(kModel);
  ASSERT_EQ(model.config().d_inner, 384);
  const auto tokens =
      mamba::load_tokenizer(kModel).encode("ROMEO:\nWhat light through yonder window");
  auto prefilled = model.new_state(), stepped = model.new_state();
  const auto want = model.prefill(tokens, prefilled, mamba::Logits::All);
  std::vector<float> got;
  for (int32_t t : tokens) {
    const auto l = model.step(t, stepped);
    got.insert(got.end(), l.begin(), l.end());
  }
  const double err = relative_error(got, want);
  std::printf("[ measured ] stepped against prefilled logits: relative error %.2e\n", err);
  EXPECT_LE(err, 1e-5);
}

// ---- the CLI on the shipped model

struct CliResult {
  int exit_code;
  std::string out, err;
};

CliResult run(const std::string& args, const std::string& stdin_text = "") {
  const auto dir = fs::temp_directory_path();
  const std::string tag = std::to_string(::getpid());
  const std::string in = (dir / ("sm_in_" + tag)).string(),
                    out = (dir / ("sm_out_" + tag)).string(),
                    err = (dir / ("sm_err_" + tag)).string();
  std::ofstream(in) << stdin_text;
  const std::string cmd =
      std::string(MAMBA_BIN_DIR) + "/mamba-generate " + args + " <" + in + " >" + out + " 2>" + err;
  const int status = std::system(cmd.c_str());
  CliResult r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  for (const auto& p : {in, out, err}) fs::remove(p);
  return r;
}

TEST(ShippedModelCli, DefaultModelPromptAndSeeds) {
  // without -m it runs the shipped model
  const CliResult a = run("-p 'ROMEO:' -n 60 --seed 7 --quiet");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out.rfind("ROMEO:", 0), 0u) << a.out;  // the prompt, then the continuation
  EXPECT_EQ(a.out.size(), 6u + 60u);
  EXPECT_TRUE(a.err.empty()) << a.err;
  EXPECT_EQ(run("-m " + kModel + " -p 'ROMEO:' -n 60 --seed 7 --quiet").out, a.out);
  EXPECT_NE(run("-p 'ROMEO:' -n 60 --seed 8 --quiet").out, a.out);
  // the timing line
  const CliResult t = run("-p 'ROMEO:' -n 8");
  EXPECT_NE(t.err.find("tokens/s"), std::string::npos) << t.err;
}

TEST(ShippedModelCli, SamplingFlagsAndPromptFile) {
  const std::string prompt_file = (fs::temp_directory_path() / "sm_prompt.txt").string();
  std::ofstream(prompt_file) << "JULIET:\n";
  const CliResult greedy1 = run("-f " + prompt_file + " -n 40 --temp 0 --quiet");
  const CliResult greedy2 = run("-f " + prompt_file + " -n 40 --temp 0 --seed 99 --quiet");
  ASSERT_EQ(greedy1.exit_code, 0) << greedy1.err;
  EXPECT_EQ(greedy1.out, greedy2.out);  // greedy ignores the seed
  const CliResult filtered = run("-f " + prompt_file +
                                 " -n 40 --temp 0.7 --top-k 5 --top-p 0.9 --min-p 0.1 "
                                 "--repeat-penalty 1.1 --repeat-last-n 32 --seed 3 --quiet");
  EXPECT_EQ(filtered.exit_code, 0) << filtered.err;
  EXPECT_EQ(filtered.out.size(), 8u + 40u);
  fs::remove(prompt_file);
}

TEST(ShippedModelCli, StopString) {
  const CliResult free_run = run("-p 'ROMEO:' -n 80 --temp 0 --quiet");
  ASSERT_EQ(free_run.exit_code, 0);
  const std::string generated = free_run.out.substr(6);
  const std::string stop = generated.substr(10, 3);
  const CliResult stopped = run("-p 'ROMEO:' -n 80 --temp 0 --quiet --stop '" + stop + "'");
  EXPECT_EQ(stopped.out, "ROMEO:" + generated.substr(0, generated.find(stop)));
}

TEST(ShippedModelCli, PromptCacheMissThenHit) {
  const std::string cache = (fs::temp_directory_path() / "sm_prompt_cache.bin").string();
  fs::remove(cache);
  const std::string prompt = "ROMEO: What light through yonder window";
  const std::string args = "-p '" + prompt + "' -n 30 --seed 1 ";
  // the cache holds all of the prompt but its last token (one byte per token here)
  const std::string reused = "(" + std::to_string(prompt.size() - 1) + " from cache)";
  const CliResult miss = run(args + "--prompt-cache " + cache);
  ASSERT_EQ(miss.exit_code, 0) << miss.err;
  EXPECT_TRUE(fs::exists(cache));
  EXPECT_NE(miss.err.find("(0 from cache)"), std::string::npos) << miss.err;
  const CliResult hit = run(args + "--prompt-cache " + cache);
  EXPECT_NE(hit.err.find(reused), std::string::npos) << hit.err;
  EXPECT_EQ(hit.out, miss.out);  // same text with and without the cache
  // a longer prompt that starts the same way reuses the cache too
  const CliResult longer = run("-p '" + prompt + " breaks' -n 5 --prompt-cache " + cache);
  EXPECT_NE(longer.err.find(reused), std::string::npos) << longer.err;
  // a damaged cache is an error, not garbage
  {
    std::fstream f(cache, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x7f');
  }
  const CliResult damaged = run(args + "--prompt-cache " + cache);
  EXPECT_EQ(damaged.exit_code, 1);
  fs::remove(cache);
}

TEST(ShippedModelCli, InteractiveKeepsTheStateAcrossTurns) {
  const CliResult r = run("-p 'ROMEO:' -n 10 --temp 0 -i --quiet", "Is it so?\nAy.\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // three turns of 10 bytes after the echoed prompt
  EXPECT_EQ(r.out.size(), 6u + 30u) << r.out;
  // the same through the library: the state carries every turn
  const auto model = mamba::Model::load(kModel);
  const auto tok = mamba::load_tokenizer(kModel);
  const mamba::Generator gen(model, &tok);
  auto state = model.new_state();
  mamba::Sampler greedy(mamba::SamplerParams{.temperature = 0});
  mamba::GenerateParams params{.max_tokens = 10};
  std::string text = "ROMEO:";
  auto collect = [&](const mamba::TokenEvent& e) {
    text += e.text;
    return true;
  };
  gen.generate(tok.encode("ROMEO:"), state, greedy, params, collect);
  gen.generate(tok.encode("Is it so?\n"), state, greedy, params, collect);
  gen.generate(tok.encode("Ay.\n"), state, greedy, params, collect);
  EXPECT_EQ(r.out, text);
}

TEST(ShippedModelCli, ErrorsExitOneWithOneLine) {
  const std::vector<std::string> cases = {"-m /nonexistent/model -p hi",
                                          "-p hi -n many",
                                          "-p hi --temp -1",
                                          "-p hi --top-p 2",
                                          "-p hi --bogus",
                                          "-f /nonexistent/prompt.txt",
                                          "-p hi --tokens 1,2",
                                          "-p hi --seed"};
  for (const std::string& args : cases) {
    SCOPED_TRACE(args);
    const CliResult r = run(args);
    EXPECT_EQ(r.exit_code, 1);
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    EXPECT_EQ(r.err.rfind("mamba-generate: ", 0), 0u) << r.err;
  }
}

}  // namespace
