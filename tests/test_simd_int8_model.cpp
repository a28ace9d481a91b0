// The accuracy effect of int8 activations (QuantizedDot::Int8, the default on AVX-512 VNNI and on
// AVX2) on decode, measured on the GGUF fixtures against the float64 reference on the stored
// weights. The float path stays within 1e-5 (test_gguf_model); the integer path rounds every
// activation vector to 8 bits.
#include <gtest/gtest.h>

#include <cstdio>
#include <mamba/mamba.hpp>

#include "reference_fixture.hpp"

namespace {

std::vector<float> step_logits(const mamba::Model& model, const std::vector<int32_t>& tokens) {
  std::vector<float> all;
  auto state = model.new_state();
  for (int32_t t : tokens) {
    const auto l = model.step(t, state);
    all.insert(all.end(), l.begin(), l.end());
  }
  return all;
}

// Mamba-1 in the four block types, Mamba-2 (2 groups) in two.
TEST(Int8Activations, StepLogitsStayNearTheReference) {
  for (const char* name : {"q8_0", "q4_0", "q4_k", "q6_k", "mamba2_q8_0", "mamba2_q4_k"}) {
    SCOPED_TRACE(name);
    const auto ref = ReferenceFixture::load(std::string("gguf_models/") + name);
    const auto model = mamba::Model::load(ref.dir + "/model.gguf");
    std::vector<float> exact, approx;
    {
      mamba::QuantizedDotScope mode(mamba::QuantizedDot::Float);
      exact = step_logits(model, ref.tokens);
    }
    {
      mamba::QuantizedDotScope mode(mamba::QuantizedDot::Int8);
      approx = step_logits(model, ref.tokens);
    }
    // the default: int8 where the integer kernels are SIMD
    EXPECT_EQ(step_logits(model, ref.tokens), mamba::simd::kInt8Kernels ? approx : exact);
    const double err_exact = relative_error(exact, ref.logits);
    const double err = relative_error(approx, ref.logits);
    std::printf("[ measured ] %-11s int8 activations: relative error %.2e (float path %.2e)\n",
                name, err, err_exact);
    EXPECT_LE(err_exact, 1e-5);
    EXPECT_LE(err, 5e-2);
    EXPECT_GT(err, err_exact);  // the mode did switch
  }
}

// Batched decode rounds each sequence's activations as stepping it alone does, and sums the
// same integer block products, so the logits agree up to float summation order.
TEST(Int8Activations, StepBatchRoundsLikeStep) {
  for (const char* name : {"q8_0", "q4_0", "q4_k", "q6_k", "mamba2_q8_0", "mamba2_q4_k"}) {
    SCOPED_TRACE(name);
    const auto ref = ReferenceFixture::load(std::string("gguf_models/") + name);
    const auto model = mamba::Model::load(ref.dir + "/model.gguf");
    mamba::QuantizedDotScope mode(mamba::QuantizedDot::Int8);
    constexpr int kBatch = 5;
    std::vector<mamba::State> states;
    for (int b = 0; b < kBatch; ++b) states.push_back(model.new_state());
    std::vector<std::vector<float>> alone(kBatch), batched(kBatch);
    for (size_t i = 0; i < ref.tokens.size(); ++i) {
      std::vector<int32_t> next(kBatch);  // a different sequence in each slot
      for (int b = 0; b < kBatch; ++b)
        next[b] = ref.tokens[(i + size_t(b)) % ref.tokens.size()] % int32_t(model.vocab_size());
      const auto l = model.step_batch(next, states);
      for (int b = 0; b < kBatch; ++b)
        batched[b].insert(batched[b].end(), l.begin() + b * model.vocab_size(),
                          l.begin() + (b + 1) * model.vocab_size());
    }
    for (int b = 0; b < kBatch; ++b) {
      auto state = model.new_state();
      for (size_t i = 0; i < ref.tokens.size(); ++i) {
        const int32_t t = ref.tokens[(i + size_t(b)) % ref.tokens.size()];
        const auto l = model.step(t % int32_t(model.vocab_size()), state);
        alone[b].insert(alone[b].end(), l.begin(), l.end());
      }
      const double err = relative_error(batched[b], alone[b]);
      std::printf("[ measured ] %-11s batch slot %d against stepping alone: %.2e\n", name, b, err);
      EXPECT_LE(err, 1e-5);
    }
  }
}

}  // namespace
