#pragma once
// A checkpoint with random weights built in memory, for benchmarks of realistic shapes without a
// download, in any weight type; and the same written as a llama.cpp GGUF file (for the load-time
// and resident-memory figures). Values follow the ranges a trained model has, so the math does
// what it would.
#include <cmath>
#include <cstring>
#include <mamba/io/checkpoint.hpp>
#include <mamba/io/gguf_export.hpp>
#include <mamba/io/gguf_writer.hpp>
#include <mamba/ops/quant.hpp>
#include <mamba/ops/threads.hpp>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace mamba::bench {

// mamba-130m (Mamba-1): d_model 768, 24 layers, vocab 50280 (d_inner 1536, d_state 16, dt_rank 48)
inline ModelConfig mamba_130m_config() {
  ModelConfig c;
  c.d_model = 768;
  c.n_layer = 24;
  c.vocab_size = 50280;
  c.d_inner = 2 * c.d_model;
  c.dt_rank = 48;
  c.validate("mamba-130m");
  return c;
}

// mamba2-130m: d_model 768, 24 layers, vocab 50288, headdim 64 (nheads 24), d_state 128, 1 group
inline ModelConfig mamba2_130m_config() {
  ModelConfig c;
  c.arch = Arch::Mamba2;
  c.d_model = 768;
  c.n_layer = 24;
  c.vocab_size = 50288;
  c.d_inner = 2 * c.d_model;
  c.d_state = 128;
  c.headdim = 64;
  c.nheads = c.d_inner / c.headdim;
  c.dt_rank = c.nheads;
  c.ngroups = 1;
  c.validate("mamba2-130m");
  return c;
}

// Matrices are stored as `matrix_type` (any DType; rows that are not a multiple of its block
// size, like dt_proj's 48, fall back to F16 as in a llama.cpp GGUF); vectors as F32.
inline Checkpoint random_checkpoint(const ModelConfig& c, DType matrix_type, uint32_t seed = 1) {
  Checkpoint ck;
  ck.path = "random-in-memory";
  ck.config = c;
  std::mt19937 gen(seed);
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float std, float mean,
                 DType type) {
    const int64_t cols = shape.back();
    int64_t rows = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
    if (cols % traits(type).block_size != 0) type = DType::F16;
    // A normal draw per row seeds a cheap per-row generator, so rows quantize in parallel.
    std::vector<uint32_t> row_seed(rows);
    for (auto& s : row_seed) s = gen();
    const int64_t stride = row_bytes(type, cols);
    auto bytes = std::make_shared<std::vector<std::byte>>(rows * stride);
    parallel_for(rows, 1, rows * cols * 64, [&](int64_t r0, int64_t r1) {
      std::vector<float> row(cols);
      for (int64_t r = r0; r < r1; ++r) {
        std::minstd_rand g(row_seed[r] | 1u);
        std::normal_distribution<float> dist(mean, std);
        for (auto& v : row) v = dist(g);
        quantize_row(type, row.data(), bytes->data() + r * stride, cols);
      }
    });
    ck.tensors[name] = TensorRef{type, shape, bytes->data(), bytes->size(), ck.path};
    ck.keep_alive.push_back(bytes);
  };
  const int64_t D = c.d_model, E = c.d_inner, N = c.d_state, K = c.d_conv, R = c.dt_rank;
  const int64_t H = c.nheads, C = c.conv_dim();
  const float inv = 1.0f / std::sqrt(float(D)), inv_e = 1.0f / std::sqrt(float(E));
  add("backbone.embeddings.weight", {c.vocab_size, D}, 0.02f, 0, matrix_type);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".", m = p + "mixer.";
    add(p + "norm.weight", {D}, 0.1f, 1, DType::F32);
    add(m + "in_proj.weight", {c.d_in_proj(), D}, inv, 0, matrix_type);
    add(m + "conv1d.weight", {C, 1, K}, 0.5f, 0, DType::F32);
    add(m + "conv1d.bias", {C}, 0.1f, 0, DType::F32);
    if (c.arch == Arch::Mamba2) {
      add(m + "dt_bias", {H}, 1.0f, -4.0f, DType::F32);
      add(m + "A_log", {H}, 0.5f, 1.5f, DType::F32);
      add(m + "D", {H}, 0.1f, 1, DType::F32);
      add(m + "norm.weight", {E}, 0.1f, 1, DType::F32);
    } else {
      add(m + "x_proj.weight", {R + 2 * N, E}, inv_e, 0, matrix_type);
      add(m + "dt_proj.weight", {E, R}, 1.0f / std::sqrt(float(R)), 0, matrix_type);
      add(m + "dt_proj.bias", {E}, 1.0f, -4.0f, DType::F32);
      add(m + "A_log", {E, N}, 0.5f, 1.5f, DType::F32);
      add(m + "D", {E}, 0.1f, 1, DType::F32);
    }
    add(m + "out_proj.weight", {D, E}, inv_e, 0, matrix_type);
  }
  add("backbone.norm_f.weight", {D}, 0.1f, 1, DType::F32);
  return ck;
}

// Writes ck as a llama.cpp Mamba GGUF (tensors as stored, in gguf_add_checkpoint_tensors's
// layout). Returns the file size in bytes.
inline uint64_t write_gguf(const Checkpoint& ck, DType matrix_type, const std::string& path) {
  GgufWriter w;
  gguf_set_model_keys(w, ck.config, QuantTarget{matrix_type, false}, "random-mamba-130m");
  gguf_add_checkpoint_tensors(w, ck);
  return w.write(path);
}

}  // namespace mamba::bench
