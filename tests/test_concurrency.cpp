// One loaded model shared by many threads, each with its own state and sampler: every thread gets
// exactly the tokens it gets alone. Weights are immutable and the kernels' scratch space is per
// thread, so nothing is shared but reads. .ci/run also runs this file under ThreadSanitizer.
#include <gtest/gtest.h>

#include <mamba/generate/generator.hpp>
#include <mamba/tokenizer/tokenizer_json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kThreads = 8;
constexpr int kTokens = 32;

struct Job {
  std::string prompt;
  mamba::SamplerParams sampling;
};

std::vector<Job> jobs() {
  const char* prompts[kThreads] = {"ROMEO:",     "JULIET:\nO", "To be, or", "First Citizen:",
                                   "What light", "\n",         "Exeunt.",   "My lord, I"};
  std::vector<Job> out;
  for (int i = 0; i < kThreads; ++i) {
    mamba::SamplerParams s;
    s.seed = 1000 + static_cast<uint64_t>(i);
    s.temperature = i % 4 == 0 ? 0.0f : 0.7f + 0.1f * static_cast<float>(i % 3);
    s.repeat_penalty = i % 2 == 0 ? 1.0f : 1.1f;
    out.push_back({prompts[i], s});
  }
  return out;
}

struct Result {
  std::vector<int32_t> tokens;
  std::string text;
  mamba::State state;
};

Result run(const mamba::Model& model, const mamba::Tokenizer& tok, const Job& job) {
  const mamba::Generator gen(model, &tok);
  mamba::Sampler sampler(job.sampling);
  mamba::GenerateParams params;
  params.max_tokens = kTokens;
  params.stop_at_eos = false;
  Result r{{}, {}, model.new_state()};
  r.tokens = gen.generate(tok.encode(job.prompt), r.state, sampler, params,
                          [&](const mamba::TokenEvent& e) {
                            r.text += e.text;
                            return true;
                          })
                 .tokens;
  return r;
}

TEST(Concurrency, EightThreadsShareOneModelAndEachGetsItsOwnTokens) {
  const auto model = mamba::Model::load(std::string(MAMBA_FIXTURES_DIR) + "/bytes");
  const auto tok = mamba::byte_tokenizer();
  const std::vector<Job> all = jobs();
  std::vector<Result> alone;
  for (const Job& j : all) alone.push_back(run(model, tok, j));

  std::vector<std::optional<Result>> together(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] { together[i] = run(model, tok, all[i]); });
  for (auto& t : threads) t.join();

  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(together[i].has_value());
    EXPECT_EQ(together[i]->tokens.size(), static_cast<size_t>(kTokens)) << "thread " << i;
    EXPECT_EQ(together[i]->tokens, alone[i].tokens) << "thread " << i;
    EXPECT_EQ(together[i]->text, alone[i].text) << "thread " << i;
    EXPECT_EQ(together[i]->state, alone[i].state) << "thread " << i;
  }
  // Different prompts and seeds did give different texts (the comparison above means something).
  EXPECT_NE(alone[0].tokens, alone[1].tokens);
}

TEST(Concurrency, PrefillAndBatchedStepsFromManyThreads) {
  const auto model = mamba::Model::load(std::string(MAMBA_FIXTURES_DIR) + "/bytes");
  const std::vector<int32_t> prompt = {82, 79, 77, 69, 79, 58, 10, 73};
  auto ref_state = model.new_state();
  const auto ref_all = model.prefill(prompt, ref_state, mamba::Logits::All);
  std::vector<mamba::State> ref_batch(3, model.new_state());
  const int32_t ids[] = {1, 2, 3};
  const auto ref_step = model.step_batch(ids, ref_batch);

  std::vector<int> ok(kThreads, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      bool good = true;
      for (int rep = 0; rep < 4; ++rep) {
        auto s = model.new_state();
        good = good && model.prefill(prompt, s, mamba::Logits::All) == ref_all && s == ref_state;
        std::vector<mamba::State> batch(3, model.new_state());
        good = good && model.step_batch(ids, batch) == ref_step && batch == ref_batch;
      }
      ok[i] = good;
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_TRUE(ok[i]) << "thread " << i;
}

}  // namespace
