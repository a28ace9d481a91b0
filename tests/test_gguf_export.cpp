// The naming and type rules mamba-quantize writes GGUF files by (mamba/io/gguf_export.hpp).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mamba/io/gguf.hpp>
#include <mamba/io/gguf_checkpoint.hpp>
#include <mamba/io/gguf_export.hpp>

using namespace mamba;

TEST(GgufExport, NamesInvertTheLoadersMapping) {
  const char* hf[] = {"backbone.embeddings.weight",
                      "backbone.norm_f.weight",
                      "lm_head.weight",
                      "backbone.layers.0.norm.weight",
                      "backbone.layers.11.mixer.in_proj.weight",
                      "backbone.layers.3.mixer.in_proj.bias",
                      "backbone.layers.3.mixer.conv1d.weight",
                      "backbone.layers.3.mixer.conv1d.bias",
                      "backbone.layers.3.mixer.x_proj.weight",
                      "backbone.layers.3.mixer.dt_proj.weight",
                      "backbone.layers.3.mixer.dt_proj.bias",
                      "backbone.layers.3.mixer.A",
                      "backbone.layers.3.mixer.D",
                      "backbone.layers.3.mixer.out_proj.weight",
                      "backbone.layers.3.mixer.out_proj.bias"};
  for (const char* n : hf) {
    const std::string g = gguf_tensor_name(n);
    ASSERT_FALSE(g.empty()) << n;
    EXPECT_EQ(gguf_detail::hf_name(g), n);
  }
  EXPECT_EQ(gguf_tensor_name("backbone.layers.7.mixer.A_log"), "blk.7.ssm_a");
  EXPECT_EQ(gguf_tensor_name("backbone.layers.11.mixer.in_proj.weight"), "blk.11.ssm_in.weight");
  EXPECT_EQ(gguf_tensor_name("model.something"), "");
  EXPECT_EQ(gguf_detail::hf_name("blk.x.ssm_in.weight"), "");
  EXPECT_EQ(gguf_detail::hf_name("blk.99999999999999999999.ssm_in.weight"), "");
  EXPECT_EQ(gguf_detail::hf_name("rope_freqs.weight"), "");
}

TEST(GgufExport, ParsesTargets) {
  EXPECT_EQ(parse_quant_target("Q4_K_M")->type, DType::Q4_K);
  EXPECT_TRUE(parse_quant_target("q4_k_m")->q4_k_m);
  EXPECT_FALSE(parse_quant_target("q4_k")->q4_k_m);
  EXPECT_EQ(parse_quant_target("bf16")->type, DType::BF16);
  EXPECT_FALSE(parse_quant_target("q5_k"));
  EXPECT_EQ(gguf_file_type(*parse_quant_target("q8_0")), 7u);
}

TEST(GgufExport, TypeRules) {
  const QuantTarget q4 = *parse_quant_target("q4_k"), q6 = *parse_quant_target("q6_k"),
                    m = *parse_quant_target("q4_k_m"), q8 = *parse_quant_target("q8_0");
  EXPECT_EQ(gguf_tensor_type("blk.0.ssm_in.weight", {768, 3072}, q4, 24, true), DType::Q4_K);
  EXPECT_EQ(gguf_tensor_type("blk.0.ssm_dt.weight", {48, 1536}, q4, 24, true), DType::F16);
  EXPECT_EQ(gguf_tensor_type("blk.0.ssm_dt.weight", {48, 1536}, q8, 24, true), DType::F16);
  EXPECT_EQ(gguf_tensor_type("blk.0.ssm_x.weight", {1536, 80}, q8, 24, true), DType::Q8_0);
  EXPECT_EQ(gguf_tensor_type("blk.0.ssm_dt.weight", {96, 1536}, q6, 24, true), DType::Q8_0);
  EXPECT_EQ(gguf_tensor_type("blk.0.ssm_conv1d.weight", {4, 1536}, q8, 24, true), DType::F32);
  EXPECT_EQ(gguf_tensor_type("blk.0.ssm_a", {16, 1536}, q8, 24, true), DType::F32);
  EXPECT_EQ(gguf_tensor_type("blk.0.attn_norm.weight", {768}, q8, 24, true), DType::F32);
  EXPECT_EQ(gguf_tensor_type("output_norm.weight", {768}, q8, 24, true), DType::F32);
  EXPECT_EQ(gguf_tensor_type("blk.0.ssm_d", {1536}, q8, 24, true), DType::F32);
  // Q4_K_M: the output matrix and use_more_bits layers' in/out projections get Q6_K
  EXPECT_EQ(gguf_tensor_type("token_embd.weight", {768, 50280}, m, 24, true), DType::Q6_K);
  EXPECT_EQ(gguf_tensor_type("token_embd.weight", {768, 50280}, m, 24, false), DType::Q4_K);
  EXPECT_EQ(gguf_tensor_type("output.weight", {768, 50280}, m, 24, false), DType::Q6_K);
  int more = 0;
  for (int i = 0; i < 24; ++i) {
    const DType t =
        gguf_tensor_type("blk." + std::to_string(i) + ".ssm_out.weight", {1536, 768}, m, 24, true);
    more += t == DType::Q6_K;
    EXPECT_EQ(t == DType::Q6_K, i < 3 || i >= 21 || (i - 3) % 3 == 2) << i;
    EXPECT_EQ(
        gguf_tensor_type("blk." + std::to_string(i) + ".ssm_x.weight", {1536, 80}, m, 24, true),
        DType::Q4_K);
  }
  EXPECT_EQ(more, 12);  // half of the 24 layers
}

TEST(GgufExport, TokenizerJsonToGgufKeys) {
  const std::string dir = testing::TempDir() + "gguf_export_tok";
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir + "/tokenizer.json");
    f << R"({"normalizer": {"type": "NFC"},
             "added_tokens": [{"id": 5, "content": "<|endoftext|>", "special": true},
                              {"id": 6, "content": "  ", "special": false}],
             "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3},
                       "merges": [["a", "b"], "\u0120 a"]}})";
  }
  GgufWriter w;
  gguf_set_tokenizer_json(w, dir + "/tokenizer.json", 8);
  w.write(dir + "/t.gguf");
  const auto g = GgufFile::open(dir + "/t.gguf");
  EXPECT_EQ(g.get_string("tokenizer.ggml.pre"), "olmo");
  EXPECT_EQ(g.get_string_array("tokenizer.ggml.tokens"),
            (std::vector<std::string>{"a", "b", "ab", "\xc4\xa0", "[PAD4]", "<|endoftext|>", "  ",
                                      "[PAD7]"}));
  EXPECT_EQ(g.get_int_array("tokenizer.ggml.token_type"),
            (std::vector<int64_t>{1, 1, 1, 1, 4, 3, 4, 4}));
  EXPECT_EQ(g.get_string_array("tokenizer.ggml.merges"),
            (std::vector<std::string>{"a b", "\xc4\xa0 a"}));
  EXPECT_EQ(g.get_uint("tokenizer.ggml.bos_token_id"), 5u);
  EXPECT_EQ(g.get_uint("tokenizer.ggml.eos_token_id"), 5u);
  {
    std::ofstream f(dir + "/tokenizer.json");
    f << R"({"model": {"type": "Unigram", "vocab": []}})";
  }
  EXPECT_THROW(gguf_set_tokenizer_json(w, dir + "/tokenizer.json", 8), FormatError);
}
