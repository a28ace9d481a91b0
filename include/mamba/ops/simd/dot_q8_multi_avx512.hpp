#pragma once
// Block-quantized rows (Q8_0, Q4_0, Q4_K, Q6_K) against a few vectors at once (batched decode)
// in integer arithmetic, on AVX-512 VNNI. The vectors are quantized to 8 bits, as matrix-vector
// products quantize theirs, and the rows are taken 16 at a time, transposed in registers so that
// 32-bit lane l holds four quants of row l: one vpdpbusd, a vector's four quants broadcast, then
// advances 16 rows' dot products, and a Q8_0 block of 32 is eight of them. The two scales of a
// block cost three instructions per 16 rows and vector, where the float kernel (dot_multi.hpp)
// spends 32 FMAs on the same 16 x 32 products, and a single-row integer kernel would spend three
// per row. The K-quants take the same path per sub-block of 32 (Q4_K) or group of 16 (Q6_K),
// against vectors quantized to Q8_K super-blocks. Q8_0 rows against a group of 8 vectors go to
// the tile unit instead where there is one (dot_q8_amx.hpp), 16 rows at a time.
// Scalar twin: vec_dot_row_q8 in ops/quant.hpp, a row and a vector at a time.
#include "mamba/ops/simd/dot_q8_amx.hpp"
#include "mamba/ops/simd/dot_q8_avx512.hpp"
#include "mamba/ops/simd/rows16_avx512.hpp"

#if defined(MAMBA_SIMD_AVX512_VNNI)
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mamba/ops/blocks.hpp"
#include "mamba/ops/dtype.hpp"

// GCC 12 warns, falsely, inside the unmasked AVX-512 intrinsics once these kernels are inlined
// (bug 105593, as in dot_multi.hpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace mamba::simd::vnni {

// ---------------------------------------------------------------------------------------------
// The packed activations of nb vectors, in groups of (up to) 8 vectors, each group
// (multi_group_bytes) a run of blocks, m vectors per block:
//   Q8_0 and Q4_0 rows: the vectors quantized to Q8_0 blocks; per block of 32 values
//     int8_t  q[8][m][4] the quants, word k of each vector after word k - 1 of all of them (a
//                        kernel broadcasts one word; AMX reads m = 8 of them as a tile)
//     float   d[m]       its scale
//     int32_t c[m]       -k times the sum of its quants: the dot products start from it. The
//                        weights enter vpdpbusd as unsigned bytes: Q8_0's offset by 128
//                        (k = 128), Q4_0's nibbles 0..15 standing for -8..7 (k = 8).
//   Q4_K rows: the vectors quantized to Q8_K super-blocks; per super-block of 256 values
//     int8_t  q[m][256]  each vector's quants
//     float   d[m]       its scale
//     float   s[m][8]    the sum of each sub-block's 32 quants (for the rows' mins)
//   Q6_K rows: the vectors quantized to Q8_K super-blocks; per super-block of 256 values
//     int8_t  q[m][256]  each vector's quants
//     float   d[m]       its scale
//     int32_t c[m][16]   -32 times the sum of each group of 16 quants: the 6-bit quants enter
//                        vpdpbusd unsigned, 0..63 standing for -32..31.
inline constexpr int64_t kMultiGroup = 8;

inline bool is_k_quant(DType t) {
  return t == DType::Q4_K || t == DType::Q6_K;
}
inline int64_t multi_block_bytes(DType t) {  // per vector and block (of 32, or of 256)
  return t == DType::Q4_K ? 256 + 4 + 32 : t == DType::Q6_K ? 256 + 4 + 64 : 32 + 4 + 4;
}
inline int64_t multi_group_bytes(DType t, int64_t n) {
  return n / (is_k_quant(t) ? kQK_K : 32) * kMultiGroup * multi_block_bytes(t);
}
inline int64_t multi_packed_bytes(DType t, int64_t n, int64_t nb) {
  return (nb + kMultiGroup - 1) / kMultiGroup * multi_group_bytes(t, n);
}

// out (multi_packed_bytes(t, n, nb)) = the nb vectors xq + b * ldq, each n values quantized by
// quantize_activation(activation_type(t), ...), in the layout above for rows of type t.
inline void pack_activations_multi(DType t, const std::byte* xq, int64_t ldq, int64_t n, int64_t nb,
                                   std::byte* out) {
  // (vector by vector: GCC 12's -O2 miscompiled the loops nested the other way round)
  const bool k_quant = is_k_quant(t);
  const int64_t bytes = multi_block_bytes(t), len = k_quant ? kQK_K : 32;
  const int64_t src_bytes = k_quant ? int64_t(sizeof(BlockQ8_K)) : 34;
  const int32_t k = t == DType::Q8_0 ? 128 : 8;
  for (int64_t g = 0; g < nb; g += kMultiGroup) {
    const int64_t m = std::min(kMultiGroup, nb - g);
    std::byte* group = out + g / kMultiGroup * multi_group_bytes(t, n);
    for (int64_t v = 0; v < m; ++v) {
      const std::byte* src = xq + (g + v) * ldq;
      for (int64_t blk = 0; blk < n / len; ++blk, src += src_bytes) {
        std::byte* p = group + blk * m * bytes;
        float d;
        if (k_quant) {
          std::memcpy(&d, src, 4);
          std::memcpy(p + len * v, src + 4, size_t(len));
          int16_t bsums[16];
          std::memcpy(bsums, src + 4 + kQK_K, sizeof(bsums));
          for (int s = 0; s < 8 && t == DType::Q4_K; ++s) {
            const float sum = float(bsums[2 * s] + bsums[2 * s + 1]);
            std::memcpy(p + (len + 4) * m + 32 * v + 4 * s, &sum, 4);
          }
          for (int g = 0; g < 16 && t == DType::Q6_K; ++g) {
            const int32_t c = -32 * bsums[g];
            std::memcpy(p + (len + 4) * m + 64 * v + 4 * g, &c, 4);
          }
        } else {
          d = f16_at(src);
          const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2));
          for (int w = 0; w < 8; ++w) std::memcpy(p + 4 * (m * w + v), src + 2 + 4 * w, 4);
          const int32_t c = -k * sum_i8(q);
          std::memcpy(p + 36 * m + 4 * v, &c, 4);
        }
        std::memcpy(p + len * m + 4 * v, &d, 4);
      }
    }
  }
}

// z[k] lane l = 32-bit word k of the 32 bytes at w[l] + o, for 16 rows w[0..15]: two rows per
// register, then an 8 x 8 transpose of 32-bit words in each 256-bit half.
inline void transpose_words8(const std::byte* const* w, int64_t o, __m512i* v) {
  __m512i z[8], t[8];
  for (int j = 0; j < 8; ++j)
    z[j] = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[j] + o))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[j + 8] + o)), 1);
  // per 128-bit lane, words (0, 1) and (2, 3) of rows j, j + 1 interleaved
  for (int j = 0; j < 8; j += 2) {
    t[j] = _mm512_unpacklo_epi32(z[j], z[j + 1]);
    t[j + 1] = _mm512_unpackhi_epi32(z[j], z[j + 1]);
  }
  // per 128-bit lane, one word of rows j .. j + 3: words 0 (z), 1, 2, 3 of the lane
  for (int j = 0; j < 8; j += 4) {
    z[j] = _mm512_unpacklo_epi64(t[j], t[j + 2]);
    z[j + 1] = _mm512_unpackhi_epi64(t[j], t[j + 2]);
    z[j + 2] = _mm512_unpacklo_epi64(t[j + 1], t[j + 3]);
    z[j + 3] = _mm512_unpackhi_epi64(t[j + 1], t[j + 3]);
  }
  // rows 0-3 next to rows 4-7 (and 8-11 to 12-15): the low 128-bit lanes of each half hold
  // words 0-3, the high ones words 4-7
  const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
  const __m512i hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  for (int k = 0; k < 4; ++k) {
    v[k] = _mm512_permutex2var_epi64(z[k], lo, z[k + 4]);
    v[k + 4] = _mm512_permutex2var_epi64(z[k], hi, z[k + 4]);
  }
}

// The quants of the block at byte offset o of 16 rows w[0..15], transposed: v[k] lane l holds
// values 4k .. 4k + 3 of row w[l], unsigned (Q8_0's offset by 128, Q4_0's nibbles as stored).
template <DType T>
inline void transpose_blocks(const std::byte* const* w, int64_t o, __m512i* v);

// Q8_0: transpose_words8, the signs flipped.
template <>
inline void transpose_blocks<DType::Q8_0>(const std::byte* const* w, int64_t o, __m512i* v) {
  transpose_words8(w, o + 2, v);
  const __m512i bias = _mm512_set1_epi8(char(0x80));
  for (int k = 0; k < 8; ++k) v[k] = _mm512_xor_si512(v[k], bias);
}

// Q4_0: four rows per register (rows j, j + 4, j + 8, j + 12 in its 128-bit lanes), a 4 x 4
// transpose of 32-bit words in each lane, then the low nibbles (values 4k ..) and the high ones
// (values 16 + 4k ..) apart.
template <>
inline void transpose_blocks<DType::Q4_0>(const std::byte* const* w, int64_t o, __m512i* v) {
  auto row = [&](int l) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[l] + o + 2)); };
  __m512i z[4], t[4];
  for (int j = 0; j < 4; ++j) {
    const __m256i a = _mm256_inserti128_si256(_mm256_castsi128_si256(row(j)), row(j + 4), 1);
    const __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(row(j + 8)), row(j + 12), 1);
    z[j] = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
  }
  t[0] = _mm512_unpacklo_epi32(z[0], z[1]);
  t[1] = _mm512_unpackhi_epi32(z[0], z[1]);
  t[2] = _mm512_unpacklo_epi32(z[2], z[3]);
  t[3] = _mm512_unpackhi_epi32(z[2], z[3]);
  z[0] = _mm512_unpacklo_epi64(t[0], t[2]);
  z[1] = _mm512_unpackhi_epi64(t[0], t[2]);
  z[2] = _mm512_unpacklo_epi64(t[1], t[3]);
  z[3] = _mm512_unpackhi_epi64(t[1], t[3]);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (int k = 0; k < 4; ++k) {
    v[k] = _mm512_and_si512(z[k], low4);
    v[k + 4] = _mm512_and_si512(_mm512_srli_epi16(z[k], 4), low4);
  }
}

// Y[b * ldy + r] = row r . vector b for rows [r0, r1) of Q8_0 or Q4_0 rows (row stride `stride`
// bytes) and the NB vectors of one packed group.
template <DType T, int NB>
inline void dot_rows_group(const std::byte* rows, int64_t stride, int64_t r0, int64_t r1, int64_t n,
                           const std::byte* xp, float* Y, int64_t ldy) {
  const int64_t nblk = n / 32;
  constexpr int64_t kBlockBytes = NB * 40, kWeightBytes = T == DType::Q8_0 ? 34 : 18;
  for (int64_t r = r0; r < r1; r += 16) {
    const Rows16 g(rows, stride, r, r1);
    __m512 acc[NB];
    for (int b = 0; b < NB; ++b) acc[b] = _mm512_setzero_ps();
    for (int64_t blk = 0; blk < nblk; ++blk) {
      const int64_t o = blk * kWeightBytes;
      g.prefetch_next(o, kWeightBytes);
      __m512i v[8];
      transpose_blocks<T>(g.w, o, v);
      // the 16 rows' F16 scales, each the low half of a 32-bit gather at the block's start
      const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g.words(o)));
      const std::byte* x = xp + blk * kBlockBytes;
      for (int b = 0; b < NB; ++b) {
        int32_t c;
        std::memcpy(&c, x + 36 * NB + 4 * b, 4);
        __m512i dot = _mm512_set1_epi32(c);
        for (int k = 0; k < 8; ++k) {
          int32_t q4;
          std::memcpy(&q4, x + 4 * (NB * k + b), 4);
          dot = _mm512_dpbusd_epi32(dot, v[k], _mm512_set1_epi32(q4));
        }
        float dx;
        std::memcpy(&dx, x + 32 * NB + 4 * b, 4);
        acc[b] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, _mm512_set1_ps(dx)), acc[b]);
      }
    }
    for (int b = 0; b < NB; ++b) g.store(Y + b * ldy + r, acc[b]);
  }
}

// The K-quant kernels' frame, 16 rows at a time and a super-block (kWeightBytes a row, kXBytes a
// packed vector) at a time: super_block(g, o, x, t) adds to t[b] the 16 rows' products with
// vector b over the super-block at byte o, short of the vector's scale (its d, at x + 256 NB + 4 b
// in both layouts), which the frame applies.
template <int NB, int64_t kWeightBytes, int64_t kXBytes, class SuperBlock>
inline void dot_rows_k_quant(const std::byte* rows, int64_t stride, int64_t r0, int64_t r1,
                             int64_t n, const std::byte* xp, float* Y, int64_t ldy,
                             SuperBlock&& super_block) {
  for (int64_t r = r0; r < r1; r += 16) {
    const Rows16 g(rows, stride, r, r1);
    alignas(64) float acc[NB][16] = {};
    for (int64_t sb = 0; sb < n / kQK_K; ++sb) {
      const int64_t o = sb * kWeightBytes;
      g.prefetch_next(o, kWeightBytes);
      const std::byte* x = xp + sb * NB * kXBytes;
      __m512 t[NB];
      for (int b = 0; b < NB; ++b) t[b] = _mm512_setzero_ps();
      super_block(g, o, x, t);
      for (int b = 0; b < NB; ++b) {
        float dx;
        std::memcpy(&dx, x + 256 * NB + 4 * b, 4);
        _mm512_store_ps(acc[b], _mm512_fmadd_ps(t[b], _mm512_set1_ps(dx), _mm512_load_ps(acc[b])));
      }
    }
    for (int b = 0; b < NB; ++b) g.store(Y + b * ldy + r, _mm512_load_ps(acc[b]));
  }
}

// The same for Q4_K rows: per super-block, d dx sum_s sc[s] (q_s . x_s) - dmin dx sum_s m[s]
// sum(x_s), each pair of sub-blocks' 32 bytes of nibbles transposed once for all NB vectors.
template <int NB>
inline void dot_rows_q4_k_group(const std::byte* rows, int64_t stride, int64_t r0, int64_t r1,
                                int64_t n, const std::byte* xp, float* Y, int64_t ldy) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), six = _mm512_set1_epi32(0x3F);
  const __m512i four = _mm512_set1_epi32(0x0F), two = _mm512_set1_epi32(0x03);
  auto super_block = [&](const Rows16& g, int64_t o, const std::byte* x, __m512* t) {
    // the 16 rows' d and dmin, and their 8 scales and mins (q4k_scale_min), one row per lane
    const __m512i dd = g.words(o);
    const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd));
    const __m512 dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16)));
    const __m512i u0 = g.words(o + 4);
    const __m512i u1 = g.words(o + 8);
    const __m512i u2 = g.words(o + 12);
    __m512 dsc[8], dm[8];
    for (int j = 0; j < 4; ++j) {
      const __m512i sc = _mm512_and_si512(_mm512_srli_epi32(u0, 8 * j), six);
      const __m512i m = _mm512_and_si512(_mm512_srli_epi32(u1, 8 * j), six);
      const __m512i sc_hi = _mm512_or_si512(
          _mm512_and_si512(_mm512_srli_epi32(u2, 8 * j), four),
          _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u0, 8 * j + 6), two), 4));
      const __m512i m_hi = _mm512_or_si512(
          _mm512_and_si512(_mm512_srli_epi32(u2, 8 * j + 4), four),
          _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u1, 8 * j + 6), two), 4));
      dsc[j] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
      dm[j] = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(m));
      dsc[j + 4] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc_hi));
      dm[j + 4] = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(m_hi));
    }
    for (int p = 0; p < 4; ++p) {  // sub-blocks 2p (low nibbles) and 2p + 1 (high ones)
      __m512i lo[8], hi[8];
      transpose_words8(g.w, o + 16 + 32 * p, lo);
      for (int k = 0; k < 8; ++k) {
        hi[k] = _mm512_and_si512(_mm512_srli_epi16(lo[k], 4), low4);
        lo[k] = _mm512_and_si512(lo[k], low4);
      }
      for (int b = 0; b < NB; ++b) {
        const std::byte* xq = x + 256 * b + 64 * p;
        __m512i dl = _mm512_setzero_si512(), dh = _mm512_setzero_si512();
        for (int k = 0; k < 8; ++k) {
          int32_t ql, qh;
          std::memcpy(&ql, xq + 4 * k, 4);
          std::memcpy(&qh, xq + 32 + 4 * k, 4);
          dl = _mm512_dpbusd_epi32(dl, lo[k], _mm512_set1_epi32(ql));
          dh = _mm512_dpbusd_epi32(dh, hi[k], _mm512_set1_epi32(qh));
        }
        t[b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dl), dsc[2 * p], t[b]);
        t[b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dh), dsc[2 * p + 1], t[b]);
      }
    }
    for (int b = 0; b < NB; ++b) {
      const std::byte* sums = x + 260 * NB + 32 * b;
      for (int s = 0; s < 8; ++s) {
        float xs;
        std::memcpy(&xs, sums + 4 * s, 4);
        t[b] = _mm512_fnmadd_ps(dm[s], _mm512_set1_ps(xs), t[b]);
      }
    }
  };
  dot_rows_k_quant<NB, sizeof(BlockQ4_K), 256 + 4 + 32>(rows, stride, r0, r1, n, xp, Y, ldy,
                                                        super_block);
}

// The same for Q6_K rows: per super-block, d dx sum_g sc[g] (q_g . x_g - 32 sum(x_g)) over the
// 16 groups of 16 values; per half, its low nibbles (two runs of 32 bytes) and high bit pairs
// (32 bytes) transposed once for all NB vectors, each quarter's 6-bit quants put together from
// them.
template <int NB>
inline void dot_rows_q6_k_group(const std::byte* rows, int64_t stride, int64_t r0, int64_t r1,
                                int64_t n, const std::byte* xp, float* Y, int64_t ldy) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
  auto super_block = [&](const Rows16& g, int64_t o, const std::byte* x, __m512* t) {
    // the 16 rows' d (the high half of the last word of the block) times their 16 scales
    const __m512 d =
        _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g.words(o + 206), 16)));
    __m512 dsc[16];
    for (int q = 0; q < 4; ++q) {
      const __m512i sc = g.words(o + 192 + 4 * q);
      for (int i = 0; i < 4; ++i)  // byte i, sign-extended
        dsc[4 * q + i] = _mm512_mul_ps(
            d, _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(sc, 24 - 8 * i), 24)));
    }
    for (int h = 0; h < 2; ++h) {
      __m512i A[8], B[8], H[8];  // ql[i], ql[i + 32], qh[i] of the half
      transpose_words8(g.w, o + 64 * h, A);
      transpose_words8(g.w, o + 64 * h + 32, B);
      transpose_words8(g.w, o + 128 + 32 * h, H);
      for (int j = 0; j < 4; ++j) {  // values 128 h + 32 j + i
        __m512i q[8];
        for (int k = 0; k < 8; ++k) {
          const __m512i lo = j % 2 == 0 ? A[k] : B[k];
          const __m512i l4 = j < 2 ? lo : _mm512_srli_epi16(lo, 4);
          const __m512i h2 = j == 0   ? _mm512_slli_epi16(H[k], 4)
                             : j == 1 ? _mm512_slli_epi16(H[k], 2)
                             : j == 2 ? H[k]
                                      : _mm512_srli_epi16(H[k], 2);
          // (l4 & low4) | (h2 & bits45)
          q[k] = _mm512_ternarylogic_epi64(_mm512_and_si512(l4, low4), h2, bits45, 0xF8);
        }
        for (int b = 0; b < NB; ++b) {
          const std::byte* xq = x + 256 * b + 128 * h + 32 * j;
          for (int g2 = 0; g2 < 2; ++g2) {
            const int g = 8 * h + 2 * j + g2;
            int32_t c;
            std::memcpy(&c, x + 260 * NB + 64 * b + 4 * g, 4);
            __m512i dot = _mm512_set1_epi32(c);
            for (int k = 4 * g2; k < 4 * g2 + 4; ++k) {
              int32_t q4;
              std::memcpy(&q4, xq + 4 * k, 4);
              dot = _mm512_dpbusd_epi32(dot, q[k], _mm512_set1_epi32(q4));
            }
            t[b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), dsc[g], t[b]);
          }
        }
      }
    }
  };
  dot_rows_k_quant<NB, sizeof(BlockQ6_K), 256 + 4 + 64>(rows, stride, r0, r1, n, xp, Y, ldy,
                                                        super_block);
}

// Y[b * ldy + r] = row r . vector b for rows [r0, r1) of type t (Q8_0, Q4_0, Q4_K or Q6_K) and
// nb vectors packed by pack_activations_multi.
inline void dot_rows_packed_multi(DType t, const std::byte* rows, int64_t stride, int64_t r0,
                                  int64_t r1, int64_t n, const std::byte* xp, int64_t nb, float* Y,
                                  int64_t ldy) {
  for (int64_t g = 0; g < nb; g += kMultiGroup) {
    const std::byte* x = xp + g / kMultiGroup * multi_group_bytes(t, n);
    float* y = Y + g * ldy;
    kernels::with_count8(nb - g, [&]<int NB>() {
      if (t == DType::Q8_0) {
        int64_t r = r0;
#if defined(MAMBA_SIMD_AMX)
        if (NB == 8 && amx::amx_usable())
          r = amx::dot_rows_q8_0_x8(rows, stride, r0, r1, n, x, y, ldy);
#endif
        dot_rows_group<DType::Q8_0, NB>(rows, stride, r, r1, n, x, y, ldy);
      } else if (t == DType::Q4_0)
        dot_rows_group<DType::Q4_0, NB>(rows, stride, r0, r1, n, x, y, ldy);
      else if (t == DType::Q4_K)
        dot_rows_q4_k_group<NB>(rows, stride, r0, r1, n, x, y, ldy);
      else
        dot_rows_q6_k_group<NB>(rows, stride, r0, r1, n, x, y, ldy);
    });
  }
}

}  // namespace mamba::simd::vnni

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif
