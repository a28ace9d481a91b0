#pragma once
// Saving and loading a sequence's recurrent state (BasicState<T>), optionally with the token ids
// it has consumed (a prompt cache: "the state after the prompt, and the prompt").
//
// Format version 1 (Mamba-1) and 2 (Mamba-2, which adds 32 header bytes at offset 104). Every
// integer and float is little-endian, whatever the host.
//
//   offset  size  field
//        0     8  magic "MAMBASTA"
//        8     4  u32 format version: 1 for a Mamba-1 state, 2 for a Mamba-2 state
//       12     4  u32 scalar size in bytes: 4 (float32) or 8 (float64)
//       16     8  u64 config fingerprint, FNV-1a 64 of the fields below (config_fingerprint)
//       24    56  i64 d_model, n_layer, vocab_size, d_state, d_conv, d_inner, dt_rank
//       80    16  f64 norm_eps, mixer_eps (mixer_eps stored as 0 unless dt_b_c_rms)
//       96     4  u32 flags: 1 use_bias, 2 use_conv_bias, 4 tie_embeddings, 8 dt_b_c_rms,
//                 16 Mamba-2 (set exactly in version 2)
//      100     4  u32 zero
//     (104    32  version 2 only: i64 nheads, ngroups; f64 time_step_limit min, max)
//      104     8  i64 n_tokens (tokens consumed by the state)           (136 in version 2)
//      112     8  u64 number of token ids stored                         (144)
//      120        per layer: conv (d_conv-1, conv_dim), then ssm (d_inner, d_state), row-major;
//                 then the token ids, i32 each                          (152)
//      end-8   8  u64 FNV-1a 64 of every byte before it
//
// The fingerprint covers what fixes the state's shape and the math that produced it; it cannot
// tell apart two checkpoints of the same architecture with different weights.
//
// Loading treats the bytes as hostile: the length, magic, version, every header size (checked
// against the file length) and the checksum are verified, then the model is compared, and only
// then is anything allocated, sized by the caller's config. A state saved in one scalar type
// loads into another (values converted). Every failure is a FormatError naming the source.
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "mamba/config.hpp"
#include "mamba/error.hpp"
#include "mamba/model/state.hpp"

namespace mamba {

// The newest version written (for a Mamba-2 state); Mamba-1 states are still written as version 1.
inline constexpr uint32_t kStateFormatVersion = 2;

template <class T>
struct SavedState {
  BasicState<T> state;
  std::vector<int32_t> tokens;  // the token ids saved with the state (may be empty)
};

namespace state_io_detail {

inline constexpr char kMagic[8] = {'M', 'A', 'M', 'B', 'A', 'S', 'T', 'A'};
inline constexpr size_t kHeaderSize = 120;  // version 1
inline constexpr size_t kMamba2Size = 32;   // the fields version 2 adds
inline constexpr uint32_t kMamba2Flag = 16;
inline constexpr size_t kChecksumSize = 8;

inline uint64_t fnv1a64(std::span<const std::byte> bytes, uint64_t h = 0xcbf29ce484222325ull) {
  for (std::byte b : bytes) h = (h ^ static_cast<uint64_t>(b)) * 0x100000001b3ull;
  return h;
}

// The fields of ModelConfig that a state depends on, in file order.
struct ConfigFields {
  int64_t dims[7];  // d_model, n_layer, vocab_size, d_state, d_conv, d_inner, dt_rank
  double norm_eps, mixer_eps;
  uint32_t flags;
  int64_t heads[2];    // Mamba-2: nheads, ngroups (0 for Mamba-1)
  double dt_limit[2];  // Mamba-2: time_step_limit (0 for Mamba-1)

  static ConfigFields of(const ModelConfig& c) {
    const bool m2 = c.arch == Arch::Mamba2;
    return {{c.d_model, c.n_layer, c.vocab_size, c.d_state, c.d_conv, c.d_inner, c.dt_rank},
            c.norm_eps,
            c.dt_b_c_rms ? c.mixer_eps : 0.0,  // unused otherwise: loaders may disagree on it
            (c.use_bias ? 1u : 0u) | (c.use_conv_bias ? 2u : 0u) | (c.tie_embeddings ? 4u : 0u) |
                (c.dt_b_c_rms ? 8u : 0u) | (m2 ? kMamba2Flag : 0u),
            {m2 ? c.nheads : 0, m2 ? c.ngroups : 0},
            {m2 ? c.dt_min : 0.0, m2 ? c.dt_max : 0.0}};
  }

  bool mamba2() const { return (flags & kMamba2Flag) != 0; }
  uint32_t version() const { return mamba2() ? 2 : 1; }
  size_t header_size() const { return kHeaderSize + (mamba2() ? kMamba2Size : 0); }

  // Bitwise, so that the floats compare exactly as they are hashed.
  bool operator==(const ConfigFields& o) const {
    auto same = [](double a, double b) {
      return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
    };
    return std::memcmp(dims, o.dims, sizeof dims) == 0 && same(norm_eps, o.norm_eps) &&
           same(mixer_eps, o.mixer_eps) && flags == o.flags &&
           std::memcmp(heads, o.heads, sizeof heads) == 0 && same(dt_limit[0], o.dt_limit[0]) &&
           same(dt_limit[1], o.dt_limit[1]);
  }

  std::string describe() const {
    static const char* names[7] = {"d_model", "n_layer", "vocab_size", "d_state",
                                   "d_conv",  "d_inner", "dt_rank"};
    std::ostringstream s;
    for (int i = 0; i < 7; ++i) s << names[i] << " " << dims[i] << ", ";
    s << "norm_eps " << norm_eps << ", ";
    if (flags & 8u) s << "mixer_eps " << mixer_eps << ", ";
    s << "use_bias " << ((flags & 1u) != 0) << ", use_conv_bias " << ((flags & 2u) != 0)
      << ", tie_embeddings " << ((flags & 4u) != 0) << ", dt_b_c_rms " << ((flags & 8u) != 0);
    if (mamba2())
      s << ", Mamba-2 with nheads " << heads[0] << ", ngroups " << heads[1] << ", time_step_limit ["
        << dt_limit[0] << ", " << dt_limit[1] << "]";
    else
      s << ", Mamba-1";
    return s.str();
  }
};

// Writes into a buffer already sized for everything written.
class Writer {
 public:
  explicit Writer(std::span<std::byte> out) : out_(out) {}
  void bytes(const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) out_[pos_++] = static_cast<std::byte>(p[i]);
  }
  void u32(uint32_t v) { little(v, 4); }
  void u64(uint64_t v) { little(v, 8); }
  void i64(int64_t v) { little(static_cast<uint64_t>(v), 8); }
  void f64(double v) { little(std::bit_cast<uint64_t>(v), 8); }
  void f32(float v) { little(std::bit_cast<uint32_t>(v), 4); }
  size_t position() const { return pos_; }

 private:
  void little(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_[pos_++] = static_cast<std::byte>(v >> (8 * i));
  }
  std::span<std::byte> out_;
  size_t pos_ = 0;
};

// Reads from a span whose length has been checked by the caller.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  uint32_t u32() { return static_cast<uint32_t>(little(4)); }
  uint64_t u64() { return little(8); }
  int64_t i64() { return static_cast<int64_t>(little(8)); }
  double f64() { return std::bit_cast<double>(little(8)); }
  float f32() { return std::bit_cast<float>(static_cast<uint32_t>(little(4))); }
  void skip(size_t n) { pos_ += n; }

 private:
  uint64_t little(int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(in_[pos_ + i]) << (8 * i);
    pos_ += n;
    return v;
  }
  std::span<const std::byte> in_;
  size_t pos_ = 0;
};

inline void write_fields(Writer& w, const ConfigFields& f) {
  for (int64_t d : f.dims) w.i64(d);
  w.f64(f.norm_eps);
  w.f64(f.mixer_eps);
  w.u32(f.flags);
  w.u32(0);
  if (!f.mamba2()) return;
  for (int64_t h : f.heads) w.i64(h);
  for (double l : f.dt_limit) w.f64(l);
}

inline constexpr size_t kFieldsSize = 7 * 8 + 2 * 8 + 2 * 4;  // version 1; version 2 adds 32
static_assert(kHeaderSize == sizeof kMagic + 4 + 4 + 8 + kFieldsSize + 8 + 8);

inline uint64_t fingerprint(const ConfigFields& f) {
  std::array<std::byte, kFieldsSize + kMamba2Size> bytes{};
  Writer w(bytes);
  write_fields(w, f);
  return fnv1a64(std::span(bytes).first(w.position()));
}

}  // namespace state_io_detail

// Identifies the model a state belongs to: FNV-1a 64 over d_model, n_layer, vocab_size, d_state,
// d_conv, d_inner, dt_rank, norm_eps, mixer_eps (Falcon-Mamba only), the flags and, for Mamba-2,
// nheads, ngroups and the time_step_limit.
inline uint64_t config_fingerprint(const ModelConfig& config) {
  return state_io_detail::fingerprint(state_io_detail::ConfigFields::of(config));
}

// The state (and optional token ids) in the format above. Throws ArgumentError when the state does
// not have the shape of `config`.
template <class T>
std::vector<std::byte> state_to_bytes(const ModelConfig& config, const BasicState<T>& state,
                                      std::span<const int32_t> tokens = {}) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "states are saved as float32 or float64");
  using namespace state_io_detail;
  const size_t conv = static_cast<size_t>((config.d_conv - 1) * config.conv_dim());
  const size_t ssm = static_cast<size_t>(config.d_inner * config.d_state);
  bool fits = static_cast<int64_t>(state.layers.size()) == config.n_layer && state.n_tokens >= 0;
  for (const auto& l : state.layers) fits = fits && l.conv.size() == conv && l.ssm.size() == ssm;
  if (!fits) throw ArgumentError("save state: the state does not have the shape of this model");
  for (int32_t t : tokens)
    if (t < 0 || t >= config.vocab_size)
      throw ArgumentError("save state: token id " + std::to_string(t) +
                          " is outside the vocabulary [0, " + std::to_string(config.vocab_size) +
                          ")");

  const ConfigFields fields = ConfigFields::of(config);
  std::vector<std::byte> out(fields.header_size() + state.layers.size() * (conv + ssm) * sizeof(T) +
                             tokens.size() * 4 + kChecksumSize);
  Writer w(out);
  w.bytes(kMagic, sizeof kMagic);
  w.u32(fields.version());
  w.u32(sizeof(T));
  w.u64(fingerprint(fields));
  write_fields(w, fields);
  w.i64(state.n_tokens);
  w.u64(tokens.size());
  for (const auto& l : state.layers) {
    for (const std::vector<T>* values : {&l.conv, &l.ssm})
      for (T v : *values) {
        if constexpr (std::is_same_v<T, float>)
          w.f32(v);
        else
          w.f64(v);
      }
  }
  for (int32_t t : tokens) w.u32(static_cast<uint32_t>(t));
  w.u64(fnv1a64(std::span(out).first(w.position())));
  return out;
}

// Parses bytes written by state_to_bytes for a model with `config`. `source` (a file name) starts
// every error message.
template <class T>
SavedState<T> state_from_bytes(std::span<const std::byte> bytes, const ModelConfig& config,
                               const std::string& source = "state") {
  using namespace state_io_detail;
  auto fail = [&](const std::string& what) -> FormatError {
    return FormatError(source + ": " + what);
  };
  const size_t size = bytes.size();
  if (size < kHeaderSize + kChecksumSize)
    throw fail("truncated: " + std::to_string(size) + " bytes, a state file has at least " +
               std::to_string(kHeaderSize + kChecksumSize));
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    throw fail("not a mamba state file (wrong magic)");
  Reader r(bytes);
  r.skip(sizeof kMagic);
  const uint32_t version = r.u32();
  if (version < 1 || version > kStateFormatVersion)
    throw fail("unsupported state format version " + std::to_string(version) +
               " (this library reads versions 1 to " + std::to_string(kStateFormatVersion) + ")");
  const size_t header = kHeaderSize + (version == 2 ? kMamba2Size : 0);
  if (size < header + kChecksumSize)
    throw fail("truncated: " + std::to_string(size) + " bytes, a version " +
               std::to_string(version) + " state file has at least " +
               std::to_string(header + kChecksumSize));
  const uint32_t scalar = r.u32();
  const uint64_t stored_fingerprint = r.u64();
  ConfigFields saved{};
  for (int64_t& d : saved.dims) d = r.i64();
  saved.norm_eps = r.f64();
  saved.mixer_eps = r.f64();
  saved.flags = r.u32();
  r.skip(4);
  if (saved.version() != version)
    throw fail("implausible header: version " + std::to_string(version) +
               (saved.mamba2() ? " with" : " without") + " the Mamba-2 flag");
  if (version == 2) {
    for (int64_t& h : saved.heads) h = r.i64();
    for (double& l : saved.dt_limit) l = r.f64();
  }
  const int64_t n_tokens = r.i64();
  const uint64_t n_ids = r.u64();

  // Sizes, from the header's own shape, before trusting anything else in it.
  if (scalar != 4 && scalar != 8)
    throw fail("unsupported scalar size " + std::to_string(scalar) + " (expected 4 or 8)");
  ModelConfig shape;
  shape.d_model = saved.dims[0];
  shape.n_layer = saved.dims[1];
  shape.vocab_size = saved.dims[2];
  shape.d_state = saved.dims[3];
  shape.d_conv = saved.dims[4];
  shape.d_inner = saved.dims[5];
  shape.dt_rank = saved.dims[6];
  if (saved.mamba2()) {
    shape.arch = Arch::Mamba2;
    shape.nheads = saved.heads[0];
    shape.ngroups = saved.heads[1];
    shape.headdim =
        shape.nheads > 0 && shape.d_inner % shape.nheads == 0 ? shape.d_inner / shape.nheads : 0;
    shape.dt_min = saved.dt_limit[0];
    shape.dt_max = saved.dt_limit[1];
  }
  try {
    shape.validate(source);  // bounds every dimension, so the products below cannot overflow
  } catch (const ShapeError& e) {
    throw fail(std::string("implausible header: ") + e.what());
  }
  const uint64_t per_layer =
      static_cast<uint64_t>((shape.d_conv - 1) * shape.conv_dim() + shape.d_inner * shape.d_state);
  const uint64_t data = static_cast<uint64_t>(shape.n_layer) * per_layer * scalar;
  const uint64_t fixed = header + data + kChecksumSize;
  if (size < fixed || n_ids > (size - fixed) / 4)
    throw fail("truncated: " + std::to_string(size) + " bytes, the header describes " +
               (n_ids <= (UINT64_MAX - fixed) / 4 ? std::to_string(fixed + n_ids * 4)
                                                  : std::string("more than 2^64")));
  if (fixed + n_ids * 4 != size)
    throw fail(std::to_string(size - fixed - n_ids * 4) + " unexpected bytes after the data");

  Reader tail(bytes.subspan(size - kChecksumSize));
  if (fnv1a64(bytes.first(size - kChecksumSize)) != tail.u64())
    throw fail("checksum mismatch: the file is damaged");

  if (stored_fingerprint != fingerprint(saved))
    throw fail("the config fingerprint does not match the config fields in the header");
  const ConfigFields ours = ConfigFields::of(config);
  if (!(saved == ours))
    throw fail("state was saved for a model with " + saved.describe() + "; this model has " +
               ours.describe());
  if (n_tokens < 0) throw fail("negative token count " + std::to_string(n_tokens));

  // Everything is checked; the sizes below come from the caller's config.
  SavedState<T> out{BasicState<T>(config), {}};
  out.state.n_tokens = n_tokens;
  auto read_values = [&](std::vector<T>& values) {
    for (T& v : values) {
      v = static_cast<T>(scalar == 4 ? r.f32() : r.f64());
      if (!std::isfinite(v)) throw fail("state holds a non-finite value");
    }
  };
  for (auto& l : out.state.layers) {
    read_values(l.conv);
    read_values(l.ssm);
  }
  out.tokens.resize(n_ids);
  for (int32_t& t : out.tokens) {
    t = static_cast<int32_t>(r.u32());
    if (t < 0 || t >= config.vocab_size)
      throw fail("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                 std::to_string(config.vocab_size) + ")");
  }
  return out;
}

// Writes the state to `path` (through a temporary file renamed into place, so a crash never leaves
// half a file under the name). Throws Error when the file cannot be written.
template <class T>
void save_state(const std::string& path, const ModelConfig& config, const BasicState<T>& state,
                std::span<const int32_t> tokens = {}) {
  const std::vector<std::byte> bytes = state_to_bytes(config, state, tokens);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot open for writing");
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      out.close();
      std::filesystem::remove(tmp);
      throw Error(path + ": write failed");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw Error(path + ": cannot replace the file: " + ec.message());
  }
}

// Reads a state file written by save_state for a model with `config`.
template <class T = float>
SavedState<T> load_state(const std::string& path, const ModelConfig& config) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(path + ": cannot open state file");
  const std::streamoff size = in.tellg();
  if (size < 0) throw Error(path + ": cannot read state file");
  std::vector<std::byte> bytes(static_cast<size_t>(size));  // the file's real size, not a header's
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), size);
  if (!in) throw Error(path + ": cannot read state file");
  return state_from_bytes<T>(bytes, config, path);
}

}  // namespace mamba
