#pragma once
// Q8_0 and Q4_0 rows against a few vectors at once (batched decode) in integer arithmetic, on
// AVX-512 VNNI. The vectors are quantized to Q8_0 blocks, as matrix-vector products quantize
// theirs, and the rows are taken 16 at a time, transposed in registers so that 32-bit lane l holds
// four quants of row l: one vpdpbusd, a vector's four quants broadcast, then advances 16 rows' dot
// products, and a block of 32 is eight of them. The two scales of a block cost three instructions
// per 16 rows and vector, where the float kernel (dot_multi.hpp) spends 32 FMAs on the same
// 16 x 32 products, and a single-row integer kernel would spend three per row.
// Scalar twin: vec_dot_row_q8 in ops/quant.hpp, a row and a vector at a time.
#include "mamba/ops/simd/dot_q8_avx512.hpp"

#if defined(MAMBA_SIMD_AVX512_VNNI)
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mamba/ops/blocks.hpp"
#include "mamba/ops/dtype.hpp"

namespace mamba::simd::vnni {

// ---------------------------------------------------------------------------------------------
// The packed activations of nb vectors, quantized to Q8_0 blocks: in groups of (up to) 8
// vectors, each group (multi_group_bytes) a run of its blocks of 32 values, m vectors per block:
//   int8_t  q[m][32]   each vector's quants
//   float   d[m]       its scale
//   int32_t c[m]       -k times the sum of its quants: the dot products start from it. The
//                      weights enter vpdpbusd as unsigned bytes: Q8_0's offset by 128 (k = 128),
//                      Q4_0's nibbles 0..15 standing for -8..7 (k = 8).
inline constexpr int64_t kMultiGroup = 8;

inline int64_t multi_group_bytes(int64_t n) {
  return n / 32 * kMultiGroup * 40;
}
inline int64_t multi_packed_bytes(int64_t n, int64_t nb) {
  return (nb + kMultiGroup - 1) / kMultiGroup * multi_group_bytes(n);
}

// out (multi_packed_bytes(n, nb)) = the nb vectors xq + b * ldq, each n values quantized to
// Q8_0 blocks (quantize_activation), in the layout above for rows of type t (Q8_0 or Q4_0).
inline void pack_activations_multi(DType t, const std::byte* xq, int64_t ldq, int64_t n, int64_t nb,
                                   std::byte* out) {
  const int32_t k = t == DType::Q8_0 ? 128 : 8;
  // (vector by vector: GCC 12's -O2 miscompiled the loops nested the other way round)
  for (int64_t g = 0; g < nb; g += kMultiGroup) {
    const int64_t m = std::min(kMultiGroup, nb - g);
    std::byte* group = out + g / kMultiGroup * multi_group_bytes(n);
    for (int64_t v = 0; v < m; ++v) {
      const std::byte* src = xq + (g + v) * ldq;
      for (int64_t blk = 0; blk < n / 32; ++blk, src += 34) {
        std::byte* p = group + blk * m * 40;
        std::memcpy(p + 32 * v, src + 2, 32);
        const float d = f16_at(src);
        int32_t sum = 0;
        for (int j = 0; j < 32; ++j) sum += static_cast<int8_t>(src[2 + j]);
        const int32_t c = -k * sum;
        std::memcpy(p + 32 * m + 4 * v, &d, 4);
        std::memcpy(p + 36 * m + 4 * v, &c, 4);
      }
    }
  }
}

// The quants of the block at byte offset o of 16 rows w[0..15], transposed: v[k] lane l holds
// values 4k .. 4k + 3 of row w[l], unsigned (Q8_0's offset by 128, Q4_0's nibbles as stored).
template <DType T>
inline void transpose_blocks(const std::byte* const* w, int64_t o, __m512i* v);

// Q8_0: two rows per register, then an 8 x 8 transpose of 32-bit words in each 256-bit half.
template <>
inline void transpose_blocks<DType::Q8_0>(const std::byte* const* w, int64_t o, __m512i* v) {
  __m512i z[8], t[8];
  for (int j = 0; j < 8; ++j)
    z[j] = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[j] + o + 2))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[j + 8] + o + 2)), 1);
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
  const __m512i bias = _mm512_set1_epi8(char(0x80));
  for (int k = 0; k < 4; ++k) {
    v[k] = _mm512_xor_si512(_mm512_permutex2var_epi64(z[k], lo, z[k + 4]), bias);
    v[k + 4] = _mm512_xor_si512(_mm512_permutex2var_epi64(z[k], hi, z[k + 4]), bias);
  }
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
    const int nr = int(std::min<int64_t>(16, r1 - r));
    const std::byte* w[16];  // a short last group repeats its last row
    alignas(64) int32_t offsets[16];
    for (int l = 0; l < 16; ++l) {
      offsets[l] = int32_t(std::min(l, nr - 1) * stride);
      w[l] = rows + r * stride + offsets[l];
    }
    const __m512i at = _mm512_load_si512(offsets);
    // The next 16 rows follow these in memory: each block's step fetches its share of them.
    const std::byte* next = r + 16 < r1 ? rows + (r + 16) * stride : nullptr;
    __m512 acc[NB];
    for (int b = 0; b < NB; ++b) acc[b] = _mm512_setzero_ps();
    for (int64_t blk = 0; blk < nblk; ++blk) {
      const int64_t o = blk * kWeightBytes;
      if (next)
        for (int64_t i = 0; i < 16 * kWeightBytes; i += 64)
          _mm_prefetch(next + 16 * o + i, _MM_HINT_T0);
      __m512i v[8];
      transpose_blocks<T>(w, o, v);
      // the 16 rows' F16 scales, each the low half of a 32-bit gather at the block's start
      const __m512 dw =
          _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_i32gather_epi32(at, w[0] + o, 1)));
      const std::byte* x = xp + blk * kBlockBytes;
      for (int b = 0; b < NB; ++b) {
        int32_t c;
        std::memcpy(&c, x + 36 * NB + 4 * b, 4);
        __m512i dot = _mm512_set1_epi32(c);
        for (int k = 0; k < 8; ++k) {
          int32_t q4;
          std::memcpy(&q4, x + 32 * b + 4 * k, 4);
          dot = _mm512_dpbusd_epi32(dot, v[k], _mm512_set1_epi32(q4));
        }
        float dx;
        std::memcpy(&dx, x + 32 * NB + 4 * b, 4);
        acc[b] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, _mm512_set1_ps(dx)), acc[b]);
      }
    }
    const __mmask16 keep = __mmask16((1u << nr) - 1);
    for (int b = 0; b < NB; ++b) _mm512_mask_storeu_ps(Y + b * ldy + r, keep, acc[b]);
  }
}

// Y[b * ldy + r] = row r . vector b for rows [r0, r1) of type t (Q8_0 or Q4_0) and nb vectors
// packed by pack_activations_multi.
inline void dot_rows_packed_multi(DType t, const std::byte* rows, int64_t stride, int64_t r0,
                                  int64_t r1, int64_t n, const std::byte* xp, int64_t nb, float* Y,
                                  int64_t ldy) {
  for (int64_t g = 0; g < nb; g += kMultiGroup) {
    const std::byte* x = xp + g / kMultiGroup * multi_group_bytes(n);
    float* y = Y + g * ldy;
    auto run = [&]<int NB>() {
      if (t == DType::Q8_0)
        dot_rows_group<DType::Q8_0, NB>(rows, stride, r0, r1, n, x, y, ldy);
      else
        dot_rows_group<DType::Q4_0, NB>(rows, stride, r0, r1, n, x, y, ldy);
    };
    switch (std::min(kMultiGroup, nb - g)) {
      case 1:
        run.template operator()<1>();
        break;
      case 2:
        run.template operator()<2>();
        break;
      case 3:
        run.template operator()<3>();
        break;
      case 4:
        run.template operator()<4>();
        break;
      case 5:
        run.template operator()<5>();
        break;
      case 6:
        run.template operator()<6>();
        break;
      case 7:
        run.template operator()<7>();
        break;
      default:
        run.template operator()<8>();
        break;
    }
  }
}

}  // namespace mamba::simd::vnni
#endif
