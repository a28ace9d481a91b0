#pragma once
// Elementwise activations, templated on the compute scalar.
#include <cmath>

namespace mamba {

// silu(v) = v * sigmoid(v)
template <class T>
inline T silu(T v) {
  return v / (T(1) + std::exp(-v));
}

// softplus(v) = log(1 + exp(v)), and v itself above PyTorch's threshold of 20
template <class T>
inline T softplus(T v) {
  return v > T(20) ? v : std::log1p(std::exp(v));
}

}  // namespace mamba
