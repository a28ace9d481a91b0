#pragma once
// Integer dot products of block-quantized rows with an activation vector quantized to 8 bits
// (Q8_0 blocks for Q8_0/Q4_0 rows, Q8_K super-blocks for Q4_K/Q6_K rows), on AVX2: vpmaddubsw
// multiplies 32 unsigned bytes by 32 signed bytes and adds neighbours into 16-bit lanes; vpmaddwd
// adds those pairs into 32-bit lanes, by ones or by a sub-block's scale (K-quants). The weights'
// quants enter unsigned (Q4_0, Q4_K and Q6_K store them so, with an offset undone per block from
// the activations' sums); signed Q8_0 quants meet the activations by their signs. Used where
// AVX-512 VNNI (dot_q8_avx512.hpp) is not. Scalar twin: vec_dot_row_q8 in ops/quant.hpp.
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define MAMBA_SIMD_AVX2_INT8 1
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mamba/ops/blocks.hpp"
#include "mamba/ops/dtype.hpp"
#include "mamba/ops/half.hpp"
#include "mamba/ops/quant.hpp"
#include "mamba/ops/simd/dot.hpp"
#include "mamba/ops/simd/ops_avx2.hpp"

namespace mamba::simd::avx2_int8 {

using kernels::f16_at;
using kernels::prefetch_ahead;

// ---------------------------------------------------------------------------------------------
// The activations, quantized once per matrix-vector product, are packed (pack_activation):
//   Q8_0 rows: the n quants, 32 per block, contiguous; then per block float d, its scale.
//   Q4_0 rows: per two blocks A and B (B zero past the end) a record of 128 bytes that matches
//     the nibbles of two blocks in one register: the quants 0..15 of A then of B; the quants
//     16..31 of A then of B; their scales d as 8 floats (A 4 times, then B); the offsets as 8
//     int32 (-8 sum(q) of A, 3 zeros, of B, 3 zeros), which undo the nibbles' offset (0..15
//     stand for -8..7).
//   Q4_K and Q6_K rows: the Q8_K super-blocks as they are.
inline constexpr int64_t kQ4_0PairBytes = 128;
inline int64_t packed_bytes(DType t, int64_t n) {
  if (t == DType::Q8_0) return n + n / 32 * 4;
  if (t == DType::Q4_0) return (n / 32 + 1) / 2 * kQ4_0PairBytes;
  return activation_bytes(ActType::Q8_K, n);
}

// out (packed_bytes(t, n) bytes) = xq = quantize_activation(activation_type(t), x) in
// the kernels' layout; returns what to hand them (xq itself for the K-quants).
inline const std::byte* pack_activation(DType t, const std::byte* xq, int64_t n, std::byte* out) {
  const int64_t nb = n / 32;
  auto block = [&](int64_t b) { return xq + b * int64_t(sizeof(BlockQ8_0)); };
  if (t == DType::Q8_0) {
    auto* d = reinterpret_cast<float*>(out + n);
    for (int64_t b = 0; b < nb; ++b) {
      std::memcpy(out + 32 * b, block(b) + 2, 32);
      d[b] = f16_at(block(b));
    }
    return out;
  }
  if (t != DType::Q4_0) return xq;
  std::memset(out, 0, size_t(packed_bytes(t, n)));
  for (int64_t b = 0; b < nb; ++b) {
    std::byte* rec = out + b / 2 * kQ4_0PairBytes;
    const int h = int(b % 2);  // A or B
    const std::byte* q = block(b) + 2;
    std::memcpy(rec + 16 * h, q, 16);
    std::memcpy(rec + 32 + 16 * h, q + 16, 16);
    int32_t sum = 0;
    for (int j = 0; j < 32; ++j) sum += int8_t(q[j]);
    std::fill_n(reinterpret_cast<float*>(rec + 64) + 4 * h, 4, f16_at(block(b)));
    reinterpret_cast<int32_t*>(rec + 96)[4 * h] = -8 * sum;
  }
  return out;
}

inline float reduce_add(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}
inline __m256i ones16() {
  return _mm256_set1_epi16(1);
}

// Q8_0 rows against one vector (two blocks a step, two accumulators) or NB vectors (each block
// read once for all of them): |w| times x with w's signs, in 8 int32 lanes per block.
struct Q8_0Block {
  static constexpr int64_t kBytes = sizeof(BlockQ8_0);
  __m256i w, abs_w;
  float d;
  explicit Q8_0Block(const std::byte* p)
      : w(load256(p + 2)), abs_w(_mm256_abs_epi8(w)), d(f16_at(p)) {}
  // the integer products with block b of the vector packed at x
  __m256 products(const std::byte* x, int64_t b) const {
    const __m256i p16 = _mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(load256(x + 32 * b), w));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones16()));
  }
};
inline const float* q8_0_scales(const std::byte* xp, int64_t n) {
  return reinterpret_cast<const float*>(xp + n);
}
inline float dot_q8_0(const std::byte* row, const std::byte* xp, int64_t n) {
  constexpr int64_t BB = Q8_0Block::kBytes;
  const int64_t nb = n / 32;
  const float* dx = q8_0_scales(xp, n);
  auto term = [&](int64_t b, __m256 acc) {
    const Q8_0Block w(row + b * BB);
    return _mm256_fmadd_ps(_mm256_set1_ps(w.d * dx[b]), w.products(xp, b), acc);
  };
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    prefetch_ahead(row + b * BB, 2 * BB);
    a0 = term(b, a0);
    a1 = term(b + 1, a1);
  }
  if (b < nb) a0 = term(b, a0);
  return reduce_add(_mm256_add_ps(a0, a1));
}
// y[v * ldy] = row . vector v (packed at xp + v * bytes) for v < NB
template <int NB>
inline void dot_q8_0_multi(const std::byte* row, const std::byte* xp, int64_t bytes, int64_t n,
                           float* y, int64_t ldy) {
  constexpr int64_t BB = Q8_0Block::kBytes;
  __m256 acc[NB];
  for (int v = 0; v < NB; ++v) acc[v] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / 32; ++b) {
    prefetch_ahead(row + b * BB, BB);
    const Q8_0Block w(row + b * BB);
    const __m256 dw = _mm256_set1_ps(w.d);
    for (int v = 0; v < NB; ++v) {
      const std::byte* x = xp + v * bytes;
      const __m256 dx = _mm256_broadcast_ss(q8_0_scales(x, n) + b);
      acc[v] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx), w.products(x, b), acc[v]);
    }
  }
  for (int v = 0; v < NB; ++v) y[v * ldy] = reduce_add(acc[v]);
}

// Q8_0 rows against 8 vectors: y[v * ldy] = row . vector v (packed at xp + v * bytes), v < 8.
// The per-vector float work of dot_q8_0_multi (convert, scale, add: 3 of its 6 operations per
// block and vector) is done once for all 8: per block, the 8 vectors' int32 sums are reduced into
// one register (lane v: vector v) by Avx2Ops::reduce8, then converted and scaled with the 8
// vectors' scales dx8 (8 floats per block). 8-14% faster on the AVX2 machine at 8 vectors; fewer
// vectors leave too much of the tree empty to gain.
inline void dot_q8_0_multi8(const std::byte* row, const std::byte* xp, int64_t bytes, int64_t n,
                            const float* dx8, float* y, int64_t ldy) {
  constexpr int64_t BB = Q8_0Block::kBytes;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / 32; ++b) {
    prefetch_ahead(row + b * BB, BB);
    const Q8_0Block w(row + b * BB);
    __m256i m[8];
    for (int v = 0; v < 8; ++v)
      m[v] = _mm256_madd_epi16(
          _mm256_maddubs_epi16(w.abs_w, _mm256_sign_epi8(load256(xp + v * bytes + 32 * b), w.w)),
          ones16());
    const __m256 d = _mm256_mul_ps(_mm256_set1_ps(w.d), _mm256_loadu_ps(dx8 + 8 * b));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(Avx2Ops::reduce8(m)), acc);
  }
  alignas(32) float sums[8];
  _mm256_store_ps(sums, acc);
  for (int v = 0; v < 8; ++v) y[v * ldy] = sums[v];
}

// Two Q4_0 blocks A and B (B absent past the row's end) in one register: their 16 bytes of
// nibbles side by side, the low nibbles (quants 0..15) and the high (16..31) as unsigned bytes,
// and their scales (A in lanes 0-3, B in 4-7), to meet a record of the packed activations.
struct Q4_0Pair {
  static constexpr int64_t kBytes = 2 * int64_t(sizeof(BlockQ4_0));
  __m256i lo, hi;
  __m256 d;
  Q4_0Pair(const std::byte* p, bool both) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
    const __m256i v =
        both ? _mm256_inserti128_si256(_mm256_castsi128_si256(a),
                                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 20)), 1)
             : _mm256_zextsi128_si256(a);
    const __m256i m = _mm256_set1_epi8(0x0F);
    lo = _mm256_and_si256(v, m);
    hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
    uint16_t da, db = 0;
    std::memcpy(&da, p, 2);
    if (both) std::memcpy(&db, p + 18, 2);
    const __m128 s = _mm_cvtph_ps(_mm_cvtsi32_si128(int(da | uint32_t(db) << 16)));
    d = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(s),
                                 _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
  }
  // acc + the two blocks' products with the record at x
  __m256 term(const std::byte* x, __m256 acc) const {
    const __m256i p16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, load256(x)),
                                         _mm256_maddubs_epi16(hi, load256(x + 32)));
    const __m256i s = _mm256_add_epi32(_mm256_madd_epi16(p16, ones16()), load256(x + 96));
    const __m256 dx = _mm256_loadu_ps(reinterpret_cast<const float*>(x + 64));
    return _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(s), acc);
  }
};
// Four pairs a step, four accumulators: against two, a decoded Q4_0 token took 2% less time on 2
// threads (two token-by-token A/Bs; 1 thread 1-4%).
inline float dot_q4_0(const std::byte* row, const std::byte* xp, int64_t n) {
  constexpr int64_t PB = Q4_0Pair::kBytes, XB = kQ4_0PairBytes;
  const int64_t nb = n / 32;
  __m256 a[4];
  for (auto& v : a) v = _mm256_setzero_ps();
  int64_t k = 0;  // pairs
  for (; 2 * k + 8 <= nb; k += 4) {
    prefetch_ahead(row + k * PB, 4 * PB);
    for (int j = 0; j < 4; ++j)
      a[j] = Q4_0Pair(row + (k + j) * PB, true).term(xp + (k + j) * XB, a[j]);
  }
  for (; 2 * k < nb; ++k) a[0] = Q4_0Pair(row + k * PB, 2 * k + 1 < nb).term(xp + k * XB, a[0]);
  return reduce_add(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
}
template <int NB>
inline void dot_q4_0_multi(const std::byte* row, const std::byte* xp, int64_t bytes, int64_t n,
                           float* y, int64_t ldy) {
  constexpr int64_t PB = Q4_0Pair::kBytes, XB = kQ4_0PairBytes;
  const int64_t nb = n / 32;
  __m256 acc[NB];
  for (int v = 0; v < NB; ++v) acc[v] = _mm256_setzero_ps();
  for (int64_t k = 0; 2 * k < nb; ++k) {
    prefetch_ahead(row + k * PB, PB);
    const Q4_0Pair w(row + k * PB, 2 * k + 1 < nb);
    for (int v = 0; v < NB; ++v) acc[v] = w.term(xp + v * bytes + k * XB, acc[v]);
  }
  for (int v = 0; v < NB; ++v) y[v * ldy] = reduce_add(acc[v]);
}

// For a vector of 8 int16 (the same in both 128-bit lanes), the shuffle that spreads word j over
// the low lane and word k over the high lane: from a table, so that it is one load.
struct WordShuffle {
  alignas(32) uint8_t bytes[32];
};
constexpr WordShuffle spread_words_mask(int j, int k) {
  WordShuffle m{};
  for (int i = 0; i < 16; i += 2) {
    m.bytes[i] = uint8_t(2 * j), m.bytes[i + 1] = uint8_t(2 * j + 1);
    m.bytes[16 + i] = uint8_t(2 * k), m.bytes[17 + i] = uint8_t(2 * k + 1);
  }
  return m;
}
// word j over both lanes (Q4_K's scale j); words 2k and 2k + 1 (Q6_K's scales of 16)
inline constexpr WordShuffle kSpreadSame[8] = {spread_words_mask(0, 0), spread_words_mask(1, 1),
                                               spread_words_mask(2, 2), spread_words_mask(3, 3),
                                               spread_words_mask(4, 4), spread_words_mask(5, 5),
                                               spread_words_mask(6, 6), spread_words_mask(7, 7)};
inline constexpr WordShuffle kSpreadPair[4] = {spread_words_mask(0, 1), spread_words_mask(2, 3),
                                               spread_words_mask(4, 5), spread_words_mask(6, 7)};

// sum_j scale(j) (q(j) . x_j) over a super-block's 8 groups of 32 values, in 8 int32 lanes (x: a
// Q8_K super-block)
template <class S>
inline __m256i scaled_sums(const S& s, const std::byte* x) {
  __m256i isum = _mm256_setzero_si256();
  for (int j = 0; j < 8; ++j)
    isum = _mm256_add_epi32(
        isum, _mm256_madd_epi16(_mm256_maddubs_epi16(s.q(j), load256(x + 4 + 32 * j)), s.scale(j)));
  return isum;
}

// A Q4_K super-block: per 32-value sub-block j its quants (unsigned bytes) and its 6-bit scale
// spread over 16 words (q(j), scale(j)); the 8 mins in words; the two scales. Per 64 values the
// row holds 32 bytes of nibbles: the low ones the sub-block 2k, the high ones 2k + 1.
struct Q4_KView {
  static constexpr int64_t kBytes = sizeof(BlockQ4_K);
  const std::byte* p;
  __m256i sc16;  // the scales in words, the same in both lanes
  __m128i mins;
  float d, dmin;

  explicit Q4_KView(const std::byte* block) : p(block), d(f16_at(block)), dmin(f16_at(block + 2)) {
    // the 8 scales and 8 mins (q4k_scale_min), four at a time in 32-bit words
    uint32_t u[3];
    std::memcpy(u, p + 4, 12);
    const uint64_t sc = uint64_t(u[0] & 0x3F3F3F3F) |
                        uint64_t((u[2] & 0x0F0F0F0F) | ((u[0] >> 2) & 0x30303030)) << 32;
    const uint64_t mn = uint64_t(u[1] & 0x3F3F3F3F) |
                        uint64_t(((u[2] >> 4) & 0x0F0F0F0F) | ((u[1] >> 2) & 0x30303030)) << 32;
    sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(sc))));
    mins = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(mn)));
  }
  __m256i q(int j) const {
    const __m256i v = load256(p + 16 + 32 * (j / 2));
    return _mm256_and_si256(j % 2 ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(0x0F));
  }
  __m256i scale(int j) const { return _mm256_shuffle_epi8(sc16, load256(kSpreadSame[j].bytes)); }
  template <class S>
  static __m256 term(const S& s, const std::byte* x, __m256 acc);
};
// acc + a Q4_K super-block's dot product with the Q8_K super-block at x: d dx sum_j scale_j
// (q_j . x_j) - dmin dx sum_j min_j (the sum of x over sub-block j, from its sums of 16).
template <class S>
inline __m256 Q4_KView::term(const S& s, const std::byte* x, __m256 acc) {
  const __m256i isum = scaled_sums(s, x);
  const __m128i bs0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 4 + kQK_K));
  const __m128i bs1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 20 + kQK_K));
  const __m128i msum = _mm_madd_epi16(s.mins, _mm_hadd_epi16(bs0, bs1));
  // one dependent step per super-block: acc + dx (d isum - dmin msum)
  const __m256 t = _mm256_fmsub_ps(
      _mm256_set1_ps(s.d), _mm256_cvtepi32_ps(isum),
      _mm256_mul_ps(_mm256_set1_ps(s.dmin), _mm256_cvtepi32_ps(_mm256_zextsi128_si256(msum))));
  return _mm256_fmadd_ps(_mm256_broadcast_ss(reinterpret_cast<const float*>(x)), t, acc);
}

// A Q6_K super-block: per 32 values j (of the half j / 4, at lane offset 32 (j % 4)) the 6-bit
// quants (0..63, unsigned) and their two scales of 16 spread over the words (q(j), scale(j)); all
// 16 scales in words; d. The offset of 32 is undone with the activations' sums of 16.
struct Q6_KView {
  static constexpr int64_t kBytes = sizeof(BlockQ6_K);
  const std::byte* p;
  __m256i scales;
  float d;

  explicit Q6_KView(const std::byte* block)
      : p(block),
        scales(_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 192)))),
        d(f16_at(p + 208)) {}
  __m256i q(int j) const {
    const int h = j / 4, k = j % 4;
    const __m256i l = load256(p + 64 * h + 32 * (k % 2)), qh = load256(p + 128 + 32 * h);
    // low 4 bits: the low nibbles for k < 2, else the high; bits 4-5: the pair 2k of qh
    const __m256i lo = k < 2 ? l : _mm256_srli_epi16(l, 4);
    const __m256i hi = k == 0   ? _mm256_slli_epi16(qh, 4)
                       : k == 1 ? _mm256_slli_epi16(qh, 2)
                       : k == 2 ? qh
                                : _mm256_srli_epi16(qh, 2);
    return _mm256_or_si256(_mm256_and_si256(lo, _mm256_set1_epi8(0x0F)),
                           _mm256_and_si256(hi, _mm256_set1_epi8(0x30)));
  }
  __m256i scale(int j) const {
    // the 8 scales of half j / 4 in both lanes, words 2k and 2k + 1 spread
    const __m256i half =
        j < 4 ? _mm256_permute4x64_epi64(scales, 0x44) : _mm256_permute4x64_epi64(scales, 0xEE);
    return _mm256_shuffle_epi8(half, load256(kSpreadPair[j % 4].bytes));
  }
  template <class S>
  static __m256 term(const S& s, const std::byte* x, __m256 acc);
};
// acc + a Q6_K super-block's dot product with the Q8_K super-block at x.
template <class S>
inline __m256 Q6_KView::term(const S& s, const std::byte* x, __m256 acc) {
  // - 32 sum_s scale_s bsum_s
  const __m256i offset = _mm256_madd_epi16(s.scales, load256(x + 4 + kQK_K));
  const __m256i isum = _mm256_sub_epi32(scaled_sums(s, x), _mm256_slli_epi32(offset, 5));
  const __m256 dx = _mm256_broadcast_ss(reinterpret_cast<const float*>(x));
  return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(s.d), dx), _mm256_cvtepi32_ps(isum), acc);
}

// A view's quants and scales decoded into registers once, for several vectors.
template <class View>
struct Decoded : View {
  __m256i qs[8], ss[8];
  explicit Decoded(const std::byte* block) : View(block) {
    for (int j = 0; j < 8; ++j) qs[j] = View::q(j), ss[j] = View::scale(j);
  }
  __m256i q(int j) const { return qs[j]; }
  __m256i scale(int j) const { return ss[j]; }
};

// y[v * ldy] = row . vector v (Q8_K super-blocks at xq + v * bytes) for v < NB, each super-block
// of the row decoded once (K: Q4_KView or Q6_KView).
template <int NB, class K>
inline void dot_super_blocks_multi(const std::byte* row, const std::byte* xq, int64_t bytes,
                                   int64_t n, float* y, int64_t ldy) {
  constexpr int64_t bb = K::kBytes, xb = sizeof(BlockQ8_K);
  __m256 acc[NB];
  for (int v = 0; v < NB; ++v) acc[v] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const std::byte* p = row + b * bb;
    prefetch_ahead(p, bb);
    if constexpr (NB == 1) {
      acc[0] = K::term(K(p), xq + b * xb, acc[0]);
    } else {
      const Decoded<K> s(p);
      for (int v = 0; v < NB; ++v) acc[v] = K::term(s, xq + v * bytes + b * xb, acc[v]);
    }
  }
  for (int v = 0; v < NB; ++v) y[v * ldy] = reduce_add(acc[v]);
}

// y[v * ldy] = row . vector v (packed at xp + v * bytes) for v < NB, Q8_0, Q4_0, Q4_K or Q6_K rows
template <int NB>
inline void dot_row_multi(DType t, const std::byte* row, const std::byte* xp, int64_t bytes,
                          int64_t n, float* y, int64_t ldy) {
  switch (t) {
    case DType::Q8_0:
      return dot_q8_0_multi<NB>(row, xp, bytes, n, y, ldy);
    case DType::Q4_0:
      return dot_q4_0_multi<NB>(row, xp, bytes, n, y, ldy);
    case DType::Q4_K:
      return dot_super_blocks_multi<NB, Q4_KView>(row, xp, bytes, n, y, ldy);
    case DType::Q6_K:
      return dot_super_blocks_multi<NB, Q6_KView>(row, xp, bytes, n, y, ldy);
    default:
      return;
  }
}

// y[r] = row r . x for the rows [r0, r1) of a matrix (row stride `stride` bytes), x packed by
// pack_activation; the type dispatched once.
inline void dot_rows_packed(DType t, const std::byte* rows, int64_t stride, int64_t r0, int64_t r1,
                            const std::byte* xp, int64_t n, float* y) {
  auto run = [&](auto dot) {
    for (int64_t r = r0; r < r1; ++r) y[r] = dot(rows + r * stride);
  };
  auto super_blocks = [&]<class K>() {
    run([&](const std::byte* row) {
      float sum;
      dot_super_blocks_multi<1, K>(row, xp, 0, n, &sum, 0);
      return sum;
    });
  };
  switch (t) {
    case DType::Q8_0:
      return run([&](const std::byte* row) { return dot_q8_0(row, xp, n); });
    case DType::Q4_0:
      return run([&](const std::byte* row) { return dot_q4_0(row, xp, n); });
    case DType::Q4_K:
      return super_blocks.template operator()<Q4_KView>();
    case DType::Q6_K:
      return super_blocks.template operator()<Q6_KView>();
    default:
      return;
  }
}

// row . x for packed activations (pack_activation): Q8_0, Q4_0, Q4_K, Q6_K rows.
inline float dot_row_packed(DType t, const std::byte* row, const std::byte* xp, int64_t n) {
  float y;
  dot_rows_packed(t, row, 0, 0, 1, xp, n, &y);
  return y;
}

// A few vectors (batched decode): each vector packed as for one, one after the other; for Q8_0
// rows then, per group of 8 vectors, per block, the 8 vectors' scales (dot_q8_0_multi8).
inline int64_t multi_scales_bytes(DType t, int64_t n, int64_t nb) {
  return t == DType::Q8_0 ? nb / 8 * (n / 32) * 8 * 4 : 0;
}
inline int64_t multi_packed_bytes(DType t, int64_t n, int64_t nb) {
  return nb * packed_bytes(t, n) + multi_scales_bytes(t, n, nb);
}
inline void pack_activations_multi(DType t, const std::byte* xq, int64_t ldq, int64_t n, int64_t nb,
                                   std::byte* out) {
  const int64_t bytes = packed_bytes(t, n);
  for (int64_t v = 0; v < nb; ++v) {
    const std::byte* xp = pack_activation(t, xq + v * ldq, n, out + v * bytes);
    if (xp != out + v * bytes) std::memcpy(out + v * bytes, xp, size_t(bytes));
  }
  if (multi_scales_bytes(t, n, nb) == 0) return;
  auto* dx8 = reinterpret_cast<float*>(out + nb * bytes);
  for (int64_t v = 0; v < nb / 8 * 8; ++v) {
    const float* dx = q8_0_scales(out + v * bytes, n);
    for (int64_t b = 0; b < n / 32; ++b) dx8[(v / 8 * (n / 32) + b) * 8 + v % 8] = dx[b];
  }
}
// Y[v * ldy + r] = row r . vector v for rows [r0, r1) and v < nb: each row read once for 8
// vectors.
inline void dot_rows_packed_multi(DType t, const std::byte* rows, int64_t stride, int64_t r0,
                                  int64_t r1, int64_t n, const std::byte* xp, int64_t nb, float* Y,
                                  int64_t ldy) {
  const int64_t bytes = packed_bytes(t, n);
  for (int64_t v = 0; v < nb; v += 8) {
    if (t == DType::Q8_0 && nb - v >= 8) {
      const float* dx8 = reinterpret_cast<const float*>(xp + nb * bytes) + v / 8 * (n / 32) * 8;
      for (int64_t r = r0; r < r1; ++r)
        dot_q8_0_multi8(rows + r * stride, xp + v * bytes, bytes, n, dx8, Y + v * ldy + r, ldy);
      continue;
    }
    kernels::with_count8(nb - v, [&]<int NB>() {
      for (int64_t r = r0; r < r1; ++r)
        dot_row_multi<NB>(t, rows + r * stride, xp + v * bytes, bytes, n, Y + v * ldy + r, ldy);
    });
  }
}

// std::round (halves away from zero) of 8 floats, exactly: trunc, plus one where the dropped
// fraction is at least a half, with the sign put back.
inline __m256i round_away(__m256 t) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 a = _mm256_andnot_ps(sign, t);
  const __m256 r = _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 up = _mm256_cmp_ps(_mm256_sub_ps(a, r), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 m = _mm256_add_ps(r, _mm256_and_ps(up, _mm256_set1_ps(1.0f)));
  return _mm256_cvttps_epi32(_mm256_or_ps(m, _mm256_and_ps(sign, t)));
}
// 32 int32 (in -127..127) as 32 bytes, in order.
inline __m256i pack_bytes(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i v = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
  return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}
inline float reduce_max(__m256 a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}
inline int32_t reduce_add(__m256i a) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 1)));
}

// quantize_activation (ops/quant.hpp), the same bytes: Q8_0 blocks or Q8_K super-blocks.
inline void quantize_activation(ActType a, const float* x, std::byte* dst, int64_t n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  if (a == ActType::Q8_0) {
    for (int64_t b = 0; b < n / 32; ++b, x += 32) {
      __m256 v[4], m = _mm256_setzero_ps();
      for (int k = 0; k < 4; ++k) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
      }
      const float d = reduce_max(m) / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
      std::byte* out = dst + b * int64_t(sizeof(BlockQ8_0));
      const uint16_t dh = f32_to_f16(d);
      std::memcpy(out, &dh, 2);
      const __m256 vid = _mm256_set1_ps(id);
      __m256i q[4];
      for (int k = 0; k < 4; ++k) q[k] = round_away(_mm256_mul_ps(v[k], vid));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2), pack_bytes(q[0], q[1], q[2], q[3]));
    }
    return;
  }
  if (a == ActType::Q8_K) {
    for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
      std::byte* out = dst + b * int64_t(sizeof(BlockQ8_K));
      __m256 m = _mm256_setzero_ps();
      for (int j = 0; j < kQK_K; j += 8)
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
      const float amax = reduce_max(m);
      if (amax == 0.0f) {
        std::memset(out, 0, sizeof(BlockQ8_K));
        continue;
      }
      const float id = 127.0f / amax, d = 1.0f / id;
      std::memcpy(out, &d, 4);
      const __m256 vid = _mm256_set1_ps(id);
      const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
      int16_t bsums[16];
      for (int j = 0; j < kQK_K; j += 32) {
        __m256i q[4];
        for (int k = 0; k < 4; ++k)
          q[k] = _mm256_min_epi32(
              _mm256_max_epi32(
                  _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), vid)), lo),
              hi);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 4 + j),
                            pack_bytes(q[0], q[1], q[2], q[3]));
        bsums[j / 16] = int16_t(reduce_add(_mm256_add_epi32(q[0], q[1])));
        bsums[j / 16 + 1] = int16_t(reduce_add(_mm256_add_epi32(q[2], q[3])));
      }
      std::memcpy(out + 4 + kQK_K, bsums, sizeof(bsums));
    }
    return;
  }
  std::memcpy(dst, x, static_cast<size_t>(n) * 4);
}

}  // namespace mamba::simd::avx2_int8
#endif
