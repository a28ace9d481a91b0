#pragma once
// A checkpoint with random weights built in memory, for benchmarks of realistic shapes without a
// download. Values follow the ranges a trained model has, so the math does what it would.
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <mamba/io/checkpoint.hpp>
#include <mamba/ops/half.hpp>

namespace mamba::bench {

// mamba-130m: d_model 768, 24 layers, vocab 50280 (d_inner 1536, d_state 16, dt_rank 48)
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

// Matrices are stored as `matrix_type` (F32, F16 or BF16); vectors as F32.
inline Checkpoint random_checkpoint(const ModelConfig& c, DType matrix_type, uint32_t seed = 1) {
  Checkpoint ck;
  ck.path = "random-in-memory";
  ck.config = c;
  std::mt19937 gen(seed);
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float std, float mean,
                 DType type) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    std::normal_distribution<float> dist(mean, std);
    const size_t esize = type == DType::F32 ? 4 : 2;
    auto bytes = std::make_shared<std::vector<std::byte>>(n * esize);
    for (int64_t i = 0; i < n; ++i) {
      const float v = dist(gen);
      if (type == DType::F32) {
        std::memcpy(bytes->data() + 4 * i, &v, 4);
      } else {
        const uint16_t h = type == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
        std::memcpy(bytes->data() + 2 * i, &h, 2);
      }
    }
    ck.tensors[name] = TensorRef{type, shape, bytes->data(), bytes->size(), ck.path};
    ck.keep_alive.push_back(bytes);
  };
  const int64_t D = c.d_model, E = c.d_inner, N = c.d_state, K = c.d_conv, R = c.dt_rank;
  const float inv = 1.0f / std::sqrt(float(D)), inv_e = 1.0f / std::sqrt(float(E));
  add("backbone.embeddings.weight", {c.vocab_size, D}, 0.02f, 0, matrix_type);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".", m = p + "mixer.";
    add(p + "norm.weight", {D}, 0.1f, 1, DType::F32);
    add(m + "in_proj.weight", {2 * E, D}, inv, 0, matrix_type);
    add(m + "conv1d.weight", {E, 1, K}, 0.5f, 0, DType::F32);
    add(m + "conv1d.bias", {E}, 0.1f, 0, DType::F32);
    add(m + "x_proj.weight", {R + 2 * N, E}, inv_e, 0, matrix_type);
    add(m + "dt_proj.weight", {E, R}, 1.0f / std::sqrt(float(R)), 0, matrix_type);
    add(m + "dt_proj.bias", {E}, 1.0f, -4.0f, DType::F32);
    add(m + "A_log", {E, N}, 0.5f, 1.5f, DType::F32);
    add(m + "D", {E}, 0.1f, 1, DType::F32);
    add(m + "out_proj.weight", {D, E}, inv_e, 0, matrix_type);
  }
  add("backbone.norm_f.weight", {D}, 0.1f, 1, DType::F32);
  return ck;
}

}  // namespace mamba::bench
