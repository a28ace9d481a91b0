#pragma once
// The selective scan: a linear recurrence per channel c and state n whose discretization step dt,
// input matrix B and output matrix C depend on the token (the "selective" part):
//   h[c,n] = exp(dt[c] * A[c,n]) * h[c,n] + dt[c] * B[n] * x[c]
//   y[c]   = sum_n h[c,n] * C[n] + D[c] * x[c]
//   y[c]  *= silu(z[c])                                  (the gate, when z is given)
#include <cstdint>
#include <type_traits>

#include "mamba/ops/activations.hpp"
#include "mamba/ops/simd/simd.hpp"
#include "mamba/ops/threads.hpp"
#include "mamba/ssm/discretize.hpp"

namespace mamba {

// One token.   x, dt, D, z, y: (d_inner)   A, h: (d_inner, d_state)   B, C: (d_state)
template <class T>
inline void selective_scan_step(int64_t d_inner, int64_t d_state, const T* x, const T* dt,
                                const T* A, const T* B, const T* C, const T* D, const T* z, T* h,
                                T* y) {
  for (int64_t c = 0; c < d_inner; ++c) {
    T* hc = h + c * d_state;
    const T* Ac = A + c * d_state;
    T acc = 0;
    for (int64_t n = 0; n < d_state; ++n) {
      const auto [A_bar, B_bar] = zoh_simplified(dt[c], Ac[n], B[n]);
      hc[n] = A_bar * hc[n] + B_bar * x[c];
      acc += hc[n] * C[n];
    }
    y[c] = acc + D[c] * x[c];
    if (z) y[c] *= silu(z[c]);
  }
}

// A sequence of n_tokens, carrying h. Rows of x and z have stride x_stride / z_stride, rows of B
// and C stride bc_stride; dt and y are contiguous (n_tokens, d_inner).
template <class T>
inline void selective_scan(int64_t n_tokens, int64_t d_inner, int64_t d_state, const T* x,
                           int64_t x_stride, const T* dt, const T* A, const T* B, const T* C,
                           int64_t bc_stride, const T* D, const T* z, int64_t z_stride, T* h,
                           T* y) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    selective_scan_step(d_inner, d_state, x + t * x_stride, dt + t * d_inner, A, B + t * bc_stride,
                        C + t * bc_stride, D, z ? z + t * z_stride : nullptr, h, y + t * d_inner);
  }
}

// What the model runs: the same as selective_scan. In float, the channels are split across the
// threads and each thread runs its channels through all the tokens: a sequence with the SIMD
// scan_sequence (vectorized over channels, their state held in L1, the gate fused), one token with
// the SIMD step (vectorized over the state) and the gate. The loops above are their scalar twin
// and serve other scalars.
template <class T>
inline void selective_scan_fast(int64_t n_tokens, int64_t d_inner, int64_t d_state, const T* x,
                                int64_t x_stride, const T* dt, const T* A, const T* B, const T* C,
                                int64_t bc_stride, const T* D, const T* z, int64_t z_stride, T* h,
                                T* y) {
  if constexpr (std::is_same_v<T, float>) {
    parallel_for(d_inner, 16, n_tokens * d_inner * d_state * 8, [&](int64_t c0, int64_t c1) {
      if (n_tokens > 1 && d_state <= simd::kMaxSequenceState) {
        simd::scan_sequence(n_tokens, d_inner, c0, c1, d_state, x, x_stride, dt, A, B, C, bc_stride,
                            D, z, z_stride, h, y);
        return;
      }
      for (int64_t t = 0; t < n_tokens; ++t) {
        float* yt = y + t * d_inner;
        simd::scan_step(c0, c1, d_state, x + t * x_stride, dt + t * d_inner, A, B + t * bc_stride,
                        C + t * bc_stride, D, h, yt);
        if (z) simd::mul_silu(z + t * z_stride + c0, yt + c0, c1 - c0);
      }
    });
  } else {
    selective_scan(n_tokens, d_inner, d_state, x, x_stride, dt, A, B, C, bc_stride, D, z, z_stride,
                   h, y);
  }
}

}  // namespace mamba
