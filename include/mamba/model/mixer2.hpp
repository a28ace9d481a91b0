#pragma once
// The Mamba-2 mixer of one layer over n tokens (../shared/DESIGN.md section 1b). Like the Mamba-1
// mixer, the n rows are n consecutive tokens of one sequence (one state) or one token each of n
// sequences (batched decode); a long run of one sequence takes the chunked SSD scan.
#include <algorithm>
#include <cstdint>
#include <span>

#include "mamba/config.hpp"
#include "mamba/model/mixer.hpp"
#include "mamba/model/state.hpp"
#include "mamba/model/weights.hpp"
#include "mamba/ops/rmsnorm.hpp"
#include "mamba/ssm/conv.hpp"
#include "mamba/ssm/ssd.hpp"

namespace mamba {

// Fewest tokens of one sequence for which the chunked SSD scan beats the recurrence: between 4
// and 8 on a mamba2-130m layer, 1 and 2 threads (bench/bench_ssd.cpp; see the README).
inline constexpr int64_t kSsdMinTokens = 8;

// The form of the Mamba-2 scan a prefill takes: Auto picks the chunked SSD form for runs of at
// least kSsdMinTokens tokens and the recurrence below; the others force one (tests, benchmarks).
// Both give the same logits and state. Mamba-1 has only the recurrence.
enum class ScanPath { Auto, Recurrence, Chunked };

// u: (n, d_model) normalised input   out: (n, d_model)   ws: resized for n tokens
template <class T>
inline void mamba2_mixer(const LayerWeights<T>& w, const ModelConfig& c, const T* u, int64_t n,
                         std::span<LayerState<T>* const> states, Workspace<T>& ws, T* out,
                         ScanPath path = ScanPath::Auto) {
  const int64_t E = c.d_inner, N = c.d_state, K = c.d_conv, H = c.nheads, G = c.ngroups;
  const int64_t CD = c.conv_dim(), d_in = c.d_in_proj();
  const bool one_sequence = states.size() == 1;
  auto state_of = [&](int64_t row) -> LayerState<T>& { return *states[one_sequence ? 0 : row]; };

  // zxbcdt = self.in_proj(u); z, xBC, dt = torch.split(zxbcdt, [d_inner, conv_dim, nheads], -1)
  project(w.in_proj, u, n, ws.xz.data());
  add_bias(w.in_proj_bias, ws.xz.data(), n);
  const T* z = ws.xz.data();
  const T* xBC_in = z + E;
  const T* dt_in = z + E + CD;

  // xBC = self.act(self.conv1d(xBC)[..., :seqlen])   (causal depthwise conv over x, B and C)
  conv_silu(w, CD, K, xBC_in, d_in, n, states, ws.x.data());

  // dt = F.softplus(dt + self.dt_bias); dt = dt.clamp(*self.dt_limit)
  for (int64_t t = 0; t < n; ++t) std::copy(dt_in + t * d_in, dt_in + t * d_in + H, &ws.dt[t * H]);
  softplus_bias_inplace(ws.dt.data(), w.dt_bias, n);
  if (c.clamps_dt())
    for (T& v : std::span(ws.dt.data(), n * H))
      v = std::clamp(v, static_cast<T>(c.dt_min), static_cast<T>(c.dt_max));

  // x, B, C = torch.split(xBC, [d_inner, G*N, G*N], -1)
  // y = ssd(x, dt, A, B, C, D)   (A = -exp(A_log) per head, computed at load)
  const SsdShape shape{H, c.headdim, G, N, static_cast<int64_t>(w.D.size()) != H};
  const T* x = ws.x.data();
  const T* B = x + E;
  const T* C = x + E + G * N;
  const bool chunked = path == ScanPath::Chunked || (path == ScanPath::Auto && n >= kSsdMinTokens);
  if (one_sequence && chunked) {
    ssd_scan_chunked(shape, c.chunk_size, n, x, CD, ws.dt.data(), H, w.A.data(), B, C, CD,
                     w.D.data(), states[0]->ssm.data(), ws.y.data(), E);
  } else if (one_sequence) {
    ssd_scan_recurrent_fast(shape, n, x, CD, ws.dt.data(), H, w.A.data(), B, C, CD, w.D.data(),
                            states[0]->ssm.data(), ws.y.data(), E);
  } else {  // one step of each sequence, the sequences shared out across the threads
    parallel_for(n, 1, n * H * c.headdim * N * 4, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t)
        ssd_scan_recurrent_fast(shape, 1, x + t * CD, CD, ws.dt.data() + t * H, H, w.A.data(),
                                B + t * CD, C + t * CD, CD, w.D.data(), state_of(t).ssm.data(),
                                ws.y.data() + t * E, E);
    });
  }

  // y = self.norm(y, z)   (y * silu(z), then RMSNorm over each group of d_inner/G channels)
  const int64_t group = E / G;
  for (int64_t t = 0; t < n; ++t) {
    T* yt = ws.y.data() + t * E;
    mul_silu_inplace(z + t * d_in, yt, E);
    for (int64_t g = 0; g < G; ++g)
      rmsnorm(yt + g * group, w.gate_norm.data() + g * group, yt + g * group, group, c.norm_eps);
  }

  // out = self.out_proj(y)
  project(w.out_proj, ws.y.data(), n, out);
  add_bias(w.out_proj_bias, out, n);
}

}  // namespace mamba
