#pragma once
// safetensors: an 8-byte little-endian header length, a JSON header mapping each tensor name to
// {dtype, shape, data_offsets}, then the raw data. Read through mmap; every field is checked
// against the file before it is used.
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "mamba/error.hpp"
#include "mamba/io/mmap.hpp"
#include "mamba/ops/dtype.hpp"

namespace mamba {

class SafetensorsFile {
 public:
  struct Tensor {
    std::string dtype_name;      // as written ("F32", "I64", ...)
    std::optional<DType> dtype;  // empty for types the library does not compute with
    std::vector<int64_t> shape;  // torch order
    const std::byte* data = nullptr;
    uint64_t nbytes = 0;
  };

  static SafetensorsFile open(const std::string& path) { return from_file(MappedFile::open(path)); }
  // The same over a file already open (or bytes in memory: MappedFile::from_bytes).
  static SafetensorsFile from_file(std::shared_ptr<const MappedFile> file) {
    SafetensorsFile f;
    f.file_ = std::move(file);
    f.parse();
    return f;
  }

  const std::string& path() const { return file_->path(); }
  const std::shared_ptr<const MappedFile>& file() const { return file_; }
  const std::map<std::string, Tensor>& tensors() const { return tensors_; }

 private:
  static constexpr uint64_t kMaxHeader = 100u << 20;  // the reference implementation's limit

  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(file_->path() + ": " + what);
  }

  static std::optional<DType> to_dtype(const std::string& s) {
    if (s == "F32") return DType::F32;
    if (s == "F16") return DType::F16;
    if (s == "BF16") return DType::BF16;
    return std::nullopt;
  }

  static uint64_t element_size(const std::string& s) {
    static const std::map<std::string, uint64_t> sizes = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
        {"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"U16", 2}, {"U32", 4}, {"U64", 8}, {"F8_E4M3", 1},
        {"F8_E5M2", 1}};
    auto it = sizes.find(s);
    return it == sizes.end() ? 0 : it->second;
  }

  void parse() {
    const size_t size = file_->size();
    if (size < 8) fail("file of " + std::to_string(size) + " bytes is too short for safetensors");
    uint64_t n = 0;
    std::memcpy(&n, file_->data(), 8);
    if (n > kMaxHeader || n > size - 8)
      fail("header length " + std::to_string(n) + " points past the end of the file (" +
           std::to_string(size) + " bytes)");
    const char* h = reinterpret_cast<const char*>(file_->data() + 8);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(h, h + n);
    } catch (const nlohmann::json::exception& e) {
      fail(std::string("bad JSON header: ") + e.what());
    }
    if (!j.is_object()) fail("header is not a JSON object");
    const std::byte* base = file_->data() + 8 + n;
    const uint64_t data_size = size - 8 - n;
    for (const auto& [name, info] : j.items()) {
      if (name == "__metadata__") continue;
      const std::string where = "tensor '" + name + "': ";
      if (!info.is_object() || !info.contains("dtype") || !info["dtype"].is_string() ||
          !info.contains("shape") || !info["shape"].is_array() ||
          !info.contains("data_offsets") || !info["data_offsets"].is_array() ||
          info["data_offsets"].size() != 2)
        fail(where + "entry needs dtype, shape and data_offsets [begin, end]");
      Tensor t;
      t.dtype_name = info["dtype"].get<std::string>();
      t.dtype = to_dtype(t.dtype_name);
      const uint64_t esize = element_size(t.dtype_name);
      if (esize == 0) fail(where + "unknown dtype '" + t.dtype_name + "'");
      uint64_t numel = 1;
      for (const auto& d : info["shape"]) {
        if (!d.is_number_unsigned()) fail(where + "shape has a non-integer or negative entry");
        const uint64_t v = d.get<uint64_t>();
        // At most 2^60 elements, so that numel * element size (8 at most) cannot wrap around.
        if (v != 0 && numel > (uint64_t{1} << 60) / v) fail(where + "shape overflows 64 bits");
        numel *= v;
        t.shape.push_back(static_cast<int64_t>(v));
      }
      const auto& off = info["data_offsets"];
      if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        fail(where + "data_offsets must be non-negative integers");
      const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
      if (b > e || e > data_size)
        fail(where + "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
             "] lie outside the " + std::to_string(data_size) + " data bytes (truncated file?)");
      if (e - b != numel * esize)
        fail(where + "data_offsets span " + std::to_string(e - b) + " bytes, shape and dtype need " +
             std::to_string(numel * esize));
      t.data = base + b;
      t.nbytes = e - b;
      tensors_.emplace(name, std::move(t));
    }
  }

  std::shared_ptr<const MappedFile> file_;
  std::map<std::string, Tensor> tensors_;
};

}  // namespace mamba
