#pragma once
// RMSNorm: y = x / sqrt(mean(x^2) + eps) * w   (w may be null: Falcon-Mamba's weightless norm)
#include <cmath>
#include <cstdint>

namespace mamba {

template <class T>
inline void rmsnorm(const T* x, const T* w, T* y, int64_t n, double eps) {
  T sum_sq = 0;
  for (int64_t i = 0; i < n; ++i) sum_sq += x[i] * x[i];
  const T scale = T(1) / std::sqrt(sum_sq / T(n) + T(eps));
  if (w) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;
  }
}

}  // namespace mamba
