#pragma once
// The Mamba-2 scan ("state space duality", SSD). Per head hd of P = headdim channels, with the
// B and C of its group g = hd / (nheads / ngroups) and ONE decay scalar A[hd] per head:
//   h[hd] = exp(dt[hd] * A[hd]) * h[hd] + dt[hd] * outer(x[hd], B[g])     h[hd]: (P, N)
//   y[hd] = h[hd] @ C[g] + D * x[hd]                   D per head or per channel
// dt is given after softplus (and clamp); the gate and the group norm belong to the mixer.
//
// Three ways to compute it, the same numbers up to rounding:
//   ssd_scan_recurrent       plain loops, token by token: the definition (scalar twin)
//   ssd_scan_recurrent_fast  the same recurrence, heads split across threads, each head's state
//                            kept in L1 while it takes a block of tokens (decode, short runs)
//   ssd_scan_chunked         the chunked SSD form: within a chunk of L tokens the output is a
//                            masked (L x L) matrix times X, and the state passes between chunks,
//                            so almost all the work is matrix products (prefill)
//
// Layout, shared by the three: x row t at x + t*ldx, (nheads*headdim); dt row t at dt + t*lddt,
// (nheads); A: (nheads); B, C row t at B + t*ldbc, C + t*ldbc, (ngroups*d_state) each;
// D: (nheads) or (nheads*headdim), or nullptr for no skip term; h: (nheads, headdim, d_state),
// read and updated; y row t at y + t*ldy, (nheads*headdim).
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "mamba/error.hpp"
#include "mamba/ops/threads.hpp"

namespace mamba {

struct SsdShape {
  int64_t nheads;      // H
  int64_t headdim;     // P
  int64_t ngroups;     // G, divides H; head hd uses group hd / (H / G)
  int64_t d_state;     // N
  bool d_per_channel;  // D is (nheads*headdim) rather than (nheads)
};

namespace ssd_detail {

inline void check(const SsdShape& s) {
  if (s.nheads <= 0 || s.headdim <= 0 || s.d_state <= 0 || s.ngroups <= 0 ||
      s.nheads % s.ngroups != 0)
    throw ShapeError("ssd scan: nheads " + std::to_string(s.nheads) + ", headdim " +
                     std::to_string(s.headdim) + ", d_state " + std::to_string(s.d_state) +
                     ", ngroups " + std::to_string(s.ngroups) +
                     " (all positive, ngroups dividing nheads)");
}

template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;  // row-major
template <class T>
using RowsMap = Eigen::Map<Mat<T>, 0, Eigen::OuterStride<>>;  // rows of a strided array
template <class T>
using ConstRowsMap = Eigen::Map<const Mat<T>, 0, Eigen::OuterStride<>>;

// Decays exp(v), v <= 0, below kMinDecay are flushed to 0: they are negligible against T's
// precision, and left alone they (and their products) become subnormal numbers, which cost the
// CPU a microcode assist per operation (measured: 3x slower chunked scans when a few dt are
// large). Eigen's vectorized exp never returns 0 (it clamps its argument), so its argument is
// clamped to kMinLogDecay, just below log(kMinDecay), and the result flushed.
template <class T>
inline constexpr T kMinLogDecay = sizeof(T) == sizeof(float) ? T(-60) : T(-500);
template <class T>
inline constexpr T kMinDecay = sizeof(T) == sizeof(float) ? T(1e-26) : T(1e-217);

template <class T>
inline T decay_exp(double v) {
  const T d = static_cast<T>(std::exp(v));
  return d < kMinDecay<T> ? T(0) : d;
}

// v[0..n) = decay_exp(v[0..n)), vectorized
template <class T>
inline void decay_exp_inplace(T* v, int64_t n) {
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> a(v, n);
  a = a.max(kMinLogDecay<T>).exp();
  for (int64_t j = 0; j < n; ++j) v[j] = v[j] < kMinDecay<T> ? T(0) : v[j];
}

// D for channel p of head hd (0 without D)
template <class T>
inline T skip(const SsdShape& s, const T* D, int64_t hd, int64_t p) {
  if (!D) return T(0);
  return s.d_per_channel ? D[hd * s.headdim + p] : D[hd];
}

// y[p] += D x[p] for the channels of head hd
template <class T>
inline void add_skip(const SsdShape& s, const T* D, int64_t hd, const T* x, T* y) {
  if (!D) return;
  if (s.d_per_channel) {
    const T* Dh = D + hd * s.headdim;
    for (int64_t p = 0; p < s.headdim; ++p) y[p] += Dh[p] * x[p];
  } else {
    for (int64_t p = 0; p < s.headdim; ++p) y[p] += D[hd] * x[p];
  }
}

// h[p, :] = decay h[p, :] + (dt x[p]) B for the P rows of one head's (P, N) state: a plain loop
// over the contiguous d_state that the compiler vectorizes (__restrict: h overlaps no input).
template <class T>
inline void decay_add_outer(int64_t P, int64_t N, T* __restrict h, T decay, T dt,
                            const T* __restrict x, const T* __restrict B) {
  for (int64_t p = 0; p < P; ++p) {
    T* __restrict hp = h + p * N;
    const T dx = dt * x[p];
    for (int64_t k = 0; k < N; ++k) hp[k] = dx * B[k] + decay * hp[k];
  }
}

}  // namespace ssd_detail

// The recurrence, token by token, in plain loops.
template <class T>
inline void ssd_scan_recurrent(const SsdShape& s, int64_t n, const T* x, int64_t ldx, const T* dt,
                               int64_t lddt, const T* A, const T* B, const T* C, int64_t ldbc,
                               const T* D, T* h, T* y, int64_t ldy) {
  ssd_detail::check(s);
  const int64_t H = s.nheads, P = s.headdim, N = s.d_state, heads_per_group = H / s.ngroups;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t hd = 0; hd < H; ++hd) {
      const int64_t g = hd / heads_per_group;
      const T* xt = x + t * ldx + hd * P;
      const T* Bt = B + t * ldbc + g * N;
      const T* Ct = C + t * ldbc + g * N;
      const T dth = dt[t * lddt + hd];
      const T decay = std::exp(dth * A[hd]);  // exp(dt A)
      for (int64_t p = 0; p < P; ++p) {
        T* hp = h + (hd * P + p) * N;
        const T dx = dth * xt[p];
        T acc = 0;
        for (int64_t k = 0; k < N; ++k) {
          hp[k] = decay * hp[k] + dx * Bt[k];  // h = exp(dt A) h + dt x B
          acc += hp[k] * Ct[k];                // y = h . C
        }
        y[t * ldy + hd * P + p] = acc + ssd_detail::skip(s, D, hd, p) * xt[p];
      }
    }
  }
}

// The same recurrence: heads split across the threads, each head taken through a block of tokens
// at a time (its (P, N) state, 32 KiB in float for P=64, N=128, stays in L1). Per token, the state
// update is a loop over the contiguous d_state that the compiler vectorizes, then y = h C is
// Eigen's matrix-vector product. (Fusing the dot product into the update loop measured slower:
// every row then ends in a horizontal sum.)
template <class T>
inline void ssd_scan_recurrent_fast(const SsdShape& s, int64_t n, const T* x, int64_t ldx,
                                    const T* dt, int64_t lddt, const T* A, const T* B, const T* C,
                                    int64_t ldbc, const T* D, T* h, T* y, int64_t ldy) {
  using namespace ssd_detail;
  check(s);
  const int64_t H = s.nheads, P = s.headdim, N = s.d_state, heads_per_group = H / s.ngroups;
  using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  // Tokens a block at a time, each head through the block: the block's rows of x, B and C stay
  // in the cache while the heads pass (one head through a long run would stream them from L3 for
  // every head).
  constexpr int64_t kTokenBlock = 64;
  // 4 flops per state element and token: one token of a 130m-sized layer (0.8 MFLOP) stays on
  // one thread, where a fork/join would cost about what it saves
  parallel_for(H, 1, n * H * P * N * 4, [&](int64_t h0, int64_t h1) {
    for (int64_t t0 = 0; t0 < n; t0 += kTokenBlock) {
      const int64_t t1 = std::min(n, t0 + kTokenBlock);
      for (int64_t hd = h0; hd < h1; ++hd) {
        const int64_t g = hd / heads_per_group;
        const Eigen::Map<const Mat<T>> hm(h + hd * P * N, P, N);
        for (int64_t t = t0; t < t1; ++t) {
          const T* xt = x + t * ldx + hd * P;
          const T dth = dt[t * lddt + hd];
          decay_add_outer(P, N, h + hd * P * N, decay_exp<T>(dth * A[hd]), dth, xt,
                          B + t * ldbc + g * N);
          Eigen::Map<Vec> yt(y + t * ldy + hd * P, P);
          yt.noalias() = hm * Eigen::Map<const Vec>(C + t * ldbc + g * N, N);
          add_skip(s, D, hd, xt, yt.data());
        }
      }
    }
  });
}

// The chunked SSD form: exactly the recurrence, computed with matrix products. Per chunk of
// L <= chunk_size tokens (the last may be shorter), per head, with a[s] = dt[s] A and
// Acum[l] = sum_{s<=l} a[s] within the chunk, X = the chunk's x (L, P), B, C its (L, N):
//   CB      = C B^T                                    (L, L), once per group and chunk
//   M[l,s]  = CB[l,s] exp(Acum[l] - Acum[s]) dt[s]     for s <= l, else 0
//   Y       = M X + diag(exp(Acum)) C h^T + D X        (h: the state before the chunk)
//   h       = exp(Acum[L-1]) h + X^T diag(exp(Acum[L-1] - Acum[s]) dt[s]) B
// The decays are exponentials of differences of Acum, never ratios of exponentials (exp(Acum)
// alone underflows within a chunk), and Acum is summed in double: in float the rounding of a
// running sum near -100 would put 1e-5 errors into exp(Acum[l] - Acum[s]). Decays below
// kMinDecay are 0 (see decay_exp).
// Threads: first the CB products of a run of chunks (in parallel over chunks and groups), then
// the heads in parallel, each part of the heads walking the chunks in order.
template <class T>
inline void ssd_scan_chunked(const SsdShape& s, int64_t chunk_size, int64_t n, const T* x,
                             int64_t ldx, const T* dt, int64_t lddt, const T* A, const T* B,
                             const T* C, int64_t ldbc, const T* D, T* h, T* y, int64_t ldy) {
  using namespace ssd_detail;
  check(s);
  if (chunk_size <= 0)
    throw ArgumentError("ssd_scan_chunked: chunk_size " + std::to_string(chunk_size) +
                        ", expected > 0");
  if (n <= 0) return;
  const int64_t H = s.nheads, P = s.headdim, N = s.d_state, G = s.ngroups;
  const int64_t heads_per_group = H / G;
  const int64_t L = std::min(chunk_size, n);  // the longest chunk
  const int64_t n_chunks = (n + L - 1) / L;
  // The CB products of up to `run` chunks at a time (about 8 MiB of float).
  const int64_t run = std::clamp<int64_t>((int64_t{1} << 21) / (G * L * L), 1, n_chunks);
  thread_local std::vector<T> cb_store;
  cb_store.resize(run * G * L * L);
  T* const cb_all = cb_store.data();  // the workers' own thread_local copies are empty

  for (int64_t c0 = 0; c0 < n_chunks; c0 += run) {
    const int64_t c1 = std::min(n_chunks, c0 + run);
    // CB for chunk c and group g at cb_all + ((c - c0) * G + g) * L * L, an (l, l) row-major block
    parallel_for((c1 - c0) * G, 1, (c1 - c0) * G * L * L * N * 2, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t c = c0 + u / G, g = u % G, t0 = c * L, l = std::min(L, n - t0);
        const ConstRowsMap<T> Cc(C + t0 * ldbc + g * N, l, N, Eigen::OuterStride<>(ldbc));
        const ConstRowsMap<T> Bc(B + t0 * ldbc + g * N, l, N, Eigen::OuterStride<>(ldbc));
        Eigen::Map<Mat<T>> cb(cb_all + u * L * L, l, l);
        cb.noalias() = Cc * Bc.transpose();
      }
    });

    const int64_t work = (c1 - c0) * L * H * (L * P + 4 * N * P + 8 * L);
    parallel_for(H, 1, work, [&](int64_t h0, int64_t h1) {
      thread_local Mat<T> M, state_y, Xw;
      thread_local std::vector<double> acum;
      thread_local std::vector<T> dts, wts;
      M.resize(L, L);
      state_y.resize(L, P);
      Xw.resize(L, P);
      acum.resize(L), dts.resize(L), wts.resize(L);
      using TArray = Eigen::Array<T, Eigen::Dynamic, 1>;
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t t0 = c * L, l = std::min(L, n - t0);
        const Eigen::Map<const TArray> dtv(dts.data(), l);
        Eigen::Map<TArray> w(wts.data(), l);
        for (int64_t hd = h0; hd < h1; ++hd) {
          const int64_t g = hd / heads_per_group;
          const Eigen::Map<const Mat<T>> cb(cb_all + ((c - c0) * G + g) * L * L, l, l);
          const ConstRowsMap<T> X(x + t0 * ldx + hd * P, l, P, Eigen::OuterStride<>(ldx));
          const ConstRowsMap<T> Bc(B + t0 * ldbc + g * N, l, N, Eigen::OuterStride<>(ldbc));
          const ConstRowsMap<T> Cc(C + t0 * ldbc + g * N, l, N, Eigen::OuterStride<>(ldbc));
          RowsMap<T> Y(y + t0 * ldy + hd * P, l, P, Eigen::OuterStride<>(ldy));
          Eigen::Map<Mat<T>> hm(h + hd * P * N, P, N);

          // a[s] = dt[s] A; Acum[l] = sum_{s<=l} a[s]
          double sum = 0;
          for (int64_t i = 0; i < l; ++i) {
            dts[i] = dt[(t0 + i) * lddt + hd];
            sum += double(dts[i]) * double(A[hd]);
            acum[i] = sum;
          }
          // M[i, 0..i] = CB[i, 0..i] exp(Acum[i] - Acum[0..i]) dt[0..i]; above the diagonal unused.
          // (The differences are rounded to T first: Eigen's vectorized exp needs a plain T array.)
          for (int64_t i = 0; i < l; ++i) {
            T* Mi = M.row(i).data();
            for (int64_t j = 0; j <= i; ++j) Mi[j] = static_cast<T>(acum[i] - acum[j]);
            decay_exp_inplace(Mi, i + 1);
            M.row(i).head(i + 1).array() *=
                cb.row(i).head(i + 1).array() * dtv.head(i + 1).transpose();
          }
          // Y = diag(exp(Acum)) C h^T + D X + M X
          state_y.topRows(l).noalias() = Cc * hm.transpose();
          for (int64_t i = 0; i < l; ++i) {
            const T decay = decay_exp<T>(acum[i]);
            if (!D)
              Y.row(i) = decay * state_y.row(i);
            else if (s.d_per_channel)
              Y.row(i).array() =
                  decay * state_y.row(i).array() +
                  Eigen::Map<const TArray>(D + hd * P, P).transpose() * X.row(i).array();
            else
              Y.row(i) = decay * state_y.row(i) + D[hd] * X.row(i);
          }
          Y.noalias() += M.topLeftCorner(l, l).template triangularView<Eigen::Lower>() * X;
          // h = exp(Acum[l-1]) h + (diag(exp(Acum[l-1] - Acum) dt) X)^T B
          for (int64_t j = 0; j < l; ++j) wts[j] = static_cast<T>(acum[l - 1] - acum[j]);
          decay_exp_inplace(wts.data(), l);
          w *= dtv;
          Xw.topRows(l).noalias() = w.matrix().asDiagonal() * X;
          hm *= decay_exp<T>(acum[l - 1]);
          hm.noalias() += Xw.topRows(l).transpose() * Bc;
        }
      }
    });
  }
}

}  // namespace mamba
