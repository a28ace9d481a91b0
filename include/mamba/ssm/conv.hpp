#pragma once
// Causal depthwise conv1d over time, per channel c with K taps; tap K-1 hits the current token:
//   y[t, c] = b[c] + sum_k w[c, k] * x[t - (K-1) + k, c]
// The conv state holds the last K-1 inputs, oldest first, so that a sequence may be fed in any
// split (one token at a time, or chunks) with the same result.
#include <algorithm>
#include <cstdint>
#include <cstring>

namespace mamba {

// One token.   w: (d_inner, K)   b: (d_inner) or null   state: (K-1, d_inner)   x, y: (d_inner)
template <class T>
inline void causal_conv1d_step(int64_t d_inner, int64_t K, const T* w, const T* b, T* state,
                               const T* x, T* y) {
  for (int64_t c = 0; c < d_inner; ++c) {
    T acc = b ? b[c] : T(0);
    for (int64_t k = 0; k < K - 1; ++k) acc += w[c * K + k] * state[k * d_inner + c];
    y[c] = acc + w[c * K + K - 1] * x[c];
  }
  if (K > 1) {
    std::memmove(state, state + d_inner, (K - 2) * d_inner * sizeof(T));
    std::memcpy(state + (K - 2) * d_inner, x, d_inner * sizeof(T));
  }
}

// A sequence of n tokens.   x: (n, d_inner) with row stride x_stride   y: (n, d_inner) contiguous
template <class T>
inline void causal_conv1d(int64_t n, int64_t d_inner, int64_t K, const T* w, const T* b, T* state,
                          const T* x, int64_t x_stride, T* y) {
  // input at time s (s < 0 reaches back into the state)
  auto in = [&](int64_t s, int64_t c) -> T {
    return s >= 0 ? x[s * x_stride + c] : state[(K - 1 + s) * d_inner + c];
  };
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t c = 0; c < d_inner; ++c) {
      T acc = b ? b[c] : T(0);
      for (int64_t k = 0; k < K; ++k) acc += w[c * K + k] * in(t - (K - 1) + k, c);
      y[t * d_inner + c] = acc;
    }
  }
  // new state: the last K-1 inputs of [state, x]
  for (int64_t k = 0; k < K - 1; ++k) {
    const int64_t s = n - (K - 1) + k;
    if (s < 0) {
      std::memmove(state + k * d_inner, state + (K - 1 + s) * d_inner, d_inner * sizeof(T));
    } else {
      std::memcpy(state + k * d_inner, x + s * x_stride, d_inner * sizeof(T));
    }
  }
}

// The same as causal_conv1d, with the taps transposed to (K, d_inner) (the model transposes them
// at load) so that every inner loop runs over contiguous channels (the compiler vectorizes them);
// what the model runs for prefill (n tokens) and decode (n = 1), over the channels [c0, c1) (the
// other channels of y and state untouched). causal_conv1d is its twin.
//   w_t: (K, d_inner)   b: (d_inner) or null   state: (K-1, d_inner)
//   x: (n, d_inner) with row stride x_stride   y: (n, d_inner) contiguous
template <class T>
inline void causal_conv1d_fast(int64_t c0, int64_t c1, int64_t n, int64_t d_inner, int64_t K,
                               const T* w_t, const T* b, T* state, const T* x, int64_t x_stride,
                               T* y) {
  for (int64_t t = 0; t < n; ++t) {
    T* yt = y + t * d_inner;
    for (int64_t c = c0; c < c1; ++c) yt[c] = b ? b[c] : T(0);
    for (int64_t k = 0; k < K; ++k) {
      const int64_t s = t - (K - 1) + k;
      const T* src = s >= 0 ? x + s * x_stride : state + (K - 1 + s) * d_inner;
      const T* wk = w_t + k * d_inner;
      for (int64_t c = c0; c < c1; ++c) yt[c] += wk[c] * src[c];
    }
  }
  const size_t bytes = size_t(c1 - c0) * sizeof(T);
  for (int64_t k = 0; k < K - 1; ++k) {
    const int64_t s = n - (K - 1) + k;
    if (s < 0) {
      std::memmove(state + k * d_inner + c0, state + (K - 1 + s) * d_inner + c0, bytes);
    } else {
      std::memcpy(state + k * d_inner + c0, x + s * x_stride + c0, bytes);
    }
  }
}

// All d_inner channels.
template <class T>
inline void causal_conv1d_fast(int64_t n, int64_t d_inner, int64_t K, const T* w_t, const T* b,
                               T* state, const T* x, int64_t x_stride, T* y) {
  causal_conv1d_fast(0, d_inner, n, d_inner, K, w_t, b, state, x, x_stride, y);
}

}  // namespace mamba
