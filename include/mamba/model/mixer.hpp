#pragma once
// The Mamba-1 mixer of one layer over n tokens (n = 1 is decode and takes the step forms), and
// the buffers and small steps the Mamba-2 mixer (mixer2.hpp) shares with it.
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "mamba/config.hpp"
#include "mamba/model/state.hpp"
#include "mamba/model/weights.hpp"
#include "mamba/ops/activations.hpp"
#include "mamba/ops/aligned_vector.hpp"
#include "mamba/ops/matmul.hpp"
#include "mamba/ops/rmsnorm.hpp"
#include "mamba/ssm/conv.hpp"
#include "mamba/ssm/scan.hpp"

namespace mamba {

// A decoded token's conv and x_proj run over parts of the channels: 256 (else 128) when d_inner
// is a multiple and so is the part of x_proj's block size (x_proj is split by its columns), else
// all of them. (Parts of 128 ran slower: each reads only 256 bytes of an F16 x_proj row.)
inline int64_t channel_part(int64_t d_inner, DType t) {
  for (int64_t part : {256, 128})
    if (part % traits(t).block_size == 0 && d_inner % part == 0) return part;
  return d_inner;
}

// Buffers for one forward pass; reused across calls so that decoding does not allocate.
template <class T>
struct Workspace {
  AlignedVector<T> hidden;     // (n, d_model), the block outputs
  AlignedVector<T> residual;   // (n, d_model), the residual stream
  AlignedVector<T> u;          // (n, d_model), normalised block input
  AlignedVector<T> xz;         // (n, d_in_proj), the in_proj output
  AlignedVector<T> x;          // (n, conv_dim), after conv and silu
  AlignedVector<T> dbc;        // Mamba-1: (n, dt_rank + 2*d_state)
  AlignedVector<T> dbc_parts;  // Mamba-1 decode: (parts, dt_rank + 2*d_state), x_proj by parts
  AlignedVector<T> dt_low;     // Mamba-1: (n, dt_rank)
  AlignedVector<T> dt;         // (n, d_inner); Mamba-2: (n, nheads)
  AlignedVector<T> y;          // (n, d_inner)
  std::vector<LayerState<T>*> layer_states;  // (n_states), the current layer's state of each

  void resize(const ModelConfig& c, int64_t n) {
    hidden.resize(n * c.d_model);
    residual.resize(n * c.d_model);
    u.resize(n * c.d_model);
    const bool m2 = c.arch == Arch::Mamba2;
    xz.resize(n * c.d_in_proj());
    x.resize(n * c.conv_dim());
    dbc.resize(m2 ? 0 : n * (c.dt_rank + 2 * c.d_state));
    dbc_parts.resize(m2 ? 0 : (c.d_inner / 128 + 1) * (c.dt_rank + 2 * c.d_state));
    dt_low.resize(m2 ? 0 : n * c.dt_rank);
    dt.resize(n * (m2 ? c.nheads : c.d_inner));
    y.resize(n * c.d_inner);
  }
};

// Y = X W^T, or y = W x for a single row.
template <class T>
inline void project(const MatrixView& W, const T* X, int64_t n, T* Y) {
  if (n == 1)
    matvec(W, X, Y);
  else
    matmul(W, X, n, Y);
}

// v = silu(v) over n values (SIMD in float)
template <class T>
inline void silu_inplace(T* v, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    simd::silu(v, v, n);
  } else {
    for (int64_t i = 0; i < n; ++i) v[i] = silu(v[i]);
  }
}

// y = y * silu(z) over n values (SIMD in float)
template <class T>
inline void mul_silu_inplace(const T* z, T* y, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    simd::mul_silu(z, y, n);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] *= silu(z[i]);
  }
}

// v = softplus(v + bias) over each of n rows of bias.size() values (SIMD in float)
template <class T>
inline void softplus_bias_inplace(T* v, std::span<const T> bias, int64_t n) {
  const int64_t E = static_cast<int64_t>(bias.size());
  for (int64_t t = 0; t < n; ++t, v += E) {
    if constexpr (std::is_same_v<T, float>) {
      simd::softplus_bias(v, bias.data(), v, E);
    } else {
      for (int64_t e = 0; e < E; ++e) v[e] = softplus(v[e] + bias[e]);
    }
  }
}

// The channels [c0, c1) of x = silu(conv1d(x_in)) over n tokens of one state (x_in's rows
// `in_stride` apart, x's rows `channels` long), its conv window carried.
template <class T>
inline void conv_silu_channels(const LayerWeights<T>& w, int64_t c0, int64_t c1, int64_t channels,
                               int64_t K, const T* x_in, int64_t in_stride, int64_t n,
                               LayerState<T>& state, T* x) {
  causal_conv1d_fast(c0, c1, n, channels, K, w.conv_w.data(),
                     w.conv_b.empty() ? nullptr : w.conv_b.data(), state.conv.data(), x_in,
                     in_stride, x);
  for (int64_t t = 0; t < n; ++t) silu_inplace(x + t * channels + c0, c1 - c0);
}

// x = silu(conv1d(x_in)) over n rows of `channels` values (x_in's rows `in_stride` apart, x's
// contiguous), each state's conv window carried: n tokens of one state (the threads sharing out
// the channels), or one token each of n states (batched decode: sharing out the sequences).
template <class T>
inline void conv_silu(const LayerWeights<T>& w, int64_t channels, int64_t K, const T* x_in,
                      int64_t in_stride, int64_t n, std::span<LayerState<T>* const> states, T* x) {
  const int64_t work = n * channels * K * 12;
  if (states.size() == 1) {
    parallel_for(channels, 16, work, [&](int64_t c0, int64_t c1) {
      conv_silu_channels(w, c0, c1, channels, K, x_in, in_stride, n, *states[0], x);
    });
    return;
  }
  parallel_for(n, 1, work, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s)
      conv_silu_channels(w, 0, channels, channels, K, x_in + s * in_stride, in_stride, 1,
                         *states[s], x + s * channels);
  });
}

template <class T>
inline void add_bias(std::span<const T> bias, T* Y, int64_t n) {
  if (bias.empty()) return;
  for (int64_t t = 0; t < n; ++t)
    for (size_t i = 0; i < bias.size(); ++i) Y[t * bias.size() + i] += bias[i];
}

// u: (n, d_model) normalised input   out: (n, d_model)   ws: resized for n tokens
// The n rows are either n consecutive tokens of one sequence (one state), or one token each of n
// independent sequences (n states, batched decode): the projections read each weight once for
// all rows either way; only the conv and the scan, which carry state, tell the two apart.
template <class T>
inline void mamba_mixer(const LayerWeights<T>& w, const ModelConfig& c, const T* u, int64_t n,
                        std::span<LayerState<T>* const> states, Workspace<T>& ws, T* out) {
  const int64_t E = c.d_inner, N = c.d_state, K = c.d_conv, R = c.dt_rank;
  const int64_t n_dbc = R + 2 * N;
  const bool one_sequence = states.size() == 1;

  // xz = self.in_proj(hidden_states); x, z = xz.chunk(2, dim=-1)
  project(w.in_proj, u, n, ws.xz.data());
  add_bias(w.in_proj_bias, ws.xz.data(), n);
  const T* x_in = ws.xz.data();
  const T* z = ws.xz.data() + E;

  if (n == 1) {
    // One token: the threads share out parts of the channels for both steps below, x_proj split
    // by its columns into partial sums, added in the parts' order (whatever the thread count).
    const int64_t part = channel_part(E, w.x_proj.type), parts = E / part;
    parallel_for(parts, 1, w.x_proj.bytes() + E * K * 12, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t c0 = p * part, c1 = c0 + part;
        // x = self.act(self.conv1d(x)[..., :seqlen])
        conv_silu_channels(w, c0, c1, E, K, x_in, 2 * E, 1, *states[0], ws.x.data());
        // x_dbl = self.x_proj(x)
        project(w.x_proj.slice_cols(c0, c1), ws.x.data() + c0, 1, ws.dbc_parts.data() + p * n_dbc);
      }
    });
    std::copy_n(ws.dbc_parts.data(), n_dbc, ws.dbc.data());
    for (int64_t p = 1; p < parts; ++p)
      for (int64_t i = 0; i < n_dbc; ++i) ws.dbc[i] += ws.dbc_parts[p * n_dbc + i];
  } else {
    // x = self.act(self.conv1d(x)[..., :seqlen])   (causal depthwise conv, carried state)
    conv_silu(w, E, K, x_in, 2 * E, n, states, ws.x.data());
    // x_dbl = self.x_proj(x)
    project(w.x_proj, ws.x.data(), n, ws.dbc.data());
  }
  // dt, B, C = torch.split(x_dbl, [dt_rank, d_state, d_state], dim=-1)
  for (int64_t t = 0; t < n; ++t) {
    T* row = ws.dbc.data() + t * n_dbc;
    if (c.dt_b_c_rms) {
      // Falcon-Mamba: dt, B, C = rms_forward(dt), rms_forward(B), rms_forward(C)
      rmsnorm<T>(row, nullptr, row, R, c.mixer_eps);
      rmsnorm<T>(row + R, nullptr, row + R, N, c.mixer_eps);
      rmsnorm<T>(row + R + N, nullptr, row + R + N, N, c.mixer_eps);
    }
    std::copy(row, row + R, ws.dt_low.data() + t * R);
  }

  // dt = softplus(self.dt_proj(dt))   (dt_proj includes its bias)
  // y = selective_scan(x, dt, A, B, C, D, z)   (A = -exp(A_log), computed at load)
  const T* B = ws.dbc.data() + R;
  const T* C = ws.dbc.data() + R + N;
  if (n == 1) {
    // One token: a channel's dt_proj row, softplus, scan and gate touch no other channel, so the
    // threads share out the channels once for all four (the scan alone is too short to split).
    T* h = states[0]->ssm.data();
    parallel_for(E, 16, w.dt_proj.bytes() + E * N * 12, [&](int64_t c0, int64_t c1) {
      project(w.dt_proj.slice_rows(c0, c1), ws.dt_low.data(), 1, ws.dt.data() + c0);
      softplus_bias_inplace(ws.dt.data() + c0, w.dt_bias.subspan(c0, c1 - c0), 1);
      selective_scan_fast(1, c1 - c0, N, ws.x.data() + c0, E, ws.dt.data() + c0,
                          w.A.data() + c0 * N, B, C, n_dbc, w.D.data() + c0, z + c0, 2 * E,
                          h + c0 * N, ws.y.data() + c0);
    });
  } else if (one_sequence) {
    project(w.dt_proj, ws.dt_low.data(), n, ws.dt.data());
    parallel_for(n, 1, n * E * 16, [&](int64_t t0, int64_t t1) {
      softplus_bias_inplace(ws.dt.data() + t0 * E, w.dt_bias, t1 - t0);
    });
    selective_scan_fast(n, E, N, ws.x.data(), E, ws.dt.data(), w.A.data(), B, C, n_dbc, w.D.data(),
                        z, 2 * E, states[0]->ssm.data(), ws.y.data());
  } else {  // one step of each sequence: the sequences' softplus and scan shared out
    project(w.dt_proj, ws.dt_low.data(), n, ws.dt.data());
    parallel_for(n, 1, n * E * N * 8, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        T* dt = ws.dt.data() + t * E;
        softplus_bias_inplace(dt, w.dt_bias, 1);
        selective_scan_fast(1, E, N, ws.x.data() + t * E, E, dt, w.A.data(), B + t * n_dbc,
                            C + t * n_dbc, n_dbc, w.D.data(), z + t * 2 * E, 2 * E,
                            states[t]->ssm.data(), ws.y.data() + t * E);
      }
    });
  }

  // out = self.out_proj(y)
  project(w.out_proj, ws.y.data(), n, out);
  add_bias(w.out_proj_bias, out, n);
}

}  // namespace mamba
