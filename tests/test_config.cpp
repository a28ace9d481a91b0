// ModelConfig from both config.json layouts, with their documented defaults, and validate().
#include <gtest/gtest.h>

#include <mamba/config.hpp>

namespace {

using nlohmann::json;
using mamba::ModelConfig;

TEST(Config, HuggingFaceKeysAndDefaults) {
  const auto c = ModelConfig::from_json(
      json{{"hidden_size", 768}, {"num_hidden_layers", 24}, {"vocab_size", 50280},
           {"model_type", "mamba"}},
      "t");
  EXPECT_EQ(c.d_model, 768);
  EXPECT_EQ(c.n_layer, 24);
  EXPECT_EQ(c.vocab_size, 50280);
  EXPECT_EQ(c.d_state, 16);
  EXPECT_EQ(c.d_conv, 4);
  EXPECT_EQ(c.d_inner, 1536);
  EXPECT_EQ(c.dt_rank, 48);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-5);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_TRUE(c.use_conv_bias);
  EXPECT_FALSE(c.use_bias);
  EXPECT_FALSE(c.dt_b_c_rms);
}

TEST(Config, HuggingFaceExplicitValues) {
  const auto c = ModelConfig::from_json(
      json{{"hidden_size", 100}, {"num_hidden_layers", 3}, {"vocab_size", 77},
           {"state_size", 8}, {"conv_kernel", 3}, {"expand", 3}, {"intermediate_size", 320},
           {"time_step_rank", "auto"}, {"layer_norm_epsilon", 1e-6}, {"use_bias", true},
           {"use_conv_bias", false}, {"tie_word_embeddings", false},
           {"model_type", "falcon_mamba"}, {"mixer_rms_eps", 1e-4}},
      "t");
  EXPECT_EQ(c.d_inner, 320);
  EXPECT_EQ(c.dt_rank, 7);  // ceil(100 / 16)
  EXPECT_EQ(c.d_conv, 3);
  EXPECT_TRUE(c.use_bias);
  EXPECT_FALSE(c.use_conv_bias);
  EXPECT_FALSE(c.tie_embeddings);
  EXPECT_TRUE(c.dt_b_c_rms);
  EXPECT_DOUBLE_EQ(c.mixer_eps, 1e-4);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-6);
}

TEST(Config, StateSpacesLayoutPadsTheVocab) {
  const auto c = ModelConfig::from_json(
      json{{"d_model", 768}, {"n_layer", 24}, {"vocab_size", 50277},
           {"ssm_cfg", json::object()}, {"rms_norm", true}, {"residual_in_fp32", true},
           {"fused_add_norm", true}, {"pad_vocab_size_multiple", 8}},
      "t");
  EXPECT_EQ(c.vocab_size, 50280);
  EXPECT_EQ(c.d_state, 16);
  EXPECT_EQ(c.d_inner, 1536);
  EXPECT_EQ(c.dt_rank, 48);
  const auto d = ModelConfig::from_json(
      json{{"d_model", 64}, {"n_layer", 2}, {"vocab_size", 10},
           {"ssm_cfg", {{"d_state", 4}, {"d_conv", 2}, {"dt_rank", 9}}},
           {"pad_vocab_size_multiple", 16}},
      "t");
  EXPECT_EQ(d.vocab_size, 16);
  EXPECT_EQ(d.d_state, 4);
  EXPECT_EQ(d.d_conv, 2);
  EXPECT_EQ(d.dt_rank, 9);
}

TEST(Config, RejectsImpossibleValuesWithTheirNames) {
  const json base{{"hidden_size", 16}, {"num_hidden_layers", 2}, {"vocab_size", 10}};
  auto expect_error = [&](json patch, const std::string& needle) {
    json j = base;
    j.merge_patch(patch);
    try {
      ModelConfig::from_json(j, "cfg.json");
      ADD_FAILURE() << "accepted " << j.dump();
    } catch (const mamba::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("cfg.json"), std::string::npos) << e.what();
    }
  };
  expect_error({{"hidden_size", 0}}, "d_model");
  expect_error({{"num_hidden_layers", -3}}, "n_layer");
  expect_error({{"vocab_size", 1LL << 40}}, "vocab_size");
  expect_error({{"state_size", 0}}, "d_state");
  expect_error({{"conv_kernel", 1000}}, "d_conv");
  expect_error({{"time_step_rank", 100}}, "dt_rank");  // more than d_inner = 32
  expect_error({{"layer_norm_epsilon", -1.0}}, "layer_norm_epsilon");
  expect_error({{"hidden_size", "big"}}, "hidden_size");
  expect_error({{"hidden_size", 16.5}}, "hidden_size");
  expect_error({{"vocab_size", nullptr}}, "vocab_size");
  expect_error({{"model_type", "llama"}}, "llama");
  expect_error({{"model_type", "mamba2"}}, "Mamba-2");
  EXPECT_THROW(ModelConfig::from_json(json::array(), "x"), mamba::FormatError);
  EXPECT_THROW(ModelConfig::from_file("/nonexistent/config.json"), mamba::Error);
}

}  // namespace
