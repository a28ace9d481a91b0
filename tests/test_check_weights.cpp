// check_weights: NaN and Inf found in any stored type and reported by tensor and row, through the
// API (a checkpoint and a model) and through `mamba-generate --check-weights`.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mamba/io/load.hpp>
#include <mamba/model/check_weights.hpp>
#include <memory>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;
const std::string kFixtures = MAMBA_FIXTURES_DIR;

// ck with the tensor `name` replaced by a copy whose element `index` (as stored) is patched.
void patch(mamba::Checkpoint& ck, const std::string& name, size_t byte, const void* value,
           size_t n) {
  mamba::TensorRef& t = ck.tensors.at(name);
  auto copy = std::make_shared<std::vector<std::byte>>(t.data, t.data + t.nbytes);
  std::memcpy(copy->data() + byte, value, n);
  t.data = copy->data();
  ck.keep_alive.push_back(copy);
}

TEST(CheckWeights, CleanFixturesHaveNoIssues) {
  for (const char* f : {"tiny", "bf16", "gguf_models/q8_0/model.gguf",
                        "gguf_models/q4_k/model.gguf", "gguf_models/q6_k/model.gguf"}) {
    const auto ck = mamba::load_checkpoint(kFixtures + "/" + f);
    EXPECT_TRUE(mamba::check_weights(ck).empty()) << f;
    EXPECT_TRUE(mamba::check_weights(mamba::Model(ck)).empty()) << f;
  }
}

TEST(CheckWeights, FindsNanAndInfInF32ByTensorAndRow) {
  auto ck = mamba::load_checkpoint(kFixtures + "/tiny");  // d_model 16, d_inner 32
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = -std::numeric_limits<float>::infinity();
  patch(ck, "backbone.layers.1.mixer.in_proj.weight", (5 * 16 + 3) * 4, &nan, 4);
  patch(ck, "backbone.layers.1.mixer.in_proj.weight", (9 * 16 + 0) * 4, &inf, 4);
  patch(ck, "backbone.norm_f.weight", 2 * 4, &inf, 4);
  const auto issues = mamba::check_weights(ck);
  ASSERT_EQ(issues.size(), 2u);
  // in map order: backbone.layers... before backbone.norm_f
  EXPECT_EQ(issues[0].tensor, "backbone.layers.1.mixer.in_proj.weight");
  EXPECT_EQ(issues[0].first_row, 5);
  EXPECT_EQ(issues[0].rows, 2);
  EXPECT_EQ(issues[0].nan, 1);
  EXPECT_EQ(issues[0].inf, 1);
  EXPECT_EQ(issues[1].tensor, "backbone.norm_f.weight");
  EXPECT_EQ(issues[1].inf, 1);
  EXPECT_NE(issues[0].describe().find("in_proj.weight: 1 NaN, 1 Inf in 2 rows (first: row 5)"),
            std::string::npos)
      << issues[0].describe();

  const auto from_model = mamba::check_weights(mamba::Model(ck));
  ASSERT_EQ(from_model.size(), 2u);
  EXPECT_EQ(from_model[0].tensor, "backbone.layers.1.mixer.in_proj.weight");
  EXPECT_EQ(from_model[1].tensor, "backbone.norm_f.weight");
}

TEST(CheckWeights, FindsAOverflowingFromAFiniteALog) {
  auto ck = mamba::load_checkpoint(kFixtures + "/tiny");
  const float big = 200.0f;  // -exp(200) is -Inf in float
  patch(ck, "backbone.layers.0.mixer.A_log", 7 * 4, &big, 4);
  EXPECT_TRUE(mamba::check_weights(ck).empty());
  const auto issues = mamba::check_weights(mamba::Model(ck));
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].tensor, "backbone.layers.0.mixer.A");
  EXPECT_EQ(issues[0].inf, 1);
}

TEST(CheckWeights, FindsAnInfScaleInAQuantizedBlock) {
  auto ck = mamba::load_checkpoint(kFixtures + "/gguf_models/q8_0/model.gguf");
  const auto& emb = ck.tensors.at("backbone.embeddings.weight");
  ASSERT_EQ(emb.type, mamba::DType::Q8_0);
  const int64_t d_model = emb.shape[1];
  const size_t row_bytes = static_cast<size_t>(d_model / 32 * 34);
  const uint16_t inf_f16 = 0x7c00;  // a block's f16 scale
  patch(ck, "backbone.embeddings.weight", 3 * row_bytes, &inf_f16, 2);
  const auto issues = mamba::check_weights(ck);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].tensor, "backbone.embeddings.weight");
  EXPECT_EQ(issues[0].first_row, 3);
  EXPECT_EQ(issues[0].rows, 1);
  EXPECT_GT(issues[0].nan + issues[0].inf, 0);
  EXPECT_EQ(issues[0].nan + issues[0].inf, 32) << "the whole block, and only it";
}

struct CliResult {
  int exit_code;
  std::string out, err;
};

CliResult run_cli(const std::string& args) {
  const auto dir = fs::temp_directory_path();
  const std::string out = (dir / ("cw_out_" + std::to_string(::getpid()))).string();
  const std::string err = (dir / ("cw_err_" + std::to_string(::getpid()))).string();
  const int status = std::system(
      (std::string(MAMBA_BIN_DIR) + "/mamba-generate " + args + " >" + out + " 2>" + err).c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  CliResult r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  fs::remove(out);
  fs::remove(err);
  return r;
}

TEST(CheckWeightsCli, CleanModelExitsZeroAndANanExitsOneNamingTheTensor) {
  const CliResult clean = run_cli("-m " + kFixtures + "/tiny --check-weights");
  EXPECT_EQ(clean.exit_code, 0) << clean.err;
  EXPECT_NE(clean.out.find("every weight is finite"), std::string::npos) << clean.out;

  // A copy of the fixture with one NaN written into x_proj of layer 0.
  const fs::path dir = fs::temp_directory_path() / ("cw_model_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(kFixtures + "/tiny/config.json", dir / "config.json",
                fs::copy_options::overwrite_existing);
  const auto st = mamba::SafetensorsFile::open(kFixtures + "/tiny/model.safetensors");
  const auto& t = st.tensors().at("backbone.layers.0.mixer.x_proj.weight");
  std::ifstream in(kFixtures + "/tiny/model.safetensors", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(&bytes[static_cast<size_t>(t.data - st.file()->data()) + 4 * 40], &nan, 4);
  std::ofstream(dir / "model.safetensors", std::ios::binary) << bytes;

  const CliResult bad = run_cli("-m " + dir.string() + " --check-weights");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(
      bad.out.find("backbone.layers.0.mixer.x_proj.weight: 1 NaN, 0 Inf in 1 row (first: row 1)"),
      std::string::npos)
      << bad.out;
  // One line on stderr, naming the file and the tensor.
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  EXPECT_NE(bad.err.find("x_proj.weight"), std::string::npos) << bad.err;
  fs::remove_all(dir);
}

}  // namespace
