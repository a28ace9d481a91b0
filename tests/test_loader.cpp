// Every way a checkpoint on disk can be wrong gives a mamba::Error that names the file, the
// tensor, what was expected and what was found; none of them crashes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mamba/mamba.hpp>

#include "reference_fixture.hpp"

namespace fs = std::filesystem;

namespace {

class LoaderErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mamba_loader_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::copy(std::string(MAMBA_FIXTURES_DIR) + "/tiny", dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  // Rewrites model.safetensors with `header` (JSON text) in front of the original data bytes.
  void rewrite_header(const std::function<void(nlohmann::json&)>& edit) {
    std::ifstream in(file("model.safetensors"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    uint64_t n;
    std::memcpy(&n, bytes.data(), 8);
    auto header = nlohmann::json::parse(bytes.substr(8, n));
    edit(header);
    write_raw(header.dump(), bytes.substr(8 + n));
  }
  void write_raw(const std::string& header, const std::string& data) {
    std::ofstream out(file("model.safetensors"), std::ios::binary | std::ios::trunc);
    const uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header << data;
  }

  // Loading fails with a mamba::Error whose message contains every needle.
  void expect_error(std::initializer_list<std::string> needles, const std::string& path = "") {
    try {
      mamba::Model::load(path.empty() ? dir_.string() : path);
      ADD_FAILURE() << "loaded without error";
    } catch (const mamba::Error& e) {
      for (const auto& n : needles)
        EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
            << "'" << n << "' not in: " << e.what();
    }
  }

  fs::path dir_;
};

const std::string kInProj = "backbone.layers.1.mixer.in_proj.weight";

TEST_F(LoaderErrors, FixtureLoadsUntouched) { EXPECT_NO_THROW(mamba::Model::load(dir_.string())); }

TEST_F(LoaderErrors, MissingTensor) {
  rewrite_header([](nlohmann::json& h) { h.erase(kInProj); });
  expect_error({"missing tensor", kInProj});
}

TEST_F(LoaderErrors, WrongShape) {
  // same byte count, transposed shape
  rewrite_header([](nlohmann::json& h) { h[kInProj]["shape"] = {16, 64}; });
  expect_error({"model.safetensors", kInProj, "(16, 64)", "expected (64, 16)"});
}

TEST_F(LoaderErrors, TruncatedFile) {
  fs::resize_file(file("model.safetensors"), fs::file_size(file("model.safetensors")) - 100);
  expect_error({"model.safetensors", "outside", "truncated"});
}

TEST_F(LoaderErrors, UnknownDtype) {
  rewrite_header([](nlohmann::json& h) { h[kInProj]["dtype"] = "F7"; });
  expect_error({"model.safetensors", kInProj, "unknown dtype 'F7'"});
}

TEST_F(LoaderErrors, UnsupportedDtypeForANeededTensor) {
  // I32 is a real safetensors type, but not one the model computes with
  rewrite_header([](nlohmann::json& h) { h[kInProj]["dtype"] = "I32"; });
  expect_error({"missing tensor", kInProj});
}

TEST_F(LoaderErrors, HeaderLengthPastTheEnd) {
  std::fstream f(file("model.safetensors"), std::ios::binary | std::ios::in | std::ios::out);
  const uint64_t huge = 1ull << 40;
  f.write(reinterpret_cast<const char*>(&huge), 8);
  f.close();
  expect_error({"model.safetensors", "header length", "past the end"});
}

TEST_F(LoaderErrors, OffsetsPastTheData) {
  rewrite_header([](nlohmann::json& h) { h[kInProj]["data_offsets"] = {0, 1ull << 50}; });
  expect_error({"model.safetensors", kInProj, "outside"});
}

TEST_F(LoaderErrors, OffsetsDisagreeWithShape) {
  rewrite_header([](nlohmann::json& h) {
    auto& off = h[kInProj]["data_offsets"];
    off[1] = off[1].get<uint64_t>() - 4;
  });
  expect_error({"model.safetensors", kInProj, "shape and dtype need"});
}

TEST_F(LoaderErrors, BadJsonHeader) {
  write_raw("{\"a\": [1, 2", "");
  expect_error({"model.safetensors", "bad JSON"});
}

TEST_F(LoaderErrors, TinyFile) {
  write_raw("", "");
  fs::resize_file(file("model.safetensors"), 3);
  expect_error({"model.safetensors", "too short"});
}

TEST_F(LoaderErrors, BadConfigJson) {
  std::ofstream(file("config.json")) << "{\"hidden_size\": 16,";
  expect_error({"config.json", "bad JSON"});
}

TEST_F(LoaderErrors, ConfigDisagreesWithTensors) {
  auto j = nlohmann::json::parse(std::ifstream(file("config.json")));
  j["state_size"] = 6;
  std::ofstream(file("config.json")) << j.dump();
  expect_error({"x_proj.weight", "(13, 32)", "expected (15, 32)"});
}

TEST_F(LoaderErrors, MissingConfig) {
  fs::remove(file("config.json"));
  expect_error({"no config.json"});
}

TEST_F(LoaderErrors, NoWeights) {
  fs::remove(file("model.safetensors"));
  expect_error({"no model.safetensors"});
}

TEST_F(LoaderErrors, NoSuchPath) { expect_error({"no such file"}, file("nope")); }

TEST_F(LoaderErrors, ShardIndexNamesAMissingShard) {
  std::ofstream(file("model.safetensors.index.json"))
      << R"({"weight_map": {"backbone.norm_f.weight": "model-00009-of-00009.safetensors"}})";
  fs::remove(file("model.safetensors"));
  expect_error({"model-00009-of-00009.safetensors", "cannot open"});
}

TEST_F(LoaderErrors, ShardIndexLeavesTheDirectory) {
  std::ofstream(file("model.safetensors.index.json"))
      << R"({"weight_map": {"backbone.norm_f.weight": "../../etc/passwd"}})";
  fs::remove(file("model.safetensors"));
  expect_error({"leaves the directory"});
}

}  // namespace
