// GGUF: files written by the independent Python writer (scripts/gguf_writer.py) read back, the
// C++ writer matches it byte for byte and round-trips through the reader, and every kind of
// malformed file is refused with a FormatError naming the file and the problem.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <mamba/io/gguf.hpp>
#include <mamba/ops/quant.hpp>
#include <random>
#include <string>
#include <vector>

using namespace mamba;

namespace {

std::string fixture(const std::string& name) {
  return std::string(MAMBA_FIXTURES_DIR) + "/gguf/" + name;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

std::string write_tmp(const std::string& name, const std::vector<uint8_t>& b) {
  const std::string path = testing::TempDir() + "gguf_test_" + name + ".gguf";
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  return path;
}

// Little-endian GGUF bytes assembled by hand, to build files no writer would produce.
struct Raw {
  std::vector<uint8_t> b;
  Raw& u32(uint32_t v) { return put(&v, 4); }
  Raw& u64(uint64_t v) { return put(&v, 8); }
  Raw& u8(uint8_t v) { return put(&v, 1); }
  Raw& f32(float v) { return put(&v, 4); }
  Raw& str(const std::string& s) {
    u64(s.size());
    return put(s.data(), s.size());
  }
  Raw& put(const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    b.insert(b.end(), c, c + n);
    return *this;
  }
  Raw& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return put("GGUF", 4).u32(version).u64(n_tensors).u64(n_kv);
  }
  Raw& kv_str(const std::string& k, const std::string& v) { return str(k).u32(8).str(v); }
  Raw& kv_u32(const std::string& k, uint32_t v) { return str(k).u32(4).u32(v); }
  Raw& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (auto d : ne) u64(d);
    return u32(type).u64(offset);
  }
  Raw& pad(size_t a = 32) {
    while (b.size() % a) b.push_back(0);
    return *this;
  }
  Raw& zeros(size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
};

// Opening `bytes` must fail with a FormatError whose message names the file and contains `what`.
void expect_refused(const std::string& name, const std::vector<uint8_t>& bytes,
                    const std::string& what) {
  const std::string path = write_tmp(name, bytes);
  try {
    GgufFile::open(path);
    ADD_FAILURE() << name << ": opened without error";
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << "expected '" << what << "' in: " << msg;
  }
}

// A valid two-tensor file: the baseline the malformed cases are variations of.
Raw valid_file() {
  Raw r;
  r.header(2, 1).kv_str("general.architecture", "t");
  r.tensor("a", {4, 2}, 0, 0).tensor("b", {32}, 8, 32);
  r.pad();
  for (int i = 0; i < 8; ++i) r.f32(static_cast<float>(i));
  r.pad();
  r.u8(0x00).u8(0x3C).zeros(32).pad();  // Q8_0 block with d = 1.0
  return r;
}

}  // namespace

// --- files from the Python writer -------------------------------------------------------------

TEST(GgufRead, PythonFileKeyValues) {
  const auto g = GgufFile::open(fixture("all_types.gguf"));
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_EQ(g.get_string("general.architecture"), "test");
  EXPECT_EQ(g.get_uint("t.u8"), 200u);
  EXPECT_EQ(g.get_uint("t.u16"), 60000u);
  EXPECT_EQ(g.get_uint("t.u32"), 4000000000u);
  EXPECT_EQ(g.get_uint("t.u64"), (uint64_t{1} << 63) + 5);
  EXPECT_THROW(g.get_uint("t.i8"), FormatError);  // negative
  EXPECT_THROW(g.get_uint("t.i64"), FormatError);
  EXPECT_EQ(g.get_float("t.f32"), 0.25);
  EXPECT_EQ(g.get_float("t.f64"), 1e-300);
  EXPECT_TRUE(g.get_bool("t.bool"));
  EXPECT_EQ(g.get_string("t.string"), "h\xc3\xa9llo");
  EXPECT_EQ(g.get_int_array("t.arr_u8"), (std::vector<int64_t>{1, 2, 255}));
  EXPECT_EQ(g.get_int_array("t.arr_i16"), (std::vector<int64_t>{-1, 2, -300}));
  EXPECT_EQ(g.get_int_array("t.arr_i32"), (std::vector<int64_t>{7, -8, 9, -10}));
  EXPECT_EQ(g.get_int_array("t.arr_u64"), (std::vector<int64_t>{int64_t{1} << 40}));
  EXPECT_EQ(g.get_int_array("t.arr_i64"), (std::vector<int64_t>{-(int64_t{1} << 40), 3}));
  EXPECT_EQ(g.get_float_array("t.arr_f32"), (std::vector<float>{0.5f, -1.5f, 3.0f}));
  EXPECT_EQ(g.get_float_array("t.arr_f64"), (std::vector<float>{0.1f, 0.2f}));
  EXPECT_EQ(g.get_string_array("t.arr_str"),
            (std::vector<std::string>{"a", "", "\xc4\xa0the", "xyz"}));
  EXPECT_TRUE(g.get_int_array("t.arr_empty").empty());
  EXPECT_EQ(g.type_of("t.arr_bool"), GgufType::ARRAY);
  EXPECT_TRUE(g.has("t.i16"));
  EXPECT_FALSE(g.has("t.nope"));
  EXPECT_EQ(g.keys().size(), 23u);
}

TEST(GgufRead, MissingOrMistypedKeysNameFileAndKey) {
  const auto g = GgufFile::open(fixture("all_types.gguf"));
  for (auto f : {+[](const GgufFile& x) { x.get_string("mamba.block_count"); },
                 +[](const GgufFile& x) { x.get_uint("t.string"); },
                 +[](const GgufFile& x) { x.get_float("t.u32"); },
                 +[](const GgufFile& x) { x.get_bool("t.u8"); },
                 +[](const GgufFile& x) { x.get_string_array("t.arr_i32"); },
                 +[](const GgufFile& x) { x.get_int_array("t.arr_str"); },
                 +[](const GgufFile& x) { x.get_float_array("t.string"); }}) {
    try {
      f(g);
      ADD_FAILURE() << "no error";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("all_types.gguf"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("'"), std::string::npos) << e.what();
    }
  }
  try {
    g.get_uint("mamba.block_count");
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("missing key 'mamba.block_count'"), std::string::npos);
  }
}

TEST(GgufRead, PythonFileTensorsDecode) {
  const auto g = GgufFile::open(fixture("all_types.gguf"));
  ASSERT_EQ(g.tensors().size(), 14u);
  int checked = 0;
  for (const auto& t : g.tensors()) {
    if (t.name.ends_with(".expected")) continue;
    const auto* e = g.find_tensor(t.name.substr(0, t.name.size() - 2) + ".expected");
    ASSERT_NE(e, nullptr) << t.name;
    EXPECT_EQ(e->type, DType::F32);
    EXPECT_EQ(e->ne, t.ne);
    EXPECT_EQ(dtype_name(t.type), t.name.substr(0, t.name.size() - 2));
    int64_t n = 1;
    for (auto d : t.ne) n *= d;
    EXPECT_EQ(t.nbytes, static_cast<uint64_t>(row_bytes(t.type, t.ne[0]) * (n / t.ne[0])));
    EXPECT_EQ((t.data - g.file()->data() - static_cast<int64_t>(g.data_offset())) % 32, 0);
    std::vector<float> got(static_cast<size_t>(n)), want(static_cast<size_t>(n));
    dequantize_row(t.type, t.data, got.data(), n);
    std::memcpy(want.data(), e->data, want.size() * 4);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_NEAR(got[i], want[i], 1e-6 * (std::fabs(want[i]) + 1)) << t.name;
    ++checked;
  }
  EXPECT_EQ(checked, 7);
  EXPECT_EQ(g.find_tensor("q6_k.w")->ne, (std::vector<int64_t>{512, 1, 1, 2}));
  EXPECT_EQ(g.find_tensor("nope"), nullptr);
}

TEST(GgufRead, Version2WithAlignment64) {
  const auto g = GgufFile::open(fixture("v2_align64.gguf"));
  EXPECT_EQ(g.version(), 2u);
  EXPECT_EQ(g.alignment(), 64u);
  EXPECT_EQ(g.data_offset() % 64, 0u);
  ASSERT_EQ(g.tensors().size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const auto& t = g.tensors()[static_cast<size_t>(i)];
    EXPECT_EQ(t.name, "t" + std::to_string(i));
    EXPECT_EQ((t.data - g.file()->data()) % 64, 0);
    std::vector<float> v(static_cast<size_t>(t.ne[0] * t.ne[1]));
    std::memcpy(v.data(), t.data, v.size() * 4);
    for (size_t j = 0; j < v.size(); ++j)
      EXPECT_EQ(v[j], static_cast<float>(j + 100 * static_cast<size_t>(i)));
  }
}

TEST(GgufRead, CopiesShareTheMapping) {
  GgufFile a = GgufFile::open(fixture("v2_align64.gguf"));
  const std::byte* p = a.tensors()[0].data;
  GgufFile b = a;
  GgufFile c = std::move(a);
  EXPECT_EQ(b.tensors()[0].data, p);
  EXPECT_EQ(c.file().get(), b.file().get());
  EXPECT_EQ(b.path(), fixture("v2_align64.gguf"));
}

// --- the C++ writer -----------------------------------------------------------------------------

// The same content as the Python writer's all_types.gguf gives the same bytes.
TEST(GgufWrite, SameBytesAsThePythonWriter) {
  const auto py = GgufFile::open(fixture("all_types.gguf"));
  GgufWriter w;
  w.set("general.architecture", "test");
  w.set("t.u8", uint8_t{200});
  w.set("t.i8", int8_t{-100});
  w.set("t.u16", uint16_t{60000});
  w.set("t.i16", int16_t{-30000});
  w.set("t.u32", uint32_t{4000000000u});
  w.set("t.i32", int32_t{-2000000000});
  w.set("t.f32", 0.25f);
  w.set("t.bool", true);
  w.set("t.string", std::string("h\xc3\xa9llo"));
  w.set("t.u64", (uint64_t{1} << 63) + 5);
  w.set("t.i64", -(int64_t{1} << 40));
  w.set("t.f64", 1e-300);
  w.set_array("t.arr_u8", std::vector<uint8_t>{1, 2, 255});
  w.set_array("t.arr_i16", std::vector<int16_t>{-1, 2, -300});
  w.set_array("t.arr_i32", std::vector<int32_t>{7, -8, 9, -10});
  w.set_array("t.arr_u64", std::vector<uint64_t>{uint64_t{1} << 40});
  w.set_array("t.arr_i64", std::vector<int64_t>{-(int64_t{1} << 40), 3});
  w.set_array("t.arr_f32", std::vector<float>{0.5f, -1.5f, 3.0f});
  w.set_array("t.arr_f64", std::vector<double>{0.1, 0.2});
  w.set_array("t.arr_bool", std::vector<bool>{true, false, true});
  w.set_array("t.arr_str", std::vector<std::string>{"a", "", "\xc4\xa0the", "xyz"});
  w.set_array("t.arr_empty", std::vector<int32_t>{});
  for (const auto& t : py.tensors())
    w.add_tensor(t.name, t.type, t.ne, std::vector<std::byte>(t.data, t.data + t.nbytes));
  const std::string out = testing::TempDir() + "gguf_test_cpp_all_types.gguf";
  const uint64_t size = w.write(out);
  const auto a = read_bytes(out), b = read_bytes(fixture("all_types.gguf"));
  EXPECT_EQ(size, a.size());
  ASSERT_EQ(a.size(), b.size());
  EXPECT_TRUE(a == b);
}

TEST(GgufWrite, RoundTripThroughTheReader) {
  GgufWriter w(64);
  w.set("general.architecture", "mamba");
  w.set("mamba.block_count", uint32_t{3});
  w.set("mamba.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set("mamba.ssm.dt_b_c_rms", false);
  w.set("mamba.block_count", uint32_t{4});  // replaces
  w.set_array("tokenizer.ggml.tokens", std::vector<std::string>{"<|end|>", "a", "b"});
  w.set_array("tokenizer.ggml.scores", std::vector<float>{0.f, -1.f, -2.f});
  std::mt19937 g(3);
  std::normal_distribution<float> nd;
  std::vector<float> x(512 * 3);
  for (auto& v : x) v = nd(g);
  std::vector<std::vector<std::byte>> stored;
  for (DType t :
       {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    std::vector<std::byte> q(static_cast<size_t>(row_bytes(t, 512) * 3));
    quantize_row(t, x.data(), q.data(), 512 * 3);
    stored.push_back(q);
    if (t == DType::Q4_K) {  // produced while writing
      w.add_tensor("w." + std::string(dtype_name(t)), t, {512, 3}, [q](std::span<std::byte> dst) {
        std::memcpy(dst.data(), q.data(), dst.size());
      });
    } else {
      w.add_tensor("w." + std::string(dtype_name(t)), t, {512, 3}, q);
    }
  }
  std::vector<uint64_t> progress;
  const std::string out = testing::TempDir() + "gguf_test_roundtrip.gguf";
  w.write(out, [&](size_t k, size_t n, uint64_t bytes) {
    EXPECT_EQ(n, 7u);
    EXPECT_EQ(k, progress.size() + 1);
    progress.push_back(bytes);
  });
  EXPECT_EQ(progress.size(), 7u);
  const auto r = GgufFile::open(out);
  EXPECT_EQ(progress.back(), r.file()->size());
  EXPECT_EQ(r.alignment(), 64u);
  EXPECT_EQ(r.get_uint("general.alignment"), 64u);
  EXPECT_EQ(r.type_of("general.alignment"), GgufType::UINT32);  // what llama.cpp requires
  EXPECT_EQ(r.get_uint("mamba.block_count"), 4u);
  EXPECT_EQ(r.keys().size(), 7u);
  EXPECT_FLOAT_EQ(static_cast<float>(r.get_float("mamba.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_FALSE(r.get_bool("mamba.ssm.dt_b_c_rms"));
  EXPECT_EQ(r.get_string_array("tokenizer.ggml.tokens")[0], "<|end|>");
  EXPECT_EQ(r.get_float_array("tokenizer.ggml.scores")[2], -2.f);
  ASSERT_EQ(r.tensors().size(), 7u);
  for (size_t i = 0; i < 7; ++i) {
    const auto& t = r.tensors()[i];
    EXPECT_EQ(t.ne, (std::vector<int64_t>{512, 3}));
    ASSERT_EQ(t.nbytes, stored[i].size());
    EXPECT_EQ(std::memcmp(t.data, stored[i].data(), t.nbytes), 0) << t.name;
    EXPECT_EQ((t.data - r.file()->data()) % 64, 0);
  }
  // Key-values copy verbatim from a reader into a writer.
  GgufWriter w2;
  for (const auto& k : r.keys()) {
    const auto raw = r.raw_value(k);
    w2.set_raw(k, raw.type, raw.bytes);
  }
  const std::string out2 = testing::TempDir() + "gguf_test_copy.gguf";
  w2.write(out2);
  const auto r2 = GgufFile::open(out2);
  EXPECT_EQ(r2.get_string_array("tokenizer.ggml.tokens"),
            r.get_string_array("tokenizer.ggml.tokens"));
  EXPECT_EQ(r2.alignment(), 64u);  // the copied key governs
}

TEST(GgufWrite, RefusesBadTensors) {
  GgufWriter w;
  EXPECT_THROW(w.add_tensor("x", DType::Q4_K, {100, 2}, std::vector<std::byte>(1)), ShapeError);
  EXPECT_THROW(w.add_tensor("x", DType::F32, {4}, std::vector<std::byte>(15)), ArgumentError);
  EXPECT_THROW(w.add_tensor(std::string(64, 'n'), DType::F32, {1}, std::vector<std::byte>(4)),
               ArgumentError);
  EXPECT_THROW(w.add_tensor("x", DType::F32, {1, 1, 1, 1, 1}, std::vector<std::byte>(4)),
               ArgumentError);
  w.add_tensor("x", DType::F32, {1}, std::vector<std::byte>(4));
  EXPECT_THROW(w.add_tensor("x", DType::F32, {1}, std::vector<std::byte>(4)), ArgumentError);
  EXPECT_THROW(GgufWriter(48), ArgumentError);
}

// --- hostile files ----------------------------------------------------------------------------

TEST(GgufHostile, BaselineIsValid) {
  const auto g = GgufFile::open(write_tmp("baseline", valid_file().b));
  ASSERT_EQ(g.tensors().size(), 2u);
  float v[8];
  std::memcpy(v, g.tensors()[0].data, 32);
  EXPECT_EQ(v[7], 7.0f);
}

TEST(GgufHostile, BadMagic) {
  auto b = valid_file().b;
  b[0] = 'X';
  expect_refused("magic", b, "bad magic");
}

TEST(GgufHostile, UnknownVersion) {
  for (uint32_t v : {0u, 1u, 4u, 0x03000000u}) {
    Raw r;
    r.header(0, 0, v);
    expect_refused("version" + std::to_string(v), r.b, "unsupported version " + std::to_string(v));
  }
}

TEST(GgufHostile, EmptyAndMissingFiles) {
  expect_refused("empty", {}, "magic");
  EXPECT_THROW(GgufFile::open(testing::TempDir() + "no/such/file.gguf"), FormatError);
}

TEST(GgufHostile, StringLengthPastTheEnd) {
  Raw r;
  r.header(0, 1).str("general.architecture").u32(8).u64(1000).put("abc", 3);
  expect_refused("string", r.b, "length 1000");
  Raw k;  // a key whose own length is past the end
  k.header(0, 1).u64(uint64_t{1} << 62).put("x", 1).zeros(20);
  expect_refused("keylen", k.b, "needs");
}

TEST(GgufHostile, ArrayLengthPastTheEnd) {
  Raw r;
  r.header(0, 1).str("a").u32(9).u32(5).u64(1000).u32(1).u32(2);  // 1000 i32, 2 present
  expect_refused("array", r.b, "1000 elements");
  Raw s;  // strings: the count alone would make a huge vector
  s.header(0, 1).str("a").u32(9).u32(8).u64(uint64_t{1} << 61).str("x");
  expect_refused("strarray", s.b, "elements");
}

TEST(GgufHostile, NestedArrayAndInvalidValueType) {
  Raw r;
  r.header(0, 1).str("a").u32(9).u32(9).u64(1);
  expect_refused("nested", r.b, "invalid element type 9");
  Raw t;
  t.header(0, 1).str("a").u32(13).u32(0);
  expect_refused("valuetype", t.b, "invalid value type 13");
}

TEST(GgufHostile, TensorOffsetPastTheEnd) {
  Raw r;
  r.header(1, 0).tensor("a", {8}, 0, 1024).pad().zeros(32);
  expect_refused("offset", r.b, "runs past the end");
  Raw h;  // an offset so large that data_offset + offset wraps around
  h.header(1, 0).tensor("a", {8}, 0, ~uint64_t{31}).pad().zeros(32);
  expect_refused("offsetwrap", h.b, "runs past the end");
}

TEST(GgufHostile, TensorSizePastTheEnd) {
  auto b = valid_file().b;
  b.resize(b.size() - 40);  // cut into the second tensor
  expect_refused("size", b, "'b'");
  Raw r;  // a huge but non-overflowing shape
  r.header(1, 0).tensor("a", {uint64_t{1} << 20, uint64_t{1} << 20}, 0, 0).pad().zeros(32);
  expect_refused("hugeshape", r.b, "runs past the end");
}

TEST(GgufHostile, DimensionProductOverflow) {
  Raw r;
  r.header(1, 0).tensor("a", {uint64_t{1} << 32, uint64_t{1} << 32}, 0, 0).pad();
  expect_refused("overflow", r.b, "more elements than 64 bits");
  Raw n;
  n.header(1, 0).tensor("a", {~uint64_t{0}}, 0, 0).pad();
  expect_refused("negative", n.b, "negative dimension");
}

TEST(GgufHostile, TooManyDimensions) {
  Raw r;
  r.header(1, 0).tensor("a", {1, 1, 1, 1, 1}, 0, 0).pad().zeros(32);
  expect_refused("dims", r.b, "5 dimensions");
}

TEST(GgufHostile, UnknownTensorType) {
  for (uint32_t t : {3u, 15u, 31u, 1000u}) {
    Raw r;
    r.header(1, 0).tensor("a", {256}, t, 0).pad().zeros(1024);
    expect_refused("type" + std::to_string(t), r.b, "ggml type " + std::to_string(t));
  }
}

TEST(GgufHostile, RowNotAMultipleOfTheBlockSize) {
  Raw r;
  r.header(1, 0).tensor("a", {100}, 12, 0).pad().zeros(1024);
  expect_refused("block", r.b, "not a multiple of the q4_k block size");
}

TEST(GgufHostile, DuplicateTensorNames) {
  Raw r;
  r.header(2, 0).tensor("a", {8}, 0, 0).tensor("a", {8}, 0, 32).pad().zeros(64);
  expect_refused("duptensor", r.b, "duplicate tensor 'a'");
}

TEST(GgufHostile, DuplicateKeys) {
  Raw r;
  r.header(0, 2).kv_u32("k", 1).kv_u32("k", 2);
  expect_refused("dupkey", r.b, "duplicate key 'k'");
}

TEST(GgufHostile, AbsurdCounts) {
  Raw r;
  r.header(0, uint64_t{1} << 60);
  expect_refused("kvcount", r.b, "absurd key-value count");
  Raw t;
  t.header(uint64_t{1} << 60, 0);
  expect_refused("tensorcount", t.b, "absurd tensor count");
  Raw m;  // plausible for the file's size, but the entries are not there
  m.header(0, 3).kv_u32("k", 1).zeros(20);
  expect_refused("kvshort", m.b, "");
}

TEST(GgufHostile, MisalignedOffsetAndBadAlignment) {
  Raw r;
  r.header(1, 0).tensor("a", {8}, 0, 4).pad().zeros(64);
  expect_refused("misaligned", r.b, "not a multiple of the alignment 32");
  Raw a;
  a.header(0, 1).kv_u32("general.alignment", 48);
  expect_refused("alignment", a.b, "not a power of two");
  Raw z;
  z.header(0, 1).kv_u32("general.alignment", 0);
  expect_refused("alignment0", z.b, "not a power of two");
  Raw s;
  s.header(0, 1).kv_str("general.alignment", "32");
  expect_refused("alignmentstr", s.b, "general.alignment");
}

// Every prefix of a valid file that cuts into its last tensor's data is refused cleanly (the
// padding after the last tensor is not needed); the whole file opens.
TEST(GgufHostile, EveryTruncationIsRefused) {
  const auto full = valid_file().b;
  const size_t data_end = full.size() - (64 - 34);  // the Q8_0 block: 34 bytes padded to 64
  EXPECT_NO_THROW(GgufFile::open(write_tmp("trunc", {full.begin(), full.begin() + data_end})));
  for (size_t n = 0; n < data_end; ++n) {
    std::vector<uint8_t> b(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string path = write_tmp("trunc", b);
    EXPECT_THROW(GgufFile::open(path), FormatError) << "prefix of " << n << " bytes";
  }
  EXPECT_NO_THROW(GgufFile::open(write_tmp("trunc", full)));
}

// Random corruption of the header either still parses or is refused with a FormatError, and
// whatever parses keeps every tensor inside the file.
TEST(GgufHostile, RandomCorruptionIsContained) {
  const auto full = read_bytes(fixture("v2_align64.gguf"));
  std::mt19937 g(11);
  int refused = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    auto b = full;
    const int flips = 1 + static_cast<int>(g() % 4);
    for (int f = 0; f < flips; ++f) b[g() % 200] = static_cast<uint8_t>(g());
    const std::string path = write_tmp("fuzz", b);
    try {
      const auto r = GgufFile::open(path);
      for (const auto& t : r.tensors()) {
        ASSERT_GE(t.data, r.file()->data());
        ASSERT_LE(t.data + t.nbytes, r.file()->data() + r.file()->size());
      }
    } catch (const FormatError&) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 100);
}

// A file llama.cpp's tools wrote (the shared vocab-only GGUF): it reads, and its key-values copied
// verbatim through the writer give the same bytes (plus the padding our writer always adds).
TEST(GgufRead, LlamaCppVocabFile) {
  const std::string path = std::string(MAMBA_DATA_DIR) + "/llama.cpp-vocab/ggml-vocab-mpt.gguf";
  if (!std::ifstream(path).good()) GTEST_SKIP() << "shared data absent: " << path;
  const auto g = GgufFile::open(path);
  EXPECT_EQ(g.get_string("tokenizer.ggml.model"), "gpt2");
  const auto tokens = g.get_string_array("tokenizer.ggml.tokens");
  EXPECT_EQ(tokens.size(), g.get_int_array("tokenizer.ggml.token_type").size());
  EXPECT_GT(g.get_string_array("tokenizer.ggml.merges").size(), 1000u);
  EXPECT_LT(g.get_uint("tokenizer.ggml.eos_token_id"), tokens.size());
  GgufWriter w;
  for (const auto& k : g.keys()) {
    const auto raw = g.raw_value(k);
    w.set_raw(k, raw.type, raw.bytes);
  }
  const std::string out = testing::TempDir() + "gguf_test_vocab_copy.gguf";
  w.write(out);
  const auto a = read_bytes(path), b = read_bytes(out);
  ASSERT_GE(b.size(), a.size());
  EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin()));
  EXPECT_LT(b.size() - a.size(), 32u);
}
