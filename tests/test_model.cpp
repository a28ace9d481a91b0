// Whole-model logits against the float64 reference (scripts/reference.py), in float and double,
// and the state contract: prefill == step-by-step == prefill in chunks.
#include <gtest/gtest.h>

#include <mamba/mamba.hpp>

#include "reference_fixture.hpp"

namespace {

// state_spaces_bin: the state_spaces weights as torch.save's pytorch_model.bin, tied by storage;
// sharded_bin: the sharded weights as torch.save shards with a pytorch_model.bin.index.json
const char* kCases[] = {"tiny", "untied_bias", "state_spaces", "state_spaces_bin", "bf16",
                        "f16",  "sharded",     "sharded_bin",  "falcon",           "bytes"};

template <class T>
double tolerance();
template <>
double tolerance<float>() {
  return 1e-5;
}
template <>
double tolerance<double>() {
  return 1e-12;
}

template <class T>
class ModelTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(ModelTest, Scalars);

TYPED_TEST(ModelTest, LogitsMatchFloat64Reference) {
  for (const char* name : kCases) {
    SCOPED_TRACE(name);
    const auto ref = ReferenceFixture::load(name);
    const auto model = mamba::BasicModel<TypeParam>::load(ref.dir);
    ASSERT_EQ(model.vocab_size(), ref.vocab_size);
    auto state = model.new_state();
    const auto logits = model.prefill(ref.tokens, state, mamba::Logits::All);
    const double err = relative_error(logits, ref.logits);
    EXPECT_LE(err, tolerance<TypeParam>());
    EXPECT_EQ(state.n_tokens, static_cast<int64_t>(ref.tokens.size()));
  }
}

TYPED_TEST(ModelTest, LastLogitsAreTheLastRow) {
  const auto ref = ReferenceFixture::load("untied_bias");
  const auto model = mamba::BasicModel<TypeParam>::load(ref.dir);
  auto s1 = model.new_state(), s2 = model.new_state();
  const auto all = model.prefill(ref.tokens, s1, mamba::Logits::All);
  const auto last = model.prefill(ref.tokens, s2);
  ASSERT_EQ(last.size(), static_cast<size_t>(model.vocab_size()));
  const std::vector<TypeParam> last_row(all.end() - model.vocab_size(), all.end());
  EXPECT_LE(relative_error(last, last_row), tolerance<TypeParam>() / 10);  // matvec vs GEMM
  EXPECT_EQ(s1, s2);
}

TYPED_TEST(ModelTest, PrefillEqualsStepByStep) {
  for (const char* name : kCases) {
    SCOPED_TRACE(name);
    const auto ref = ReferenceFixture::load(name);
    const auto model = mamba::BasicModel<TypeParam>::load(ref.dir);
    auto prefilled = model.new_state(), stepped = model.new_state();
    const auto all = model.prefill(ref.tokens, prefilled, mamba::Logits::All);
    std::vector<TypeParam> step_logits;
    for (int32_t t : ref.tokens) {
      const auto l = model.step(t, stepped);
      step_logits.insert(step_logits.end(), l.begin(), l.end());
    }
    EXPECT_LE(relative_error(step_logits, all), tolerance<TypeParam>() / 10);
    for (size_t l = 0; l < prefilled.layers.size(); ++l) {
      EXPECT_LE(relative_error(stepped.layers[l].ssm, prefilled.layers[l].ssm),
                tolerance<TypeParam>() / 10);
      EXPECT_LE(relative_error(stepped.layers[l].conv, prefilled.layers[l].conv),
                tolerance<TypeParam>() / 10);
    }
    // and both agree with the reference
    EXPECT_LE(relative_error(step_logits, ref.logits), tolerance<TypeParam>());
  }
}

TYPED_TEST(ModelTest, PrefillInChunksCarriesTheState) {
  const auto ref = ReferenceFixture::load("tiny");
  const auto model = mamba::BasicModel<TypeParam>::load(ref.dir);
  const std::span<const int32_t> all(ref.tokens);
  // splits of 1, 2 (shorter than d_conv - 1) and 5 tokens
  for (size_t split : {size_t{1}, size_t{2}, size_t{5}}) {
    SCOPED_TRACE(split);
    auto whole = model.new_state(), chunked = model.new_state();
    const auto expected = model.prefill(all, whole, mamba::Logits::All);
    auto got = model.prefill(all.first(split), chunked, mamba::Logits::All);
    const auto rest = model.prefill(all.subspan(split), chunked, mamba::Logits::All);
    got.insert(got.end(), rest.begin(), rest.end());
    EXPECT_LE(relative_error(got, expected), tolerance<TypeParam>() / 10);
    EXPECT_EQ(chunked.n_tokens, whole.n_tokens);
  }
}

TYPED_TEST(ModelTest, LongPromptCrossesTheInternalChunk) {
  // Prefill bounds its activations by working in chunks of 256 tokens; 600 tokens cross two.
  const auto ref = ReferenceFixture::load("tiny");
  const auto model = mamba::BasicModel<TypeParam>::load(ref.dir);
  std::vector<int32_t> tokens(600);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = (i * 7 + 3) % ref.vocab_size;
  auto a = model.new_state(), b = model.new_state();
  const auto whole = model.prefill(tokens, a, mamba::Logits::All);
  std::vector<TypeParam> stepped;
  for (int32_t t : tokens) {
    const auto l = model.step(t, b);
    stepped.insert(stepped.end(), l.begin(), l.end());
  }
  EXPECT_LE(relative_error(stepped, whole), tolerance<TypeParam>() / 10);
}

TEST(Model, StateIsCopyableAndResettable) {
  const auto ref = ReferenceFixture::load("tiny");
  const auto model = mamba::Model::load(ref.dir);
  auto state = model.new_state();
  model.prefill(std::span<const int32_t>(ref.tokens).first(6), state);
  const auto checkpoint = state;  // copy
  const auto a = model.step(3, state);
  state = checkpoint;  // roll back
  EXPECT_EQ(model.step(3, state), a);
  state.reset();
  EXPECT_EQ(state, model.new_state());
}

TEST(Model, RejectsBadTokensAndForeignStates) {
  const auto tiny = mamba::Model::load(ReferenceFixture::load("tiny").dir);
  const auto other = mamba::Model::load(ReferenceFixture::load("untied_bias").dir);
  auto state = tiny.new_state();
  EXPECT_THROW(tiny.step(-1, state), mamba::ArgumentError);
  EXPECT_THROW(tiny.step(static_cast<int32_t>(tiny.vocab_size()), state), mamba::ArgumentError);
  EXPECT_THROW(tiny.prefill(std::vector<int32_t>{}, state), mamba::ArgumentError);
  auto foreign = other.new_state();
  EXPECT_THROW(tiny.step(1, foreign), mamba::ArgumentError);
  std::vector<float> wrong_size(3);
  EXPECT_THROW(tiny.step(1, state, wrong_size), mamba::ArgumentError);
}

TEST(Model, LoadsASafetensorsFileDirectly) {
  const auto ref = ReferenceFixture::load("tiny");
  const auto model = mamba::Model::load(ref.dir + "/model.safetensors");
  auto state = model.new_state();
  EXPECT_LE(relative_error(model.prefill(ref.tokens, state, mamba::Logits::All), ref.logits), 1e-5);
}

}  // namespace

namespace {

// A batch and each sequence alone are two float computations of the same steps whose sums run in
// different orders (the batched kernels take several vectors per row), so they agree to float
// rounding, not bit for bit: both are held to the float tolerance against the same steps in
// float64, and to each other. A batch that mixed up its sequences or their states is off by far
// more (two states swapped inside step_batch: 0.27-0.33).
TEST(Model, StepBatchEqualsSteppingEachSequenceAlone) {
  const double tol = tolerance<float>();
  for (const char* name : {"tiny", "untied_bias", "falcon"}) {
    SCOPED_TRACE(name);
    const auto ref = ReferenceFixture::load(name);
    const auto model = mamba::Model::load(ref.dir);
    const auto model64 = mamba::BasicModel<double>::load(ref.dir);
    // 8 sequences with different prompts: each has consumed a different prefix of the fixture
    constexpr int kBatch = 8;
    std::vector<mamba::State> batch, alone;
    std::vector<mamba::BasicState<double>> exact;
    for (int b = 0; b < kBatch; ++b) {
      const auto prompt = std::span<const int32_t>(ref.tokens).first(b + 1);
      batch.push_back(model.new_state());
      model.prefill(prompt, batch.back());
      exact.push_back(model64.new_state());
      model64.prefill(prompt, exact.back());
    }
    alone = batch;
    std::vector<int32_t> next(kBatch);
    for (int b = 0; b < kBatch; ++b) next[b] = (b * 5 + 1) % ref.vocab_size;
    for (int step = 0; step < 6; ++step) {
      const auto logits = model.step_batch(next, batch);
      ASSERT_EQ(logits.size(), size_t(kBatch * model.vocab_size()));
      for (int b = 0; b < kBatch; ++b) {
        SCOPED_TRACE(::testing::Message() << "step " << step << ", sequence " << b);
        const auto want = model.step(next[b], alone[b]);
        const auto want64 = model64.step(next[b], exact[b]);
        const std::vector<float> got(logits.begin() + b * model.vocab_size(),
                                     logits.begin() + (b + 1) * model.vocab_size());
        EXPECT_LE(relative_error(got, want64), tol);
        EXPECT_LE(relative_error(want, want64), tol);
        EXPECT_LE(relative_error(got, want), tol);
        // greedy, token for token
        const int32_t from_batch = std::max_element(got.begin(), got.end()) - got.begin();
        next[b] = std::max_element(want.begin(), want.end()) - want.begin();
        EXPECT_EQ(from_batch, next[b]);
      }
    }
    for (int b = 0; b < kBatch; ++b) {
      EXPECT_EQ(batch[b].n_tokens, alone[b].n_tokens);
      for (size_t l = 0; l < alone[b].layers.size(); ++l) {
        EXPECT_LE(relative_error(batch[b].layers[l].ssm, exact[b].layers[l].ssm), tol);
        EXPECT_LE(relative_error(alone[b].layers[l].ssm, exact[b].layers[l].ssm), tol);
        EXPECT_LE(relative_error(batch[b].layers[l].conv, exact[b].layers[l].conv), tol);
      }
    }
  }
}

TEST(Model, StepBatchChecksItsArguments) {
  const auto model = mamba::Model::load(ReferenceFixture::load("tiny").dir);
  std::vector<mamba::State> states(2, model.new_state());
  EXPECT_THROW(model.step_batch(std::vector<int32_t>{1}, states), mamba::ArgumentError);
  EXPECT_THROW(model.step_batch(std::vector<int32_t>{1, 999}, states), mamba::ArgumentError);
  EXPECT_TRUE(model.step_batch({}, std::span<mamba::State>()).empty());
}

}  // namespace
