#pragma once
// The recurrent state of one sequence: per layer, the conv state (the last d_conv-1 inputs of the
// conv) and the ssm state h. This is the whole "KV cache" of a Mamba model, small and fixed in
// size. The caller owns it: copy it to checkpoint, reset() it to start over. Both families have
// the same two buffers; Mamba-2's conv runs over x, B and C (conv_dim channels) and its ssm state
// is (nheads, headdim, d_state), which is (d_inner, d_state) in memory.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "mamba/config.hpp"

namespace mamba {

template <class T>
struct LayerState {
  std::vector<T> conv;  // (d_conv-1, conv_dim)   conv_dim = d_inner (Mamba-1), d_inner + 2*G*N
  std::vector<T> ssm;   // (d_inner, d_state)      Mamba-2: (nheads, headdim, d_state)

  bool operator==(const LayerState&) const = default;
};

template <class T>
struct BasicState {
  std::vector<LayerState<T>> layers;  // (n_layer)
  int64_t n_tokens = 0;               // tokens consumed since the last reset

  explicit BasicState(const ModelConfig& c) : layers(c.n_layer) {
    for (auto& l : layers) {
      l.conv.assign((c.d_conv - 1) * c.conv_dim(), T(0));
      l.ssm.assign(c.d_inner * c.d_state, T(0));
    }
  }

  void reset() {
    for (auto& l : layers) {
      std::fill(l.conv.begin(), l.conv.end(), T(0));
      std::fill(l.ssm.begin(), l.ssm.end(), T(0));
    }
    n_tokens = 0;
  }

  bool operator==(const BasicState&) const = default;
};

}  // namespace mamba
