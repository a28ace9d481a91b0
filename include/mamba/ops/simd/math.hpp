#pragma once
// Vectorized exp, log1p, silu and softplus on any packet type (ops_*.hpp), and array forms.
// exp: range reduction x = n ln2 + r, |r| <= ln2/2, a degree-6 minimax polynomial for exp(r), then
// p * 2^n; results below exp(-87) flush to 0 (the smallest normal float is exp(-87.3)), above
// 88.72 go to infinity, NaN stays NaN.
// log(u) for u in [1, 2]: u = m 2^k with m in [sqrt(1/2), sqrt(2)], log(m) = f - f^2/2 + f^3 P(f)
// with f = m - 1 (the classic single-precision minimax P).
#include <cmath>
#include <cstdint>

namespace mamba::simd {

template <class O>
inline typename O::F exp(typename O::F x) {
  using F = typename O::F;
  // x last: min/max return their second operand when either is NaN (x86), so NaN stays NaN
  constexpr bool exact_scale = requires(F a) {
    O::scale2_unless_lt(a, a, a, a);
  };
  // where p * 2^n overflows to infinity by itself, the clamp only keeps n finite (x = inf)
  const F xc =
      exact_scale ? O::min(O::set1(89.0f), x) : O::min(O::set1(88.72f), O::max(O::set1(-87.0f), x));
  const F n = O::round(O::mul(xc, O::set1(1.44269504088896341f)));
  F r = O::fma(n, O::set1(-0.693359375f), xc);  // ln2 in two parts: hi has 9 significant bits
  r = O::fma(n, O::set1(2.12194440e-4f), r);
  // minimax on [-ln2/2, ln2/2]: relative error 1.9e-9 in exact arithmetic, 9.6e-8 in float
  F p = O::set1(1.38368458e-3f);
  p = O::fma(p, r, O::set1(8.37481581e-3f));
  p = O::fma(p, r, O::set1(4.16682251e-2f));
  p = O::fma(p, r, O::set1(1.66664198e-1f));
  p = O::fma(p, r, O::set1(4.99999911e-1f));
  p = O::fma(p, r, O::set1(1.0f));
  p = O::fma(p, r, O::set1(1.0f));
  if constexpr (exact_scale) {
    return O::scale2_unless_lt(p, n, x, O::set1(-87.0f));
  } else {
    const F e = O::select_gt(x, O::set1(88.72f), O::set1(INFINITY), O::scale2(p, n));
    return O::select_gt(O::set1(-87.0f), x, O::zero(), e);
  }
}

// log(1 + e) for e in [0, 1], accurate also where 1 + e rounds (e tiny).
template <class O>
inline typename O::F log1p_unit(typename O::F e) {
  using F = typename O::F;
  const F one = O::set1(1.0f);
  const F u = O::add(one, e);
  const F big = O::select_gt(u, O::set1(1.41421356f), one, O::zero());  // k
  const F m = O::select_gt(u, O::set1(1.41421356f), O::mul(u, O::set1(0.5f)), u);
  const F f = O::sub(m, one), z = O::mul(f, f);
  F p = O::set1(7.0376836292e-2f);
  p = O::fma(p, f, O::set1(-1.1514610310e-1f));
  p = O::fma(p, f, O::set1(1.1676998740e-1f));
  p = O::fma(p, f, O::set1(-1.2420140846e-1f));
  p = O::fma(p, f, O::set1(1.4249322787e-1f));
  p = O::fma(p, f, O::set1(-1.6668057665e-1f));
  p = O::fma(p, f, O::set1(2.0000714765e-1f));
  p = O::fma(p, f, O::set1(-2.4999993993e-1f));
  p = O::fma(p, f, O::set1(3.3333331174e-1f));
  F y = O::mul(O::mul(p, f), z);
  y = O::fma(z, O::set1(-0.5f), y);
  y = O::add(O::add(f, y), O::mul(big, O::set1(0.693147180559945f)));
  // log(u) * e / (u - 1) corrects for the rounding of 1 + e
  const F um1 = O::sub(u, one);
  return O::select_eq(um1, O::zero(), e,
                      O::div(O::mul(y, e), O::select_eq(um1, O::zero(), one, um1)));
}

// silu(v) = v / (1 + exp(-v))
template <class O>
inline typename O::F silu(typename O::F v) {
  return O::div(v, O::add(O::set1(1.0f), exp<O>(O::sub(O::zero(), v))));
}

// softplus(v) = log(1 + exp(v)) = max(v, 0) + log1p(exp(-|v|)); v itself above 20 (PyTorch)
template <class O>
inline typename O::F softplus(typename O::F v) {
  const auto sp = O::add(O::max(O::zero(), v), log1p_unit<O>(exp<O>(O::sub(O::zero(), O::abs(v)))));
  return O::select_gt(v, O::set1(20.0f), v, sp);
}

// Applies op to x[0..n) into y (which may be x), W lanes at a time, the tail masked.
template <class O, class Op>
inline void map(const float* x, float* y, int64_t n, Op op) {
  int64_t i = 0;
  for (; i + O::W <= n; i += O::W) O::store(y + i, op(O::load(x + i)));
  if (i < n) O::store_part(y + i, op(O::load_part(x + i, int(n - i))), int(n - i));
}

template <class O>
inline void exp_array(const float* x, float* y, int64_t n) {
  map<O>(x, y, n, [](typename O::F v) { return exp<O>(v); });
}

template <class O>
inline void silu_array(const float* x, float* y, int64_t n) {
  map<O>(x, y, n, [](typename O::F v) { return silu<O>(v); });
}

// y[i] = softplus(x[i] + bias[i])
template <class O>
inline void softplus_bias_array(const float* x, const float* bias, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + O::W <= n; i += O::W)
    O::store(y + i, softplus<O>(O::add(O::load(x + i), O::load(bias + i))));
  if (i < n) {
    const int r = int(n - i);
    O::store_part(y + i, softplus<O>(O::add(O::load_part(x + i, r), O::load_part(bias + i, r))), r);
  }
}

// y[i] *= silu(z[i])   (the output gate)
template <class O>
inline void mul_silu_array(const float* z, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + O::W <= n; i += O::W) O::store(y + i, O::mul(O::load(y + i), silu<O>(O::load(z + i))));
  if (i < n) {
    const int r = int(n - i);
    O::store_part(y + i, O::mul(O::load_part(y + i, r), silu<O>(O::load_part(z + i, r))), r);
  }
}

}  // namespace mamba::simd
