#pragma once
// The packet interface (see ops_scalar.hpp) on AVX-512 (F, BW, VL): 16 floats.
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define MAMBA_SIMD_AVX512 1
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace mamba::simd {

struct Avx512Ops {
  using F = __m512;
  using I = __m512i;
  static constexpr int W = 16;
  static constexpr const char* name = "avx512";

  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static F load_part(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static void store_part(float* p, F v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static F load_f16(const std::byte* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static F load_f16_part(const std::byte* p, int n) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask(n), p));
  }
  static F bf16_bits(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static F load_bf16(const std::byte* p) {
    return bf16_bits(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static F load_bf16_part(const std::byte* p, int n) {
    return bf16_bits(_mm256_maskz_loadu_epi16(mask(n), p));
  }
  static I load_u8(const uint8_t* p) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static I load_i8(const int8_t* p) {
    return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static I iand(I a, int m) { return _mm512_and_si512(a, _mm512_set1_epi32(m)); }
  static I ior(I a, I b) { return _mm512_or_si512(a, b); }
  static I isub(I a, int v) { return _mm512_sub_epi32(a, _mm512_set1_epi32(v)); }
  template <int S>
  static I ishr(I a) {
    return _mm512_srli_epi32(a, S);
  }
  template <int S>
  static I ishl(I a) {
    return _mm512_slli_epi32(a, S);
  }
  static F to_float(I a) { return _mm512_cvtepi32_ps(a); }

  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  // (the maskz forms, all lanes kept: GCC 12 warns falsely inside the unmasked ones, bug 105593)
  static F min(F a, F b) { return _mm512_maskz_min_ps(0xFFFF, a, b); }
  static F max(F a, F b) { return _mm512_maskz_max_ps(0xFFFF, a, b); }
  static F abs(F a) { return _mm512_abs_ps(a); }
  static F round(F a) {
    return _mm512_maskz_roundscale_ps(0xFFFF, a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static F scale2(F p, F n) { return _mm512_maskz_scalef_ps(0xFFFF, p, n); }
  // p * 2^n in every lane where a < b is false (a NaN included), 0 elsewhere: scalef rounds, so
  // a result past the float range is infinity (exp uses this to skip its selects)
  static F scale2_unless_lt(F p, F n, F a, F b) {
    return _mm512_maskz_scalef_ps(_mm512_cmp_ps_mask(a, b, _CMP_NLT_UQ), p, n);
  }
  static F select_gt(F a, F b, F x, F y) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_GT_OQ), y, x);
  }
  static F select_eq(F a, F b, F x, F y) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ), y, x);
  }
  // r[i] = sum of the lanes of a[i], for 16 registers at once (a transposing tree of adds: about
  // 3 instructions per register instead of 8 for reduce). The maskz forms avoid GCC 12's false
  // uninitialized warnings inside the unmasked intrinsics (bug 105593).
  static F reduce16(const F* a) {
    constexpr __mmask16 all = 0xFFFF;
    F p[8], q[4];
    for (int i = 0; i < 8; ++i)  // per 128-bit lane: [a0 02, a1 02, a0 13, a1 13]
      p[i] = _mm512_add_ps(_mm512_maskz_unpacklo_ps(all, a[2 * i], a[2 * i + 1]),
                           _mm512_maskz_unpackhi_ps(all, a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; ++i) {  // per 128-bit lane: the lane sums of a[4i .. 4i+3]
      const __m512d x = _mm512_castps_pd(p[2 * i]), y = _mm512_castps_pd(p[2 * i + 1]);
      q[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_maskz_unpacklo_pd(0xFF, x, y)),
                           _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(0xFF, x, y)));
    }
    auto fold = [](F x, F y) {  // [x.L0+x.L1, x.L2+x.L3, y.L0+y.L1, y.L2+y.L3]
      return _mm512_add_ps(_mm512_maskz_shuffle_f32x4(all, x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                           _mm512_maskz_shuffle_f32x4(all, x, y, _MM_SHUFFLE(3, 1, 3, 1)));
    };
    return fold(fold(q[0], q[1]), fold(q[2], q[3]));
  }

  // (not _mm512_reduce_add_ps nor the unmasked shuffles: GCC 12 warns inside them, bug 105593)
  static float reduce(F a) {
    a = _mm512_add_ps(a, _mm512_maskz_shuffle_f32x4(0xFFFF, a, a, _MM_SHUFFLE(1, 0, 3, 2)));
    a = _mm512_add_ps(a, _mm512_maskz_shuffle_f32x4(0xFFFF, a, a, _MM_SHUFFLE(2, 3, 0, 1)));
    __m128 s = _mm512_maskz_extractf32x4_ps(0xF, a, 0);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

}  // namespace mamba::simd
#endif
