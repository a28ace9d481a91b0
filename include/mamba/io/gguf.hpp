#pragma once
// GGUF (llama.cpp's model file), versions 2 and 3: metadata key-values and tensor views over a
// memory-mapped file (no copies). The file is treated as hostile: every length, count, offset
// and shape is checked against the bytes that are actually there before it is used, and nothing
// is allocated on the word of a header beyond what the file's size can back.
// The writer is in gguf_writer.hpp (included at the end).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mamba/error.hpp"
#include "mamba/io/gguf_types.hpp"
#include "mamba/io/mmap.hpp"
#include "mamba/ops/dtype.hpp"

namespace mamba {

class GgufFile {
 public:
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;  // ggml order: ne[0] is the row length (torch shape reversed)
    const std::byte* data;    // into the mapping; valid while file() is alive
    uint64_t nbytes;
  };
  // A value as stored: its type and the bytes after the type tag (for arrays: element type,
  // count and elements). Lets a writer copy a key verbatim.
  struct RawValue {
    GgufType type;
    std::span<const std::byte> bytes;
  };

  static GgufFile open(const std::string& path) {
    std::shared_ptr<const MappedFile> f;
    try {
      f = MappedFile::open(path);
    } catch (const FormatError&) {
      throw;
    } catch (const Error& e) {
      throw FormatError(e.what());
    }
    return from_file(std::move(f));
  }
  // The same over a file already open (or bytes in memory: MappedFile::from_bytes).
  static GgufFile from_file(std::shared_ptr<const MappedFile> f) {
    GgufFile g;
    g.s_ = parse(std::move(f));
    return g;
  }

  const std::string& path() const { return s_->file->path(); }
  std::shared_ptr<const MappedFile> file() const { return s_->file; }
  uint32_t version() const { return s_->version; }
  uint64_t alignment() const { return s_->alignment; }
  uint64_t data_offset() const { return s_->data_offset; }

  bool has(std::string_view key) const { return s_->kv_index.count(key) != 0; }
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (const auto& kv : s_->kvs) out.push_back(kv.key);
    return out;
  }
  GgufType type_of(std::string_view key) const { return kv(key).type; }
  RawValue raw_value(std::string_view key) const {
    const Kv& v = kv(key);
    return {v.type, {s_->file->data() + v.offset, v.size}};
  }

  std::string get_string(std::string_view key) const {
    const Kv& v = expect(key, GgufType::STRING, "a string");
    return std::string(read_str(v.offset));
  }
  uint64_t get_uint(std::string_view key) const {
    const Kv& v = kv(key);
    if (!gguf_type_is_int(v.type)) throw wrong_type(key, v, "an integer");
    if (v.type == GgufType::UINT64) return read<uint64_t>(v.offset);
    const int64_t sv = read_int(v.type, v.offset, key);
    if (sv < 0) throw bad_value(key, "is negative: " + std::to_string(sv));
    return static_cast<uint64_t>(sv);
  }
  double get_float(std::string_view key) const {
    const Kv& v = kv(key);
    if (v.type == GgufType::FLOAT32) return read<float>(v.offset);
    if (v.type == GgufType::FLOAT64) return read<double>(v.offset);
    throw wrong_type(key, v, "a float");
  }
  bool get_bool(std::string_view key) const {
    return read<uint8_t>(expect(key, GgufType::BOOL, "a bool").offset) != 0;
  }
  std::vector<std::string> get_string_array(std::string_view key) const {
    const auto [elem, n, pos0] = array(key, "an array of strings");
    if (elem != GgufType::STRING) throw bad_value(key, "is not an array of strings");
    std::vector<std::string> out;
    out.reserve(n);  // n was checked against the file's size when it was opened
    for (uint64_t i = 0, pos = pos0; i < n; ++i) {
      out.emplace_back(read_str(pos));
      pos += 8 + out.back().size();
    }
    return out;
  }
  std::vector<int64_t> get_int_array(std::string_view key) const {
    const auto [elem, n, pos] = array(key, "an array of integers");
    if (!gguf_type_is_int(elem)) throw bad_value(key, "is not an array of integers");
    std::vector<int64_t> out(n);
    const size_t es = gguf_scalar_size(elem);
    for (uint64_t i = 0; i < n; ++i) out[i] = read_int(elem, pos + i * es, key);
    return out;
  }
  std::vector<float> get_float_array(std::string_view key) const {
    const auto [elem, n, pos] = array(key, "an array of floats");
    if (elem != GgufType::FLOAT32 && elem != GgufType::FLOAT64)
      throw bad_value(key, "is not an array of floats");
    std::vector<float> out(n);
    for (uint64_t i = 0; i < n; ++i)
      out[i] = elem == GgufType::FLOAT32 ? read<float>(pos + 4 * i)
                                         : static_cast<float>(read<double>(pos + 8 * i));
    return out;
  }

  const std::vector<Tensor>& tensors() const { return s_->tensors; }
  const Tensor* find_tensor(std::string_view name) const {
    const auto it = s_->tensor_index.find(name);
    return it == s_->tensor_index.end() ? nullptr : &s_->tensors[it->second];
  }

 private:
  struct Kv {
    std::string key;
    GgufType type;
    size_t offset;  // of the value (after the type tag)
    size_t size;    // bytes of the value
  };
  struct State {
    std::shared_ptr<const MappedFile> file;
    uint32_t version = 0;
    uint64_t alignment = kGgufDefaultAlignment;
    uint64_t data_offset = 0;
    std::vector<Kv> kvs;
    std::map<std::string, size_t, std::less<>> kv_index;
    std::vector<Tensor> tensors;
    std::map<std::string, size_t, std::less<>> tensor_index;
  };
  struct ArrayView {
    GgufType elem;
    uint64_t n;
    size_t pos;  // of the first element
  };

  // Bounds-checked reading of the header; every failure names the file and the byte offset.
  class Cursor {
   public:
    Cursor(const MappedFile& f) : p_(f.data()), size_(f.size()), path_(f.path()) {}
    size_t pos() const { return pos_; }
    size_t left() const { return size_ - pos_; }
    [[noreturn]] void fail(const std::string& what) const {
      throw FormatError(path_ + ": not a valid GGUF file: " + what + " (at byte " +
                        std::to_string(pos_) + ")");
    }
    void need(uint64_t n, const std::string& what) const {
      if (n > left())
        fail(what + " needs " + std::to_string(n) + " bytes but only " + std::to_string(left()) +
             " remain");
    }
    template <class T>
    T get(const std::string& what) {
      need(sizeof(T), what);
      T v;
      std::memcpy(&v, p_ + pos_, sizeof(T));
      pos_ += sizeof(T);
      return v;
    }
    std::string_view str(const std::string& what) {
      const auto n = get<uint64_t>(what + " length");
      need(n, what + " (length " + std::to_string(n) + ")");
      std::string_view s(reinterpret_cast<const char*>(p_ + pos_), n);
      pos_ += n;
      return s;
    }
    void skip(uint64_t n, const std::string& what) {
      need(n, what);
      pos_ += n;
    }
    // Walks one value of type t, checking every length in it.
    void skip_value(GgufType t, const std::string& what) {
      if (t == GgufType::STRING) {
        str(what);
      } else if (t == GgufType::ARRAY) {
        const auto et = get<uint32_t>(what + " element type");
        if (!gguf_type_valid(et) || et == static_cast<uint32_t>(GgufType::ARRAY))
          fail(what + " has invalid element type " + std::to_string(et));
        const auto elem = static_cast<GgufType>(et);
        const auto n = get<uint64_t>(what + " count");
        const size_t es =
            elem == GgufType::STRING ? 8 : gguf_scalar_size(elem);  // least bytes each
        if (n > left() / es)
          fail(what + " claims " + std::to_string(n) + " elements, more than the file can hold");
        if (elem == GgufType::STRING)
          for (uint64_t i = 0; i < n; ++i) str(what + " element " + std::to_string(i));
        else
          skip(n * es, what);
      } else {
        skip(gguf_scalar_size(t), what);
      }
    }

   private:
    const std::byte* p_;
    size_t size_;
    const std::string& path_;
    size_t pos_ = 0;
  };

  static std::shared_ptr<const State> parse(std::shared_ptr<const MappedFile> f) {
    auto s = std::make_shared<State>();
    s->file = f;
    Cursor c(*f);
    if (c.get<uint32_t>("magic") != kGgufMagic) c.fail("bad magic (expected \"GGUF\")");
    s->version = c.get<uint32_t>("version");
    if (s->version != 2 && s->version != 3)
      c.fail("unsupported version " + std::to_string(s->version) + " (expected 2 or 3)");
    const auto n_tensors = c.get<uint64_t>("tensor count");
    const auto n_kv = c.get<uint64_t>("key-value count");
    // A key-value takes at least 13 bytes (length, type, 1-byte value), a tensor info 24.
    if (n_kv > c.left() / 13) c.fail("absurd key-value count " + std::to_string(n_kv));
    if (n_tensors > c.left() / 24) c.fail("absurd tensor count " + std::to_string(n_tensors));

    s->kvs.reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) {
      const std::string what = "key " + std::to_string(i);
      std::string key(c.str(what));
      const auto t = c.get<uint32_t>("type of key '" + key + "'");
      if (!gguf_type_valid(t))
        c.fail("key '" + key + "' has invalid value type " + std::to_string(t));
      const size_t start = c.pos();
      c.skip_value(static_cast<GgufType>(t), "value of key '" + key + "'");
      if (!s->kv_index.emplace(key, s->kvs.size()).second) c.fail("duplicate key '" + key + "'");
      s->kvs.push_back({std::move(key), static_cast<GgufType>(t), start, c.pos() - start});
    }
    GgufFile view;
    view.s_ = s;
    if (view.has("general.alignment")) {
      const uint64_t a = view.get_uint("general.alignment");
      if (a == 0 || (a & (a - 1)) != 0 || a > (1u << 30))
        c.fail("general.alignment " + std::to_string(a) + " is not a power of two");
      s->alignment = a;
    }

    struct Info {
      uint64_t offset;
    };
    std::vector<Info> infos;
    s->tensors.reserve(n_tensors);
    infos.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
      Tensor t;
      t.name = std::string(c.str("name of tensor " + std::to_string(i)));
      const std::string tn = "tensor '" + t.name + "'";
      if (s->tensor_index.count(t.name) != 0) c.fail("duplicate " + tn);
      const auto n_dims = c.get<uint32_t>(tn + " dimension count");
      if (n_dims > kGgufMaxDims)
        c.fail(tn + " has " + std::to_string(n_dims) + " dimensions (at most 4)");
      uint64_t count = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        const auto ne = c.get<uint64_t>(tn + " dimension");
        if (ne > static_cast<uint64_t>(INT64_MAX)) c.fail(tn + " has a negative dimension");
        if (ne != 0 && count > static_cast<uint64_t>(INT64_MAX) / ne)
          c.fail(tn + " has more elements than 64 bits can count");
        count *= ne;
        t.ne.push_back(static_cast<int64_t>(ne));
      }
      const auto type_id = c.get<uint32_t>(tn + " type");
      const auto dt = dtype_from_ggml(type_id);
      if (!dt) c.fail(tn + " has unknown or unsupported ggml type " + std::to_string(type_id));
      t.type = *dt;
      const auto tr = traits(t.type);
      const int64_t row = t.ne.empty() ? 1 : t.ne[0];
      if (row % tr.block_size != 0)
        c.fail(tn + " row of " + std::to_string(row) + " is not a multiple of the " +
               std::string(tr.name) + " block size");
      const uint64_t blocks = count / static_cast<uint64_t>(tr.block_size);
      if (blocks > UINT64_MAX / static_cast<uint64_t>(tr.block_bytes))
        c.fail(tn + " byte size overflows");
      t.nbytes = blocks * static_cast<uint64_t>(tr.block_bytes);
      infos.push_back({c.get<uint64_t>(tn + " offset")});
      s->tensor_index.emplace(t.name, s->tensors.size());
      s->tensors.push_back(std::move(t));
    }

    s->data_offset = gguf_align_up(c.pos(), s->alignment);
    const uint64_t size = f->size();
    for (size_t i = 0; i < s->tensors.size(); ++i) {
      Tensor& t = s->tensors[i];
      const uint64_t off = infos[i].offset;
      if (off % s->alignment != 0)
        c.fail("tensor '" + t.name + "' offset " + std::to_string(off) +
               " is not a multiple of the alignment " + std::to_string(s->alignment));
      if (s->data_offset > size || off > size - s->data_offset ||
          t.nbytes > size - s->data_offset - off)
        c.fail("tensor '" + t.name + "' (offset " + std::to_string(off) + ", " +
               std::to_string(t.nbytes) + " bytes) runs past the end of the file (" +
               std::to_string(size) + " bytes)");
      t.data = f->data() + s->data_offset + off;
    }
    return s;
  }

  const Kv& kv(std::string_view key) const {
    const auto it = s_->kv_index.find(key);
    if (it == s_->kv_index.end())
      throw FormatError(path() + ": missing key '" + std::string(key) + "'");
    return s_->kvs[it->second];
  }
  FormatError wrong_type(std::string_view key, const Kv& v, const char* expected) const {
    return FormatError(path() + ": key '" + std::string(key) + "' is " +
                       std::string(gguf_type_name(v.type)) + ", expected " + expected);
  }
  FormatError bad_value(std::string_view key, const std::string& what) const {
    return FormatError(path() + ": key '" + std::string(key) + "' " + what);
  }
  const Kv& expect(std::string_view key, GgufType t, const char* expected) const {
    const Kv& v = kv(key);
    if (v.type != t) throw wrong_type(key, v, expected);
    return v;
  }
  ArrayView array(std::string_view key, const char* expected) const {
    const Kv& v = expect(key, GgufType::ARRAY, expected);
    return {static_cast<GgufType>(read<uint32_t>(v.offset)), read<uint64_t>(v.offset + 4),
            v.offset + 12};
  }
  template <class T>
  T read(size_t pos) const {
    T v;
    std::memcpy(&v, s_->file->data() + pos, sizeof(T));
    return v;
  }
  std::string_view read_str(size_t pos) const {
    return {reinterpret_cast<const char*>(s_->file->data() + pos + 8), read<uint64_t>(pos)};
  }
  int64_t read_int(GgufType t, size_t pos, std::string_view key) const {
    switch (t) {
      case GgufType::UINT8:
        return read<uint8_t>(pos);
      case GgufType::INT8:
        return read<int8_t>(pos);
      case GgufType::UINT16:
        return read<uint16_t>(pos);
      case GgufType::INT16:
        return read<int16_t>(pos);
      case GgufType::UINT32:
        return read<uint32_t>(pos);
      case GgufType::INT32:
        return read<int32_t>(pos);
      case GgufType::INT64:
        return read<int64_t>(pos);
      case GgufType::UINT64: {
        const auto u = read<uint64_t>(pos);
        if (u > static_cast<uint64_t>(INT64_MAX))
          throw bad_value(key, "holds " + std::to_string(u) + ", too large");
        return static_cast<int64_t>(u);
      }
      default:
        throw bad_value(key, "is not an integer");
    }
  }

  std::shared_ptr<const State> s_;
};

}  // namespace mamba

#include "mamba/io/gguf_writer.hpp"
