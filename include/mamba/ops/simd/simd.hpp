#pragma once
// The SIMD kernels, for the instruction set the compiler targets: AVX-512 (F+BW+VL), else
// AVX2+FMA+F16C, else AArch64 NEON, else plain scalar code. The choice is made at compile time
// from the compiler's flags: build with -march=native (or e.g. -march=x86-64-v4 / -mavx512f
// -mavx512bw -mavx512vl for AVX-512, -march=x86-64-v3 for AVX2). Every kernel is written once
// against a packet interface (ops_scalar.hpp documents it) and tested against its scalar twin.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mamba/ops/aligned_vector.hpp"
#include "mamba/ops/dtype.hpp"
#include "mamba/ops/quant.hpp"
#include "mamba/ops/simd/dot.hpp"
#include "mamba/ops/simd/dot_multi.hpp"
#include "mamba/ops/simd/dot_q8_avx2.hpp"
#include "mamba/ops/simd/dot_q8_avx512.hpp"
#include "mamba/ops/simd/dot_q8_multi_avx512.hpp"
#include "mamba/ops/simd/math.hpp"
#include "mamba/ops/simd/ops_avx2.hpp"
#include "mamba/ops/simd/ops_avx512.hpp"
#include "mamba/ops/simd/ops_neon.hpp"
#include "mamba/ops/simd/ops_scalar.hpp"
#include "mamba/ops/simd/scan.hpp"

namespace mamba::simd {

#if defined(MAMBA_SIMD_AVX512)
using Best = Avx512Ops;
#elif defined(MAMBA_SIMD_AVX2)
using Best = Avx2Ops;
#elif defined(MAMBA_SIMD_NEON)
using Best = NeonOps;
#else
using Best = ScalarOps;
#endif

// The instruction set the kernels were compiled for: "avx512", "avx2", "neon" or "scalar".
inline const char* isa() {
  return Best::name;
}

// row . x for a stored row; xsum: block_sums32(x) when needs_block_sums(t), else ignored (null
// computes it for this call).
inline float dot_row(DType t, const std::byte* row, const float* x, int64_t n,
                     const float* xsum = nullptr) {
  return kernels::dot_row<Best>(t, row, x, n, xsum);
}
// y[r] = row r . x for the rows [r0, r1) of a matrix with row stride `stride` bytes; xsum:
// block_sums32 of x for the types that need it.
inline void dot_rows(DType t, const std::byte* rows, int64_t stride, int64_t r0, int64_t r1,
                     const float* x, int64_t n, const float* xsum, float* y) {
  kernels::dot_rows<Best>(t, rows, stride, r0, r1, x, n, xsum, y);
}
using kernels::needs_block_sums;
inline void block_sums32(const float* x, int64_t n, float* xsum) {
  kernels::block_sums32<Best>(x, n, xsum);
}
// The integer kernels below: AVX-512 VNNI + VBMI, else AVX2; elsewhere they are the scalar
// twin's loops, slower than the float kernels (kInt8Kernels false).
#if defined(MAMBA_SIMD_AVX512_VNNI)
namespace int8 = vnni;
#define MAMBA_SIMD_INT8 1
#elif defined(MAMBA_SIMD_AVX2_INT8)
namespace int8 = avx2_int8;
#define MAMBA_SIMD_INT8 1
#endif
#if defined(MAMBA_SIMD_INT8)
inline constexpr bool kInt8Kernels = true;
#else
inline constexpr bool kInt8Kernels = false;
#endif

// Block-quantized rows (Q8_0, Q4_0, Q4_K, Q6_K) against one x quantized by
// quantize_activation(activation_type(t), ...): pack_activation rearranges xq once for all rows
// (into `out`, packed_bytes(t, n), 64-byte aligned) and returns what dot_row_packed takes; the
// products are integer per block.
inline int64_t packed_bytes(DType t, int64_t n) {
#if defined(MAMBA_SIMD_INT8)
  return int8::packed_bytes(t, n);
#else
  return activation_bytes(activation_type(t), n);
#endif
}
inline const std::byte* pack_activation(DType t, const std::byte* xq, int64_t n, std::byte* out) {
#if defined(MAMBA_SIMD_INT8)
  return int8::pack_activation(t, xq, n, out);
#else
  (void)t, (void)n, (void)out;
  return xq;
#endif
}
inline float dot_row_packed(DType t, const std::byte* row, const std::byte* xp, int64_t n) {
#if defined(MAMBA_SIMD_INT8)
  return int8::dot_row_packed(t, row, xp, n);
#else
  return vec_dot_row_q8(t, row, xp, n);
#endif
}
// y[r] = row r . x for the rows [r0, r1) of a matrix with row stride `stride` bytes.
inline void dot_rows_packed(DType t, const std::byte* rows, int64_t stride, int64_t r0, int64_t r1,
                            const std::byte* xp, int64_t n, float* y) {
#if defined(MAMBA_SIMD_INT8)
  int8::dot_rows_packed(t, rows, stride, r0, r1, xp, n, y);
#else
  for (int64_t r = r0; r < r1; ++r) y[r] = vec_dot_row_q8(t, rows + r * stride, xp, n);
#endif
}

// A buffer of at least `bytes` aligned for the widest registers (AlignedVector), one per
// thread, reused by the thread's next call.
inline std::byte* scratch(int64_t bytes) {
#if defined(MAMBA_SIMD_AVX512_VNNI)
  static_assert(EIGEN_MAX_ALIGN_BYTES >= 64, "the int8 kernels load packed activations aligned");
#endif
  thread_local AlignedVector<std::byte> buf;
  if (int64_t(buf.size()) < bytes) buf.resize(size_t(bytes));
  return buf.data();
}

// The same for one row.
inline float dot_row_q8(DType t, const std::byte* row, const std::byte* xq, int64_t n) {
  return dot_row_packed(t, row, pack_activation(t, xq, n, scratch(packed_bytes(t, n))), n);
}
// Block-quantized rows (Q8_0, Q4_0, Q4_K, Q6_K) against a few vectors (batched decode) in integer
// arithmetic, each vector quantized by quantize_activation(activation_type(t), ...) into
// xq + b * ldq: pack_activations_multi rearranges the nb vectors once (into `out`,
// multi_packed_bytes(t, n, nb) bytes) for dot_rows_packed_multi: Y[b * ldy + r] = row r . vector b
// for rows [r0, r1).
inline int64_t multi_packed_bytes(DType t, int64_t n, int64_t nb) {
#if defined(MAMBA_SIMD_INT8)
  return int8::multi_packed_bytes(t, n, nb);
#else
  return nb * activation_bytes(activation_type(t), n);
#endif
}
inline void pack_activations_multi(DType t, const std::byte* xq, int64_t ldq, int64_t n, int64_t nb,
                                   std::byte* out) {
#if defined(MAMBA_SIMD_INT8)
  int8::pack_activations_multi(t, xq, ldq, n, nb, out);
#else
  const int64_t bytes = activation_bytes(activation_type(t), n);
  for (int64_t b = 0; b < nb; ++b) std::memcpy(out + b * bytes, xq + b * ldq, size_t(bytes));
#endif
}
inline void dot_rows_packed_multi(DType t, const std::byte* rows, int64_t stride, int64_t r0,
                                  int64_t r1, int64_t n, const std::byte* xp, int64_t nb, float* Y,
                                  int64_t ldy) {
#if defined(MAMBA_SIMD_INT8)
  int8::dot_rows_packed_multi(t, rows, stride, r0, r1, n, xp, nb, Y, ldy);
#else
  const int64_t bytes = activation_bytes(activation_type(t), n);
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t r = r0; r < r1; ++r)
      Y[b * ldy + r] = vec_dot_row_q8(t, rows + r * stride, xp + b * bytes, n);
#endif
}

// quantize_activation (ops/quant.hpp), vectorized: the same bytes.
inline void quantize_activation(ActType a, const float* x, std::byte* dst, int64_t n) {
#if defined(MAMBA_SIMD_INT8)
  int8::quantize_activation(a, x, dst, n);
#else
  mamba::quantize_activation(a, x, dst, n);
#endif
}
inline void dequantize_row(DType t, const std::byte* row, float* y, int64_t n) {
  kernels::dequantize_row<Best>(t, row, y, n);
}
// Y[b * ldy + r] = row r . X[b * ldx ..] for rows [r0, r1), nb vectors (8 at a time).
inline void dot_rows_multi(DType t, const std::byte* rows, int64_t stride, int64_t r0, int64_t r1,
                           int64_t n, const float* X, int64_t ldx, int64_t nb, float* Y,
                           int64_t ldy) {
  kernels::dot_rows_multi<Best>(t, rows, stride, r0, r1, n, X, ldx, nb, Y, ldy);
}
inline void exp(const float* x, float* y, int64_t n) {
  exp_array<Best>(x, y, n);
}
inline void silu(const float* x, float* y, int64_t n) {
  silu_array<Best>(x, y, n);
}
inline void softplus_bias(const float* x, const float* bias, float* y, int64_t n) {
  softplus_bias_array<Best>(x, bias, y, n);
}
inline void mul_silu(const float* z, float* y, int64_t n) {
  mul_silu_array<Best>(z, y, n);
}
inline void scan_step(int64_t c0, int64_t c1, int64_t d_state, const float* x, const float* dt,
                      const float* A, const float* B, const float* C, const float* D, float* h,
                      float* y) {
  kernels::scan_step<Best>(c0, c1, d_state, x, dt, A, B, C, D, h, y);
}
using kernels::kMaxSequenceState;
inline void scan_sequence(int64_t n_tokens, int64_t d_inner, int64_t c0, int64_t c1,
                          int64_t d_state, const float* x, int64_t x_stride, const float* dt,
                          const float* A, const float* B, const float* C, int64_t bc_stride,
                          const float* D, const float* z, int64_t z_stride, float* h, float* y) {
  kernels::scan_sequence<Best>(n_tokens, d_inner, c0, c1, d_state, x, x_stride, dt, A, B, C,
                               bc_stride, D, z, z_stride, h, y);
}

}  // namespace mamba::simd
