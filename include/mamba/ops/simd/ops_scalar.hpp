#pragma once
// The packet interface every kernel in ops/simd/ is written against, for one lane: the scalar
// fallback, and the model the vector versions (ops_avx512.hpp, ops_avx2.hpp, ops_neon.hpp)
// follow. F holds W floats, I holds W 32-bit integers.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mamba/ops/half.hpp"

namespace mamba::simd {

struct ScalarOps {
  using F = float;
  using I = int32_t;
  static constexpr int W = 1;
  static constexpr const char* name = "scalar";

  static F zero() { return 0.0f; }
  static F set1(float v) { return v; }
  static F load(const float* p) { return *p; }
  static F load_part(const float* p, int n) { return n > 0 ? *p : 0.0f; }
  static void store(float* p, F v) { *p = v; }
  static void store_part(float* p, F v, int n) {
    if (n > 0) *p = v;
  }
  static F load_f16(const std::byte* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return f16_to_f32(h);
  }
  static F load_f16_part(const std::byte* p, int n) { return n > 0 ? load_f16(p) : 0.0f; }
  static F load_bf16(const std::byte* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return bf16_to_f32(h);
  }
  static F load_bf16_part(const std::byte* p, int n) { return n > 0 ? load_bf16(p) : 0.0f; }
  static I load_u8(const uint8_t* p) { return *p; }
  static I load_i8(const int8_t* p) { return *p; }
  static I iand(I a, int m) { return a & m; }
  static I ior(I a, I b) { return a | b; }
  static I isub(I a, int v) { return a - v; }
  template <int S>
  static I ishr(I a) {
    return static_cast<I>(static_cast<uint32_t>(a) >> S);
  }
  template <int S>
  static I ishl(I a) {
    return static_cast<I>(static_cast<uint32_t>(a) << S);
  }
  static F to_float(I a) { return static_cast<float>(a); }

  static F add(F a, F b) { return a + b; }
  static F sub(F a, F b) { return a - b; }
  static F mul(F a, F b) { return a * b; }
  static F div(F a, F b) { return a / b; }
  static F fma(F a, F b, F c) { return a * b + c; }  // a*b + c
  static F min(F a, F b) { return a < b ? a : b; }
  static F max(F a, F b) { return a > b ? a : b; }
  static F abs(F a) { return std::fabs(a); }
  static F round(F a) { return std::nearbyint(a); }
  static F scale2(F p, F n) { return std::ldexp(p, static_cast<int>(n)); }  // p * 2^n
  static F select_gt(F a, F b, F x, F y) { return a > b ? x : y; }          // a > b ? x : y
  static F select_eq(F a, F b, F x, F y) { return a == b ? x : y; }         // a == b ? x : y
  static float reduce(F a) { return a; }
  static F exp(F a) { return std::exp(a); }
};

}  // namespace mamba::simd
