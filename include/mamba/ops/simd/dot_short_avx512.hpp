#pragma once
// Short rows of plain values (F32, F16, BF16; dt_proj's rows of dt_rank values) against a few
// vectors at once (batched decode) on AVX-512, 16 rows at a time, one row per lane: a gather
// takes a 32-bit word at the same offset of the 16 rows (two 16-bit values, or one F32), the
// values become two vectors of one column each, and each column multiplies every vector's value
// there, broadcast, into that vector's 16 sums. The 16 rows' sums of a vector come out in one
// register, stored whole. The row kernel (dot_multi.hpp) instead sums each row and vector in a
// register of its own and reduces them at the row's end: on rows of 48 F16 values that reduction
// and the 16 scalar stores cost more than the products. dt_proj of mamba-130m (1536 x 48, F16)
// against 8 vectors, from L3 on Emerald Rapids, 1 / 2 threads: 22-30 / 39-44 GFLOP/s that way,
// 44-50 / 77-83 this way (a batch-8 step 1.4% faster for F16 weights, 3% for Q8_0).
// Scalar twin: vec_dot_row in ops/quant.hpp, one row and one vector at a time.
#include "mamba/ops/simd/ops_avx512.hpp"
#include "mamba/ops/simd/rows16_avx512.hpp"

#if defined(MAMBA_SIMD_AVX512)
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "mamba/ops/dtype.hpp"

namespace mamba::simd::kernels {

// Rows up to this long take dot_short_rows (where the row kernel's reductions cost more than the
// gathers; measured in docs/performance.md).
inline constexpr int64_t kShortRow = 96;

// Values k and k + 1 of each of the 16 rows (lane l: row l) as floats.
template <DType T>
inline void column_pair(const vnni::Rows16& g, int64_t k, __m512& lo, __m512& hi) {
  if constexpr (T == DType::F32) {
    lo = _mm512_castsi512_ps(g.words(4 * k));
    hi = _mm512_castsi512_ps(g.words(4 * k + 4));
  } else {
    const __m512i w = g.words(2 * k);  // value k in the low half of each word, k + 1 the high
    if constexpr (T == DType::BF16) {
      lo = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
      hi = _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32(int(0xFFFF0000u))));
    } else {
      // the 16 low halves, then the 16 high halves, each converted as 16 F16 values
      const __m512i halves =
          _mm512_set_epi16(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1, 30, 28, 26,
                           24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
      const __m512i split = _mm512_permutexvar_epi16(halves, w);
      lo = _mm512_cvtph_ps(_mm512_castsi512_si256(split));
      hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(split, 1));
    }
  }
}

// Y[b * ldy + r] = row r . X[b * ldx ..], b < NB, for the rows [r0, r0 + 16 k) of rows of n >= 2
// values of type T (row stride `stride` bytes), k = (r1 - r0) / 16. Returns the first row not
// done.
template <int NB, DType T>
inline int64_t dot_short_rows(const std::byte* rows, int64_t stride, int64_t r0, int64_t r1,
                              int64_t n, const float* X, int64_t ldx, float* Y, int64_t ldy) {
  const int64_t end = r0 + (r1 - r0) / 16 * 16;
  if (end == r0) return r0;
  // the vectors' values column by column, so that every broadcast is off one pointer
  alignas(64) float xt[kShortRow][NB];
  for (int64_t k = 0; k < n; ++k)
    for (int b = 0; b < NB; ++b) xt[k][b] = X[b * ldx + k];
  for (int64_t r = r0; r < end; r += 16) {
    const vnni::Rows16 g(rows, stride, r, r1);
    if (r + 32 <= r1)  // the next 16 rows, which follow in memory
      for (int64_t i = 0; i < 16 * stride; i += 64) _mm_prefetch(g.next + i, _MM_HINT_T0);
    // even and odd columns in sums of their own: two chains of FMAs a vector, not one
    __m512 even[NB], odd[NB];
    for (int b = 0; b < NB; ++b) even[b] = odd[b] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 2 <= n; k += 2) {
      __m512 lo, hi;
      column_pair<T>(g, k, lo, hi);
      for (int b = 0; b < NB; ++b) {
        even[b] = _mm512_fmadd_ps(lo, _mm512_set1_ps(xt[k][b]), even[b]);
        odd[b] = _mm512_fmadd_ps(hi, _mm512_set1_ps(xt[k + 1][b]), odd[b]);
      }
    }
    if (k < n) {  // an odd n's last value: the second of the pair before it
      __m512 lo, hi;
      column_pair<T>(g, n - 2, lo, hi);
      for (int b = 0; b < NB; ++b)
        odd[b] = _mm512_fmadd_ps(hi, _mm512_set1_ps(xt[n - 1][b]), odd[b]);
    }
    for (int b = 0; b < NB; ++b) _mm512_storeu_ps(Y + b * ldy + r, _mm512_add_ps(even[b], odd[b]));
  }
  return end;
}

// dot_short_rows for a row type t, where it applies (n in [2, kShortRow], a plain type); else
// nothing is done. Returns the first row not done.
template <int NB>
inline int64_t dot_short_rows(DType t, const std::byte* rows, int64_t stride, int64_t r0,
                              int64_t r1, int64_t n, const float* X, int64_t ldx, float* Y,
                              int64_t ldy) {
  if (n < 2 || n > kShortRow) return r0;
  switch (t) {
    case DType::F32:
      return dot_short_rows<NB, DType::F32>(rows, stride, r0, r1, n, X, ldx, Y, ldy);
    case DType::F16:
      return dot_short_rows<NB, DType::F16>(rows, stride, r0, r1, n, X, ldx, Y, ldy);
    case DType::BF16:
      return dot_short_rows<NB, DType::BF16>(rows, stride, r0, r1, n, X, ldx, Y, ldy);
    default:
      return r0;
  }
}

}  // namespace mamba::simd::kernels

#endif
