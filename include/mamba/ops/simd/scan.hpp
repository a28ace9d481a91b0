#pragma once
// The selective-scan step for a range of channels, vectorized over the state (d_state = 16 is one
// AVX-512 register), on any packet type. Scalar twin: selective_scan_step in ssm/scan.hpp.
#include <cstdint>

#include "mamba/ops/simd/math.hpp"

namespace mamba::simd::kernels {

// Channels [c0, c1) of one token, N = d_state:
//   h[c,:] = exp(dt[c] A[c,:]) h[c,:] + dt[c] x[c] B     y[c] = h[c,:] . C + D[c] x[c]
template <class O>
inline void scan_step(int64_t c0, int64_t c1, int64_t N, const float* x, const float* dt,
                      const float* A, const float* B, const float* C, const float* D, float* h,
                      float* y) {
  constexpr int W = O::W;
  if constexpr (requires(const typename O::F* a) { O::reduce16(a); }) {
    if (N == W) {  // d_state 16 on AVX-512: 16 channels at a time, one register each
      constexpr int64_t kAhead = 32;
      for (; c0 + 16 <= c1; c0 += 16) {
        typename O::F acc[16];
        const auto Bv = O::load(B), Cv = O::load(C);
        for (int k = 0; k < 16; ++k) {
          const int64_t c = c0 + k;
          // A and h of the channel kAhead on (a prefetch never faults): a decoded token reads
          // them from memory, 2 x 64 bytes a channel, and the hardware prefetchers start late
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
  for (int64_t c = c0; c < c1; ++c) {
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
    y[c] = O::reduce(acc) + D[c] * x[c];
  }
}

}  // namespace mamba::simd::kernels
