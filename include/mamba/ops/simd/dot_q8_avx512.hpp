#pragma once
// Integer dot products of block-quantized rows with an activation vector quantized to 8 bits
// (Q8_0 blocks for Q8_0/Q4_0 rows, Q8_K super-blocks for Q4_K/Q6_K rows), on AVX-512 VNNI:
// vpdpbusd multiplies 64 unsigned bytes by 64 signed bytes and adds each group of four into a
// 32-bit lane; vpmaddubsw + vpdpwssd do the same in pairs where a scale per 16 or 32 values
// follows (K-quants). The blocks are rearranged in registers by byte permutes (AVX-512 VBMI).
// Scalar twin: vec_dot_row_q8 in ops/quant.hpp.
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512VNNI__) && defined(__AVX512VBMI__)
#define MAMBA_SIMD_AVX512_VNNI 1
#include <immintrin.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mamba/ops/blocks.hpp"
#include "mamba/ops/dtype.hpp"
#include "mamba/ops/half.hpp"
#include "mamba/ops/quant.hpp"
#include "mamba/ops/simd/dot.hpp"

namespace mamba::simd::vnni {

using kernels::f16_at;
using kernels::prefetch_ahead;

// ---------------------------------------------------------------------------------------------
// The activations, quantized once per matrix-vector product, are packed into the layout the
// kernels read (pack_activation):
//   Q8_0 and Q4_0 rows: per pair of 32-value blocks (an odd last block paired with zeros),
//     kPairBytes bytes, 64-byte aligned:
//       int8_t  q[64]    the two blocks' quants
//       float   d[16]    the first block's scale in lanes 0-7, the second's in lanes 8-15
//                        (for Q4_0 over 16 in the lanes 4-7 and 12-15, which sum the high
//                        nibbles left in place: 16 times their value)
//       int32_t c[16]    -k times the sum of each block's quants, in lanes 0 and 8 (zero
//                        elsewhere): the dot products start from it. The weights' quants enter
//                        vpdpbusd unsigned: Q8_0's offset by 128 (k = 128), Q4_0's nibbles 0..15
//                        stand for -8..7 (k = 8).
//   Q4_K rows: the Q8_K super-blocks with the quants of each 128 reordered as the sub-blocks
//     0, 2, 1, 3 (the order in which a 64-byte load of Q4_K nibbles holds them).
//   Q6_K rows: the Q8_K super-blocks as they are.
inline constexpr int64_t kPairBytes = 192;

inline int64_t packed_bytes(DType t, int64_t n) {
  if (t == DType::Q8_0 || t == DType::Q4_0) return (n / 32 + 1) / 2 * kPairBytes;
  return activation_bytes(ActType::Q8_K, n);
}

// The sum of 32 signed bytes: |q + 128| summed by vpsadbw, less 32 x 128.
inline int32_t sum_i8(__m256i q) {
  const __m256i s =
      _mm256_sad_epu8(_mm256_xor_si256(q, _mm256_set1_epi8(char(0x80))), _mm256_setzero_si256());
  const __m128i h = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  return int32_t(_mm_cvtsi128_si64(_mm_add_epi64(h, _mm_unpackhi_epi64(h, h)))) - 32 * 128;
}

// out (packed_bytes(t, n), 64-byte aligned) = xq = quantize_activation(activation_type(t), x)
// in the kernels' layout; returns what to hand them (xq itself for the K-quants).
inline const std::byte* pack_activation(DType t, const std::byte* xq, int64_t n, std::byte* out) {
  if (t == DType::Q6_K) return xq;
  if (t == DType::Q4_K) {
    std::memcpy(out, xq, static_cast<size_t>(packed_bytes(t, n)));
    for (int64_t b = 0; b < n / kQK_K; ++b) {
      std::byte* qs = out + b * int64_t(sizeof(BlockQ8_K)) + 4;
      const std::byte* src = xq + b * int64_t(sizeof(BlockQ8_K)) + 4;
      for (int s = 0; s < 8; ++s)
        std::memcpy(qs + 32 * (s / 4 * 4 + s % 2 * 2 + s % 4 / 2), src + 32 * s, 32);
    }
    return out;
  }
  const int32_t k = t == DType::Q8_0 ? 128 : 8;
  std::memset(out, 0, static_cast<size_t>(packed_bytes(t, n)));
  for (int64_t b = 0; b < n / 32; ++b) {
    std::byte* p = out + b / 2 * kPairBytes;
    const int half = int(b % 2);
    const std::byte* blk = xq + b * 34;
    std::memcpy(p + 32 * half, blk + 2, 32);
    const float d = f16_at(blk);
    for (int l = 0; l < 8; ++l) {  // Q4_0: lanes 4-7 sum the high nibbles, times 16
      const float dl = t == DType::Q4_0 && l >= 4 ? d / 16 : d;
      std::memcpy(p + 64 + 4 * (8 * half + l), &dl, 4);
    }
    const int32_t c = -k * sum_i8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)));
    std::memcpy(p + 128 + 4 * (8 * half), &c, 4);
  }
  return out;
}

inline float reduce_add(__m512 a) {
  return _mm512_reduce_add_ps(a);
}
inline float reduce_add(__m256 a) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  return _mm_cvtss_f32(_mm_hadd_ps(_mm_hadd_ps(s, s), _mm_hadd_ps(s, s)));
}

// Byte indices that gather a pair of 32-value blocks into one register: the quants side by side
// (q) and each block's F16 scale repeated over 8 words (s). Q8_0: from two registers, the first
// holding the pair's bytes 0-63, the second its bytes 4-67 (vpermt2b: 64 + i is byte i of the
// second). Q4_0: from one register holding the pair at byte `offset`, every nibble byte twice (the
// first copy for the low nibbles, the second for the high ones).
template <DType T>
struct PairIndex {
  alignas(64) uint8_t q[64];
  alignas(64) uint8_t s[64];
  explicit constexpr PairIndex(int offset) : q{}, s{} {
    constexpr int wb = T == DType::Q8_0 ? 34 : 18;
    for (int j = 0; j < 64; ++j) {
      const int blk = j / 32, word = (j % 32) / 2;
      q[j] = uint8_t(T == DType::Q8_0 ? (j < 32 ? 2 + j : 64 + j) : offset + wb * blk + 2 + j % 16);
      s[j] = uint8_t(offset + wb * (word / 8) + j % 2);
    }
  }
};

// The integer dot products of a pair of blocks (as floats) and the scales they take.
struct Scaled {
  __m512 dot, scale;
};

// Q8_0 or Q4_0 rows against packed activations, a pair of blocks per 512-bit register, four
// blocks per step with plain loads inside the pairs' bytes, masked ones for the last blocks.
template <DType T>
inline float dot_blocks32(const std::byte* row, const std::byte* xp, int64_t n) {
  constexpr int64_t wb = T == DType::Q8_0 ? 34 : 18;
  const int64_t nb = n / 32;
  static constexpr PairIndex<T> kAt0{0}, kAt28{28};
  const __m512i bias = _mm512_set1_epi8(char(0x80));
  // Q4_0: the low nibbles from the first copy of each block's bytes, the high ones (times 16,
  // which the packed scales undo) from the second
  const __m512i nibbles = _mm512_mask_blend_epi8(0xFFFF0000FFFF0000ULL, _mm512_set1_epi8(0x0F),
                                                 _mm512_set1_epi8(char(0xF0)));
  auto pair = [&](const PairIndex<T>& idx, __m512i a, __m512i b, const std::byte* x) {
    const __m512i iq = _mm512_load_si512(idx.q), is = _mm512_load_si512(idx.s);
    __m512i q;
    if constexpr (T == DType::Q8_0)
      q = _mm512_xor_si512(_mm512_permutex2var_epi8(a, iq, b), bias);
    else
      q = _mm512_and_si512(_mm512_permutexvar_epi8(iq, a), nibbles);
    const __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi8(is, a)));
    const __m512i dot = _mm512_dpbusd_epi32(_mm512_load_si512(x + 128), q, _mm512_load_si512(x));
    return Scaled{_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, _mm512_load_ps(x + 64))};
  };
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 3 < nb; b += 4) {
    const std::byte* w = row + b * wb;
    const std::byte* x = xp + b / 2 * kPairBytes;
    prefetch_ahead(w, 4 * wb);
    Scaled p0, p1;
    if constexpr (T == DType::Q8_0) {
      p0 = pair(kAt0, _mm512_loadu_si512(w), _mm512_loadu_si512(w + 4), x);
      p1 = pair(kAt0, _mm512_loadu_si512(w + 68), _mm512_loadu_si512(w + 72), x + kPairBytes);
    } else {  // the second pair (bytes 36-71) at offset 28 of the bytes 8-71
      const __m512i none = _mm512_setzero_si512();
      p0 = pair(kAt0, _mm512_loadu_si512(w), none, x);
      p1 = pair(kAt28, _mm512_loadu_si512(w + 8), none, x + kPairBytes);
    }
    acc0 = _mm512_fmadd_ps(p0.dot, p0.scale, acc0);
    acc1 = _mm512_fmadd_ps(p1.dot, p1.scale, acc1);
  }
  for (; b < nb; b += 2) {
    const std::byte* w = row + b * wb;
    const bool both = b + 1 < nb;
    __m512i v0, v1 = _mm512_setzero_si512();
    if constexpr (T == DType::Q8_0) {
      v0 = both ? _mm512_loadu_si512(w) : _mm512_maskz_loadu_epi8((1ULL << 34) - 1, w);
      if (both) v1 = _mm512_loadu_si512(w + 4);
    } else {
      v0 = _mm512_maskz_loadu_epi8(both ? (1ULL << 36) - 1 : (1ULL << 18) - 1, w);
    }
    const Scaled p = pair(kAt0, v0, v1, xp + b / 2 * kPairBytes);
    acc0 = _mm512_fmadd_ps(p.dot, p.scale, acc0);
  }
  return reduce_add(_mm512_add_ps(acc0, acc1));
}

// Q4_K rows against Q8_K activations: per super-block
//   d dx sum_s sc[s] (q_s . x_s) - dmin dx sum_s m[s] (sum of x_s),
// q . x by vpmaddubsw (pairs, exact in 16 bits: 2 x 15 x 127) and the scale by vpdpwssd.
inline float dot_q4_k(const std::byte* row, const std::byte* xq, int64_t n) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  // the scales of the sub-blocks 0 and 2, 1 and 3, 4 and 6, 5 and 7, each over 16 words
  alignas(64) static constexpr auto kIdx = [] {
    std::array<std::array<uint16_t, 32>, 4> t{};
    for (int k = 0; k < 4; ++k)
      for (int w = 0; w < 32; ++w) t[k][w] = uint16_t(k / 2 * 4 + k % 2 + 2 * (w / 16));
    return t;
  }();
  // each min twice: it multiplies the sums of two groups of 16
  const __m256i imin = _mm256_setr_epi16(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  __m512 acc = _mm512_setzero_ps();
  __m256 macc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const std::byte* w = row + b * int64_t(sizeof(BlockQ4_K));
    const std::byte* x = xq + b * int64_t(sizeof(BlockQ8_K));
    prefetch_ahead(w, sizeof(BlockQ4_K));
    // the 6-bit scales and mins (q4k_scale_min), four at a time
    uint32_t u[3];
    std::memcpy(u, w + 4, 12);
    const uint32_t sc_lo = u[0] & 0x3F3F3F3F, m_lo = u[1] & 0x3F3F3F3F;
    const uint32_t sc_hi = (u[2] & 0x0F0F0F0F) | ((u[0] >> 2) & 0x30303030);
    const uint32_t m_hi = ((u[2] >> 4) & 0x0F0F0F0F) | ((u[1] >> 2) & 0x30303030);
    const __m512i sc =
        _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_set_epi32(0, 0, int(sc_hi), int(sc_lo))));
    const __m256i mins = _mm256_permutexvar_epi16(
        imin, _mm256_castsi128_si256(_mm_cvtepu8_epi16(_mm_set_epi32(0, 0, int(m_hi), int(m_lo)))));
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 4 + kQK_K));
    __m512i isum = _mm512_setzero_si512();
    for (int p = 0; p < 2; ++p) {  // 64 bytes of nibbles: sub-blocks 4p .. 4p + 3
      const __m512i v = _mm512_loadu_si512(w + 16 + 64 * p);
      const __m512i q0 = _mm512_and_si512(v, low4);                        // 4p, 4p + 2
      const __m512i q1 = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);  // 4p + 1, 4p + 3
      const std::byte* xs = x + 4 + 128 * p;  // (packed in the same order)
      isum =
          _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(q0, _mm512_loadu_si512(xs)),
                              _mm512_permutexvar_epi16(_mm512_load_si512(kIdx[2 * p].data()), sc));
      isum = _mm512_dpwssd_epi32(
          isum, _mm512_maddubs_epi16(q1, _mm512_loadu_si512(xs + 64)),
          _mm512_permutexvar_epi16(_mm512_load_si512(kIdx[2 * p + 1].data()), sc));
    }
    float dx;
    std::memcpy(&dx, x, 4);
    acc = _mm512_fmadd_ps(_mm512_set1_ps(dx * f16_at(w)), _mm512_cvtepi32_ps(isum), acc);
    macc = _mm256_fmadd_ps(_mm256_set1_ps(dx * f16_at(w + 2)),
                           _mm256_cvtepi32_ps(_mm256_madd_epi16(bsums, mins)), macc);
  }
  return reduce_add(acc) - reduce_add(macc);
}

// Q6_K rows against Q8_K activations: d dx sum_s sc[s] (q_s . x_s - 32 (sum of x_s)), q the
// unsigned 6-bit values (q . x exact in 16 bits: 2 x 63 x 127).
inline float dot_q6_k(const std::byte* row, const std::byte* xq, int64_t n) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
  // words of the value groups 0-63 (a) and 64-127 (b) of a half: 8 words per scale
  alignas(64) static constexpr auto kIdx = [] {
    std::array<std::array<uint16_t, 32>, 4> t{};
    for (int k = 0; k < 4; ++k)
      for (int w = 0; w < 32; ++w) t[k][w] = uint16_t(4 * k + w / 8);
    return t;
  }();
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const std::byte* w = row + b * int64_t(sizeof(BlockQ6_K));
    const std::byte* x = xq + b * int64_t(sizeof(BlockQ8_K));
    prefetch_ahead(w, sizeof(BlockQ6_K));
    const __m256i sc16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192)));
    const __m512i sc = _mm512_castsi256_si512(sc16);
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 4 + kQK_K));
    __m512i isum = _mm512_setzero_si512();
    for (int half = 0; half < 2; ++half) {
      const __m512i L = _mm512_loadu_si512(w + 64 * half);
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 128 + 32 * half));
      // high bit pairs: values 0-31 in bits 0-1 of h, 32-63 in 2-3, 64-95 in 4-5, 96-127 in 6-7
      const __m512i h01 = _mm512_inserti64x4(_mm512_castsi256_si512(h), _mm256_srli_epi16(h, 2), 1);
      // (a & b) | c: the low nibble and the high pair at bits 4-5
      const __m512i qa = _mm512_ternarylogic_epi64(
          L, low4, _mm512_and_si512(_mm512_slli_epi16(h01, 4), bits45), 0xEA);
      const __m512i qb = _mm512_ternarylogic_epi64(_mm512_srli_epi16(L, 4), low4,
                                                   _mm512_and_si512(h01, bits45), 0xEA);
      const std::byte* xs = x + 4 + 128 * half;
      isum = _mm512_dpwssd_epi32(
          isum, _mm512_maddubs_epi16(qa, _mm512_loadu_si512(xs)),
          _mm512_permutexvar_epi16(_mm512_load_si512(kIdx[2 * half].data()), sc));
      isum = _mm512_dpwssd_epi32(
          isum, _mm512_maddubs_epi16(qb, _mm512_loadu_si512(xs + 64)),
          _mm512_permutexvar_epi16(_mm512_load_si512(kIdx[2 * half + 1].data()), sc));
    }
    // minus 32 sum_s sc[s] (sum of x_s), the centring of the quants
    const __m256i centre = _mm256_slli_epi32(_mm256_madd_epi16(bsums, sc16), 5);
    isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(centre));
    float dx;
    std::memcpy(&dx, x, 4);
    acc = _mm512_fmadd_ps(_mm512_set1_ps(dx * f16_at(w + 208)), _mm512_cvtepi32_ps(isum), acc);
  }
  return reduce_add(acc);
}

// row . x for packed activations (pack_activation): Q8_0, Q4_0, Q4_K, Q6_K rows.
inline float dot_row_packed(DType t, const std::byte* row, const std::byte* xp, int64_t n) {
  switch (t) {
    case DType::Q8_0:
      return dot_blocks32<DType::Q8_0>(row, xp, n);
    case DType::Q4_0:
      return dot_blocks32<DType::Q4_0>(row, xp, n);
    case DType::Q4_K:
      return dot_q4_k(row, xp, n);
    case DType::Q6_K:
      return dot_q6_k(row, xp, n);
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
        bsums[j / 16] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
      }
      std::memcpy(out + 4 + kQK_K, bsums, sizeof(bsums));
    }
    return;
  }
  std::memcpy(dst, x, static_cast<size_t>(n) * 4);
}

}  // namespace mamba::simd::vnni
#endif
