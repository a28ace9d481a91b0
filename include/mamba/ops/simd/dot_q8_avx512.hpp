#pragma once
// Integer dot products of block-quantized rows with an activation vector quantized to 8 bits
// (Q8_0 blocks for Q8_0/Q4_0 rows, Q8_K super-blocks for Q4_K/Q6_K rows), on AVX-512 VNNI:
// vpdpbusd multiplies 64 unsigned bytes by 64 signed bytes and adds each group of four into a
// 32-bit lane. Scalar twin: vec_dot_row_q8 in ops/quant.hpp.
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512VNNI__)
#define MAMBA_SIMD_AVX512_VNNI 1
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mamba/ops/blocks.hpp"
#include "mamba/ops/dtype.hpp"
#include "mamba/ops/half.hpp"
#include "mamba/ops/quant.hpp"

namespace mamba::simd::vnni {

inline float f16(const std::byte* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline __m512i load2x256(const std::byte* a, const std::byte* b) {
  return _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a))),
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)), 1);
}

// sum of u8 a * s8 b, four bytes per 32-bit lane
inline __m512i dot_u8s8(__m512i a, __m512i b) {
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), a, b);
}

// The lanes 0-7 scaled by s0, lanes 8-15 by s1.
inline __m512 two_scales(float s0, float s1) {
  return _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(s0), _mm512_set1_ps(s1));
}

// Q8_0 or Q4_0 rows (32-value blocks) against Q8_0 activations; two blocks per register.
template <DType T>
inline float dot_blocks32(const std::byte* row, const std::byte* xq, int64_t n) {
  constexpr int64_t wb = T == DType::Q8_0 ? 34 : 18, xb = 34;
  const int64_t nb = n / 32;
  __m512 acc = _mm512_setzero_ps();
  const __m512i eight = _mm512_set1_epi8(8), low4 = _mm512_set1_epi8(0x0F);
  auto pair = [&](const std::byte* w0, const std::byte* w1, const std::byte* x0,
                  const std::byte* x1) {
    const __m512i x = load2x256(x0 + 2, x1 + 2);
    __m512i d;
    if constexpr (T == DType::Q8_0) {
      const __m512i w = load2x256(w0 + 2, w1 + 2);
      // signed x signed: |w| (unsigned) times x with w's sign
      const __m512i xs = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x);
      d = dot_u8s8(_mm512_abs_epi8(w), xs);
    } else {
      // 16 bytes per block: low nibbles are values 0-15, high nibbles 16-31
      const __m256i v = _mm256_inserti128_si256(
          _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w0 + 2))),
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(w1 + 2)), 1);
      const __m512i lh = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
      // [lo0 lo1 hi0 hi1] -> [lo0 hi0 lo1 hi1]
      const __m512i q =
          _mm512_and_si512(_mm512_shuffle_i64x2(lh, lh, _MM_SHUFFLE(3, 1, 2, 0)), low4);
      d = _mm512_sub_epi32(dot_u8s8(q, x), dot_u8s8(eight, x));  // sum (q - 8) x
    }
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), two_scales(f16(w0) * f16(x0), f16(w1) * f16(x1)),
                          acc);
  };
  int64_t b = 0;
  for (; b + 1 < nb; b += 2) pair(row + b * wb, row + (b + 1) * wb, xq + b * xb, xq + (b + 1) * xb);
  float sum = 0.0f;
  if (b < nb) {  // a last odd block: pair it with itself and keep half
    const __m512 before = acc;
    pair(row + b * wb, row + b * wb, xq + b * xb, xq + b * xb);
    acc = _mm512_mask_mov_ps(acc, 0xFF00, before);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc);
  for (float v : lanes) sum += v;
  return sum;
}

// Q4_K rows against Q8_K activations.
inline float dot_q4_k(const std::byte* row, const std::byte* xq, int64_t n) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc = _mm512_setzero_ps();
  float mins = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const std::byte* w = row + b * int64_t(sizeof(BlockQ4_K));
    const std::byte* x = xq + b * int64_t(sizeof(BlockQ8_K));
    float dx;
    std::memcpy(&dx, x, 4);
    const auto* xs = x + 4;
    int16_t bsums[16];
    std::memcpy(bsums, x + 4 + 256, 32);
    uint8_t sc[8], m[8];
    for (int s = 0; s < 8; ++s)
      q4k_scale_min(s, reinterpret_cast<const uint8_t*>(w + 4), sc[s], m[s]);
    int32_t smin = 0;
    for (int s = 0; s < 8; ++s) smin += m[s] * (bsums[2 * s] + bsums[2 * s + 1]);
    __m512i isum = _mm512_setzero_si512();
    for (int p = 0; p < 2; ++p) {  // 64 bytes of nibbles: sub-blocks 4p .. 4p+3
      const __m512i v = _mm512_loadu_si512(w + 16 + 64 * p);
      const __m512i lo = _mm512_and_si512(v, low4);                        // 4p, 4p+2
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);  // 4p+1, 4p+3
      const __m512i xlo = load2x256(xs + 32 * (4 * p), xs + 32 * (4 * p + 2));
      const __m512i xhi = load2x256(xs + 32 * (4 * p + 1), xs + 32 * (4 * p + 3));
      const __m512i slo = _mm512_mask_blend_epi32(0xFF00, _mm512_set1_epi32(sc[4 * p]),
                                                  _mm512_set1_epi32(sc[4 * p + 2]));
      const __m512i shi = _mm512_mask_blend_epi32(0xFF00, _mm512_set1_epi32(sc[4 * p + 1]),
                                                  _mm512_set1_epi32(sc[4 * p + 3]));
      isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(dot_u8s8(lo, xlo), slo));
      isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(dot_u8s8(hi, xhi), shi));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(dx * f16(w)), _mm512_cvtepi32_ps(isum), acc);
    mins += dx * f16(w + 2) * static_cast<float>(smin);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc);
  float sum = 0.0f;
  for (float v : lanes) sum += v;
  return sum - mins;
}

// Q6_K rows against Q8_K activations: sum_s sc[s] (q - 32) . x = sum_s sc[s] (q . x - 32 bsum_s)
inline float dot_q6_k(const std::byte* row, const std::byte* xq, int64_t n) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), two = _mm512_set1_epi8(3);
  // each scale byte repeated for the four lanes of its 16 values
  const __m128i spread = _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const std::byte* w = row + b * int64_t(sizeof(BlockQ6_K));
    const std::byte* x = xq + b * int64_t(sizeof(BlockQ8_K));
    float dx;
    std::memcpy(&dx, x, 4);
    const auto* xs = x + 4;
    int16_t bsums[16];
    std::memcpy(bsums, x + 4 + 256, 32);
    const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
    int32_t sb = 0;
    for (int s = 0; s < 16; ++s) sb += sc[s] * bsums[s];
    __m512i isum = _mm512_setzero_si512();
    for (int half = 0; half < 2; ++half) {
      const __m512i L = _mm512_loadu_si512(w + 64 * half);
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 128 + 32 * half));
      // high bits for values 0-63: [qh & 3 | (qh >> 2) & 3], for 64-127: [(qh >> 4) & 3 | qh >> 6]
      const __m512i h01 = _mm512_inserti64x4(_mm512_castsi256_si512(h), _mm256_srli_epi16(h, 2), 1);
      const __m512i h23 = _mm512_srli_epi16(h01, 4);
      const __m512i qa = _mm512_or_si512(_mm512_and_si512(L, low4),
                                         _mm512_slli_epi16(_mm512_and_si512(h01, two), 4));
      const __m512i qb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(L, 4), low4),
                                         _mm512_slli_epi16(_mm512_and_si512(h23, two), 4));
      const auto* xh = xs + 128 * half;
      // the 8 scales of this half: exactly 8 bytes (a 16-byte load would run past the block)
      const __m128i s8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc + 8 * half));
      const __m512i sa = _mm512_cvtepi8_epi32(_mm_shuffle_epi8(s8, spread));
      const __m512i sbv =
          _mm512_cvtepi8_epi32(_mm_shuffle_epi8(s8, _mm_add_epi8(spread, _mm_set1_epi8(4))));
      isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(dot_u8s8(qa, _mm512_loadu_si512(xh)), sa));
      isum = _mm512_add_epi32(isum,
                              _mm512_mullo_epi32(dot_u8s8(qb, _mm512_loadu_si512(xh + 64)), sbv));
    }
    isum = _mm512_sub_epi32(isum, _mm512_maskz_mov_epi32(1, _mm512_set1_epi32(32 * sb)));
    acc = _mm512_fmadd_ps(_mm512_set1_ps(dx * f16(w + 208)), _mm512_cvtepi32_ps(isum), acc);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc);
  float sum = 0.0f;
  for (float v : lanes) sum += v;
  return sum;
}

// row . x with xq = quantize_activation(activation_type(t), x): Q8_0, Q4_0, Q4_K, Q6_K rows.
inline float dot_row_q8(DType t, const std::byte* row, const std::byte* xq, int64_t n) {
  switch (t) {
    case DType::Q8_0:
      return dot_blocks32<DType::Q8_0>(row, xq, n);
    case DType::Q4_0:
      return dot_blocks32<DType::Q4_0>(row, xq, n);
    case DType::Q4_K:
      return dot_q4_k(row, xq, n);
    case DType::Q6_K:
      return dot_q6_k(row, xq, n);
    default:
      return 0.0f;
  }
}

inline float reduce_max(__m512 a) {
  a = _mm512_max_ps(a, _mm512_maskz_shuffle_f32x4(0xFFFF, a, a, _MM_SHUFFLE(1, 0, 3, 2)));
  a = _mm512_max_ps(a, _mm512_maskz_shuffle_f32x4(0xFFFF, a, a, _MM_SHUFFLE(2, 3, 0, 1)));
  __m128 s = _mm512_maskz_extractf32x4_ps(0xF, a, 0);
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// std::round (halves away from zero) of 16 floats, exactly: trunc, plus one where the dropped
// fraction is at least a half.
inline __m512i round_away(__m512 t) {
  const __m512 a = _mm512_abs_ps(t);
  const __m512 r = _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __mmask16 up = _mm512_cmp_ps_mask(_mm512_sub_ps(a, r), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512 m = _mm512_mask_add_ps(r, up, r, _mm512_set1_ps(1.0f));
  const __mmask16 neg = _mm512_cmp_ps_mask(t, _mm512_setzero_ps(), _CMP_LT_OQ);
  return _mm512_cvttps_epi32(_mm512_mask_sub_ps(m, neg, _mm512_setzero_ps(), m));
}

// quantize_activation (ops/quant.hpp), the same bytes: Q8_0 blocks or Q8_K super-blocks.
inline void quantize_activation(ActType a, const float* x, std::byte* dst, int64_t n) {
  if (a == ActType::Q8_0) {
    for (int64_t b = 0; b < n / 32; ++b, x += 32) {
      const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
      const float amax = reduce_max(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
      const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
      std::byte* out = dst + b * 34;
      const uint16_t dh = f32_to_f16(d);
      std::memcpy(out, &dh, 2);
      const __m512 vid = _mm512_set1_ps(id);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2),
                       _mm512_cvtepi32_epi8(round_away(_mm512_mul_ps(v0, vid))));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 18),
                       _mm512_cvtepi32_epi8(round_away(_mm512_mul_ps(v1, vid))));
    }
    return;
  }
  if (a == ActType::Q8_K) {
    for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
      std::byte* out = dst + b * int64_t(sizeof(BlockQ8_K));
      __m512 m = _mm512_setzero_ps();
      for (int j = 0; j < kQK_K; j += 16)
        m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
      const float amax = reduce_max(m);
      if (amax == 0.0f) {
        std::memset(out, 0, sizeof(BlockQ8_K));
        continue;
      }
      const float id = 127.0f / amax, d = 1.0f / id;
      std::memcpy(out, &d, 4);
      int16_t bsums[16];
      for (int j = 0; j < kQK_K; j += 16) {
        __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + j), _mm512_set1_ps(id)));
        q = _mm512_min_epi32(_mm512_max_epi32(q, _mm512_set1_epi32(-127)), _mm512_set1_epi32(127));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 4 + j), _mm512_cvtepi32_epi8(q));
        alignas(64) int32_t lanes[16];
        _mm512_store_si512(lanes, q);
        int32_t sum = 0;
        for (int32_t v : lanes) sum += v;
        bsums[j / 16] = static_cast<int16_t>(sum);
      }
      std::memcpy(out + 4 + kQK_K, bsums, sizeof(bsums));
    }
    return;
  }
  std::memcpy(dst, x, static_cast<size_t>(n) * 4);
}

}  // namespace mamba::simd::vnni
#endif
