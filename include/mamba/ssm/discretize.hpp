#pragma once
// Zero-order-hold discretization of dh/dt = A h + B x over a step dt, for a diagonal A
// (one scalar a per channel and state):
//   exact ZOH:       Abar = exp(dt*a),  Bbar = (exp(dt*a) - 1) / a * b
//   Mamba's form:    Abar = exp(dt*a),  Bbar = dt * b      (what the checkpoints were trained with)
// The two agree to first order as dt*a -> 0: (exp(dt*a) - 1) / a = dt (1 + dt*a/2 + ...).
#include <cmath>

namespace mamba {

template <class T>
struct Discretized {
  T A_bar;
  T B_bar;
};

template <class T>
inline Discretized<T> zoh_exact(T dt, T a, T b) {
  // expm1 keeps full precision when dt*a is small; a == 0 is the limit dt*b.
  const T B_bar = a == T(0) ? dt * b : std::expm1(dt * a) / a * b;
  return {std::exp(dt * a), B_bar};
}

template <class T>
inline Discretized<T> zoh_simplified(T dt, T a, T b) {
  return {std::exp(dt * a), dt * b};
}

}  // namespace mamba
