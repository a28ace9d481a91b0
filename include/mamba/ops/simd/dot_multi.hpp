#pragma once
// Rows of weights in their stored type against NB float vectors at once (batched decode): each
// weight is read and decoded once, into registers, and multiplies every vector there. Batched
// decode is compute-bound, so the decoding is what a block type costs on top of the FMAs: a
// 32-value Q8_0 block is two sign-extensions, two conversions and two scalings (AVX-512) for 16
// FMAs with 8 vectors. Scalar twin: vec_dot_row in ops/quant.hpp, one vector at a time.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "mamba/ops/blocks.hpp"
#include "mamba/ops/dtype.hpp"
#include "mamba/ops/simd/dot.hpp"
#include "mamba/ops/simd/dot_short_avx512.hpp"

// GCC 12 warns, falsely, inside the unmasked AVX-512 intrinsics once these decoders are inlined
// (bug 105593, as in ops_avx512.hpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace mamba::simd::kernels {

// A decoder splits a row of n values into chunks of V vectors of W weights; decode() writes a
// chunk's weights as floats (scales applied) and the offsets in x of each vector.

// Plain values (F32, F16, BF16): a chunk is one vector, and a last partial vector is the tail.
template <class O, DType T>
struct PlainChunks {
  static constexpr int V = 1;
  static constexpr bool kHalf = T != DType::F32;  // 16-bit values, converted to float
  static int64_t chunks(int64_t n) { return n / O::W; }
  static void decode(const std::byte* row, int64_t c, typename O::F* w, int64_t* off) {
    off[0] = c * O::W;
    w[0] = load_plain<O, T>(row, off[0]);
  }
  static typename O::F tail(const std::byte* row, int64_t i, int rest) {
    return load_plain_part<O, T>(row, i, rest);
  }
};

// Q8_0: a chunk is a block of 32: d * q.
template <class O>
struct Q8_0Chunks {
  static constexpr int V = 32 / O::W;
  static int64_t chunks(int64_t n) { return n / 32; }
  static void decode(const std::byte* row, int64_t c, typename O::F* w, int64_t* off) {
    const std::byte* p = row + c * int64_t(sizeof(BlockQ8_0));
    const auto d = O::set1(f16_at(p));
    const auto* qs = reinterpret_cast<const int8_t*>(p + 2);
    for (int v = 0; v < V; ++v) {
      off[v] = 32 * c + v * O::W;
      w[v] = O::mul(d, O::to_float(O::load_i8(qs + v * O::W)));
    }
  }
};

// Q4_0: a chunk is a block of 32: d q - 8 d, low nibbles the first 16 values, high the last.
template <class O>
struct Q4_0Chunks {
  static constexpr int V = 32 / O::W;
  static int64_t chunks(int64_t n) { return n / 32; }
  static void decode(const std::byte* row, int64_t c, typename O::F* w, int64_t* off) {
    const std::byte* p = row + c * int64_t(sizeof(BlockQ4_0));
    const float df = f16_at(p);
    const auto d = O::set1(df), m = O::set1(-8.0f * df);
    const auto* qs = reinterpret_cast<const uint8_t*>(p + 2);
    for (int v = 0; v < V / 2; ++v) {
      const auto q = O::load_u8(qs + v * O::W);
      off[v] = 32 * c + v * O::W;
      off[V / 2 + v] = off[v] + 16;
      w[v] = O::fma(d, O::to_float(O::iand(q, 0xF)), m);
      w[V / 2 + v] = O::fma(d, O::to_float(O::template ishr<4>(q)), m);
    }
  }
};

// Q4_K: a chunk is two sub-blocks of 32 (s, s + 1) sharing their 32 bytes of nibbles:
// d sc q - dmin m.
template <class O>
struct Q4_KChunks {
  static constexpr int V = 64 / O::W;
  static int64_t chunks(int64_t n) { return n / 64; }
  static void decode(const std::byte* row, int64_t c, typename O::F* w, int64_t* off) {
    const std::byte* p = row + (c / 4) * int64_t(sizeof(BlockQ4_K));
    const int s = 2 * int(c % 4);
    const float d = f16_at(p), dmin = f16_at(p + 2);
    const auto* scales = reinterpret_cast<const uint8_t*>(p + 4);
    const auto* qs = reinterpret_cast<const uint8_t*>(p + 16) + 16 * s;
    uint8_t sc0, m0, sc1, m1;
    q4k_scale_min(s, scales, sc0, m0);
    q4k_scale_min(s + 1, scales, sc1, m1);
    const auto d0 = O::set1(d * sc0), d1 = O::set1(d * sc1);
    const auto n0 = O::set1(-(dmin * m0)), n1 = O::set1(-(dmin * m1));
    for (int v = 0; v < V / 2; ++v) {
      const auto q = O::load_u8(qs + v * O::W);
      off[v] = 64 * c + v * O::W;
      off[V / 2 + v] = off[v] + 32;
      w[v] = O::fma(d0, O::to_float(O::iand(q, 0xF)), n0);
      w[V / 2 + v] = O::fma(d1, O::to_float(O::template ishr<4>(q)), n1);
    }
  }
};

// Q6_K: a chunk is the four vectors Q6Quarters decodes at one lane offset i of a half-block:
// values i, i + 32, i + 64, i + 96, each times d and its sub-block's scale.
template <class O>
struct Q6_KChunks {
  static constexpr int V = 4;
  static constexpr int kPerHalf = 32 / O::W;
  static int64_t chunks(int64_t n) { return n / kQK_K * 2 * kPerHalf; }
  static void decode(const std::byte* row, int64_t c, typename O::F* w, int64_t* off) {
    const int64_t b = c / (2 * kPerHalf);
    const int half = int(c / kPerHalf % 2), i = int(c % kPerHalf) * O::W;
    const std::byte* p = row + b * int64_t(sizeof(BlockQ6_K));
    const auto* ql = reinterpret_cast<const uint8_t*>(p) + 64 * half;
    const auto* qh = reinterpret_cast<const uint8_t*>(p + 128) + 32 * half;
    const auto* sch = reinterpret_cast<const int8_t*>(p + 192) + 8 * half;
    const float d = f16_at(p + 208);
    const Q6Quarters<O> q(ql, qh, i);
    const int g = i / 16;
    const int64_t x0 = b * kQK_K + 128 * half + i;
    for (int v = 0; v < 4; ++v) off[v] = x0 + 32 * v;
    w[0] = O::mul(O::set1(d * sch[g]), O::to_float(q.q0));
    w[1] = O::mul(O::set1(d * sch[2 + g]), O::to_float(q.q1));
    w[2] = O::mul(O::set1(d * sch[4 + g]), O::to_float(q.q2));
    w[3] = O::mul(O::set1(d * sch[6 + g]), O::to_float(q.q3));
  }
};

// v held in a register from here on. GCC folds a load into every FMA that uses it, so with R
// rows each x vector was loaded R times: 18 loads for 16 FMAs per F16 chunk, more than the two
// 512-bit loads a cycle allow.
template <class F>
inline void in_register(F& v) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __asm__("" : "+v"(v));
#else  // (only the x86 kernels take several rows at a time)
  (void)v;
#endif
}

// The sums of W registers in one, lane i the sum of a[i] (a transposing tree), where the ISA has
// one.
template <class O>
inline auto reduce_lanes(const typename O::F* a) -> decltype(O::reduce16(a)) {
  return O::reduce16(a);
}
template <class O>
inline auto reduce_lanes(const typename O::F* a) -> decltype(O::reduce8(a)) {
  return O::reduce8(a);
}

// f.template operator()<B, G>() for the groups of vectors [B, B + G) that split [B0, NB) into
// groups of at most kGroup, in order.
template <int B0, int NB, int kGroup, class F>
inline void for_groups(F&& f) {
  constexpr int G = NB - B0 < kGroup ? NB - B0 : kGroup;
  f.template operator()<B0, G>();
  if constexpr (B0 + G < NB) for_groups<B0 + G, NB, kGroup>(f);
}

// Y[b * ldy + r] = row r . X[b * ldx ..] for rows [r0, r1) and NB vectors: R rows at a time, and
// those rows against the vectors kGroup at a time.
template <class O, int NB, class Chunks>
inline void dot_rows_chunks(const std::byte* rows, int64_t stride, int64_t r0, int64_t r1,
                            int64_t n, const float* X, int64_t ldx, float* Y, int64_t ldy) {
  using F = typename O::F;
  constexpr int W = O::W, V = Chunks::V;
  // R * kGroup accumulators, R * V weights and a vector of X must fit the registers. On AVX2,
  // F16 and BF16 rows go three at a time against 4 vectors at a time: 12 accumulators, 3 rows'
  // weights and the vector of X fill the 16 registers, and each load of X feeds 3 FMAs (the
  // second group reads the rows again, from L1). Loads are what limits: this core gave 1.5
  // 256-bit loads a cycle from L1. Against two rows at a time, with the prefetch below and the
  // rows and vectors held in registers, alternated in one process (8 vectors, 2 threads, from
  // memory): F16 in_proj (3072 x 768) 72 -> 93 GFLOP/s, out_proj 73 -> 87, the 50280-row lm_head
  // 79 -> 102, BF16 in_proj 68 -> 87; 1 thread from L2 50 -> 59; dt_proj's rows of 48 values
  // unchanged. One row against all 8 vectors was slower still (50 against two rows' 67-74 from
  // L2). F32, whose weights are loaded as they are, lost 5-10% with two rows. (AVX-512, 32
  // registers: 8 vectors; F16 and BF16 rows three at a time, 24 accumulators: a batch-8 step on
  // Emerald Rapids, alternated with two rows at a time in one process, 2 threads, F16 1.7-3%
  // faster, BF16 1.5%.)
  constexpr bool kHalves = requires {
    requires Chunks::kHalf;
  };
  constexpr bool kAvx2Halves = W == 8 && kHalves;
  constexpr int R = kHalves && W >= 8 ? 3 : W >= 16 && V <= 4 ? 2 : 1;
  constexpr int kGroup = kAvx2Halves ? 4 : NB;
  constexpr int kGroups = (NB + kGroup - 1) / kGroup;
  const int64_t nc = Chunks::chunks(n);
  // The weights stream from memory (the model is far larger than the caches) and, with NB
  // vectors' FMAs per weight, slowly enough that the hardware prefetchers fall behind at the 4 KiB
  // pages: without this, F32 and F16 in_proj (3072 x 768) ran at 25-35 GFLOP/s from memory and
  // 70-80 from L3. So the rows kAhead rows on are prefetched into L2 (not L1: with 1536-wide
  // vectors, X fills most of it) while these R rows are multiplied: the R rows' bytes spread
  // evenly over every group's chunks, `step` bytes a chunk, so that the memory is kept busy
  // through all the groups (with a prefetch only in the first group, three AVX2 F16 rows
  // against 8 vectors ran 3-16% slower from memory).
  // A step is at most 128 bytes (two rows of AVX-512 F32 chunks); 0 in a range of fewer than R
  // rows, which has no rows on.
  constexpr int64_t kAhead = 4;
  const int64_t steps = kGroups * nc;
  const int64_t step = steps > 0 && r1 - r0 >= R ? R * stride / steps : 0;
  for (int64_t r = r0; r < r1; r += R) {
    const int nr = r + R <= r1 ? R : int(r1 - r);
    // the R rows kAhead on, or the range's last R rows
    const std::byte* ahead = rows + std::max(std::min(r + kAhead, r1 - R), r0) * stride;
    for_groups<0, NB, kGroup>([&]<int B, int G>() {
      const float* Xg = X + B * ldx;
      float* Yg = Y + B * ldy;
      F acc[R][G];
      for (int k = 0; k < R; ++k)
        for (int b = 0; b < G; ++b) acc[k][b] = O::zero();
      // each group makes its own row and vector pointers: made once outside the groups and read
      // through the closure, GCC loaded them again every chunk (three rows: 3 loads more for the
      // kernel's own 7)
      const std::byte* wg[R];
      for (int k = 0; k < R; ++k) wg[k] = rows + (r + (k < nr ? k : 0)) * stride;
      const float* xg[G];
      for (int b = 0; b < G; ++b) xg[b] = Xg + b * ldx;
      const std::byte* pf = ahead + B / kGroup * nc * step;
      for (int64_t c = 0; c < nc; ++c, pf += step) {
#if defined(__GNUC__) || defined(__clang__)
        __builtin_prefetch(pf, 0, 2);
        if (step > 64) __builtin_prefetch(pf + 64, 0, 2);
#endif
        F wv[R][V];
        int64_t off[R][V];
        for (int k = 0; k < R; ++k) Chunks::decode(wg[k], c, wv[k], off[k]);
        for (int v = 0; v < V; ++v)
          for (int b = 0; b < G; ++b) {
            F xv = O::load(xg[b] + off[0][v]);
            if constexpr (R > 1) in_register(xv);
            for (int k = 0; k < R; ++k) acc[k][b] = O::fma(wv[k][v], xv, acc[k][b]);
          }
      }
      if constexpr (requires { Chunks::tail(nullptr, 0, 0); }) {
        const int64_t i = nc * W;
        if (i < n) {
          const int rest = int(n - i);
          for (int k = 0; k < R; ++k) {
            const F wv = Chunks::tail(wg[k], i, rest);
            for (int b = 0; b < G; ++b)
              acc[k][b] = O::fma(wv, O::load_part(xg[b] + i, rest), acc[k][b]);
          }
        }
      }
      if constexpr (requires(const F* a) { reduce_lanes<O>(a); }) {
        // the R * G sums W at a time (a transposing tree: about a third of the instructions of
        // one reduce each, which cost 10% of an F16 in_proj at 8 vectors on AVX-512)
        constexpr int N = R * G;
        alignas(64) float sums[(N + W - 1) / W * W];
        for (int i0 = 0; i0 < N; i0 += W) {
          F lanes[W];
          for (int i = 0; i < W; ++i)
            lanes[i] = i0 + i < N ? acc[(i0 + i) / G][(i0 + i) % G] : O::zero();
          O::store(sums + i0, reduce_lanes<O>(lanes));
        }
        for (int k = 0; k < nr; ++k)
          for (int b = 0; b < G; ++b) Yg[b * ldy + r + k] = sums[k * G + b];
      } else {
        for (int k = 0; k < nr; ++k)
          for (int b = 0; b < G; ++b) Yg[b * ldy + r + k] = O::reduce(acc[k][b]);
      }
    });
  }
}

// Y[b * ldy + r] = row r . X[b * ldx ..] for rows [r0, r1) of a matrix (row stride `stride`
// bytes) and NB vectors of n values: each row is read once for all NB vectors.
template <class O, int NB>
inline void dot_rows_multi(DType t, const std::byte* rows, int64_t stride, int64_t r0, int64_t r1,
                           int64_t n, const float* X, int64_t ldx, float* Y, int64_t ldy) {
  auto run = [&]<class Chunks>() {
    dot_rows_chunks<O, NB, Chunks>(rows, stride, r0, r1, n, X, ldx, Y, ldy);
  };
  switch (t) {
    case DType::F32:
      return run.template operator()<PlainChunks<O, DType::F32>>();
    case DType::F16:
      return run.template operator()<PlainChunks<O, DType::F16>>();
    case DType::BF16:
      return run.template operator()<PlainChunks<O, DType::BF16>>();
    case DType::Q8_0:
      return run.template operator()<Q8_0Chunks<O>>();
    case DType::Q4_0:
      return run.template operator()<Q4_0Chunks<O>>();
    case DType::Q4_K:
      return run.template operator()<Q4_KChunks<O>>();
    case DType::Q6_K:
      return run.template operator()<Q6_KChunks<O>>();
  }
}

// The same for any number nb of vectors, 8 at a time. On AVX-512, short rows go 16 at a time
// through dot_short_avx512.hpp, and the row kernel takes the rest.
template <class O>
inline void dot_rows_multi(DType t, const std::byte* rows, int64_t stride, int64_t r0, int64_t r1,
                           int64_t n, const float* X, int64_t ldx, int64_t nb, float* Y,
                           int64_t ldy) {
  for (int64_t b = 0; b < nb; b += 8, X += 8 * ldx, Y += 8 * ldy)
    with_count8(nb - b, [&]<int NB>() {
      int64_t r = r0;
#if defined(MAMBA_SIMD_AVX512)
      if constexpr (std::is_same_v<O, Avx512Ops>)
        r = dot_short_rows<NB>(t, rows, stride, r0, r1, n, X, ldx, Y, ldy);
#endif
      dot_rows_multi<O, NB>(t, rows, stride, r, r1, n, X, ldx, Y, ldy);
    });
}

}  // namespace mamba::simd::kernels

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
