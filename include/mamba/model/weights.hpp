#pragma once
// The weights of a Mamba-1 or Mamba-2 model as views. Matrices stay in their stored type and point
// into the checkpoint's mapping; the small per-channel vectors are converted once to the compute
// scalar T (A = -exp(A_log) is computed once, and the conv taps transposed) into storage the
// Weights own.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mamba/config.hpp"
#include "mamba/error.hpp"
#include "mamba/io/checkpoint.hpp"
#include "mamba/ops/matmul.hpp"

namespace mamba {

// One block. Mamba-1 and Mamba-2 share most fields; the ones a family does not have stay empty.
template <class T>
struct LayerWeights {
  std::span<const T> norm;           // (d_model)
  MatrixView in_proj;                // (d_in_proj, d_model); Mamba-1 rows [x | z] (2*d_inner),
                                     // Mamba-2 rows [z | xBC | dt] (2*d_inner + 2*G*N + nheads)
  std::span<const T> in_proj_bias;   // (d_in_proj), empty unless use_bias
  std::span<const T> conv_w;         // (d_conv, conv_dim): conv1d.weight transposed at load, taps
                                     // outermost, so that the conv runs over contiguous channels
  std::span<const T> conv_b;         // (conv_dim), empty unless use_conv_bias
  MatrixView x_proj;                 // Mamba-1: (dt_rank + 2*d_state, d_inner); rows [dt | B | C]
  MatrixView dt_proj;                // Mamba-1: (d_inner, dt_rank)
  std::span<const T> dt_bias;        // (d_inner); Mamba-2: (nheads)
  std::span<const T> A;              // (d_inner, d_state), -exp(A_log); Mamba-2: (nheads)
  std::span<const T> D;              // (d_inner); Mamba-2: (nheads), or (d_inner) per channel
  std::span<const T> gate_norm;      // Mamba-2: (d_inner), weight of the grouped gated RMSNorm
  MatrixView out_proj;               // (d_model, d_inner)
  std::span<const T> out_proj_bias;  // (d_model), empty unless use_bias
};

template <class T>
struct Weights {
  MatrixView embedding;  // (vocab_size, d_model)
  std::vector<LayerWeights<T>> layers;
  std::span<const T> norm_f;  // (d_model)
  MatrixView lm_head;         // (vocab_size, d_model); the embedding when tied
  // What the views point into: the checkpoint's mappings and the converted vectors.
  std::vector<std::shared_ptr<const void>> storage;

  // Builds the views, checking every tensor's presence, type and shape against the config.
  static Weights from_checkpoint(const Checkpoint& ck) {
    const ModelConfig& c = ck.config;
    Weights w;
    w.storage = ck.keep_alive;
    auto tensor = [&](const std::string& name) -> const TensorRef& {
      const TensorRef* t = ck.find(name);
      if (!t) throw FormatError(ck.path + ": missing tensor '" + name + "'");
      return *t;
    };
    auto check_shape = [&](const std::string& name, const TensorRef& t,
                           std::vector<std::vector<int64_t>> accepted) {
      for (const auto& s : accepted)
        if (t.shape == s) return;
      throw ShapeError(t.file + ": tensor '" + name + "' has shape " + shape_str(t.shape) +
                       ", expected " + shape_str(accepted.front()));
    };
    auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
      const TensorRef& t = tensor(name);
      check_shape(name, t, {{rows, cols}});
      MatrixView m{t.type, t.data, rows, cols};
      if (m.type == DType::F32 && reinterpret_cast<uintptr_t>(t.data) % alignof(float) != 0) {
        auto copy = std::make_shared<std::vector<float>>(rows * cols);  // unaligned in the file
        std::memcpy(copy->data(), t.data, copy->size() * sizeof(float));
        m.data = reinterpret_cast<const std::byte*>(copy->data());
        w.storage.push_back(copy);
      }
      return m;
    };
    auto owned = [&](std::vector<T> v) {
      auto p = std::make_shared<std::vector<T>>(std::move(v));
      w.storage.push_back(p);
      return std::span<const T>(*p);
    };
    auto values = [&](const std::string& name, std::vector<std::vector<int64_t>> shapes,
                      bool negate_exp) {
      const TensorRef& t = tensor(name);
      check_shape(name, t, shapes);
      int64_t n = 1;
      for (auto d : t.shape) n *= d;
      if (traits(t.type).block_size != 1)
        throw FormatError(t.file + ": tensor '" + name + "' must be F32, F16 or BF16, is " +
                          std::string(dtype_name(t.type)));
      std::vector<T> v(n);
      load_row(t.type, t.data, v.data(), n);
      if (negate_exp)
        for (auto& a : v) a = -std::exp(a);
      return v;
    };
    auto vec = [&](const std::string& name, std::vector<std::vector<int64_t>> shapes,
                   bool negate_exp = false) { return owned(values(name, shapes, negate_exp)); };
    auto transposed = [&](const std::vector<T>& v, int64_t rows, int64_t cols) {
      std::vector<T> t(v.size());
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < cols; ++k) t[k * rows + r] = v[r * cols + k];
      return owned(std::move(t));
    };
    const int64_t D = c.d_model, E = c.d_inner, N = c.d_state, K = c.d_conv, R = c.dt_rank;
    const int64_t H = c.nheads, G = c.ngroups, C = c.conv_dim();
    w.embedding = matrix("backbone.embeddings.weight", c.vocab_size, D);
    for (int64_t i = 0; i < c.n_layer; ++i) {
      const std::string p = "backbone.layers." + std::to_string(i) + ".";
      const std::string m = p + "mixer.";
      LayerWeights<T> l;
      l.norm = vec(p + "norm.weight", {{D}});
      l.in_proj = matrix(m + "in_proj.weight", c.d_in_proj(), D);
      l.conv_w = transposed(values(m + "conv1d.weight", {{C, 1, K}, {C, K}}, false), C, K);
      if (c.arch == Arch::Mamba2) {
        l.dt_bias = vec(m + "dt_bias", {{H}});
        // GGUF stores A = -exp(A_log) and D as {1, H}, the norm as {d_inner/G, G}
        l.A = ck.find(m + "A") ? vec(m + "A", {{H}, {H, 1}}) : vec(m + "A_log", {{H}}, true);
        l.D = vec(m + "D", {{H}, {H, 1}, {E}, {H, E / H}});
        l.gate_norm = vec(m + "norm.weight", {{E}, {G, E / G}});
      } else {
        l.x_proj = matrix(m + "x_proj.weight", R + 2 * N, E);
        l.dt_proj = matrix(m + "dt_proj.weight", E, R);
        l.dt_bias = vec(m + "dt_proj.bias", {{E}});
        l.A = ck.find(m + "A") ? vec(m + "A", {{E, N}}) : vec(m + "A_log", {{E, N}}, true);
        l.D = vec(m + "D", {{E}});
      }
      l.out_proj = matrix(m + "out_proj.weight", D, E);
      if (c.use_conv_bias) l.conv_b = vec(m + "conv1d.bias", {{C}});
      if (c.use_bias) {
        l.in_proj_bias = vec(m + "in_proj.bias", {{c.d_in_proj()}});
        l.out_proj_bias = vec(m + "out_proj.bias", {{D}});
      }
      w.layers.push_back(l);
    }
    w.norm_f = vec("backbone.norm_f.weight", {{D}});
    w.lm_head = ck.find("lm_head.weight") ? matrix("lm_head.weight", c.vocab_size, D) : w.embedding;
    return w;
  }

 private:
  static std::string shape_str(const std::vector<int64_t>& s) {
    std::string out = "(";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + ")";
  }
};

}  // namespace mamba
