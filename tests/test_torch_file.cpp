// torch.save archives (pytorch_model.bin): the fixtures read as the same tensors, byte for byte, as
// their safetensors twins; every damaged archive gives a FormatError that starts with the file's
// name and says what is wrong, and none crashes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mamba/io/checkpoint.hpp>
#include <mamba/io/load.hpp>
#include <mamba/io/safetensors.hpp>
#include <mamba/io/torch_file.hpp>
#include <mamba/mamba.hpp>
#include <new>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../fuzz/fuzz_common.hpp"
#include "../fuzz/fuzz_weights.hpp"

// Live allocations through operator new: a reader that leaks shows without a sanitizer.
namespace {
std::atomic<long> g_live_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = std::malloc(n == 0 ? 1 : n)) {
    ++g_live_allocations;
    return p;
  }
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  if (p) {
    --g_live_allocations;
    std::free(p);
  }
}
void operator delete(void* p, std::size_t) noexcept {
  operator delete(p);
}

namespace {

namespace fs = std::filesystem;
using namespace std::literals;
using Bytes = std::vector<std::byte>;
using mamba::DType;
using mamba::TorchFile;

const std::string kFixtures = MAMBA_FIXTURES_DIR;
const std::string kEmbedding = "backbone.embedding.weight";
constexpr size_t npos = std::string::npos;

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  const std::string s((std::istreambuf_iterator<char>(in)), {});
  Bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

Bytes bytes_of(std::string_view s) {
  Bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

Bytes torch_fixture(const std::string& name) {
  return read_file(kFixtures + "/" + name + "/pytorch_model.bin");
}

TorchFile parse(Bytes b) {
  return TorchFile::from_file(mamba::MappedFile::from_bytes("m.bin", std::move(b)));
}

// Reading fails with a FormatError that starts with the file's name and contains every needle.
void expect_format_error(Bytes b, std::initializer_list<std::string> needles) {
  try {
    parse(std::move(b));
    ADD_FAILURE() << "read without error";
  } catch (const mamba::FormatError& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("m.bin: ", 0), 0u) << "does not start with the file name: " << m;
    for (const auto& n : needles) EXPECT_NE(m.find(n), npos) << "'" << n << "' not in: " << m;
  } catch (const mamba::Error& e) {
    ADD_FAILURE() << "not a FormatError: " << e.what();
  }
}

// --- the zip structure, read and written here independently of the library ----------------

uint32_t le(const Bytes& b, size_t at, int n) {
  uint32_t v = 0;
  for (int k = 0; k < n; ++k) v |= uint32_t(static_cast<uint8_t>(b.at(at + k))) << (8 * k);
  return v;
}
void put_le(Bytes& b, size_t at, uint32_t v, int n) {
  for (int k = 0; k < n; ++k) b.at(at + k) = static_cast<std::byte>(v >> (8 * k));
}
void append_le(Bytes& b, uint32_t v, int n) {
  for (int k = 0; k < n; ++k) b.push_back(static_cast<std::byte>(v >> (8 * k)));
}
void append(Bytes& b, std::string_view s) {
  for (char c : s) b.push_back(static_cast<std::byte>(c));
}

uint32_t crc32(const std::byte* p, size_t n) {
  uint32_t c = 0xFFFFFFFF;
  for (size_t i = 0; i < n; ++i) {
    c ^= static_cast<uint8_t>(p[i]);
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

struct ZipEntry {
  std::string name;
  size_t central = 0;  // its central directory header
  size_t local = 0;    // its local header
  size_t data = 0;
  size_t size = 0;
  uint16_t flags = 0;
};

// The central directory, found through the end record (no archive comment here).
std::vector<ZipEntry> zip_entries(const Bytes& b) {
  const size_t eocd = b.size() - 22;
  EXPECT_EQ(le(b, eocd, 4), 0x06054b50u);
  const size_t count = le(b, eocd + 10, 2);
  size_t p = le(b, eocd + 16, 4);
  std::vector<ZipEntry> out;
  for (size_t i = 0; i < count; ++i) {
    ZipEntry e;
    e.central = p;
    e.flags = static_cast<uint16_t>(le(b, p + 8, 2));
    e.size = le(b, p + 24, 4);
    const size_t name_len = le(b, p + 28, 2);
    e.local = le(b, p + 42, 4);
    e.name.assign(reinterpret_cast<const char*>(&b.at(p + 46)), name_len);
    e.data = e.local + 30 + le(b, e.local + 26, 2) + le(b, e.local + 28, 2);
    out.push_back(e);
    p += 46 + name_len + le(b, p + 30, 2) + le(b, p + 32, 2);
  }
  return out;
}

ZipEntry zip_entry(const Bytes& b, std::string_view name) {
  for (const auto& e : zip_entries(b))
    if (e.name == name) return e;
  throw std::runtime_error("no zip entry " + std::string(name));
}

std::vector<std::pair<std::string, Bytes>> unzip(const Bytes& b) {
  std::vector<std::pair<std::string, Bytes>> out;
  for (const auto& e : zip_entries(b))
    out.emplace_back(e.name, Bytes(b.begin() + e.data, b.begin() + e.data + e.size));
  return out;
}

// Stored entries, each one's data 64-byte aligned by an extra field as torch.save does; no data
// descriptors and no zip64 records (torch.save writes both).
Bytes make_zip(const std::vector<std::pair<std::string, Bytes>>& entries) {
  Bytes out, central;
  for (const auto& [name, data] : entries) {
    const size_t local = out.size();
    const uint32_t crc = crc32(data.data(), data.size());
    const auto size = static_cast<uint32_t>(data.size());
    const size_t pad = (64 - (local + 30 + name.size() + 4) % 64) % 64;
    append_le(out, 0x04034b50, 4);
    append_le(out, 20, 2);  // version needed
    append_le(out, 0, 2);   // flags
    append_le(out, 0, 2);   // method: stored
    append_le(out, 0, 4);   // time, date
    append_le(out, crc, 4);
    append_le(out, size, 4);
    append_le(out, size, 4);
    append_le(out, static_cast<uint32_t>(name.size()), 2);
    append_le(out, static_cast<uint32_t>(4 + pad), 2);
    append(out, name);
    append_le(out, 0x4246, 2);  // "FB", torch's padding field
    append_le(out, static_cast<uint32_t>(pad), 2);
    append(out, std::string(pad, 'Z'));
    out.insert(out.end(), data.begin(), data.end());

    append_le(central, 0x02014b50, 4);
    append_le(central, 20, 2);  // version made by
    append_le(central, 20, 2);  // version needed
    append_le(central, 0, 2);
    append_le(central, 0, 2);
    append_le(central, 0, 4);
    append_le(central, crc, 4);
    append_le(central, size, 4);
    append_le(central, size, 4);
    append_le(central, static_cast<uint32_t>(name.size()), 2);
    append_le(central, 0, 2);  // extra
    append_le(central, 0, 2);  // comment
    append_le(central, 0, 2);  // disk
    append_le(central, 0, 2);  // internal attributes
    append_le(central, 0, 4);  // external attributes
    append_le(central, static_cast<uint32_t>(local), 4);
    append(central, name);
  }
  const size_t cd_offset = out.size();
  out.insert(out.end(), central.begin(), central.end());
  append_le(out, 0x06054b50, 4);
  append_le(out, 0, 4);  // disks
  append_le(out, static_cast<uint32_t>(entries.size()), 2);
  append_le(out, static_cast<uint32_t>(entries.size()), 2);
  append_le(out, static_cast<uint32_t>(central.size()), 4);
  append_le(out, static_cast<uint32_t>(cd_offset), 4);
  append_le(out, 0, 2);
  return out;
}

// A torch.save-like archive holding only `pickle` as archive/data.pkl.
Bytes pickle_archive(std::string_view pickle) {
  return make_zip({{"archive/data.pkl", bytes_of(pickle)}});
}

// Overwrites the first `from` inside [begin, end) with `to` (as long); returns where it was.
size_t replace(Bytes& b, std::string_view from, std::string_view to, size_t begin = 0,
               size_t end = npos) {
  EXPECT_EQ(from.size(), to.size());
  const auto last = end == npos ? b.end() : b.begin() + static_cast<std::ptrdiff_t>(end);
  const auto it = std::search(b.begin() + static_cast<std::ptrdiff_t>(begin), last, from.begin(),
                              from.end(), [](std::byte x, char c) { return x == std::byte(c); });
  if (it == last) {
    ADD_FAILURE() << "pattern not found: " << testing::PrintToString(std::string(from));
    return npos;
  }
  std::memcpy(&*it, to.data(), to.size());
  return static_cast<size_t>(it - b.begin());
}

// The data.pkl entry.
ZipEntry pickle_entry(const Bytes& b) {
  for (const auto& e : zip_entries(b))
    if (e.name.size() >= 9 && e.name.substr(e.name.size() - 9) == "/data.pkl") return e;
  throw std::runtime_error("no data.pkl");
}

// Makes data.pkl's CRC right again (in the central directory and the data descriptor), so that
// only the pickle is wrong.
void fix_pickle_crc(Bytes& b) {
  const ZipEntry pkl = pickle_entry(b);
  const uint32_t crc = crc32(b.data() + pkl.data, pkl.size);
  put_le(b, pkl.central + 16, crc, 4);
  if (pkl.flags & 8) {
    size_t d = pkl.data + pkl.size;
    if (le(b, d, 4) == 0x08074b50) d += 4;
    put_le(b, d, crc, 4);
  } else {
    put_le(b, pkl.local + 14, crc, 4);
  }
}

// replace() inside data.pkl.
void edit_pickle(Bytes& b, std::string_view from, std::string_view to) {
  const ZipEntry pkl = pickle_entry(b);
  replace(b, from, to, pkl.data, pkl.data + pkl.size);
  fix_pickle_crc(b);
}

// --- the fixtures --------------------------------------------------------------------------

uintptr_t address(const std::byte* p) {
  return reinterpret_cast<uintptr_t>(p);
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Every tensor of `type`, its byte count its shape's, its bytes inside the file's mapping.
void expect_views_into_the_file(const TorchFile& f, DType type, const std::string& storage) {
  const auto begin = address(f.file()->data()), end = begin + f.file()->size();
  ASSERT_FALSE(f.tensors().empty());
  for (const auto& [name, t] : f.tensors()) {
    SCOPED_TRACE(name);
    EXPECT_EQ(t.storage_type, storage);
    ASSERT_TRUE(t.dtype.has_value());
    EXPECT_EQ(*t.dtype, type);
    EXPECT_EQ(t.nbytes, static_cast<uint64_t>(numel(t.shape) * mamba::traits(type).block_bytes));
    EXPECT_GE(address(t.data), begin);
    EXPECT_LE(address(t.data) + t.nbytes, end);
  }
}

// The same names (plus lm_head.weight, which a tied safetensors file leaves out), shapes, types
// and bytes as the safetensors file written from the same weights.
void expect_same_as_twin(const TorchFile& f, const std::string& twin_dir) {
  const auto twin = mamba::SafetensorsFile::open(kFixtures + "/" + twin_dir + "/model.safetensors");
  std::set<std::string> names, expected = {"lm_head.weight"};
  for (const auto& [name, t] : f.tensors()) names.insert(name);
  for (const auto& [name, t] : twin.tensors()) expected.insert(name);
  EXPECT_EQ(names, expected);
  for (const auto& [name, want] : twin.tensors()) {
    SCOPED_TRACE(name);
    const auto it = f.tensors().find(name);
    ASSERT_NE(it, f.tensors().end());
    const auto& got = it->second;
    EXPECT_EQ(got.shape, want.shape);
    EXPECT_EQ(got.dtype, want.dtype);
    ASSERT_EQ(got.nbytes, want.nbytes);
    EXPECT_EQ(std::memcmp(got.data, want.data, want.nbytes), 0) << "bytes differ";
  }
}

void expect_tied(const TorchFile& f) {
  const auto& head = f.tensors().at("lm_head.weight");
  const auto& embedding = f.tensors().at(kEmbedding);
  EXPECT_EQ(head.data, embedding.data);
  EXPECT_EQ(head.nbytes, embedding.nbytes);
  EXPECT_EQ(head.shape, embedding.shape);
}

TEST(TorchFile, StateSpacesF32MatchesItsSafetensorsTwin) {
  const auto f = TorchFile::open(kFixtures + "/state_spaces_bin/pytorch_model.bin");
  EXPECT_EQ(f.path(), kFixtures + "/state_spaces_bin/pytorch_model.bin");
  expect_views_into_the_file(f, DType::F32, "FloatStorage");
  expect_same_as_twin(f, "state_spaces");
  expect_tied(f);
}

TEST(TorchFile, Mamba2BF16MatchesItsSafetensorsTwin) {
  const auto f = TorchFile::open(kFixtures + "/mamba2_ss_bin/pytorch_model.bin");
  expect_views_into_the_file(f, DType::BF16, "BFloat16Storage");
  expect_same_as_twin(f, "mamba2_ss");
  expect_tied(f);
}

TEST(TorchFile, IsTorchZip) {
  EXPECT_TRUE(mamba::is_torch_zip(kFixtures + "/state_spaces_bin/pytorch_model.bin"));
  EXPECT_TRUE(mamba::is_torch_zip(kFixtures + "/mamba2_ss_bin/pytorch_model.bin"));
  EXPECT_FALSE(mamba::is_torch_zip(kFixtures + "/state_spaces/model.safetensors"));
  EXPECT_FALSE(mamba::is_torch_zip(kFixtures + "/state_spaces_bin/config.json"));
  EXPECT_FALSE(mamba::is_torch_zip(kFixtures + "/no_such_file.bin"));
}

// The archive rewritten without data descriptors or zip64 records reads the same.
TEST(TorchFile, RewrittenArchiveReadsTheSame) {
  for (const char* name : {"state_spaces_bin", "mamba2_ss_bin"}) {
    SCOPED_TRACE(name);
    const auto a = parse(torch_fixture(name));
    const auto b = parse(make_zip(unzip(torch_fixture(name))));
    ASSERT_EQ(a.tensors().size(), b.tensors().size());
    for (const auto& [n, t] : a.tensors()) {
      const auto& u = b.tensors().at(n);
      EXPECT_EQ(t.shape, u.shape);
      ASSERT_EQ(t.nbytes, u.nbytes);
      EXPECT_EQ(std::memcmp(t.data, u.data, t.nbytes), 0) << n;
    }
  }
}

// Newer PyTorch versions write <prefix>/byteorder; "little" is what every CPU it runs on writes.
TEST(TorchFile, LittleEndianByteorderEntryIsRead) {
  auto entries = unzip(torch_fixture("state_spaces_bin"));
  entries.emplace_back("pytorch_model/byteorder", bytes_of("little"));
  const auto f = parse(make_zip(entries));
  EXPECT_EQ(f.tensors().size(), 23u);
}

// A storage class the library does not compute with: the tensor is there, without a dtype.
// (IntStorage has FloatStorage's element size; a MARK, POP_MARK pair keeps the pickle's length.)
TEST(TorchFile, OtherStorageTypesHaveNoDtype) {
  auto b = torch_fixture("state_spaces_bin");
  edit_pickle(b, "torch\nFloatStorage\n", "torch\nIntStorage\n(1");
  const auto f = parse(b);
  ASSERT_EQ(f.tensors().size(), 23u);
  for (const auto& [name, t] : f.tensors()) {
    SCOPED_TRACE(name);
    EXPECT_EQ(t.storage_type, "IntStorage");
    EXPECT_FALSE(t.dtype.has_value());
    EXPECT_EQ(t.nbytes, static_cast<uint64_t>(numel(t.shape) * 4));
  }
}

// What torch.save writes for a tensor of shape (48, 0): strides (1, 1). torch counts every tensor
// without elements as contiguous.
TEST(TorchFile, TensorWithoutElements) {
  auto b = torch_fixture("state_spaces_bin");
  edit_pickle(b, "QK\x00K\x30K\x20\x86q\x09K\x20K\x01\x86"sv,
              "QK\x00K\x30K\x00\x86q\x09K\x01K\x01\x86"sv);
  try {
    const auto f = parse(b);
    const auto& t = f.tensors().at(kEmbedding);
    EXPECT_EQ(t.shape, (std::vector<int64_t>{48, 0}));
    EXPECT_EQ(t.nbytes, 0u);
  } catch (const mamba::Error& e) {
    ADD_FAILURE() << e.what();
  }
}

// The seeds of fuzz_torch are valid weights of its micro models, so that the fuzzer starts from
// inputs that reach the forward pass.
TEST(TorchFile, FuzzSeedsLoadAsTheMicroModels) {
  const fs::path seeds = fs::path(MAMBA_SOURCE_DIR) / "fuzz/corpus/torch";
  int n = 0;
  for (const auto& p : fs::directory_iterator(seeds)) {
    if (p.path().extension() != ".bin") continue;
    SCOPED_TRACE(p.path().string());
    ++n;
    const auto f = TorchFile::open(p.path().string());
    const auto logits = mamba::fuzz::run_weights(f, mamba::fuzz::micro_config_for(f));
    ASSERT_EQ(logits.size(), 8u);
    for (float x : logits) EXPECT_TRUE(std::isfinite(x));
  }
  EXPECT_GE(n, 4);
}

// --- through the checkpoint loader ---------------------------------------------------------

class TorchCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mamba_torch_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::copy(kFixtures + "/state_spaces_bin", dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(TorchCheckpoint, SameTensorsAsTheSafetensorsTwinPlusTheHead) {
  const auto ck = mamba::load_checkpoint(dir_.string());
  const auto twin = mamba::load_checkpoint(kFixtures + "/state_spaces");
  EXPECT_EQ(ck.config.vocab_size, twin.config.vocab_size);
  EXPECT_EQ(ck.config.d_model, twin.config.d_model);
  std::set<std::string> names, expected = {"lm_head.weight"};
  for (const auto& [name, t] : ck.tensors) names.insert(name);
  for (const auto& [name, t] : twin.tensors) expected.insert(name);
  EXPECT_EQ(names, expected);
  for (const auto& [name, want] : twin.tensors) {
    SCOPED_TRACE(name);
    const auto* got = ck.find(name);
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(got->type, want.type);
    EXPECT_EQ(got->shape, want.shape);
    ASSERT_EQ(got->nbytes, want.nbytes);
    EXPECT_EQ(std::memcmp(got->data, want.data, want.nbytes), 0);
  }
  const auto* head = ck.find("lm_head.weight");
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->data, ck.find("backbone.embeddings.weight")->data);
}

// A pytorch_model.bin that is not a zip archive: here the start of the legacy (before PyTorch
// 1.6) format, a bare pickle.
TEST_F(TorchCheckpoint, PytorchModelBinThatIsNotAZip) {
  const fs::path bin = dir_ / "pytorch_model.bin";
  std::ofstream(bin, std::ios::binary | std::ios::trunc)
      << "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02M\xe9\x03.";
  try {
    mamba::load_checkpoint(dir_.string());
    ADD_FAILURE() << "loaded without error";
  } catch (const mamba::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("pytorch_model.bin"), npos) << e.what();
  } catch (const mamba::Error& e) {
    ADD_FAILURE() << "not a FormatError: " << e.what();
  }
}

// --- damaged archives ----------------------------------------------------------------------

TEST(TorchFileErrors, NotAZip) {
  expect_format_error({}, {"not a zip archive"});
  expect_format_error(bytes_of("hello, world"), {"not a zip archive"});
  expect_format_error(bytes_of(std::string(100, '\0')), {"not a zip archive"});
  expect_format_error(read_file(kFixtures + "/state_spaces/model.safetensors"),
                      {"not a zip archive"});
}

TEST(TorchFileErrors, EveryTruncation) {
  for (const char* name : {"state_spaces_bin", "mamba2_ss_bin"}) {
    const Bytes full = torch_fixture(name);
    std::vector<size_t> sizes = {full.size() - 1, full.size() - 22, full.size() - 23};
    for (size_t n = 0; n < full.size(); n += 997) sizes.push_back(n);
    for (size_t n : sizes) {
      SCOPED_TRACE(std::string(name) + " cut to " + std::to_string(n) + " bytes");
      expect_format_error(Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n)), {});
    }
  }
}

TEST(TorchFileErrors, CompressedPickle) {
  auto b = torch_fixture("state_spaces_bin");
  put_le(b, zip_entry(b, "pytorch_model/data.pkl").central + 10, 8, 2);  // deflate
  expect_format_error(b, {"pytorch_model/data.pkl", "compressed"});
}

TEST(TorchFileErrors, CompressedStorage) {
  auto b = torch_fixture("state_spaces_bin");
  const auto e = zip_entry(b, "pytorch_model/data/3");
  put_le(b, e.central + 10, 8, 2);
  put_le(b, e.local + 8, 8, 2);
  expect_format_error(b, {"pytorch_model/data/3", "compressed"});
}

TEST(TorchFileErrors, EntryPastTheEnd) {
  auto b = torch_fixture("state_spaces_bin");
  const auto e = zip_entry(b, "pytorch_model/data/0");
  put_le(b, e.central + 20, 0x7fffffff, 4);
  put_le(b, e.central + 24, 0x7fffffff, 4);
  expect_format_error(b, {"pytorch_model/data/0", "past the end"});
}

TEST(TorchFileErrors, LocalHeaderPastTheEnd) {
  auto b = torch_fixture("state_spaces_bin");
  put_le(b, zip_entry(b, "pytorch_model/data/5").central + 42,
         static_cast<uint32_t>(b.size() + 100), 4);
  expect_format_error(b, {"pytorch_model/data/5", "past the end"});
}

TEST(TorchFileErrors, CentralDirectoryPastTheEnd) {
  auto b = make_zip(unzip(torch_fixture("state_spaces_bin")));
  put_le(b, b.size() - 22 + 16, static_cast<uint32_t>(b.size()), 4);
  expect_format_error(b, {"central directory", "past the end"});
  b = make_zip(unzip(torch_fixture("state_spaces_bin")));
  put_le(b, b.size() - 22 + 10, 0xffff, 2);  // more entries than the directory holds
  expect_format_error(b, {});
}

TEST(TorchFileErrors, NoDataPkl) {
  auto b = torch_fixture("state_spaces_bin");
  const auto e = zip_entry(b, "pytorch_model/data.pkl");
  replace(b, "data.pkl", "data.pkx", e.central, e.central + 46 + e.name.size());
  replace(b, "data.pkl", "data.pkx", e.local, e.data);
  expect_format_error(b, {"no data.pkl"});
}

TEST(TorchFileErrors, BigEndianByteorder) {
  auto entries = unzip(torch_fixture("state_spaces_bin"));
  entries.emplace_back("pytorch_model/byteorder", bytes_of("big"));
  expect_format_error(make_zip(entries), {"big-endian"});
}

TEST(TorchFileErrors, UnsupportedGlobals) {
  const Bytes fixture = torch_fixture("state_spaces_bin");
  auto b = fixture;
  edit_pickle(b, "_rebuild_tensor_v2\n", "_rebuild_tensor_v9\n");
  expect_format_error(b, {"unsupported global", "torch._utils._rebuild_tensor_v9"});
  b = fixture;
  edit_pickle(b, "torch._utils\n", "xorch._utils\n");
  expect_format_error(b, {"unsupported global", "xorch._utils._rebuild_tensor_v2"});
  b = fixture;
  edit_pickle(b, "torch\nFloatStorage\n", "torch\nXloatStorage\n");
  expect_format_error(b, {"XloatStorage"});
  // os.system, the pickle kept parseable after it by (MARK, POP_MARK) pairs
  b = fixture;
  edit_pickle(b, "ccollections\nOrderedDict\n", "cos\nsystem\n(1(1(1(1(1(1(1");
  expect_format_error(b, {"unsupported global 'os.system'"});
  b = torch_fixture("mamba2_ss_bin");
  edit_pickle(b, "torch\nBFloat16Storage\n", "torch\nBFloat16Storagf\n");
  expect_format_error(b, {"BFloat16Storagf"});
}

TEST(TorchFileErrors, UnsupportedOpcode) {
  auto b = torch_fixture("state_spaces_bin");
  edit_pickle(b, "\x89h\x00)R"sv, "\xffh\x00)R"sv);  // NEWFALSE
  expect_format_error(b, {"unsupported pickle opcode 0x"});
}

TEST(TorchFileErrors, DamagedPickle) {
  for (const char* name : {"state_spaces_bin", "mamba2_ss_bin"}) {
    SCOPED_TRACE(name);
    // No STOP: the last byte a NONE instead.
    auto b = torch_fixture(name);
    const auto pkl = pickle_entry(b);
    ASSERT_EQ(b[pkl.data + pkl.size - 1], std::byte{'.'});
    b[pkl.data + pkl.size - 1] = std::byte{'N'};
    fix_pickle_crc(b);
    expect_format_error(b, {"pickle"});
  }
  // Stack underflow: the OrderedDict's empty argument tuple a POP.
  auto b = torch_fixture("state_spaces_bin");
  edit_pickle(b, "q\x00)R"sv, "q\x00\x30R"sv);  // \x30: '0', POP
  expect_format_error(b, {"pickle"});
}

TEST(TorchFileErrors, NoStorageEntry) {
  auto b = torch_fixture("state_spaces_bin");
  edit_pickle(b, "X\x01\x00\x00\x00\x30q"sv, "X\x01\x00\x00\x00\x41q"sv);  // key '0' -> 'A'
  expect_format_error(b, {"tensor '" + kEmbedding + "'", "no storage entry"});
}

// The embedding (48, 32) of a storage of 1536 floats.
TEST(TorchFileErrors, TensorPastItsStorage) {
  const Bytes fixture = torch_fixture("state_spaces_bin");
  auto b = fixture;
  edit_pickle(b, "QK\x00K\x30K\x20\x86"sv, "QK\x00K\x31K\x20\x86"sv);  // shape (49, 32)
  expect_format_error(b, {"tensor '" + kEmbedding + "'", "past its storage"});
  b = fixture;
  edit_pickle(b, "QK\x00K\x30K\x20\x86"sv, "QK\x01K\x30K\x20\x86"sv);  // storage offset 1
  expect_format_error(b, {"tensor '" + kEmbedding + "'", "past its storage"});
}

// The storage's element count in the pickle disagrees with its entry's size.
TEST(TorchFileErrors, StorageSizeDisagreesWithTheEntry) {
  auto b = torch_fixture("state_spaces_bin");
  edit_pickle(b, "M\x00\x06t"sv, "M\xff\x05t"sv);  // 1536 -> 1535 elements
  expect_format_error(b, {"tensor '" + kEmbedding + "'", "storage"});
}

TEST(TorchFileErrors, NotContiguous) {
  auto b = torch_fixture("state_spaces_bin");
  // strides (32, 1) -> (1, 32): a transposed view, inside the storage
  edit_pickle(b, "q\x09K\x20K\x01\x86q\x0a"sv, "q\x09K\x01K\x20\x86q\x0a"sv);
  expect_format_error(b, {"tensor '" + kEmbedding + "'", "not contiguous"});
}

TEST(TorchFileErrors, PickleTooLarge) {
  expect_format_error(pickle_archive(std::string((16u << 20) + 1, 'N')), {"data.pkl"});
}

// Hostile pickles: a dict that holds itself must not leak; a chain of containers built through
// the memo (each level made before it is nested, so never deeper than 2 when nested) must not
// overflow the stack when it is freed.
TEST(TorchFileErrors, SelfReferencingDictIsFreed) {
  const long before = g_live_allocations.load();
  try {
    parse(pickle_archive("\x80\x02}22s."sv));
  } catch (const mamba::Error&) {
  }
  EXPECT_EQ(g_live_allocations.load(), before) << "allocations still live: a reference cycle";
}

TEST(TorchFileErrors, DeepChainOfContainers) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::string pickle = "\x80\x02]q\x00"s;
  for (int i = 0; i < 200'000; ++i) {
    pickle += "h\x00]q\x00"sv;  // get the last list, make a new one, memoize it
    pickle += "a0";             // append it to the last, pop the last
  }
  pickle += '.';
  const Bytes b = pickle_archive(pickle);
  EXPECT_EXIT(
      {
        try {
          parse(b);
        } catch (const mamba::Error&) {
        }
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
