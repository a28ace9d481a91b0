// The accuracy effect of int8 activations (QuantizedDot::Int8, the default) on decode, measured
// on the GGUF fixtures against the float64 reference on the stored weights. The float path
// stays within 1e-5 (test_gguf_model); the integer path rounds every activation vector to 8 bits.
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
    EXPECT_EQ(step_logits(model, ref.tokens), approx);  // int8 is the default
    const double err_exact = relative_error(exact, ref.logits);
    const double err = relative_error(approx, ref.logits);
    std::printf("[ measured ] %-11s int8 activations: relative error %.2e (float path %.2e)\n",
                name, err, err_exact);
    EXPECT_LE(err_exact, 1e-5);
    EXPECT_LE(err, 5e-2);
    EXPECT_GT(err, err_exact);  // the mode did switch
  }
}

}  // namespace
