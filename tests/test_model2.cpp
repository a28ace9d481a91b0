// Mamba-2 models against the float64 recurrence of scripts/mamba2_ref.py, through both forms of
// the scan (the per-token recurrence and the chunked SSD form), and the state contract: either
// prefill leaves the same state, and prefill then step equals stepping all the way.
#include <gtest/gtest.h>

#include <cstdio>
#include <mamba/mamba.hpp>
#include <mamba/model/check_weights.hpp>

#include "reference_fixture.hpp"

namespace {

// ngroups 1 / 2, headdim 8 / 6 / 16, d_state 12 / 10 / 16, chunk 8 / 8 / 16, D per head and per
// channel, time_step_limit clamping or not, HF and state-spaces layouts, F32 and BF16, safetensors
// and torch.save's pytorch_model.bin.
const char* kCases[] = {"mamba2_tiny", "mamba2_groups", "mamba2_ss", "mamba2_ss_bin"};
const mamba::ScanPath kPaths[] = {mamba::ScanPath::Auto, mamba::ScanPath::Recurrence,
                                  mamba::ScanPath::Chunked};

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
std::vector<double> rows(const std::vector<T>& v, size_t first, size_t count, size_t width) {
  return std::vector<double>(v.begin() + first * width, v.begin() + (first + count) * width);
}

template <class T>
double state_error(const mamba::BasicState<T>& a, const mamba::BasicState<T>& b) {
  double worst = 0;
  for (size_t l = 0; l < a.layers.size(); ++l) {
    worst = std::max(worst, relative_error(a.layers[l].ssm, b.layers[l].ssm));
    worst = std::max(worst, relative_error(a.layers[l].conv, b.layers[l].conv));
  }
  return worst;
}

template <class T>
class Mamba2Test : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(Mamba2Test, Scalars);

TYPED_TEST(Mamba2Test, ConfigIsReadFromTheFile) {
  const auto tiny = mamba::BasicModel<TypeParam>::load(ReferenceFixture::load("mamba2_tiny").dir);
  EXPECT_EQ(tiny.config().arch, mamba::Arch::Mamba2);
  EXPECT_EQ(tiny.config().nheads, 4);
  EXPECT_EQ(tiny.config().headdim, 8);
  EXPECT_EQ(tiny.config().chunk_size, 8);
  EXPECT_FALSE(tiny.config().clamps_dt());
  const auto ss = mamba::BasicModel<TypeParam>::load(ReferenceFixture::load("mamba2_ss").dir);
  EXPECT_EQ(ss.config().ngroups, 2);
  EXPECT_EQ(ss.weights().layers[0].D.size(), 64u);  // per channel
  EXPECT_TRUE(ss.config().clamps_dt());
  EXPECT_EQ(ss.vocab_size(), 48);
}

TYPED_TEST(Mamba2Test, LogitsMatchFloat64ReferenceThroughEveryPath) {
  for (const char* name : kCases) {
    const auto ref = ReferenceFixture::load(name);
    const auto model = mamba::BasicModel<TypeParam>::load(ref.dir);
    ASSERT_EQ(model.vocab_size(), ref.vocab_size);
    for (auto path : kPaths) {
      SCOPED_TRACE(std::string(name) + " path " + std::to_string(static_cast<int>(path)));
      auto state = model.new_state();
      const auto logits = model.prefill(ref.tokens, state, mamba::Logits::All, path);
      const double err = relative_error(logits, ref.logits);
      EXPECT_LE(err, tolerance<TypeParam>());
      std::printf("[ measured ] %-13s %-6s path %d relative error %.2e\n", name,
                  sizeof(TypeParam) == 4 ? "float" : "double", static_cast<int>(path), err);
      EXPECT_EQ(state.n_tokens, static_cast<int64_t>(ref.tokens.size()));
    }
  }
}

// Prefixes shorter than, equal to, a multiple of, and not a multiple of the chunk length.
TYPED_TEST(Mamba2Test, ChunkedEqualsRecurrenceAndLeavesTheSameState) {
  for (const char* name : kCases) {
    const auto ref = ReferenceFixture::load(name);
    const auto model = mamba::BasicModel<TypeParam>::load(ref.dir);
    const size_t V = ref.vocab_size, chunk = model.config().chunk_size;
    for (size_t n : {size_t{1}, chunk / 2 + 1, chunk, 2 * chunk, chunk + 5, ref.tokens.size()}) {
      if (n > ref.tokens.size()) continue;
      SCOPED_TRACE(std::string(name) + " n=" + std::to_string(n));
      const std::span<const int32_t> prefix(ref.tokens.data(), n);
      auto rec = model.new_state(), chk = model.new_state();
      const auto a = model.prefill(prefix, rec, mamba::Logits::All, mamba::ScanPath::Recurrence);
      const auto b = model.prefill(prefix, chk, mamba::Logits::All, mamba::ScanPath::Chunked);
      EXPECT_LE(relative_error(b, a), tolerance<TypeParam>());
      EXPECT_LE(relative_error(rows(b, 0, n, V), rows(ref.logits, 0, n, V)),
                tolerance<TypeParam>());
      EXPECT_LE(state_error(chk, rec), tolerance<TypeParam>());
    }
  }
}

// Prefill k tokens (either path), then step the rest: the reference's logits all the way.
TYPED_TEST(Mamba2Test, PrefillThenStepEqualsTheReference) {
  for (const char* name : kCases) {
    const auto ref = ReferenceFixture::load(name);
    const auto model = mamba::BasicModel<TypeParam>::load(ref.dir);
    const size_t V = ref.vocab_size, T = ref.tokens.size();
    for (auto path : {mamba::ScanPath::Recurrence, mamba::ScanPath::Chunked}) {
      for (size_t k : {size_t{0}, size_t{3}, size_t{8}, size_t{13}, T - 1}) {
        SCOPED_TRACE(std::string(name) + " k=" + std::to_string(k));
        auto state = model.new_state();
        std::vector<TypeParam> got;
        if (k > 0)
          got = model.prefill(std::span<const int32_t>(ref.tokens.data(), k), state,
                              mamba::Logits::All, path);
        for (size_t t = k; t < T; ++t) {
          const auto l = model.step(ref.tokens[t], state);
          got.insert(got.end(), l.begin(), l.end());
        }
        EXPECT_LE(relative_error(got, ref.logits), tolerance<TypeParam>());
        EXPECT_EQ(rows(got, T - 1, 1, V).size(), V);
      }
    }
  }
}

// Equal to float rounding: the batched kernels sum in another order than a single vector's (on
// the AVX-512 kernels the Mamba-1 batch's states drifted 1.07e-6 from stepping alone), so the
// bound is the float tolerance; a batch that mixed up its sequences would be off by O(1).
TEST(Mamba2, StepBatchEqualsSteppingEachSequenceAlone) {
  const auto ref = ReferenceFixture::load("mamba2_groups");
  const auto model = mamba::Model::load(ref.dir);
  // three sequences at different points of the same token list
  std::vector<mamba::State> batch, alone;
  for (size_t b = 0; b < 3; ++b) {
    auto s = model.new_state();
    model.prefill(std::span<const int32_t>(ref.tokens.data(), 2 + 4 * b), s);
    batch.push_back(s);
    alone.push_back(s);
  }
  for (int round = 0; round < 4; ++round) {
    std::vector<int32_t> next;
    for (size_t b = 0; b < 3; ++b) next.push_back(ref.tokens[(2 + 4 * b + round) % 21]);
    const auto logits = model.step_batch(next, batch);
    for (size_t b = 0; b < 3; ++b) {
      const auto one = model.step(next[b], alone[b]);
      EXPECT_LE(relative_error(std::vector<float>(logits.begin() + b * ref.vocab_size,
                                                  logits.begin() + (b + 1) * ref.vocab_size),
                               one),
                tolerance<float>());
      EXPECT_LE(state_error(batch[b], alone[b]), tolerance<float>());
    }
  }
}

TEST(Mamba2, StatesOfTheTwoFamiliesDoNotMix) {
  const auto m1 = mamba::Model::load(ReferenceFixture::load("tiny").dir);
  const auto m2 = mamba::Model::load(ReferenceFixture::load("mamba2_tiny").dir);
  auto s1 = m1.new_state();
  auto s2 = m2.new_state();
  const int32_t token = 1;
  EXPECT_THROW(m2.prefill(std::span(&token, 1), s1), mamba::ArgumentError);
  EXPECT_THROW(m1.step(token, s2), mamba::ArgumentError);
  // conv state over x, B and C
  EXPECT_EQ(s2.layers[0].conv.size(), static_cast<size_t>(3 * (32 + 2 * 12)));
  EXPECT_EQ(s2.layers[0].ssm.size(), static_cast<size_t>(4 * 8 * 12));
}

// The GGUF files of scripts/make_gguf_fixtures.py (ngroups 2 in f32 and q4_k; Q8_0 output).
TEST(Mamba2, GgufMatchesTheReferenceOnTheStoredWeights) {
  for (const char* name : {"mamba2_f32", "mamba2_q8_0", "mamba2_q4_k"}) {
    SCOPED_TRACE(name);
    const auto ref = ReferenceFixture::load(std::string("gguf_models/") + name);
    const auto model = mamba::Model::load(ref.dir + "/model.gguf");
    EXPECT_EQ(model.config().arch, mamba::Arch::Mamba2);
    EXPECT_EQ(model.config().chunk_size, 256);
    for (auto path : kPaths) {
      auto state = model.new_state();
      const double err =
          relative_error(model.prefill(ref.tokens, state, mamba::Logits::All, path), ref.logits);
      EXPECT_LE(err, 1e-5);
      std::printf("[ measured ] %-12s path %d relative error %.2e\n", name, static_cast<int>(path),
                  err);
    }
    const auto dbl = mamba::BasicModel<double>::load(ref.dir + "/model.gguf");
    auto state = dbl.new_state();
    EXPECT_LE(relative_error(dbl.prefill(ref.tokens, state, mamba::Logits::All), ref.logits), 1e-9);
  }
}

TEST(Mamba2, CheckWeightsNamesMamba2Tensors) {
  const auto model = mamba::Model::load(ReferenceFixture::load("mamba2_groups").dir);
  EXPECT_TRUE(mamba::check_weights(model).empty());
}

}  // namespace
