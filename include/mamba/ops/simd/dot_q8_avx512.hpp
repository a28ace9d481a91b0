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

#include <algorithm>
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
//   Q8_0 rows: per pair of 32-value blocks (an odd last block paired with zeros), kPairBytes
//     bytes, 64-byte aligned:
//       int8_t  q[64]    the two blocks' quants
//       float   d[16]    the first block's scale in lanes 0-7, the second's in lanes 8-15
//       int32_t c[16]    -128 times the sum of each block's quants, in lanes 0 and 8 (zero
//                        elsewhere): the dot products start from it, undoing the offset of 128
//                        with which the weights' quants enter vpdpbusd (unsigned).
//   Q4_0 rows: per quad of 32-value blocks (the last quad padded with zeros), kQuadBytes bytes,
//     64-byte aligned:
//       int8_t  lo[64]   the first 16 quants of each block (block j at 16 j): they meet the low
//                        nibbles
//       int8_t  hi[64]   the last 16 of each block: they meet the high nibbles
//       float   d[16]    block j's scale in lanes 4j .. 4j + 3
//       int32_t c[16]    -8 times the sum of block j's quants in lane 4j (zero elsewhere): the
//                        nibbles 0..15 stand for -8..7
//   Q4_K rows: per Q8_K super-block of 256 values, kSuperBytes bytes, 64-byte aligned:
//       int8_t  q[256]   the quants, those of each 128 reordered as the sub-blocks 0, 2, 1, 3 (the
//                        order in which a 64-byte load of Q4_K nibbles holds them)
//       int16_t xs[32]   the sums of the 8 sub-blocks' quants, repeated in each 128-bit lane (one
//                        lane per weight row: they meet the rows' mins)
//       float   d[16]    the super-block's scale, repeated
//   Q6_K rows: the Q8_K super-blocks as they are.
inline constexpr int64_t kPairBytes = 192, kQuadBytes = 256, kSuperBytes = 384;

inline int64_t packed_bytes(DType t, int64_t n) {
  if (t == DType::Q8_0) return (n / 32 + 1) / 2 * kPairBytes;
  if (t == DType::Q4_0) return (n / 32 + 3) / 4 * kQuadBytes;
  if (t == DType::Q4_K) return n / kQK_K * kSuperBytes;
  return activation_bytes(ActType::Q8_K, n);
}

// The sum of 32 signed bytes: the bytes q + 128 (as unsigned) summed by vpsadbw, less 32 x 128.
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
    for (int64_t b = 0; b < n / kQK_K; ++b) {
      std::byte* p = out + b * kSuperBytes;
      const std::byte* src = xq + b * int64_t(sizeof(BlockQ8_K));
      for (int s = 0; s < 8; ++s)
        std::memcpy(p + 32 * (s / 4 * 4 + s % 2 * 2 + s % 4 / 2), src + 4 + 32 * s, 32);
      int16_t bsums[16], xs[32];
      std::memcpy(bsums, src + 4 + kQK_K, sizeof(bsums));
      for (int j = 0; j < 32; ++j) xs[j] = int16_t(bsums[2 * (j % 8)] + bsums[2 * (j % 8) + 1]);
      std::memcpy(p + kQK_K, xs, sizeof(xs));
      float d;
      std::memcpy(&d, src, 4);
      for (int l = 0; l < 16; ++l) std::memcpy(p + kQK_K + 64 + 4 * l, &d, 4);
    }
    return out;
  }
  std::memset(out, 0, static_cast<size_t>(packed_bytes(t, n)));
  for (int64_t b = 0; b < n / 32; ++b) {
    const std::byte* blk = xq + b * 34;
    const float d = f16_at(blk);
    const int32_t sum = sum_i8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)));
    if (t == DType::Q8_0) {
      std::byte* p = out + b / 2 * kPairBytes;
      const int half = int(b % 2);
      std::memcpy(p + 32 * half, blk + 2, 32);
      for (int l = 0; l < 8; ++l) std::memcpy(p + 64 + 4 * (8 * half + l), &d, 4);
      const int32_t c = -128 * sum;
      std::memcpy(p + 128 + 4 * (8 * half), &c, 4);
    } else {
      std::byte* p = out + b / 4 * kQuadBytes;
      const int j = int(b % 4);
      std::memcpy(p + 16 * j, blk + 2, 16);
      std::memcpy(p + 64 + 16 * j, blk + 18, 16);
      for (int l = 0; l < 4; ++l) std::memcpy(p + 128 + 4 * (4 * j + l), &d, 4);
      const int32_t c = -8 * sum;
      std::memcpy(p + 192 + 4 * (4 * j), &c, 4);
    }
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

// Byte indices that gather a pair of Q8_0 blocks into one register, from two registers holding
// the pair's bytes 0-63 and 4-67 (vpermt2b: 64 + i is byte i of the second): the quants side by
// side (q) and each block's F16 scale repeated over 8 words (s).
struct PairIndex {
  alignas(64) uint8_t q[64];
  alignas(64) uint8_t s[64];
  constexpr PairIndex() : q{}, s{} {
    for (int j = 0; j < 64; ++j) {
      q[j] = uint8_t(j < 32 ? 2 + j : 64 + j);
      s[j] = uint8_t(34 * ((j % 32) / 16) + j % 2);
    }
  }
};

// Byte indices that gather a quad of Q4_0 blocks (72 bytes) from two registers holding its bytes
// 0-63 and 8-71: block j's 16 bytes of nibbles at 16 j (q), and its F16 scale repeated over the
// words 4j .. 4j + 3 (s, in the first 32 bytes).
struct QuadIndex {
  alignas(64) uint8_t q[64];
  alignas(64) uint8_t s[64];
  constexpr QuadIndex() : q{}, s{} {
    for (int j = 0; j < 64; ++j) {
      const int byte = 18 * (j / 16) + 2 + j % 16;
      q[j] = uint8_t(byte < 64 ? byte : 64 + byte - 8);
      s[j] = uint8_t(18 * ((j % 32) / 8) + j % 2);
    }
  }
};

// The four sums of a, b, c, d. (The halves by the all-lanes masked extract: GCC 12's unmasked
// one and the cast warn falsely, bug 105593.)
inline __m128 reduce_add4(__m512 a, __m512 b, __m512 c, __m512 d) {
  auto fold = [](__m512 v) {
    const __m512d p = _mm512_castps_pd(v);
    return _mm256_add_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, p, 0)),
                         _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, p, 1)));
  };
  // [a0+a1, a2+a3, b0+b1, b2+b3, a4+a5, ...] twice over: each 128-bit lane holds the four sums
  const __m256 s =
      _mm256_hadd_ps(_mm256_hadd_ps(fold(a), fold(b)), _mm256_hadd_ps(fold(c), fold(d)));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

// y[0 .. R) = the sums of acc[0 .. R), R = 1 or 4.
template <int R>
inline void store_sums(const __m512* acc, float* y) {
  if constexpr (R == 4)
    _mm_storeu_ps(y, reduce_add4(acc[0], acc[1], acc[2], acc[3]));
  else
    y[0] = reduce_add(acc[0]);
}

// R = 1 or 4 Q8_0 rows (row + k * stride) against packed activations into y[0 .. R), a pair of
// blocks per 512-bit register, masked loads for a last lone block. Four rows share the
// activations' loads and one final reduction.
template <int R>
inline void dot_q8_0(const std::byte* row, int64_t stride, const std::byte* xp, int64_t n,
                     float* y) {
  constexpr int64_t wb = 34;
  const int64_t nb = n / 32;
  static constexpr PairIndex kIdx{};
  const __m512i bias = _mm512_set1_epi8(char(0x80));
  __m512 acc[R];
  for (int k = 0; k < R; ++k) acc[k] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b += 2) {
    const std::byte* x = xp + b / 2 * kPairBytes;
    const __m512i xq = _mm512_load_si512(x), c = _mm512_load_si512(x + 128);
    const __m512 dx = _mm512_load_ps(x + 64);
    const bool both = b + 1 < nb;
    for (int k = 0; k < R; ++k) {
      const std::byte* w = row + k * stride + b * wb;
      prefetch_ahead(w, 2 * wb);
      // the pair's bytes 0-63 (a) and 4-67 (e)
      const __m512i a = both ? _mm512_loadu_si512(w) : _mm512_maskz_loadu_epi8((1ULL << 34) - 1, w);
      const __m512i e = both ? _mm512_loadu_si512(w + 4) : _mm512_setzero_si512();
      const __m512i q =
          _mm512_xor_si512(_mm512_permutex2var_epi8(a, _mm512_load_si512(kIdx.q), e), bias);
      const __m512 dw = _mm512_cvtph_ps(
          _mm512_castsi512_si256(_mm512_permutexvar_epi8(_mm512_load_si512(kIdx.s), a)));
      acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(c, q, xq)),
                               _mm512_mul_ps(dw, dx), acc[k]);
    }
  }
  store_sums<R>(acc, y);
}

// R = 1 or 4 Q4_0 rows (row + k * stride) against packed activations into y[0 .. R), a quad of
// blocks per 512-bit register: the low nibbles meet each block's first 16 quants and the high
// ones its last 16, two vpdpbusd into the same lanes (four per block); masked loads for a last
// partial quad. Four rows share the activations' loads and one final reduction.
template <int R>
inline void dot_q4_0(const std::byte* row, int64_t stride, const std::byte* xp, int64_t n,
                     float* y) {
  constexpr int64_t wb = 18;
  const int64_t nb = n / 32;
  static constexpr QuadIndex kIdx{};
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc[R];
  for (int k = 0; k < R; ++k) acc[k] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b += 4) {
    const std::byte* x = xp + b / 4 * kQuadBytes;
    const __m512i xlo = _mm512_load_si512(x), xhi = _mm512_load_si512(x + 64);
    const __m512 dx = _mm512_load_ps(x + 128);
    const __m512i c = _mm512_load_si512(x + 192);
    const int64_t bytes = std::min<int64_t>(4, nb - b) * wb;  // 18 .. 72
    for (int k = 0; k < R; ++k) {
      const std::byte* w = row + k * stride + b * wb;
      prefetch_ahead(w, 4 * wb);
      // the quad's bytes 0-63 (a) and 8-71 (e)
      __m512i a, e;
      if (bytes == 72) {
        a = _mm512_loadu_si512(w);
        e = _mm512_loadu_si512(w + 8);
      } else {
        a = _mm512_maskz_loadu_epi8((1ULL << bytes) - 1, w);
        e = _mm512_setzero_si512();
      }
      const __m512i q = _mm512_permutex2var_epi8(a, _mm512_load_si512(kIdx.q), e);
      const __m512 dw = _mm512_cvtph_ps(
          _mm512_castsi512_si256(_mm512_permutexvar_epi8(_mm512_load_si512(kIdx.s), a)));
      __m512i dot = _mm512_dpbusd_epi32(c, _mm512_and_si512(q, low4), xlo);
      dot = _mm512_dpbusd_epi32(dot, _mm512_and_si512(_mm512_srli_epi16(q, 4), low4), xhi);
      acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, dx), acc[k]);
    }
  }
  store_sums<R>(acc, y);
}

// Byte indices that pick, from the decoded scales and mins of four Q4_K rows (Q4kHeads::sm: row
// k's in the 128-bit lane k, bytes 0-3 the scales 0-3, 4-7 the mins 0-3, 8-11 the scales 4-7, 12-15
// the mins 4-7), the words a row's products are scaled by (sc, as in the word order of
// vpmaddubsw over a 64-byte load of nibbles: the sub-blocks 0 and 2, 1 and 3, 4 and 6, 5 and 7,
// each over 16 words) and the rows' mins (m: row k's 8 in the words 8k .. 8k + 7). The high
// byte of each word is zeroed by the mask kLowBytes.
struct Q4kIndex {
  alignas(64) uint8_t sc[4][4][64];  // [row][group]
  alignas(64) uint8_t m[64];
  constexpr Q4kIndex() : sc{}, m{} {
    auto at = [](int k, int s, bool min) { return 16 * k + (s < 4 ? s : 4 + s) + (min ? 4 : 0); };
    for (int k = 0; k < 4; ++k)
      for (int g = 0; g < 4; ++g)
        for (int w = 0; w < 32; ++w)
          sc[k][g][2 * w] = uint8_t(at(k, g / 2 * 4 + g % 2 + 2 * (w / 16), false));
    for (int w = 0; w < 32; ++w) m[2 * w] = uint8_t(at(w / 8, w % 8, true));
  }
};
inline constexpr __mmask64 kLowBytes = 0x5555555555555555ULL;

// The 16-byte heads (d, dmin, 12 bytes of 6-bit scales and mins) of the super-blocks of R <= 4
// Q4_K rows, decoded together, one row per 128-bit lane: the scales and mins as bytes (sm, the
// layout Q4kIndex reads), and the F16 d and dmin of row k in the words 8k and 8k + 1 (raw).
template <int R>
struct Q4kHeads {
  __m512i sm, raw;
  Q4kHeads(const std::byte* w, int64_t stride) {
    raw = _mm512_zextsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
    for (int k = 1; k < R; ++k)
      raw = _mm512_mask_broadcast_i32x4(
          raw, __mmask16(0xF << (4 * k)),
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + k * stride)));
    // q4k_scale_min per lane, whose dwords are [d dmin, u0, u1, u2]: the scales 0-3 are
    // u0 & 0x3F.., the mins 0-3 u1 & 0x3F.., the scales 4-7 (u2 & 0x0F..) | ((u0 >> 2) & 0x30..),
    // the mins 4-7 ((u2 >> 4) & 0x0F..) | ((u1 >> 2) & 0x30..)
    const __m512i u01 = _mm512_shuffle_epi32(raw, _MM_PERM_CBCB);  // [u0, u1, u0, u1]
    const __m512i u22 = _mm512_shuffle_epi32(raw, _MM_PERM_DDDD);  // [u2, u2, u2, u2]
    const __m512i lo = _mm512_and_si512(u01, _mm512_set1_epi32(0x3F3F3F3F));
    const __m512i hi =
        _mm512_or_si512(_mm512_and_si512(_mm512_srlv_epi32(u22, _mm512_set4_epi32(4, 0, 0, 0)),
                                         _mm512_set1_epi32(0x0F0F0F0F)),
                        _mm512_and_si512(_mm512_srli_epi32(u01, 2), _mm512_set1_epi32(0x30303030)));
    sm = _mm512_mask_blend_epi32(0xCCCC, lo, hi);
  }
};

// R = 1 or 4 Q4_K rows (row + k * stride) against packed Q8_K activations into y[0 .. R): per
// super-block
//   d dx sum_s sc[s] (q_s . x_s) - dmin dx sum_s m[s] (sum of x_s),
// q . x by vpmaddubsw (pairs, exact in 16 bits: 2 x 15 x 127) and the scale by vpdpwssd. The
// rows' scales, mins and F16 factors are decoded together (Q4kHeads), and the mins' part of all
// R rows is one product in the lanes 4k .. 4k + 3 of `mins`. Four rows share the activations'
// loads and the final reductions.
template <int R>
inline void dot_q4_k(const std::byte* row, int64_t stride, const std::byte* xp, int64_t n,
                     float* y) {
  static constexpr Q4kIndex kIdx{};
  // the words of d (row k's in lane k) and of dmin (row k's in the lanes 4k .. 4k + 3) in `raw`
  alignas(64) static constexpr auto kD = [] {
    std::array<uint16_t, 32> t{};
    for (int j = 0; j < 16; ++j) t[j] = uint16_t(8 * (j % 4));
    for (int j = 16; j < 32; ++j) t[j] = uint16_t(8 * ((j - 16) / 4) + 1);
    return t;
  }();
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc[R], mins = _mm512_setzero_ps();
  for (int k = 0; k < R; ++k) acc[k] = _mm512_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const std::byte* x = xp + b * kSuperBytes;
    const __m512i x0 = _mm512_load_si512(x), x1 = _mm512_load_si512(x + 64),
                  x2 = _mm512_load_si512(x + 128), x3 = _mm512_load_si512(x + 192);
    const __m512 dx = _mm512_load_ps(x + kQK_K + 64);
    const std::byte* w = row + b * int64_t(sizeof(BlockQ4_K));
    for (int k = 0; k < R; ++k) prefetch_ahead(w + k * stride, sizeof(BlockQ4_K));
    const Q4kHeads<R> h(w, stride);
    // d dx per row (lane k), dmin dx per row (lanes 4k .. 4k + 3)
    const __m512i dw = _mm512_permutexvar_epi16(_mm512_load_si512(kD.data()), h.raw);
    alignas(64) float d[16];
    _mm512_store_ps(d, _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(dw)), dx));
    const __m512 dmin =
        _mm512_mul_ps(_mm512_cvtph_ps(_mm512_maskz_extracti64x4_epi64(0xF, dw, 1)), dx);
    // sum_s m[s] (sum of x_s) of every row at once
    const __m512i mw = _mm512_maskz_permutexvar_epi8(kLowBytes, _mm512_load_si512(kIdx.m), h.sm);
    mins = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_madd_epi16(mw, _mm512_load_si512(x + kQK_K))),
                           dmin, mins);
    for (int k = 0; k < R; ++k) {
      const std::byte* q = w + k * stride + 16;
      // 64 bytes of nibbles at a time: the sub-blocks 4p .. 4p + 3, the activations packed in
      // the same order
      const __m512i v0 = _mm512_loadu_si512(q), v1 = _mm512_loadu_si512(q + 64);
      auto scaled = [&](__m512i isum, __m512i nib, __m512i xs, int g) {
        return _mm512_dpwssd_epi32(
            isum, _mm512_maddubs_epi16(nib, xs),
            _mm512_maskz_permutexvar_epi8(kLowBytes, _mm512_load_si512(kIdx.sc[k][g]), h.sm));
      };
      __m512i isum = scaled(_mm512_setzero_si512(), _mm512_and_si512(v0, low4), x0, 0);
      isum = scaled(isum, _mm512_and_si512(_mm512_srli_epi16(v0, 4), low4), x1, 1);
      isum = scaled(isum, _mm512_and_si512(v1, low4), x2, 2);
      isum = scaled(isum, _mm512_and_si512(_mm512_srli_epi16(v1, 4), low4), x3, 3);
      acc[k] = _mm512_fmadd_ps(_mm512_set1_ps(d[k]), _mm512_cvtepi32_ps(isum), acc[k]);
    }
  }
  // less each row's mins' part, from its four lanes of `mins`
  for (int k = 0; k < R; ++k)
    acc[k] = _mm512_mask_sub_ps(acc[k], __mmask16(0xF << (4 * k)), acc[k], mins);
  store_sums<R>(acc, y);
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
    case DType::Q8_0: {
      float y;
      dot_q8_0<1>(row, 0, xp, n, &y);
      return y;
    }
    case DType::Q4_0: {
      float y;
      dot_q4_0<1>(row, 0, xp, n, &y);
      return y;
    }
    case DType::Q4_K: {
      float y;
      dot_q4_k<1>(row, 0, xp, n, &y);
      return y;
    }
    case DType::Q6_K:
      return dot_q6_k(row, xp, n);
    default:
      return 0.0f;
  }
}

// y[r] = row r . x for the rows [r0, r1) of a matrix (row stride `stride` bytes), x packed by
// pack_activation.
inline void dot_rows_packed(DType t, const std::byte* rows, int64_t stride, int64_t r0, int64_t r1,
                            const std::byte* xp, int64_t n, float* y) {
  int64_t r = r0;
  if (t == DType::Q8_0)
    for (; r + 4 <= r1; r += 4) dot_q8_0<4>(rows + r * stride, stride, xp, n, y + r);
  if (t == DType::Q4_0)
    for (; r + 4 <= r1; r += 4) dot_q4_0<4>(rows + r * stride, stride, xp, n, y + r);
  if (t == DType::Q4_K)
    for (; r + 4 <= r1; r += 4) dot_q4_k<4>(rows + r * stride, stride, xp, n, y + r);
  for (; r < r1; ++r) y[r] = dot_row_packed(t, rows + r * stride, xp, n);
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
