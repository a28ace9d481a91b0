#pragma once
// The packet interface (see ops_scalar.hpp) on AVX2 with FMA and F16C: 8 floats.
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define MAMBA_SIMD_AVX2 1
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace mamba::simd {

struct Avx2Ops {
  using F = __m256;
  using I = __m256i;
  static constexpr int W = 8;
  static constexpr const char* name = "avx2";

  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static __m256i part_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static F load_part(const float* p, int n) { return _mm256_maskload_ps(p, part_mask(n)); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static void store_part(float* p, F v, int n) { _mm256_maskstore_ps(p, part_mask(n), v); }
  static F load_f16(const std::byte* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static __m128i load_u16_part(const std::byte* p, int n) {
    alignas(16) uint16_t buf[8] = {};
    std::memcpy(buf, p, static_cast<size_t>(n) * 2);
    return _mm_load_si128(reinterpret_cast<const __m128i*>(buf));
  }
  static F load_f16_part(const std::byte* p, int n) { return _mm256_cvtph_ps(load_u16_part(p, n)); }
  static F bf16_bits(__m128i h) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static F load_bf16(const std::byte* p) {
    return bf16_bits(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static F load_bf16_part(const std::byte* p, int n) { return bf16_bits(load_u16_part(p, n)); }
  static I load_u8(const uint8_t* p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static I load_i8(const int8_t* p) {
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static I iand(I a, int m) { return _mm256_and_si256(a, _mm256_set1_epi32(m)); }
  static I ior(I a, I b) { return _mm256_or_si256(a, b); }
  static I isub(I a, int v) { return _mm256_sub_epi32(a, _mm256_set1_epi32(v)); }
  template <int S>
  static I ishr(I a) {
    return _mm256_srli_epi32(a, S);
  }
  template <int S>
  static I ishl(I a) {
    return _mm256_slli_epi32(a, S);
  }
  static F to_float(I a) { return _mm256_cvtepi32_ps(a); }

  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F abs(F a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static F round(F a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // p * 2^n for p in [0.5, 2) and a normal result: n added to the exponent bits.
  static F scale2(F p, F n) {
    const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
  }
  static F select_gt(F a, F b, F x, F y) {
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_GT_OQ));
  }
  static F select_eq(F a, F b, F x, F y) {
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_EQ_OQ));
  }
  // r[i] = sum of the lanes of a[i], for 8 registers at once: a transposing tree of unpacks and
  // adds (vhaddps and vphaddd take four unpacks' throughput on Zen 3), each register's lanes added
  // as ((0 + 2) + (1 + 3)) + ((4 + 6) + (5 + 7)). Float lanes, or int32 (add_epi32).
  template <class Add>
  static I transpose_sum8(const I* a, Add add) {
    auto pair = [&](I x, I y) {  // per 128-bit half: x0+x2, y0+y2, x1+x3, y1+y3
      return add(_mm256_unpacklo_epi32(x, y), _mm256_unpackhi_epi32(x, y));
    };
    auto quad = [&](I x, I y) {  // per 128-bit half: x's two registers' sums, then y's
      return add(_mm256_unpacklo_epi64(x, y), _mm256_unpackhi_epi64(x, y));
    };
    const I lo = quad(pair(a[0], a[1]), pair(a[2], a[3]));
    const I hi = quad(pair(a[4], a[5]), pair(a[6], a[7]));
    return add(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31));
  }
  static F reduce8(const F* a) {
    I bits[8];
    for (int k = 0; k < 8; ++k) bits[k] = _mm256_castps_si256(a[k]);
    return _mm256_castsi256_ps(transpose_sum8(bits, [](I x, I y) {
      return _mm256_castps_si256(_mm256_add_ps(_mm256_castsi256_ps(x), _mm256_castsi256_ps(y)));
    }));
  }
  static I reduce8(const I* a) {
    return transpose_sum8(a, [](I x, I y) { return _mm256_add_epi32(x, y); });
  }
  static float reduce(F a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

}  // namespace mamba::simd
#endif
