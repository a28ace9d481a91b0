#pragma once
// The packet interface (see ops_scalar.hpp) on AArch64 NEON: 4 floats.
#if defined(__ARM_NEON) && defined(__aarch64__)
#define MAMBA_SIMD_NEON 1
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace mamba::simd {

struct NeonOps {
  using F = float32x4_t;
  using I = int32x4_t;
  static constexpr int W = 4;
  static constexpr const char* name = "neon";

  static F zero() { return vdupq_n_f32(0.0f); }
  static F set1(float v) { return vdupq_n_f32(v); }
  static F load(const float* p) { return vld1q_f32(p); }
  static F load_part(const float* p, int n) {
    float b[4] = {};
    std::memcpy(b, p, static_cast<size_t>(n) * 4);
    return vld1q_f32(b);
  }
  static void store(float* p, F v) { vst1q_f32(p, v); }
  static void store_part(float* p, F v, int n) {
    float b[4];
    vst1q_f32(b, v);
    std::memcpy(p, b, static_cast<size_t>(n) * 4);
  }
  static uint16x4_t load_u16(const std::byte* p, int n) {
    uint16_t b[4] = {};
    std::memcpy(b, p, static_cast<size_t>(n) * 2);
    return vld1_u16(b);
  }
  static F load_f16(const std::byte* p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(load_u16(p, 4)));
  }
  static F load_f16_part(const std::byte* p, int n) {
    return vcvt_f32_f16(vreinterpret_f16_u16(load_u16(p, n)));
  }
  static F load_bf16(const std::byte* p) {
    return vreinterpretq_f32_u32(vshll_n_u16(load_u16(p, 4), 16));
  }
  static F load_bf16_part(const std::byte* p, int n) {
    return vreinterpretq_f32_u32(vshll_n_u16(load_u16(p, n), 16));
  }
  static I load_u8(const uint8_t* p) {
    uint8_t b[8] = {};
    std::memcpy(b, p, 4);
    return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(vld1_u8(b)))));
  }
  static I load_i8(const int8_t* p) {
    int8_t b[8] = {};
    std::memcpy(b, p, 4);
    return vmovl_s16(vget_low_s16(vmovl_s8(vld1_s8(b))));
  }
  static I iand(I a, int m) { return vandq_s32(a, vdupq_n_s32(m)); }
  static I ior(I a, I b) { return vorrq_s32(a, b); }
  static I isub(I a, int v) { return vsubq_s32(a, vdupq_n_s32(v)); }
  template <int S>
  static I ishr(I a) {
    if constexpr (S == 0) {
      return a;
    } else {
      return vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_s32(a), S));
    }
  }
  template <int S>
  static I ishl(I a) {
    return vshlq_n_s32(a, S);
  }
  static F to_float(I a) { return vcvtq_f32_s32(a); }

  static F add(F a, F b) { return vaddq_f32(a, b); }
  static F sub(F a, F b) { return vsubq_f32(a, b); }
  static F mul(F a, F b) { return vmulq_f32(a, b); }
  static F div(F a, F b) { return vdivq_f32(a, b); }
  static F fma(F a, F b, F c) { return vfmaq_f32(c, a, b); }
  static F min(F a, F b) { return vminq_f32(a, b); }
  static F max(F a, F b) { return vmaxq_f32(a, b); }
  static F abs(F a) { return vabsq_f32(a); }
  static F round(F a) { return vrndnq_f32(a); }
  // p * 2^n for p in [0.5, 2) and a normal result: n added to the exponent bits.
  static F scale2(F p, F n) {
    return vreinterpretq_f32_s32(
        vaddq_s32(vreinterpretq_s32_f32(p), vshlq_n_s32(vcvtq_s32_f32(n), 23)));
  }
  static F select_gt(F a, F b, F x, F y) { return vbslq_f32(vcgtq_f32(a, b), x, y); }
  static F select_eq(F a, F b, F x, F y) { return vbslq_f32(vceqq_f32(a, b), x, y); }
  static float reduce(F a) { return vaddvq_f32(a); }
};

}  // namespace mamba::simd
#endif
