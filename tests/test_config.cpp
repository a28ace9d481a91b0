// ModelConfig from both config.json layouts, with their documented defaults, and validate().
#include <gtest/gtest.h>

#include <cmath>
#include <mamba/config.hpp>
#include <string>
#include <utility>
#include <vector>

namespace {

using mamba::ModelConfig;
using nlohmann::json;

TEST(Config, HuggingFaceKeysAndDefaults) {
  const auto c = ModelConfig::from_json(json{{"hidden_size", 768},
                                             {"num_hidden_layers", 24},
                                             {"vocab_size", 50280},
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
  const auto c = ModelConfig::from_json(json{{"hidden_size", 100},
                                             {"num_hidden_layers", 3},
                                             {"vocab_size", 77},
                                             {"state_size", 8},
                                             {"conv_kernel", 3},
                                             {"expand", 3},
                                             {"intermediate_size", 320},
                                             {"time_step_rank", "auto"},
                                             {"layer_norm_epsilon", 1e-6},
                                             {"use_bias", true},
                                             {"use_conv_bias", false},
                                             {"tie_word_embeddings", false},
                                             {"model_type", "falcon_mamba"},
                                             {"mixer_rms_eps", 1e-4}},
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
  const auto c = ModelConfig::from_json(json{{"d_model", 768},
                                             {"n_layer", 24},
                                             {"vocab_size", 50277},
                                             {"ssm_cfg", json::object()},
                                             {"rms_norm", true},
                                             {"residual_in_fp32", true},
                                             {"fused_add_norm", true},
                                             {"pad_vocab_size_multiple", 8}},
                                        "t");
  EXPECT_EQ(c.vocab_size, 50280);
  EXPECT_EQ(c.d_state, 16);
  EXPECT_EQ(c.d_inner, 1536);
  EXPECT_EQ(c.dt_rank, 48);
  const auto d =
      ModelConfig::from_json(json{{"d_model", 64},
                                  {"n_layer", 2},
                                  {"vocab_size", 10},
                                  {"ssm_cfg", {{"d_state", 4}, {"d_conv", 2}, {"dt_rank", 9}}},
                                  {"pad_vocab_size_multiple", 16}},
                             "t");
  EXPECT_EQ(d.vocab_size, 16);
  EXPECT_EQ(d.d_state, 4);
  EXPECT_EQ(d.d_conv, 2);
  EXPECT_EQ(d.dt_rank, 9);
}

// `base` with `patch` merged in is refused with a message naming `needle` and the file.
void expect_config_error(const json& base, const json& patch, const std::string& needle) {
  json j = base;
  j.merge_patch(patch);
  try {
    ModelConfig::from_json(j, "cfg.json");
    ADD_FAILURE() << "accepted " << j.dump();
  } catch (const mamba::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cfg.json"), std::string::npos) << e.what();
  }
}

TEST(Config, RejectsImpossibleValuesWithTheirNames) {
  const json base{{"hidden_size", 16}, {"num_hidden_layers", 2}, {"vocab_size", 10}};
  auto expect_error = [&](const json& patch, const std::string& needle) {
    expect_config_error(base, patch, needle);
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
  expect_error({{"model_type", "mamba2"}, {"head_dim", 8}, {"num_heads", 3}}, "nheads");
  EXPECT_THROW(ModelConfig::from_json(json::array(), "x"), mamba::FormatError);
  EXPECT_THROW(ModelConfig::from_file("/nonexistent/config.json"), mamba::Error);
}

// transformers' Mamba2Config as mamba2-130m's config.json spells it.
json mamba2_130m() {
  return json{{"model_type", "mamba2"},
              {"hidden_size", 768},
              {"num_hidden_layers", 24},
              {"vocab_size", 50288},
              {"num_heads", 24},
              {"head_dim", 64},
              {"n_groups", 1},
              {"state_size", 128},
              {"expand", 2},
              {"conv_kernel", 4},
              {"chunk_size", 256},
              {"tie_word_embeddings", true},
              {"layer_norm_epsilon", 1e-5}};
}

TEST(Config, Mamba2HuggingFace) {
  const auto c = ModelConfig::from_json(mamba2_130m(), "t");
  EXPECT_EQ(c.arch, mamba::Arch::Mamba2);
  EXPECT_EQ(c.d_inner, 1536);
  EXPECT_EQ(c.nheads, 24);
  EXPECT_EQ(c.headdim, 64);
  EXPECT_EQ(c.ngroups, 1);
  EXPECT_EQ(c.d_state, 128);
  EXPECT_EQ(c.dt_rank, 24);
  EXPECT_EQ(c.chunk_size, 256);
  EXPECT_EQ(c.conv_dim(), 1536 + 2 * 128);
  EXPECT_EQ(c.d_in_proj(), 2 * 1536 + 2 * 128 + 24);
  EXPECT_FALSE(c.clamps_dt());
  // the defaults of Mamba2Config for what a file leaves out
  auto j = mamba2_130m();
  for (const char* k : {"num_heads", "n_groups", "chunk_size", "tie_word_embeddings"}) j.erase(k);
  const auto d = ModelConfig::from_json(j, "t");
  EXPECT_EQ(d.nheads, 24);  // d_inner / head_dim
  EXPECT_EQ(d.ngroups, 8);
  EXPECT_EQ(d.chunk_size, 256);
  EXPECT_FALSE(d.tie_embeddings);
}

// Python writes float("inf") as a bare Infinity, which strict JSON rejects; other writers quote it
// or wrap it. All three read as +inf, and a finite limit turns the clamp on.
TEST(Config, Mamba2TimeStepLimitSpellings) {
  std::string text = mamba2_130m().dump();
  text.pop_back();
  for (const char* limit : {R"([0.0, Infinity])", R"([0.0, "Infinity"])",
                            R"([0.0, {"__float__": "Infinity"}])", R"([0, "inf"])"}) {
    SCOPED_TRACE(limit);
    const auto c = ModelConfig::from_json_text(text + R"(,"time_step_limit":)" + limit + "}", "t");
    EXPECT_EQ(c.dt_min, 0.0);
    EXPECT_TRUE(std::isinf(c.dt_max) && c.dt_max > 0);
    EXPECT_FALSE(c.clamps_dt());
  }
  const auto c = ModelConfig::from_json_text(text + R"(,"time_step_limit":[0.001, 0.1]})", "t");
  EXPECT_DOUBLE_EQ(c.dt_min, 0.001);
  EXPECT_DOUBLE_EQ(c.dt_max, 0.1);
  EXPECT_TRUE(c.clamps_dt());
  // the bare word is quoted, not the same word inside a string (with escaped quotes)
  const auto d = ModelConfig::from_json_text(
      text + R"(,"time_step_limit":[0.001, Infinity], "x": "Infinity NaN \"Infinity\""})", "t");
  EXPECT_DOUBLE_EQ(d.dt_min, 0.001);
  EXPECT_TRUE(std::isinf(d.dt_max));
  EXPECT_TRUE(d.clamps_dt());
  // bare words in strings are left alone; bad bounds and still-bad JSON are errors naming the key
  for (const char* bad : {R"([0.1, 0.01])", R"([0.0])", R"("big")", R"([-Infinity, 1])",
                          R"([0, "huge"])", R"([NaN, 1])"}) {
    SCOPED_TRACE(bad);
    try {
      ModelConfig::from_json_text(text + R"(,"time_step_limit":)" + bad + "}", "cfg.json");
      ADD_FAILURE() << "accepted";
    } catch (const mamba::Error& e) {
      EXPECT_NE(std::string(e.what()).find("time_step_limit"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("cfg.json"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(ModelConfig::from_json_text(text + R"(,"x": Infinit})", "t"), mamba::FormatError);
}

TEST(Config, Mamba2StateSpaces) {
  const auto c = ModelConfig::from_json(json{{"d_model", 768},
                                             {"n_layer", 24},
                                             {"d_intermediate", 0},
                                             {"vocab_size", 50277},
                                             {"ssm_cfg", {{"layer", "Mamba2"}}},
                                             {"attn_layer_idx", json::array()},
                                             {"rms_norm", true},
                                             {"pad_vocab_size_multiple", 16}},
                                        "t");
  EXPECT_EQ(c.arch, mamba::Arch::Mamba2);
  EXPECT_EQ(c.vocab_size, 50288);
  EXPECT_EQ(c.d_state, 128);
  EXPECT_EQ(c.headdim, 64);
  EXPECT_EQ(c.nheads, 24);
  EXPECT_EQ(c.ngroups, 1);
  EXPECT_EQ(c.chunk_size, 256);
  EXPECT_FALSE(c.clamps_dt());
  const auto d = ModelConfig::from_json(json{{"d_model", 64},
                                             {"n_layer", 2},
                                             {"vocab_size", 10},
                                             {"ssm_cfg",
                                              {{"layer", "Mamba2"},
                                               {"d_state", 16},
                                               {"headdim", 32},
                                               {"ngroups", 2},
                                               {"chunk_size", 64},
                                               {"dt_limit", {0.01, 0.2}},
                                               {"conv_bias", false}}}},
                                        "t");
  EXPECT_EQ(d.nheads, 4);
  EXPECT_EQ(d.ngroups, 2);
  EXPECT_EQ(d.chunk_size, 64);
  EXPECT_DOUBLE_EQ(d.dt_max, 0.2);
  EXPECT_FALSE(d.use_conv_bias);
  // what this library does not run is named
  const json base{
      {"d_model", 64}, {"n_layer", 2}, {"vocab_size", 10}, {"ssm_cfg", {{"layer", "Mamba2"}}}};
  for (const auto& [patch, needle] : std::vector<std::pair<json, std::string>>{
           {{{"d_intermediate", 256}}, "d_intermediate"},
           {{{"attn_layer_idx", {1}}}, "attn_layer_idx"},
           {{{"ssm_cfg", {{"norm_before_gate", true}}}}, "norm_before_gate"},
           {{{"ssm_cfg", {{"d_ssm", 64}}}}, "d_ssm"},
           {{{"ssm_cfg", {{"headdim", 48}}}}, "headdim"},  // d_inner 128
           {{{"ssm_cfg", {{"ngroups", 3}}}}, "ngroups"},   // nheads 2
           {{{"ssm_cfg", {{"chunk_size", 0}}}}, "chunk_size"},
           {{{"ssm_cfg", {{"layer", "Mamba3"}}}}, "Mamba3"}}) {
    SCOPED_TRACE(patch.dump());
    expect_config_error(base, patch, needle);
  }
}

}  // namespace
