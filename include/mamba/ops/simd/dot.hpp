#pragma once
// Rows of weights in their stored type against float activations, on any packet type
// (ops_*.hpp): the dot product of one row with a vector (decode) and the decoding of a row to
// floats (prefill panels); the same for a few vectors at once (batched decode) is dot_multi.hpp.
// The blocks are decoded in registers; each weight byte is read once. Scalar twins: vec_dot_row and
// dequantize_row in ops/quant.hpp.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "mamba/ops/blocks.hpp"
#include "mamba/ops/dtype.hpp"
#include "mamba/ops/half.hpp"

namespace mamba::simd::kernels {

// A block's F16 scale: one instruction with F16C, else the scalar conversion.
inline float f16_at(const std::byte* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  return f16_to_f32(h);
#endif
}

// The W floats of a row of plain values at element i (F32, F16 or BF16), and the same masked.
template <class O, DType T>
inline typename O::F load_plain(const std::byte* row, int64_t i) {
  if constexpr (T == DType::F32) return O::load(reinterpret_cast<const float*>(row) + i);
  if constexpr (T == DType::F16) return O::load_f16(row + 2 * i);
  if constexpr (T == DType::BF16) return O::load_bf16(row + 2 * i);
}
template <class O, DType T>
inline typename O::F load_plain_part(const std::byte* row, int64_t i, int n) {
  if constexpr (T == DType::F32) return O::load_part(reinterpret_cast<const float*>(row) + i, n);
  if constexpr (T == DType::F16) return O::load_f16_part(row + 2 * i, n);
  if constexpr (T == DType::BF16) return O::load_bf16_part(row + 2 * i, n);
}

// A row's weights stream through once. Prefetching (into L2) `bytes` bytes kPrefetchAhead on
// from the ones being read keeps more of the stream in flight than the hardware prefetchers do
// alone (measured: F16 decode +45%, F32 +15% on one thread). A prefetch never faults, past the
// end of the matrix included. On the AVX-512 machine measured (Xeon, Emerald Rapids), the
// stream reaches further: 8 KiB into L2 and a second prefetch 2 KiB on into L1 took a decoded
// token 1.4-12.5% less time on 1 and 2 threads than 4 KiB into L2 alone (the forms alternated
// token by token, medians of 150: Q8_0 -12%, F16 -5 and -8%, BF16 -4 and -7%, Q6_K -10 and -3%,
// Q4_0 -4 and -2%, F32 -1.5%; Q4_K 1 thread -3%, 2 threads unchanged). The Zen 3 machine (AVX2)
// decoded as fast with 2 or 8 KiB as with 4, and keeps 4 KiB into L2 alone.
#if defined(__AVX512F__)
inline constexpr int64_t kPrefetchAhead = 8192, kPrefetchAheadL1 = 2048;
#else
inline constexpr int64_t kPrefetchAhead = 4096, kPrefetchAheadL1 = 0;
#endif

// f.template operator()<M>() for M = m, 1 <= m <= 8 (above 8 as 8): a count of vectors made a
// template argument, so that the batched kernels keep their accumulators in registers.
template <class F>
inline void with_count8(int64_t m, F&& f) {
  switch (m) {
    case 1:
      return f.template operator()<1>();
    case 2:
      return f.template operator()<2>();
    case 3:
      return f.template operator()<3>();
    case 4:
      return f.template operator()<4>();
    case 5:
      return f.template operator()<5>();
    case 6:
      return f.template operator()<6>();
    case 7:
      return f.template operator()<7>();
    default:
      return f.template operator()<8>();
  }
}

inline void prefetch_ahead(const std::byte* p, int64_t bytes) {
#if defined(__GNUC__)
  for (int64_t b = 0; b < bytes; b += 64) {
    __builtin_prefetch(p + kPrefetchAhead + b, 0, 2);
    if constexpr (kPrefetchAheadL1 > 0) __builtin_prefetch(p + kPrefetchAheadL1 + b, 0, 3);
  }
#else
  (void)p, (void)bytes;
#endif
}

// row . x for plain values, as W lane sums (dot_rows reduces 16 rows' sums at once), in K
// accumulators, each a chain of FMAs. On AVX2, 4 chains cap a row at 4 vectors per FMA latency
// (F16: 64 bytes, about the 43 GB/s it reads from cache on one thread); for F16 and BF16, 8 took
// a decoded token 1-12% less time, the more the faster the memory was at the time (the two forms
// alternating token by token; 2 threads F16 1-12%, BF16 4-10%; 1 thread F16 5-11%, BF16 5%). F32
// rows came out 3-9% faster or slower from run to run with 8 and keep 4, as do the other ISAs,
// which were measured with 4.
template <class O, DType T>
inline typename O::F dot_plain_lanes(const std::byte* row, const float* x, int64_t n) {
  using F = typename O::F;
  constexpr int W = O::W, K = W == 8 && T != DType::F32 ? 8 : 4;
  constexpr int64_t kBytes = T == DType::F32 ? 4 : 2;  // per weight
  F a[K];
  for (int k = 0; k < K; ++k) a[k] = O::zero();
  int64_t i = 0;
  // a row shorter than one step (dt_proj's 48 values) is still one of many in a row
  if (n < K * W) prefetch_ahead(row, n * kBytes);
  for (; i + K * W <= n; i += K * W) {
    prefetch_ahead(row + i * kBytes, K * W * kBytes);
    for (int k = 0; k < K; ++k)
      a[k] = O::fma(load_plain<O, T>(row, i + k * W), O::load(x + i + k * W), a[k]);
  }
  for (; i + W <= n; i += W) a[0] = O::fma(load_plain<O, T>(row, i), O::load(x + i), a[0]);
  if (i < n) {
    const int r = int(n - i);
    a[0] = O::fma(load_plain_part<O, T>(row, i, r), O::load_part(x + i, r), a[0]);
  }
  // neighbours first: ((a0 + a1) + (a2 + a3)) + ...
  for (int step = 1; step < K; step *= 2)
    for (int k = 0; k + step < K; k += 2 * step) a[k] = O::add(a[k], a[k + step]);
  return a[0];
}

template <class O, DType T>
inline float dot_plain(const std::byte* row, const float* x, int64_t n) {
  return O::reduce(dot_plain_lanes<O, T>(row, x, n));
}

// sum_j q[j] x[j] over one Q8_0 block (32 values), as W-lane partial sums
template <class O>
inline typename O::F q8_0_block(const std::byte* blk, const float* x) {
  const auto* qs = reinterpret_cast<const int8_t*>(blk + 2);
  auto t = O::zero();
  for (int j = 0; j < 32; j += O::W) t = O::fma(O::to_float(O::load_i8(qs + j)), O::load(x + j), t);
  return t;
}

// Q8_0: sum_b d_b (q_b . x_b), two blocks per step so that the FMA latencies overlap
template <class O>
inline float dot_q8_0(const std::byte* row, const float* x, int64_t n) {
  auto a0 = O::zero(), a1 = O::zero();
  const int64_t nb = n / 32;
  constexpr int64_t bb = sizeof(BlockQ8_0);
  int64_t b = 0;
  for (; b + 1 < nb; b += 2) {
    const std::byte* p = row + b * bb;
    prefetch_ahead(p, 2 * bb);
    a0 = O::fma(O::set1(f16_at(p)), q8_0_block<O>(p, x + 32 * b), a0);
    a1 = O::fma(O::set1(f16_at(p + bb)), q8_0_block<O>(p + bb, x + 32 * b + 32), a1);
  }
  if (b < nb)
    a0 = O::fma(O::set1(f16_at(row + b * bb)), q8_0_block<O>(row + b * bb, x + 32 * b), a0);
  return O::reduce(O::add(a0, a1));
}

// Q4_0: sum_b d_b (q_b . x_b - 8 xsum_b), with xsum (the sum of each 32 values of x) computed
// once per matrix-vector product instead of once per row.
template <class O>
inline float dot_q4_0(const std::byte* row, const float* x, const float* xsum, int64_t n) {
  auto a0 = O::zero(), a1 = O::zero();
  float corr = 0.0f;
  const int64_t nb = n / 32;
  constexpr int64_t bb = sizeof(BlockQ4_0);
  auto block = [&](const std::byte* p, const float* xb) {
    const auto* qs = reinterpret_cast<const uint8_t*>(p + 2);
    auto t = O::zero();
    for (int j = 0; j < 16; j += O::W) {
      const auto q = O::load_u8(qs + j);
      t = O::fma(O::to_float(O::iand(q, 0xF)), O::load(xb + j), t);
      t = O::fma(O::to_float(O::template ishr<4>(q)), O::load(xb + j + 16), t);
    }
    return t;
  };
  int64_t b = 0;
  for (; b + 1 < nb; b += 2) {
    const std::byte* p = row + b * bb;
    prefetch_ahead(p, 2 * bb);
    const float d0 = f16_at(p), d1 = f16_at(p + bb);
    a0 = O::fma(O::set1(d0), block(p, x + 32 * b), a0);
    a1 = O::fma(O::set1(d1), block(p + bb, x + 32 * b + 32), a1);
    corr += d0 * xsum[b] + d1 * xsum[b + 1];
  }
  if (b < nb) {
    const float d = f16_at(row + b * bb);
    a0 = O::fma(O::set1(d), block(row + b * bb, x + 32 * b), a0);
    corr += d * xsum[b];
  }
  return O::reduce(O::add(a0, a1)) - 8.0f * corr;
}

// xsum[b] = sum of x[32 b .. 32 b + 32)
template <class O>
inline void block_sums32(const float* x, int64_t n, float* xsum) {
  for (int64_t b = 0; b < n / 32; ++b) {
    auto v = O::zero();
    for (int j = 0; j < 32; j += O::W) v = O::add(v, O::load(x + 32 * b + j));
    xsum[b] = O::reduce(v);
  }
}

// Q4_K: per block d * sum_s sc[s] (q . x)_s - dmin * sum_s m[s] xsum_s (xsum as for Q4_0)
template <class O>
inline float dot_q4_k(const std::byte* row, const float* x, const float* xsum, int64_t n) {
  auto acc = O::zero();
  float mins = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K, xsum += 8) {
    const std::byte* p = row + b * int64_t(sizeof(BlockQ4_K));
    prefetch_ahead(p, sizeof(BlockQ4_K));
    const auto* scales = reinterpret_cast<const uint8_t*>(p + 4);
    const auto* qs = reinterpret_cast<const uint8_t*>(p + 16);
    auto sq = O::zero();
    float sm = 0.0f;
    for (int s = 0; s < 8; s += 2) {
      uint8_t sc0, m0, sc1, m1;
      q4k_scale_min(s, scales, sc0, m0);
      q4k_scale_min(s + 1, scales, sc1, m1);
      auto t0 = O::zero(), t1 = O::zero();
      for (int j = 0; j < 32; j += O::W) {
        const auto q = O::load_u8(qs + 16 * s + j);
        t0 = O::fma(O::to_float(O::iand(q, 0xF)), O::load(x + 32 * s + j), t0);
        t1 = O::fma(O::to_float(O::template ishr<4>(q)), O::load(x + 32 * s + 32 + j), t1);
      }
      sq = O::fma(O::set1(float(sc0)), t0, sq);
      sq = O::fma(O::set1(float(sc1)), t1, sq);
      sm += float(m0) * xsum[s] + float(m1) * xsum[s + 1];
    }
    acc = O::fma(O::set1(f16_at(p)), sq, acc);
    mins += f16_at(p + 2) * sm;
  }
  return O::reduce(acc) - mins;
}

// The four groups of quants of one Q6_K half-block (128 values) at lane offset i (i < 32):
// values i, i+32, i+64, i+96, centred (-32..31).
template <class O>
struct Q6Quarters {
  typename O::I q0, q1, q2, q3;
  Q6Quarters(const uint8_t* ql, const uint8_t* qh, int i) {
    const auto l0 = O::load_u8(ql + i), l1 = O::load_u8(ql + 32 + i), h = O::load_u8(qh + i);
    q0 = O::isub(O::ior(O::iand(l0, 0xF), O::template ishl<4>(O::iand(h, 3))), 32);
    q1 = O::isub(O::ior(O::iand(l1, 0xF), O::template ishl<4>(O::iand(O::template ishr<2>(h), 3))),
                 32);
    q2 = O::isub(
        O::ior(O::template ishr<4>(l0), O::template ishl<4>(O::iand(O::template ishr<4>(h), 3))),
        32);
    q3 = O::isub(O::ior(O::template ishr<4>(l1), O::template ishl<4>(O::template ishr<6>(h))), 32);
  }
};

template <class O>
inline float dot_q6_k(const std::byte* row, const float* x, int64_t n) {
  auto acc = O::zero();
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    const std::byte* p = row + b * int64_t(sizeof(BlockQ6_K));
    prefetch_ahead(p, sizeof(BlockQ6_K));
    const auto* ql = reinterpret_cast<const uint8_t*>(p);
    const auto* qh = reinterpret_cast<const uint8_t*>(p + 128);
    const auto* sc = reinterpret_cast<const int8_t*>(p + 192);
    auto s = O::zero();
    for (int half = 0; half < 2; ++half) {
      const float* xh = x + 128 * half;
      const int8_t* sch = sc + 8 * half;
      for (int i = 0; i < 32; i += O::W) {
        const Q6Quarters<O> q(ql + 64 * half, qh + 32 * half, i);
        const int g = i / 16;  // the sub-block of 16 within each quarter
        s = O::fma(O::set1(float(sch[g])), O::mul(O::to_float(q.q0), O::load(xh + i)), s);
        s = O::fma(O::set1(float(sch[2 + g])), O::mul(O::to_float(q.q1), O::load(xh + 32 + i)), s);
        s = O::fma(O::set1(float(sch[4 + g])), O::mul(O::to_float(q.q2), O::load(xh + 64 + i)), s);
        s = O::fma(O::set1(float(sch[6 + g])), O::mul(O::to_float(q.q3), O::load(xh + 96 + i)), s);
      }
    }
    acc = O::fma(O::set1(f16_at(p + 208)), s, acc);
  }
  return O::reduce(acc);
}

// Whether the row type's kernel takes the block sums of x (block_sums32).
inline bool needs_block_sums(DType t) {
  return t == DType::Q4_0 || t == DType::Q4_K;
}

// y[r] = row r . x for the rows [r0, r1) of a matrix with row stride `stride` bytes: the type is
// dispatched once for all of them (dispatched per row, an F16 in_proj-shaped product from memory
// ran up to 8% slower in interleaved runs), and plain rows are summed 16 at a time by one
// reduce16 where the ISA has it (dt_proj's rows of 48 values: 9.5 -> 6.6 us). xsum:
// block_sums32 of x, for the types that need it (needs_block_sums).
template <class O>
inline void dot_rows(DType t, const std::byte* rows, int64_t stride, int64_t r0, int64_t r1,
                     const float* x, int64_t n, const float* xsum, float* y) {
  auto each = [&](auto dot) {
    for (int64_t r = r0; r < r1; ++r) y[r] = dot(rows + r * stride);
  };
  auto plain = [&]<DType T>() {
    int64_t r = r0;
    if constexpr (requires(const typename O::F* a) { O::reduce16(a); }) {
      for (; r + 16 <= r1; r += 16) {
        typename O::F lanes[16];
        for (int k = 0; k < 16; ++k)
          lanes[k] = dot_plain_lanes<O, T>(rows + (r + k) * stride, x, n);
        O::store(y + r, O::reduce16(lanes));
      }
    }
    for (; r < r1; ++r) y[r] = dot_plain<O, T>(rows + r * stride, x, n);
  };
  switch (t) {
    case DType::F32:
      return plain.template operator()<DType::F32>();
    case DType::F16:
      return plain.template operator()<DType::F16>();
    case DType::BF16:
      return plain.template operator()<DType::BF16>();
    case DType::Q8_0:
      return each([&](const std::byte* row) { return dot_q8_0<O>(row, x, n); });
    case DType::Q4_0:
      return each([&](const std::byte* row) { return dot_q4_0<O>(row, x, xsum, n); });
    case DType::Q4_K:
      return each([&](const std::byte* row) { return dot_q4_k<O>(row, x, xsum, n); });
    case DType::Q6_K:
      return each([&](const std::byte* row) { return dot_q6_k<O>(row, x, n); });
  }
}

// row . x for a stored row of n values (n a multiple of the block size). xsum: block_sums32 of
// x for the types that need it, or null (then computed here, for one-off calls).
template <class O>
inline float dot_row(DType t, const std::byte* row, const float* x, int64_t n,
                     const float* xsum = nullptr) {
  std::vector<float> own;
  if (needs_block_sums(t) && !xsum) {
    own.resize(n / 32);
    block_sums32<O>(x, n, own.data());
    xsum = own.data();
  }
  float y = 0.0f;
  dot_rows<O>(t, row, 0, 0, 1, x, n, xsum, &y);
  return y;
}

// y[0..n) = the values of a stored row.
template <class O>
inline void dequantize_row(DType t, const std::byte* row, float* y, int64_t n) {
  constexpr int W = O::W;
  auto plain = [&]<DType T>() {
    int64_t i = 0;
    for (; i + W <= n; i += W) O::store(y + i, load_plain<O, T>(row, i));
    if (i < n) O::store_part(y + i, load_plain_part<O, T>(row, i, int(n - i)), int(n - i));
  };
  switch (t) {
    case DType::F32:
      std::memcpy(y, row, size_t(n) * 4);
      return;
    case DType::F16:
      plain.template operator()<DType::F16>();
      return;
    case DType::BF16:
      plain.template operator()<DType::BF16>();
      return;
    case DType::Q8_0:
      for (int64_t b = 0; b < n / 32; ++b, y += 32) {
        const std::byte* p = row + b * int64_t(sizeof(BlockQ8_0));
        const auto d = O::set1(f16_at(p));
        const auto* qs = reinterpret_cast<const int8_t*>(p + 2);
        for (int j = 0; j < 32; j += W) O::store(y + j, O::mul(d, O::to_float(O::load_i8(qs + j))));
      }
      return;
    case DType::Q4_0:
      for (int64_t b = 0; b < n / 32; ++b, y += 32) {
        const std::byte* p = row + b * int64_t(sizeof(BlockQ4_0));
        const auto d = O::set1(f16_at(p));
        const auto* qs = reinterpret_cast<const uint8_t*>(p + 2);
        for (int j = 0; j < 16; j += W) {
          const auto q = O::load_u8(qs + j);
          O::store(y + j, O::mul(d, O::to_float(O::isub(O::iand(q, 0xF), 8))));
          O::store(y + j + 16, O::mul(d, O::to_float(O::isub(O::template ishr<4>(q), 8))));
        }
      }
      return;
    case DType::Q4_K:
      for (int64_t b = 0; b < n / kQK_K; ++b) {
        const std::byte* p = row + b * int64_t(sizeof(BlockQ4_K));
        const float d = f16_at(p), dmin = f16_at(p + 2);
        const auto* scales = reinterpret_cast<const uint8_t*>(p + 4);
        const auto* qs = reinterpret_cast<const uint8_t*>(p + 16);
        for (int s = 0; s < 8; s += 2, y += 64) {
          uint8_t sc0, m0, sc1, m1;
          q4k_scale_min(s, scales, sc0, m0);
          q4k_scale_min(s + 1, scales, sc1, m1);
          const auto d0 = O::set1(d * sc0), d1 = O::set1(d * sc1);
          const auto n0 = O::set1(-(dmin * m0)), n1 = O::set1(-(dmin * m1));
          for (int j = 0; j < 32; j += W) {
            const auto q = O::load_u8(qs + 16 * s + j);
            O::store(y + j, O::fma(d0, O::to_float(O::iand(q, 0xF)), n0));
            O::store(y + 32 + j, O::fma(d1, O::to_float(O::template ishr<4>(q)), n1));
          }
        }
      }
      return;
    case DType::Q6_K:
      for (int64_t b = 0; b < n / kQK_K; ++b) {
        const std::byte* p = row + b * int64_t(sizeof(BlockQ6_K));
        const auto* ql = reinterpret_cast<const uint8_t*>(p);
        const auto* qh = reinterpret_cast<const uint8_t*>(p + 128);
        const auto* sc = reinterpret_cast<const int8_t*>(p + 192);
        const float d = f16_at(p + 208);
        for (int half = 0; half < 2; ++half, y += 128) {
          const int8_t* sch = sc + 8 * half;
          for (int i = 0; i < 32; i += W) {
            const Q6Quarters<O> q(ql + 64 * half, qh + 32 * half, i);
            const int g = i / 16;
            O::store(y + i, O::mul(O::set1(d * sch[g]), O::to_float(q.q0)));
            O::store(y + 32 + i, O::mul(O::set1(d * sch[2 + g]), O::to_float(q.q1)));
            O::store(y + 64 + i, O::mul(O::set1(d * sch[4 + g]), O::to_float(q.q2)));
            O::store(y + 96 + i, O::mul(O::set1(d * sch[6 + g]), O::to_float(q.q3)));
          }
        }
      }
      return;
  }
}

}  // namespace mamba::simd::kernels
