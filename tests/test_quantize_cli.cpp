// mamba-quantize as a user runs it: a Hugging Face checkpoint (BF16, rows of 256, with a
// tokenizer.json; scripts/make_gguf_fixtures.py) to every type, loaded back, logits against the
// float64 reference of the original weights; GGUF to GGUF; llama.cpp's type rules; errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mamba/io/gguf.hpp>
#include <mamba/mamba.hpp>
#include <mamba/tokenizer/load_tokenizer.hpp>
#include <sstream>

#include "reference_fixture.hpp"

namespace {

struct CliResult {
  int exit_code;
  std::string err;
};

CliResult quantize(const std::string& args) {
  const std::string err = testing::TempDir() + "mq_err_" + std::to_string(::getpid());
  const std::string cmd = std::string(MAMBA_BIN_DIR) + "/mamba-quantize " + args + " 2>" + err;
  const int status = std::system(cmd.c_str());
  std::ifstream in(err);
  std::stringstream ss;
  ss << in.rdbuf();
  std::filesystem::remove(err);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ss.str()};
}

std::string out_path(const std::string& type) {
  return testing::TempDir() + "mq_" + type + ".gguf";
}

// Relative logit error against the float64 reference of the BF16 original. F32 and BF16 hold the
// BF16 values exactly, F16 too (8 mantissa bits fit in 11; no value is near F16's range limits).
// The block types add their rounding: measured q8_0 2.9e-3, q6_k 1.0e-2, q4_k_m 1.7e-2,
// q4_k 4.0e-2, q4_0 4.6e-2 (about half the relative RMS error each type leaves on Gaussian
// weights, see test_quant); the bounds leave 1.5-2x margin. Deterministic: same data, same rules.
struct Case {
  const char* type;
  double bound;
};
const Case kCases[] = {{"f32", 1e-5},  {"bf16", 1e-5},   {"f16", 1e-4},  {"q8_0", 6e-3},
                       {"q6_k", 2e-2}, {"q4_k_m", 3e-2}, {"q4_k", 6e-2}, {"q4_0", 8e-2}};

double logits_error(const std::string& path, const ReferenceFixture& ref) {
  const auto model = mamba::Model::load(path);
  auto state = model.new_state();
  return relative_error(model.prefill(ref.tokens, state, mamba::Logits::All), ref.logits);
}

}  // namespace

TEST(QuantizeCli, HuggingFaceToEveryType) {
  const auto ref = ReferenceFixture::load("gguf_models/hf256");
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.type);
    const auto r = quantize(ref.dir + " " + out_path(c.type) + " " + c.type);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("[22/22]"), std::string::npos) << r.err;  // progress per tensor
    EXPECT_NE(r.err.find("MiB of weights ->"), std::string::npos) << r.err;
    const double err = logits_error(out_path(c.type), ref);
    std::printf("[ measured ] %-6s relative logit error %.2e (bound %.0e)\n", c.type, err, c.bound);
    EXPECT_LE(err, c.bound);
  }
  // The original, loaded directly, for comparison.
  EXPECT_LE(logits_error(ref.dir, ref), 1e-5);
}

TEST(QuantizeCli, FollowsLlamaCppTypeRules) {
  const auto ref = ReferenceFixture::load("gguf_models/hf256");
  ASSERT_EQ(quantize(ref.dir + " " + out_path("rules_q4_k_m") + " Q4_K_M").exit_code, 0);
  const auto g = mamba::GgufFile::open(out_path("rules_q4_k_m"));
  auto type = [&](const char* n) {
    const auto* t = g.find_tensor(n);
    EXPECT_NE(t, nullptr) << n;
    return t ? t->type : mamba::DType::F32;
  };
  using mamba::DType;
  EXPECT_EQ(type("token_embd.weight"), DType::Q6_K);  // tied: it is the output matrix
  EXPECT_EQ(type("blk.0.ssm_in.weight"), DType::Q4_K);
  EXPECT_EQ(type("blk.1.ssm_in.weight"), DType::Q6_K);  // use_more_bits(1, 2): the last layer
  EXPECT_EQ(type("blk.0.ssm_out.weight"), DType::Q4_K);
  EXPECT_EQ(type("blk.1.ssm_out.weight"), DType::Q6_K);
  EXPECT_EQ(type("blk.0.ssm_x.weight"), DType::Q4_K);
  EXPECT_EQ(type("blk.0.ssm_dt.weight"), DType::F16);  // row of 16: fallback
  EXPECT_EQ(type("blk.0.ssm_conv1d.weight"), DType::F32);
  EXPECT_EQ(type("blk.0.ssm_a"), DType::F32);
  EXPECT_EQ(type("blk.0.ssm_d"), DType::F32);
  EXPECT_EQ(type("blk.0.attn_norm.weight"), DType::F32);
  EXPECT_EQ(type("output_norm.weight"), DType::F32);
  EXPECT_EQ(g.find_tensor("output.weight"), nullptr);
  EXPECT_EQ(g.find_tensor("blk.0.ssm_conv1d.weight")->ne, (std::vector<int64_t>{4, 256}));
  EXPECT_EQ(g.find_tensor("blk.0.ssm_a")->ne, (std::vector<int64_t>{8, 256}));
  EXPECT_EQ(g.get_string("general.architecture"), "mamba");
  EXPECT_EQ(g.get_uint("general.file_type"), 15u);
  EXPECT_EQ(g.get_uint("general.quantization_version"), 2u);
  EXPECT_EQ(g.get_uint("mamba.embedding_length"), 256u);
  EXPECT_EQ(g.get_uint("mamba.block_count"), 2u);
  EXPECT_EQ(g.get_uint("mamba.ssm.time_step_rank"), 16u);
  EXPECT_FALSE(g.get_bool("mamba.ssm.dt_b_c_rms"));
  // ssm_a holds A = -exp(A_log): negative
  float a0;
  std::memcpy(&a0, g.find_tensor("blk.0.ssm_a")->data, 4);
  EXPECT_LT(a0, 0.0f);
}

TEST(QuantizeCli, WritesTheTokenizer) {
  const auto ref = ReferenceFixture::load("gguf_models/hf256");
  ASSERT_EQ(quantize(ref.dir + " " + out_path("tok") + " q8_0").exit_code, 0);
  const auto g = mamba::GgufFile::open(out_path("tok"));
  EXPECT_EQ(g.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(g.get_string("tokenizer.ggml.pre"), "gpt-2");  // the tokenizer.json has no normalizer
  const auto tokens = g.get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 32u);
  EXPECT_EQ(tokens[0], "<|endoftext|>");
  EXPECT_EQ(g.get_int_array("tokenizer.ggml.token_type")[0], 3);  // control
  EXPECT_EQ(g.get_int_array("tokenizer.ggml.token_type")[1], 1);  // normal
  EXPECT_FALSE(g.get_string_array("tokenizer.ggml.merges").empty());
  EXPECT_EQ(g.get_uint("tokenizer.ggml.bos_token_id"), 0u);
  EXPECT_EQ(g.get_uint("tokenizer.ggml.eos_token_id"), 0u);
  // The tokenizer read from the GGUF encodes like the one from tokenizer.json.
  const auto from_json = mamba::load_tokenizer(ref.dir + "/tokenizer.json");
  const auto from_gguf = mamba::load_tokenizer(out_path("tok"));
  for (const char* text : {"abcde", "ab ba cd", "e e e <|endoftext|>", "dab"})
    EXPECT_EQ(from_gguf.encode(text, true), from_json.encode(text, true)) << text;
}

TEST(QuantizeCli, GgufToGguf) {
  const auto ref = ReferenceFixture::load("gguf_models/q4_k");
  const std::string in = ref.dir + "/model.gguf";
  ASSERT_EQ(quantize(in + " " + out_path("requant") + " q8_0").exit_code, 0);
  const auto g = mamba::GgufFile::open(out_path("requant"));
  const auto src = mamba::GgufFile::open(in);
  EXPECT_EQ(g.get_string_array("tokenizer.ggml.tokens"),
            src.get_string_array("tokenizer.ggml.tokens"));
  EXPECT_EQ(g.get_string("general.name"), src.get_string("general.name"));
  EXPECT_EQ(g.find_tensor("blk.0.ssm_in.weight")->type, mamba::DType::Q8_0);
  // Q8_0 of the Q4_K values: Q8_0's own error on top.
  const double err = logits_error(out_path("requant"), ref);
  std::printf("[ measured ] q4_k -> q8_0 relative logit error %.2e (bound 6e-3)\n", err);
  EXPECT_LE(err, 6e-3);
  // and F32 of them is exact
  ASSERT_EQ(quantize(in + " " + out_path("requant_f32") + " f32").exit_code, 0);
  EXPECT_LE(logits_error(out_path("requant_f32"), ref), 1e-5);
}

TEST(QuantizeCli, ErrorsAreOneLineAndExitOne) {
  const auto ref = ReferenceFixture::load("gguf_models/hf256");
  for (const std::string& args :
       {ref.dir + " " + out_path("x") + " q5_k", std::string("/no/such/dir /tmp/x.gguf q8_0"),
        ref.dir + " " + out_path("x"),
        std::string(MAMBA_FIXTURES_DIR) + "/gguf/all_types.gguf " + out_path("x") + " q8_0"}) {
    SCOPED_TRACE(args);
    const auto r = quantize(args);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("mamba-quantize: error: ", 0), 0u) << r.err;
  }
}

// The core's safetensors fixtures through mamba-quantize f32 come back exact: Falcon-Mamba (its
// flag), untied head with projection biases (ssm_in.bias / ssm_out.bias), the original
// state-spaces naming given as a .safetensors file, a sharded checkpoint with a 2-D conv.
TEST(QuantizeCli, OtherLayoutsRoundTripExactly) {
  for (const std::string name : {"falcon", "untied_bias", "state_spaces", "sharded", "bf16"}) {
    SCOPED_TRACE(name);
    const auto ref = ReferenceFixture::load(name);
    const std::string in = name == "state_spaces" ? ref.dir + "/model.safetensors" : ref.dir;
    const auto r = quantize(in + " " + out_path("layout_" + name) + " f32");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_LE(logits_error(out_path("layout_" + name), ref), 1e-5);
  }
  const auto g = mamba::GgufFile::open(out_path("layout_falcon"));
  EXPECT_TRUE(g.get_bool("mamba.ssm.dt_b_c_rms"));
  const auto u = mamba::GgufFile::open(out_path("layout_untied_bias"));
  EXPECT_NE(u.find_tensor("output.weight"), nullptr);
  EXPECT_NE(u.find_tensor("blk.2.ssm_out.bias"), nullptr);
}

// Mamba-2 checkpoints (HF and state-spaces layouts, D per head and per channel, dt clamped) come
// back exact through f32, in llama.cpp's mamba2 layout, with the clamp kept in our extra keys.
TEST(QuantizeCli, Mamba2RoundTripsExactly) {
  for (const std::string name : {"mamba2_tiny", "mamba2_groups", "mamba2_ss"}) {
    SCOPED_TRACE(name);
    const auto ref = ReferenceFixture::load(name);
    const auto r = quantize(ref.dir + " " + out_path("m2_" + name) + " f32");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_LE(logits_error(out_path("m2_" + name), ref), 1e-5);
  }
  const auto g = mamba::GgufFile::open(out_path("m2_mamba2_groups"));
  EXPECT_EQ(g.get_string("general.architecture"), "mamba2");
  EXPECT_EQ(g.get_uint("mamba2.ssm.group_count"), 2u);
  EXPECT_EQ(g.get_uint("mamba2.ssm.time_step_rank"), 8u);
  EXPECT_FLOAT_EQ(static_cast<float>(g.get_float("mamba2.ssm.time_step_max")), 0.05f);
  EXPECT_EQ(g.find_tensor("blk.0.ssm_a")->ne, (std::vector<int64_t>{1, 8}));
  EXPECT_EQ(g.find_tensor("blk.0.ssm_d")->ne, (std::vector<int64_t>{1, 8}));
  EXPECT_EQ(g.find_tensor("blk.0.ssm_norm.weight")->ne, (std::vector<int64_t>{24, 2}));
  EXPECT_EQ(g.find_tensor("blk.0.ssm_conv1d.weight")->ne, (std::vector<int64_t>{3, 48 + 40}));
  EXPECT_EQ(g.find_tensor("blk.0.ssm_dt.bias")->ne, (std::vector<int64_t>{8}));
  EXPECT_EQ(g.find_tensor("blk.0.ssm_in.weight")->ne, (std::vector<int64_t>{24, 96 + 40 + 8}));
  EXPECT_FALSE(g.has("mamba2.ssm.dt_b_c_rms"));
  const auto ss = mamba::GgufFile::open(out_path("m2_mamba2_ss"));
  EXPECT_EQ(ss.find_tensor("blk.1.ssm_d")->ne, (std::vector<int64_t>{16, 4}));  // per channel
  const auto tiny = mamba::GgufFile::open(out_path("m2_mamba2_tiny"));
  EXPECT_FALSE(tiny.has("mamba2.ssm.time_step_max"));  // no clamp, no key
}

// A llama.cpp-layout Mamba-2 GGUF (Q4_K, 2 groups) to Q8_0 and to F32.
TEST(QuantizeCli, Mamba2GgufToGguf) {
  const auto ref = ReferenceFixture::load("gguf_models/mamba2_q4_k");
  const std::string in = ref.dir + "/model.gguf";
  ASSERT_EQ(quantize(in + " " + out_path("m2_requant_f32") + " f32").exit_code, 0);
  EXPECT_LE(logits_error(out_path("m2_requant_f32"), ref), 1e-5);
  ASSERT_EQ(quantize(in + " " + out_path("m2_requant") + " q8_0").exit_code, 0);
  const auto g = mamba::GgufFile::open(out_path("m2_requant"));
  EXPECT_EQ(g.find_tensor("blk.0.ssm_in.weight")->type, mamba::DType::Q8_0);
  EXPECT_EQ(g.find_tensor("blk.0.ssm_norm.weight")->type, mamba::DType::F32);
  const double err = logits_error(out_path("m2_requant"), ref);
  std::printf("[ measured ] mamba2 q4_k -> q8_0 relative logit error %.2e (bound 6e-3)\n", err);
  EXPECT_LE(err, 6e-3);
}
