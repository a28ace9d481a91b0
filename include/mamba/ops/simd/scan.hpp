#pragma once
// The selective scan for a range of channels, on any packet type: one token vectorized over the
// state (d_state = 16 is one AVX-512 register), and a sequence of tokens vectorized over the
// channels. Scalar twins: selective_scan_step and selective_scan in ssm/scan.hpp.
#include <algorithm>
#include <cstdint>

#include "mamba/ops/simd/math.hpp"

namespace mamba::simd::kernels {

// Channel c of one token, N = d_state: h[c,:] = exp(dt[c] A[c,:]) h[c,:] + dt[c] x[c] B, and
// h[c,:] * C summed into the W lanes of a register.
template <class O>
inline typename O::F scan_channel(int64_t c, int64_t N, const float* x, const float* dt,
                                  const float* A, const float* B, const float* C, float* h) {
  constexpr int W = O::W;
  float* hc = h + c * N;
  const float* Ac = A + c * N;
  const auto dtc = O::set1(dt[c]), dx = O::set1(dt[c] * x[c]);
  auto acc = O::zero();
  int64_t n = 0;
  for (; n + W <= N; n += W) {
    const auto dA = exp<O>(O::mul(dtc, O::load(Ac + n)));
    const auto hn = O::fma(dA, O::load(hc + n), O::mul(dx, O::load(B + n)));
    O::store(hc + n, hn);
    acc = O::fma(hn, O::load(C + n), acc);
  }
  if (n < N) {
    const int r = int(N - n);
    const auto dA = exp<O>(O::mul(dtc, O::load_part(Ac + n, r)));
    const auto hn = O::fma(dA, O::load_part(hc + n, r), O::mul(dx, O::load_part(B + n, r)));
    O::store_part(hc + n, hn, r);
    acc = O::fma(hn, O::load_part(C + n, r), acc);
  }
  return acc;
}

// Channels [c0, c1) of one token, N = d_state:
//   h[c,:] = exp(dt[c] A[c,:]) h[c,:] + dt[c] x[c] B     y[c] = h[c,:] . C + D[c] x[c]
template <class O>
inline void scan_step(int64_t c0, int64_t c1, int64_t N, const float* x, const float* dt,
                      const float* A, const float* B, const float* C, const float* D, float* h,
                      float* y) {
  if constexpr (requires(const typename O::F* a) { O::reduce16(a); }) {
    if (N == O::W) {  // d_state 16 on AVX-512: 16 channels at a time, one register each
      constexpr int64_t kAhead = 128;
      for (; c0 + 16 <= c1; c0 += 16) {
        typename O::F acc[16];
        const auto Bv = O::load(B), Cv = O::load(C);
        for (int k = 0; k < 16; ++k) {
          const int64_t c = c0 + k;
          // A and h of the channel kAhead on (a prefetch never faults): a decoded token reads
          // them from memory, 2 x 64 bytes a channel, and the hardware prefetchers start late.
          // 128 channels on (16 KiB), against 32: a batch-8 step 1.5-4% faster on Emerald
          // Rapids (its 8 states, 19 MB, stream through each step); a decoded token unchanged.
#if defined(__GNUC__)
          __builtin_prefetch(A + (c + kAhead) * N, 0, 2);
          __builtin_prefetch(h + (c + kAhead) * N, 1, 2);
#endif
          const auto dA = exp<O>(O::mul(O::set1(dt[c]), O::load(A + c * N)));
          const auto hn = O::fma(dA, O::load(h + c * N), O::mul(O::set1(dt[c] * x[c]), Bv));
          O::store(h + c * N, hn);
          acc[k] = O::mul(hn, Cv);
        }
        const auto xv = O::load(x + c0);
        O::store(y + c0, O::fma(O::load(D + c0), xv, O::reduce16(acc)));
      }
    }
  }
  if constexpr (requires(const typename O::F* a) { O::reduce8(a); }) {
    // 8 channels at a time (AVX2), their 8 sums reduced in one transposing tree: 10-18% faster
    // than a reduction per channel from cache (d_state 16, 1 thread; a tree of hadds, which ran
    // 1.2% faster than the unpacks' tree now shared with the batched Q8_0 kernel). A decoded
    // token's scan reads A and the state from memory, and does not gain; batch-8 gains 0.4-1.9%.
    for (; c0 + 8 <= c1; c0 += 8) {
      typename O::F acc[8];
      for (int k = 0; k < 8; ++k) acc[k] = scan_channel<O>(c0 + k, N, x, dt, A, B, C, h);
      O::store(y + c0, O::fma(O::load(D + c0), O::load(x + c0), O::reduce8(acc)));
    }
  }
  for (int64_t c = c0; c < c1; ++c)
    y[c] = O::reduce(scan_channel<O>(c, N, x, dt, A, B, C, h)) + D[c] * x[c];
}

// The largest d_state scan_sequence holds (its state buffer is on the stack).
inline constexpr int64_t kMaxSequenceState = 64;

// Channels [c0, c1) through n_tokens tokens, N = d_state <= kMaxSequenceState; rows of dt and y
// have stride d_inner, of x and z x_stride and z_stride, of B and C bc_stride:
//   h[c,:] = exp(dt[t,c] A[c,:]) h[c,:] + dt[t,c] x[t,c] B[t,:]
//   y[t,c] = (h[c,:] . C[t,:] + D[c] x[t,c]) * silu(z[t,c])     (no gate when z is null)
// W channels at a time, one channel per lane: the block's state and A, transposed into a buffer
// (one register of W channels per state index), stay in L1 through all the tokens, and each
// y[t,c] is summed in its lane, with no horizontal sums. The last block is masked.
template <class O>
inline void scan_sequence(int64_t n_tokens, int64_t d_inner, int64_t c0, int64_t c1, int64_t N,
                          const float* x, int64_t x_stride, const float* dt, const float* A,
                          const float* B, const float* C, int64_t bc_stride, const float* D,
                          const float* z, int64_t z_stride, float* h, float* y) {
  constexpr int W = O::W;
  alignas(64) float hT[kMaxSequenceState * W], AT[kMaxSequenceState * W];
  for (int64_t b0 = c0; b0 < c1; b0 += W) {
    const int w = int(std::min<int64_t>(W, c1 - b0));
    // lanes past the range: A = h = x = 0, so h stays 0 and nothing is stored
    for (int64_t n = 0; n < N; ++n)
      for (int k = 0; k < W; ++k) {
        hT[n * W + k] = k < w ? h[(b0 + k) * N + n] : 0.0f;
        AT[n * W + k] = k < w ? A[(b0 + k) * N + n] : 0.0f;
      }
    const auto Dv = O::load_part(D + b0, w);
    for (int64_t t = 0; t < n_tokens; ++t) {
      const auto dtv = O::load_part(dt + t * d_inner + b0, w);
      const auto xv = O::load_part(x + t * x_stride + b0, w);
      const auto dx = O::mul(dtv, xv);
      const float* Bt = B + t * bc_stride;
      const float* Ct = C + t * bc_stride;
      auto yv = O::mul(Dv, xv);
      for (int64_t n = 0; n < N; ++n) {
        const auto dA = exp<O>(O::mul(dtv, O::load(AT + n * W)));
        const auto hn = O::fma(dA, O::load(hT + n * W), O::mul(dx, O::set1(Bt[n])));
        O::store(hT + n * W, hn);
        yv = O::fma(hn, O::set1(Ct[n]), yv);
      }
      if (z) yv = O::mul(yv, silu<O>(O::load_part(z + t * z_stride + b0, w)));
      O::store_part(y + t * d_inner + b0, yv, w);
    }
    for (int64_t n = 0; n < N; ++n)
      for (int k = 0; k < w; ++k) h[(b0 + k) * N + n] = hT[n * W + k];
  }
}

}  // namespace mamba::simd::kernels
