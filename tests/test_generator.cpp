// The generation loop: streaming, stop conditions, and that the state it leaves continues the
// text exactly.
#include <gtest/gtest.h>

#include <mamba/generate/generator.hpp>
#include <mamba/tokenizer/tokenizer_json.hpp>

#include "reference_fixture.hpp"

namespace {

using mamba::detail::StopMatcher;

TEST(StopMatcher, HoldsBackPossibleStartsAndNeverEmitsTheStop) {
  StopMatcher m({"END", "xy"});
  EXPECT_EQ(m.put("abc"), "abc");
  EXPECT_EQ(m.put("E"), "");    // could be "END"
  EXPECT_EQ(m.put("N"), "");    // still could
  EXPECT_EQ(m.put("o"), "ENo");  // no longer
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.put("1x"), "1");
  EXPECT_EQ(m.put("y tail"), "");
  EXPECT_TRUE(m.stopped());
  StopMatcher n({"END"});
  EXPECT_EQ(n.put("aEN"), "a");
  EXPECT_EQ(n.flush(), "EN");  // the end of the text releases what was held
  EXPECT_THROW(StopMatcher({""}), mamba::ArgumentError);
}

TEST(StopMatcher, StopInsideOnePiece) {
  StopMatcher m({"\n\n"});
  EXPECT_EQ(m.put("line one\n\nline two"), "line one");
  EXPECT_TRUE(m.stopped());
}

class GeneratorTest : public ::testing::Test {
 protected:
  GeneratorTest()
      : model_(mamba::Model::load(std::string(MAMBA_FIXTURES_DIR) + "/bytes")),
        tok_(mamba::byte_tokenizer()) {}
  mamba::Model model_;
  mamba::Tokenizer tok_;
};

TEST_F(GeneratorTest, StreamedTextIsTheDecodedTokensAndGreedyRepeats) {
  const mamba::Generator gen(model_, &tok_);
  mamba::GenerateParams params;
  params.max_tokens = 40;
  params.stop_at_eos = false;
  std::string text[2];
  std::vector<int32_t> ids[2];
  for (int run = 0; run < 2; ++run) {
    auto state = model_.new_state();
    mamba::Sampler greedy(mamba::SamplerParams{.temperature = 0});
    const auto stats = gen.generate(tok_.encode("ROMEO:"), state, greedy, params,
                                    [&](const mamba::TokenEvent& e) {
                                      text[run] += e.text;
                                      if (e.id >= 0) ids[run].push_back(e.id);
                                      return true;
                                    });
    EXPECT_EQ(stats.generated_tokens, 40);
    EXPECT_EQ(stats.stop, mamba::StopReason::MaxTokens);
    EXPECT_EQ(stats.tokens, ids[run]);
    EXPECT_EQ(text[run], tok_.decode_bytes(ids[run]));
    EXPECT_EQ(state.n_tokens, 6 + 40);  // the prompt and every generated token
  }
  EXPECT_EQ(ids[0], ids[1]);
  EXPECT_EQ(text[0], text[1]);
}

TEST_F(GeneratorTest, GreedyTokensAreTheArgmaxOfTheModel) {
  const mamba::Generator gen(model_, &tok_);
  auto state = model_.new_state();
  mamba::Sampler greedy(mamba::SamplerParams{.temperature = 0});
  mamba::GenerateParams params;
  params.max_tokens = 12;
  params.stop_at_eos = false;
  const auto prompt = tok_.encode("To be");
  const auto stats = gen.generate(prompt, state, greedy, params, nullptr);
  auto ref = model_.new_state();
  auto logits = model_.prefill(prompt, ref);
  for (int32_t id : stats.tokens) {
    EXPECT_EQ(id, std::max_element(logits.begin(), logits.end()) - logits.begin());
    logits = model_.step(id, ref);
  }
  EXPECT_EQ(ref, state);  // the same state, token for token
}

TEST_F(GeneratorTest, ANextTurnContinuesFromTheStateExactly) {
  const mamba::Generator gen(model_, &tok_);
  mamba::GenerateParams params;
  params.stop_at_eos = false;
  params.max_tokens = 10;
  const auto prompt = tok_.encode("Hello"), reply = tok_.encode(" and then");
  // two turns on one state
  auto state = model_.new_state();
  mamba::Sampler a(mamba::SamplerParams{.temperature = 0});
  const auto turn1 = gen.generate(prompt, state, a, params, nullptr).tokens;
  const auto turn2 = gen.generate(reply, state, a, params, nullptr).tokens;
  // the same text fed from scratch in one prompt
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), turn1.begin(), turn1.end());
  all.insert(all.end(), reply.begin(), reply.end());
  auto fresh = model_.new_state();
  mamba::Sampler b(mamba::SamplerParams{.temperature = 0});
  EXPECT_EQ(gen.generate(all, fresh, b, params, nullptr).tokens, turn2);
  EXPECT_EQ(fresh.n_tokens, state.n_tokens);
}

TEST_F(GeneratorTest, StopsAtStopStringsEosAndCallback) {
  const mamba::Generator gen(model_, &tok_);
  auto state = model_.new_state();
  mamba::Sampler greedy(mamba::SamplerParams{.temperature = 0});
  mamba::GenerateParams params;
  params.max_tokens = 30;
  params.stop_at_eos = false;
  const auto free_run = gen.generate(tok_.encode("ab"), state, greedy, params, nullptr);
  const std::string text = tok_.decode_bytes(free_run.tokens);
  ASSERT_GE(text.size(), 6u);
  // a stop string taken from the middle of the free-running text
  params.stop = {text.substr(3, 2)};
  std::string streamed;
  state.reset();
  greedy.reset();
  const auto stopped = gen.generate(tok_.encode("ab"), state, greedy, params,
                                    [&](const mamba::TokenEvent& e) {
                                      streamed += e.text;
                                      return true;
                                    });
  EXPECT_EQ(stopped.stop, mamba::StopReason::StopString);
  EXPECT_EQ(streamed, text.substr(0, text.find(params.stop[0])));
  // EOS: make the first greedy token the tokenizer's EOS
  auto eos_tok = mamba::byte_tokenizer();
  eos_tok.set_special_ids(-1, free_run.tokens[0], -1);
  const mamba::Generator gen_eos(model_, &eos_tok);
  state.reset();
  greedy.reset();
  params.stop.clear();
  params.stop_at_eos = true;
  const auto eos = gen_eos.generate(tok_.encode("ab"), state, greedy, params, nullptr);
  EXPECT_EQ(eos.stop, mamba::StopReason::Eos);
  EXPECT_EQ(eos.generated_tokens, 1);
  // the callback says stop after 3
  state.reset();
  int seen = 0;
  const auto cb = gen.generate(tok_.encode("ab"), state, greedy, params,
                               [&](const mamba::TokenEvent&) { return ++seen < 3; });
  EXPECT_EQ(cb.stop, mamba::StopReason::Callback);
  EXPECT_EQ(cb.generated_tokens, 3);
}

TEST_F(GeneratorTest, ProbabilitiesOnRequestAndErrors) {
  const mamba::Generator gen(model_, &tok_);
  auto state = model_.new_state();
  mamba::Sampler s(mamba::SamplerParams{.temperature = 1.0f, .top_k = 5});
  mamba::GenerateParams params;
  params.max_tokens = 3;
  params.want_probs = true;
  gen.generate(tok_.encode("x"), state, s, params, [&](const mamba::TokenEvent& e) {
    if (e.id < 0) return true;
    EXPECT_FALSE(e.probs.empty());
    EXPECT_LE(e.probs.size(), 5u);
    double total = 0;
    for (const auto& c : e.probs) total += c.p;
    EXPECT_NEAR(total, 1.0, 1e-5);
    return true;
  });
  EXPECT_THROW(gen.generate({}, state, s, params, nullptr), mamba::ArgumentError);
  const mamba::Generator no_tok(model_, nullptr);
  params.stop = {"x"};
  EXPECT_THROW(no_tok.generate(tok_.encode("x"), state, s, params, nullptr), mamba::ArgumentError);
}

}  // namespace
