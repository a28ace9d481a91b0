#pragma once
// Writes GGUF v3 files laid out as llama.cpp's own writer lays them out: header, key-values in
// the order they were set, tensor infos in the order tensors were added (offsets increasing),
// zero padding to the alignment, then each tensor's bytes followed by zero padding to the
// alignment. Tensor bytes can be given up front or produced on demand while writing (so a
// quantizer never holds more than one tensor).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "mamba/error.hpp"
#include "mamba/io/gguf_types.hpp"
#include "mamba/ops/dtype.hpp"

namespace mamba {

class GgufWriter {
 public:
  // Fills `dst` (exactly the tensor's byte size) with the tensor's data.
  using Fill = std::function<void(std::span<std::byte> dst)>;
  // Called after each tensor is written: (tensors done, tensors total, bytes written so far).
  using Progress = std::function<void(size_t, size_t, uint64_t)>;

  explicit GgufWriter(uint64_t alignment = kGgufDefaultAlignment) : alignment_(alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0)
      throw ArgumentError("GGUF alignment " + std::to_string(alignment) + " is not a power of two");
    if (alignment != kGgufDefaultAlignment)
      set("general.alignment", static_cast<uint32_t>(alignment));
  }

  // Scalars: the GGUF type follows the C++ type (uint8_t .. double, bool, strings).
  template <class T>
  void set(std::string_view key, const T& value) {
    std::vector<std::byte> b;
    if constexpr (std::is_convertible_v<const T&, std::string_view>) {
      put_str(b, std::string_view(value));
      set_raw(key, GgufType::STRING, b);
    } else {
      put(b, value);
      set_raw(key, type_of<T>(), b);
    }
  }
  // Arrays of numbers or bools (element type from T) or of strings.
  template <class T>
  void set_array(std::string_view key, const std::vector<T>& values) {
    std::vector<std::byte> b;
    if constexpr (std::is_convertible_v<const T&, std::string_view>) {
      put(b, static_cast<uint32_t>(GgufType::STRING));
      put(b, static_cast<uint64_t>(values.size()));
      for (const auto& v : values) put_str(b, std::string_view(v));
    } else {
      put(b, static_cast<uint32_t>(type_of<T>()));
      put(b, static_cast<uint64_t>(values.size()));
      for (const auto& v : values) put(b, static_cast<T>(v));
    }
    set_raw(key, GgufType::ARRAY, b);
  }
  // A value given as its stored bytes (see GgufFile::raw_value). Setting a key again replaces it.
  void set_raw(std::string_view key, GgufType type, std::span<const std::byte> value) {
    for (auto& kv : kvs_) {
      if (kv.key == key) {
        kv.type = type;
        kv.value.assign(value.begin(), value.end());
        return;
      }
    }
    kvs_.push_back({std::string(key), type, {value.begin(), value.end()}});
  }
  bool has(std::string_view key) const {
    for (const auto& kv : kvs_)
      if (kv.key == key) return true;
    return false;
  }
  void remove(std::string_view key) {
    std::erase_if(kvs_, [&](const Kv& kv) { return kv.key == key; });
  }

  // ne in ggml order (torch shape reversed). The tensor's bytes: given, or produced by `fill`.
  void add_tensor(std::string name, DType type, std::vector<int64_t> ne,
                  std::vector<std::byte> data) {
    const uint64_t n = check_tensor(name, type, ne);
    if (data.size() != n)
      throw ArgumentError("GGUF tensor '" + name + "': " + std::to_string(data.size()) +
                          " bytes given, " + std::to_string(n) + " expected");
    auto shared = std::make_shared<std::vector<std::byte>>(std::move(data));
    tensors_.push_back(
        {std::move(name), type, std::move(ne), n, [shared](std::span<std::byte> dst) {
           std::memcpy(dst.data(), shared->data(), dst.size());
         }});
  }
  void add_tensor(std::string name, DType type, std::vector<int64_t> ne, Fill fill) {
    const uint64_t n = check_tensor(name, type, ne);
    tensors_.push_back({std::move(name), type, std::move(ne), n, std::move(fill)});
  }
  size_t tensor_count() const { return tensors_.size(); }

  // Writes to `path` (through a temporary file renamed at the end). Returns the file's size.
  uint64_t write(const std::string& path, const Progress& progress = {}) const {
    const std::string tmp = path + ".tmp";
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(tmp + ": cannot open for writing");
    std::vector<std::byte> h;
    put(h, kGgufMagic);
    put(h, kGgufVersion);
    put(h, static_cast<uint64_t>(tensors_.size()));
    put(h, static_cast<uint64_t>(kvs_.size()));
    for (const auto& kv : kvs_) {
      put_str(h, kv.key);
      put(h, static_cast<uint32_t>(kv.type));
      h.insert(h.end(), kv.value.begin(), kv.value.end());
    }
    uint64_t offset = 0;
    for (const auto& t : tensors_) {
      put_str(h, t.name);
      put(h, static_cast<uint32_t>(t.ne.size()));
      for (int64_t d : t.ne) put(h, static_cast<uint64_t>(d));
      put(h, static_cast<uint32_t>(t.type));
      put(h, offset);
      offset += gguf_align_up(t.nbytes, alignment_);
    }
    h.resize(gguf_align_up(h.size(), alignment_));
    write_bytes(out, h, tmp);
    uint64_t written = h.size();
    std::vector<std::byte> buf;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const auto& t = tensors_[i];
      buf.assign(gguf_align_up(t.nbytes, alignment_), std::byte{0});
      t.fill(std::span<std::byte>(buf.data(), t.nbytes));
      write_bytes(out, buf, tmp);
      written += buf.size();
      if (progress) progress(i + 1, tensors_.size(), written);
    }
    out.close();
    if (!out) throw Error(tmp + ": write failed");
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      throw Error(path + ": cannot rename " + tmp + " to it");
    return written;
  }

 private:
  struct Kv {
    std::string key;
    GgufType type;
    std::vector<std::byte> value;
  };
  struct PendingTensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    uint64_t nbytes;
    Fill fill;
  };

  template <class T>
  static constexpr GgufType type_of() {
    if constexpr (std::is_same_v<T, bool>)
      return GgufType::BOOL;
    else if constexpr (std::is_same_v<T, uint8_t>)
      return GgufType::UINT8;
    else if constexpr (std::is_same_v<T, int8_t>)
      return GgufType::INT8;
    else if constexpr (std::is_same_v<T, uint16_t>)
      return GgufType::UINT16;
    else if constexpr (std::is_same_v<T, int16_t>)
      return GgufType::INT16;
    else if constexpr (std::is_same_v<T, uint32_t>)
      return GgufType::UINT32;
    else if constexpr (std::is_same_v<T, int32_t>)
      return GgufType::INT32;
    else if constexpr (std::is_same_v<T, uint64_t>)
      return GgufType::UINT64;
    else if constexpr (std::is_same_v<T, int64_t>)
      return GgufType::INT64;
    else if constexpr (std::is_same_v<T, float>)
      return GgufType::FLOAT32;
    else if constexpr (std::is_same_v<T, double>)
      return GgufType::FLOAT64;
    else
      static_assert(sizeof(T) == 0, "no GGUF type for this C++ type");
  }
  template <class T>
  static void put(std::vector<std::byte>& b, T v) {
    if constexpr (std::is_same_v<T, bool>) {
      b.push_back(std::byte{static_cast<unsigned char>(v ? 1 : 0)});
    } else {
      const size_t at = b.size();
      b.resize(at + sizeof(T));
      std::memcpy(b.data() + at, &v, sizeof(T));
    }
  }
  static void put_str(std::vector<std::byte>& b, std::string_view s) {
    put(b, static_cast<uint64_t>(s.size()));
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    b.insert(b.end(), p, p + s.size());
  }
  static void write_bytes(std::ofstream& out, const std::vector<std::byte>& b,
                          const std::string& path) {
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    if (!out) throw Error(path + ": write failed");
  }
  uint64_t check_tensor(const std::string& name, DType type, const std::vector<int64_t>& ne) const {
    if (name.empty() || name.size() > kGgufMaxName)
      throw ArgumentError("GGUF tensor name '" + name + "' must have 1 to 63 bytes");
    for (const auto& t : tensors_)
      if (t.name == name) throw ArgumentError("GGUF tensor '" + name + "' added twice");
    if (ne.empty() || ne.size() > static_cast<size_t>(kGgufMaxDims))
      throw ArgumentError("GGUF tensor '" + name + "' must have 1 to 4 dimensions");
    int64_t rows = 1;
    for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
    for (int64_t d : ne)
      if (d < 0) throw ArgumentError("GGUF tensor '" + name + "' has a negative dimension");
    return static_cast<uint64_t>(row_bytes(type, ne[0]) * rows);
  }

  uint64_t alignment_;
  std::vector<Kv> kvs_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace mamba
