// Inputs the fuzzers (fuzz/) found, each kept as a test with the exact bytes, and the readers'
// in-memory entry points the harnesses use. A hostile file must end in a mamba::Error naming what
// is wrong, never in undefined behaviour, a crash or an exception of another type.
#include <gtest/gtest.h>

#include <mamba/config.hpp>
#include <mamba/io/gguf.hpp>
#include <mamba/io/safetensors.hpp>
#include <string>
#include <vector>

namespace {

std::vector<std::byte> bytes_of(const std::string& s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

// The message of the mamba::Error (exactly that type or a subclass) that f throws.
template <class E = mamba::Error, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw something other than the expected mamba error: " << e.what();
    return {};
  }
  ADD_FAILURE() << "did not throw";
  return {};
}

// fuzz_config: expand * hidden_size overflowed int64 (undefined behaviour) while computing the
// default intermediate_size, before validate() could refuse either.
TEST(FuzzRegressions, ConfigHugeExpandTimesHiddenSize) {
  const std::string text =
      R"({"hidden_size":9223372036854775807,"num_hidden_layers":1,"vocab_size":1,)"
      R"("expand":9223372036854775807,"time_step_rank":-1})";
  const std::string msg = error_of<mamba::ShapeError>(
      [&] { (void)mamba::ModelConfig::from_json_text(text, "c.json"); });
  EXPECT_NE(msg.find("c.json: invalid config: d_model = 9223372036854775807, expected 1..65536"),
            std::string::npos)
      << msg;
}

// The same family: the state-spaces layout's vocabulary padding and default dt_rank.
TEST(FuzzRegressions, ConfigStateSpacesPaddingAndRankDoNotOverflow) {
  const std::string pad =
      R"({"d_model":8,"n_layer":1,"vocab_size":9223372036854775807,"pad_vocab_size_multiple":8})";
  EXPECT_NE(error_of<mamba::ShapeError>([&] {
              (void)mamba::ModelConfig::from_json_text(pad, "p");
            }).find("vocab_size = 9223372036854775807"),
            std::string::npos);
  const std::string big_pad =
      R"({"d_model":8,"n_layer":1,"vocab_size":5,"pad_vocab_size_multiple":9223372036854775807})";
  EXPECT_NE(error_of<mamba::ShapeError>([&] {
              (void)mamba::ModelConfig::from_json_text(big_pad, "p");
            }).find("pad_vocab_size_multiple = 9223372036854775807"),
            std::string::npos);
  const std::string rank = R"({"d_model":9223372036854775807,"n_layer":1,"vocab_size":5})";
  EXPECT_NE(error_of<mamba::ShapeError>([&] {
              (void)mamba::ModelConfig::from_json_text(rank, "p");
            }).find("d_model = 9223372036854775807"),
            std::string::npos);
}

// The in-memory entry points read exactly what the file readers read.
TEST(InMemoryReaders, GgufAndSafetensorsFromBytes) {
  std::string gguf("GGUF\3\0\0\0", 8);
  gguf += std::string(16, '\0');  // no tensors, no keys
  const auto g =
      mamba::GgufFile::from_file(mamba::MappedFile::from_bytes("mem.gguf", bytes_of(gguf)));
  EXPECT_EQ(g.version(), 3u);
  EXPECT_TRUE(g.tensors().empty());
  EXPECT_EQ(g.path(), "mem.gguf");
  const std::string msg = error_of<mamba::FormatError>([] {
    (void)mamba::GgufFile::from_file(
        mamba::MappedFile::from_bytes("short.gguf", bytes_of(std::string("GGUF\3\0\0", 7))));
  });
  EXPECT_NE(msg.find("short.gguf: not a valid GGUF file: version needs 4 bytes but only 3 remain"),
            std::string::npos)
      << msg;

  std::string st(8, '\0');
  const std::string header = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  st[0] = static_cast<char>(header.size());
  st += header + std::string(8, '\0');
  const auto s =
      mamba::SafetensorsFile::from_file(mamba::MappedFile::from_bytes("mem.st", bytes_of(st)));
  ASSERT_EQ(s.tensors().size(), 1u);
  EXPECT_EQ(s.tensors().at("t").nbytes, 8u);
}

// Found reading the code while writing fuzz_safetensors: 2^61 elements of 8 bytes is 2^64 bytes,
// which wrapped to 0 and matched data_offsets [0, 0], so a tensor claimed 2^61 elements in no
// bytes at all (mamba-quantize reads every tensor).
TEST(FuzzRegressions, SafetensorsByteSizeCannotWrapAround) {
  std::string st(8, '\0');
  const std::string header =
      R"({"t":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})";
  st[0] = static_cast<char>(header.size());
  st += header;
  const std::string msg = error_of<mamba::FormatError>([&] {
    (void)mamba::SafetensorsFile::from_file(mamba::MappedFile::from_bytes("wrap.st", bytes_of(st)));
  });
  EXPECT_NE(msg.find("wrap.st: tensor 't': shape overflows 64 bits"), std::string::npos) << msg;
}

}  // namespace
