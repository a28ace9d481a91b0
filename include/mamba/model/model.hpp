#pragma once
// The whole model: embedding, n_layer residual Mamba blocks, final norm, lm_head. One class for
// both families: the config read from the file says which mixer the blocks run.
// Weights are immutable and shared; each sequence's recurrent state belongs to the caller, so one
// model serves any number of sequences and threads.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mamba/config.hpp"
#include "mamba/error.hpp"
#include "mamba/io/load.hpp"
#include "mamba/model/mixer.hpp"
#include "mamba/model/mixer2.hpp"
#include "mamba/model/state.hpp"
#include "mamba/model/weights.hpp"
#include "mamba/ops/matmul.hpp"
#include "mamba/ops/rmsnorm.hpp"

namespace mamba {

enum class Logits { Last, All };

template <class T>
class BasicModel {
 public:
  using State = BasicState<T>;

  // A checkpoint directory, a .safetensors or torch.save (pytorch_model.bin) file beside its
  // config.json, or a .gguf file.
  static BasicModel load(const std::string& path) { return BasicModel(load_checkpoint(path)); }

  explicit BasicModel(const Checkpoint& ck)
      : config_(ck.config),
        weights_(Weights<T>::from_checkpoint(ck)),
        path_(ck.path),
        tokenizer_json_(ck.tokenizer_json) {}

  const ModelConfig& config() const { return config_; }
  const Weights<T>& weights() const { return weights_; }
  const std::string& path() const { return path_; }
  const std::optional<std::string>& tokenizer_json() const { return tokenizer_json_; }
  int64_t vocab_size() const { return config_.vocab_size; }

  State new_state() const { return State(config_); }

  // Feeds tokens into the state. Returns the logits of the last position (vocab_size values), or
  // of every position (n_tokens x vocab_size, row-major) with Logits::All. `path` forces one form
  // of the Mamba-2 scan (see ScanPath); the default picks the faster.
  std::vector<T> prefill(std::span<const int32_t> tokens, State& state, Logits which = Logits::Last,
                         ScanPath path = ScanPath::Auto) const {
    if (tokens.empty()) throw ArgumentError("prefill: no tokens");
    std::vector<T> logits((which == Logits::All ? tokens.size() : 1) * config_.vocab_size);
    thread_local Workspace<T> ws;  // kept: a prompt after the first allocates nothing
    State* one[] = {&state};
    // bounds the activations (about 20 MB at 512); the state carries across chunks. Each chunk
    // converts every quantized weight once for its GEMM, so longer chunks convert less.
    constexpr size_t kChunk = 512;
    for (size_t i = 0; i < tokens.size(); i += kChunk) {
      const auto chunk = tokens.subspan(i, std::min(kChunk, tokens.size() - i));
      const bool last = i + chunk.size() == tokens.size();
      T* out = which == Logits::All ? logits.data() + i * config_.vocab_size
                                    : (last ? logits.data() : nullptr);
      forward(chunk, one, ws, which, out, path);
    }
    return logits;
  }

  // One token: advances the state, returns vocab_size logits.
  std::vector<T> step(int32_t token, State& state) const {
    std::vector<T> logits(config_.vocab_size);
    step(token, state, logits);
    return logits;
  }

  // The same without allocating: logits.size() must be vocab_size.
  void step(int32_t token, State& state, std::span<T> logits) const {
    if (static_cast<int64_t>(logits.size()) != config_.vocab_size)
      throw ArgumentError("step: logits span has " + std::to_string(logits.size()) +
                          " entries, vocab_size is " + std::to_string(config_.vocab_size));
    thread_local Workspace<T> ws;
    State* one[] = {&state};
    forward(std::span<const int32_t>(&token, 1), one, ws, Logits::Last, logits.data());
  }

  // One token for each of N independent sequences, in one pass over the weights. Returns
  // N x vocab_size logits, row-major; equal to stepping each sequence alone.
  std::vector<T> step_batch(std::span<const int32_t> tokens, std::span<State> states) const {
    if (tokens.size() != states.size())
      throw ArgumentError("step_batch: " + std::to_string(tokens.size()) + " tokens for " +
                          std::to_string(states.size()) + " states");
    if (tokens.empty()) return {};
    std::vector<State*> ptrs;
    for (auto& s : states) ptrs.push_back(&s);
    std::vector<T> logits(tokens.size() * config_.vocab_size);
    thread_local Workspace<T> ws;
    forward(tokens, ptrs, ws, Logits::All, logits.data());
    return logits;
  }

 private:
  void check(const State& state) const {
    const bool fits =
        static_cast<int64_t>(state.layers.size()) == config_.n_layer &&
        std::all_of(state.layers.begin(), state.layers.end(), [&](const LayerState<T>& l) {
          return static_cast<int64_t>(l.conv.size()) == (config_.d_conv - 1) * config_.conv_dim() &&
                 static_cast<int64_t>(l.ssm.size()) == config_.d_inner * config_.d_state;
        });
    if (!fits) throw ArgumentError("state was made for a model of another shape");
  }

  void check(std::span<const int32_t> tokens) const {
    for (int32_t t : tokens)
      if (t < 0 || t >= config_.vocab_size)
        throw ArgumentError("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                            std::to_string(config_.vocab_size) + ")");
  }

  // tokens are n consecutive tokens of states[0], or one token each of n states.
  // logits: null (no output wanted), one row (Logits::Last) or n rows (Logits::All).
  void forward(std::span<const int32_t> tokens, std::span<State* const> states, Workspace<T>& ws,
               Logits which, T* logits, ScanPath path = ScanPath::Auto) const {
    check(tokens);
    for (const State* s : states) check(*s);
    const int64_t n = tokens.size(), D = config_.d_model;
    ws.layer_states.assign(states.size(), nullptr);
    ws.resize(config_, n);
    T* hidden = ws.hidden.data();
    T* residual = ws.residual.data();
    T* u = ws.u.data();
    std::fill(residual, residual + n * D, T(0));
    // hidden_states = self.embedding(input_ids)
    for (int64_t t = 0; t < n; ++t)
      load_row(weights_.embedding.type, weights_.embedding.row(tokens[t]), &hidden[t * D], D);
    for (int64_t l = 0; l < config_.n_layer; ++l) {
      const LayerWeights<T>& lw = weights_.layers[l];
      // residual = hidden_states + residual   (kept in the compute type: "residual_in_fp32")
      for (int64_t i = 0; i < n * D; ++i) residual[i] += hidden[i];
      // hidden_states = self.norm(residual)
      for (int64_t t = 0; t < n; ++t)
        rmsnorm(&residual[t * D], lw.norm.data(), &u[t * D], D, config_.norm_eps);
      // hidden_states = self.mixer(hidden_states)
      for (size_t s = 0; s < states.size(); ++s) ws.layer_states[s] = &states[s]->layers[l];
      if (config_.arch == Arch::Mamba2)
        mamba2_mixer<T>(lw, config_, u, n, ws.layer_states, ws, hidden, path);
      else
        mamba_mixer<T>(lw, config_, u, n, ws.layer_states, ws, hidden);
    }
    for (State* s : states) s->n_tokens += states.size() == 1 ? n : 1;
    if (!logits) return;
    // hidden_states = self.norm_f(hidden_states + residual)
    const int64_t first = which == Logits::All ? 0 : n - 1;
    for (int64_t t = first; t < n; ++t) {
      for (int64_t i = 0; i < D; ++i) residual[t * D + i] += hidden[t * D + i];
      rmsnorm(&residual[t * D], weights_.norm_f.data(), &u[t * D], D, config_.norm_eps);
    }
    // logits = self.lm_head(hidden_states)
    project(weights_.lm_head, &u[first * D], n - first, logits);
  }

  ModelConfig config_;
  Weights<T> weights_;
  std::string path_;
  std::optional<std::string> tokenizer_json_;
};

using Model = BasicModel<float>;
using State = BasicState<float>;

}  // namespace mamba
