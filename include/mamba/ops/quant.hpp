#pragma once
// Rows of weights in any storage type: decode to float, encode from float, and the dot product of
// one stored row with a vector. These are the scalar definitions; the SIMD kernels (ops/simd/) are
// tested against them.
//
// Two dot products:
//   vec_dot_row(t, row, x, n)       row . x with x in float (the exact definition);
//   vec_dot_row_q8(t, row, xq, n)   row . x with x quantized once per matrix to 8-bit blocks
//                                   (quantize_activation), in integer arithmetic per block, the
//                                   way the fast kernels compute it.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "mamba/error.hpp"
#include "mamba/ops/blocks.hpp"
#include "mamba/ops/dtype.hpp"
#include "mamba/ops/half.hpp"
#include "mamba/ops/quantize.hpp"

namespace mamba {

namespace quant_detail {

inline void check_row(DType t, int64_t n) {
  const int64_t bs = traits(t).block_size;
  if (bs == 0) throw ArgumentError("unknown weight type " + std::to_string(static_cast<int>(t)));
  if (n < 0 || n % bs != 0)
    throw ShapeError("row of " + std::to_string(n) + " values is not a multiple of the " +
                     std::string(dtype_name(t)) + " block size " + std::to_string(bs));
}

inline uint16_t load_u16(const std::byte* p, int64_t i) {
  uint16_t v;
  std::memcpy(&v, p + 2 * i, 2);
  return v;
}

}  // namespace quant_detail

// dst[0..n) = the values of the stored row src. n must be a multiple of the block size.
inline void dequantize_row(DType t, const std::byte* src, float* dst, int64_t n) {
  using namespace quant_detail;
  check_row(t, n);
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load_u16(src, i));
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(src, i));
      return;
    case DType::Q8_0:
      for (int64_t b = 0; b < n / kQK8_0; ++b)
        dequantize_block(load_block<BlockQ8_0>(src, b), dst + b * kQK8_0);
      return;
    case DType::Q4_0:
      for (int64_t b = 0; b < n / kQK4_0; ++b)
        dequantize_block(load_block<BlockQ4_0>(src, b), dst + b * kQK4_0);
      return;
    case DType::Q4_K:
      for (int64_t b = 0; b < n / kQK_K; ++b)
        dequantize_block(load_block<BlockQ4_K>(src, b), dst + b * kQK_K);
      return;
    case DType::Q6_K:
      for (int64_t b = 0; b < n / kQK_K; ++b)
        dequantize_block(load_block<BlockQ6_K>(src, b), dst + b * kQK_K);
      return;
  }
}

// dst (row_bytes(t, n) bytes) = src[0..n) stored as t. n must be a multiple of the block size.
inline void quantize_row(DType t, const float* src, std::byte* dst, int64_t n) {
  using namespace quant_detail;
  check_row(t, n);
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case DType::F16:
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = t == DType::F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case DType::Q8_0:
      for (int64_t b = 0; b < n / kQK8_0; ++b)
        store_block(dst, b, quantize_block_q8_0(src + b * kQK8_0));
      return;
    case DType::Q4_0:
      for (int64_t b = 0; b < n / kQK4_0; ++b)
        store_block(dst, b, quantize_block_q4_0(src + b * kQK4_0));
      return;
    case DType::Q4_K:
      for (int64_t b = 0; b < n / kQK_K; ++b)
        store_block(dst, b, quantize_block_q4_k(src + b * kQK_K));
      return;
    case DType::Q6_K:
      for (int64_t b = 0; b < n / kQK_K; ++b)
        store_block(dst, b, quantize_block_q6_k(src + b * kQK_K));
      return;
  }
}

// sum_i row[i] * x[i] for a stored row of n values, x in float. Each block's partial sum is
// formed with its scale factored out (d * sum q*x), accumulated in float.
inline float vec_dot_row(DType t, const std::byte* row, const float* x, int64_t n) {
  using namespace quant_detail;
  check_row(t, n);
  float sum = 0.0f;
  switch (t) {
    case DType::F32:
      for (int64_t i = 0; i < n; ++i) {
        float v;
        std::memcpy(&v, row + 4 * i, 4);
        sum += v * x[i];
      }
      return sum;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) sum += f16_to_f32(load_u16(row, i)) * x[i];
      return sum;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) sum += bf16_to_f32(load_u16(row, i)) * x[i];
      return sum;
    case DType::Q8_0:
      for (int64_t b = 0; b < n / kQK8_0; ++b, x += kQK8_0) {
        const auto blk = load_block<BlockQ8_0>(row, b);
        float s = 0.0f;
        for (int j = 0; j < kQK8_0; ++j) s += static_cast<float>(blk.qs[j]) * x[j];
        sum += f16_to_f32(blk.d) * s;
      }
      return sum;
    case DType::Q4_0:
      for (int64_t b = 0; b < n / kQK4_0; ++b, x += kQK4_0) {
        const auto blk = load_block<BlockQ4_0>(row, b);
        float s = 0.0f;
        for (int j = 0; j < kQK4_0 / 2; ++j)
          s += static_cast<float>((blk.qs[j] & 0xF) - 8) * x[j] +
               static_cast<float>((blk.qs[j] >> 4) - 8) * x[j + kQK4_0 / 2];
        sum += f16_to_f32(blk.d) * s;
      }
      return sum;
    case DType::Q4_K:
      for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
        const auto blk = load_block<BlockQ4_K>(row, b);
        float s_q = 0.0f, s_m = 0.0f;  // sum over sub-blocks of sc*sum(q*x), of m*sum(x)
        for (int s = 0; s < 8; ++s) {
          uint8_t sc, m;
          q4k_scale_min(s, blk.scales, sc, m);
          const uint8_t* q = blk.qs + 32 * (s / 2);
          const int shift = 4 * (s % 2);
          float qx = 0.0f, xs = 0.0f;
          for (int l = 0; l < 32; ++l) {
            qx += static_cast<float>((q[l] >> shift) & 0xF) * x[32 * s + l];
            xs += x[32 * s + l];
          }
          s_q += static_cast<float>(sc) * qx;
          s_m += static_cast<float>(m) * xs;
        }
        sum += f16_to_f32(blk.d) * s_q - f16_to_f32(blk.dmin) * s_m;
      }
      return sum;
    case DType::Q6_K:
      for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
        const auto blk = load_block<BlockQ6_K>(row, b);
        int8_t q[kQK_K];
        q6k_unpack(blk, q);
        float s_q = 0.0f;
        for (int s = 0; s < 16; ++s) {
          float qx = 0.0f;
          for (int l = 16 * s; l < 16 * s + 16; ++l) qx += static_cast<float>(q[l]) * x[l];
          s_q += static_cast<float>(blk.scales[s]) * qx;
        }
        sum += f16_to_f32(blk.d) * s_q;
      }
      return sum;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Quantized activations (for the integer dot products)

// What the vector is quantized to for rows of a type: float stays float for F32/F16/BF16, Q8_0
// blocks for Q8_0/Q4_0 rows, Q8_K super-blocks for Q4_K/Q6_K rows.
enum class ActType { F32, Q8_0, Q8_K };

inline ActType activation_type(DType t) {
  switch (t) {
    case DType::Q8_0:
    case DType::Q4_0:
      return ActType::Q8_0;
    case DType::Q4_K:
    case DType::Q6_K:
      return ActType::Q8_K;
    default:
      return ActType::F32;
  }
}

// Bytes of n values quantized as `a`.
inline int64_t activation_bytes(ActType a, int64_t n) {
  switch (a) {
    case ActType::Q8_0:
      return n / kQK8_0 * static_cast<int64_t>(sizeof(BlockQ8_0));
    case ActType::Q8_K:
      return n / kQK_K * static_cast<int64_t>(sizeof(BlockQ8_K));
    case ActType::F32:
      break;
  }
  return n * 4;
}

// dst (activation_bytes(a, n)) = x[0..n) quantized as `a`; n a multiple of its block size.
inline void quantize_activation(ActType a, const float* x, std::byte* dst, int64_t n) {
  switch (a) {
    case ActType::F32:
      std::memcpy(dst, x, static_cast<size_t>(n) * 4);
      return;
    case ActType::Q8_0:
      quantize_row(DType::Q8_0, x, dst, n);
      return;
    case ActType::Q8_K:
      quant_detail::check_row(DType::Q4_K, n);
      for (int64_t b = 0; b < n / kQK_K; ++b)
        store_block(dst, b, quantize_block_q8_k(x + b * kQK_K));
      return;
  }
}

// row . x with xq = quantize_activation(activation_type(t), x, ., n): per block an integer sum of
// products times the two scales. For F32/F16/BF16 rows, xq holds floats and this is vec_dot_row.
inline float vec_dot_row_q8(DType t, const std::byte* row, const std::byte* xq, int64_t n) {
  using namespace quant_detail;
  check_row(t, n);
  float sum = 0.0f;
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16: {
      float x[64];  // the floats in xq may sit at any offset: copy them out in chunks
      for (int64_t i = 0; i < n; i += 64) {
        const int64_t m = n - i < 64 ? n - i : 64;
        std::memcpy(x, xq + 4 * i, static_cast<size_t>(m) * 4);
        sum += vec_dot_row(t, row + i * traits(t).block_bytes, x, m);
      }
      return sum;
    }
    case DType::Q8_0:
    case DType::Q4_0:
      for (int64_t b = 0; b < n / kQK8_0; ++b) {
        const auto xb = load_block<BlockQ8_0>(xq, b);
        int isum = 0;
        float d;
        if (t == DType::Q8_0) {
          const auto wb = load_block<BlockQ8_0>(row, b);
          for (int j = 0; j < kQK8_0; ++j) isum += wb.qs[j] * xb.qs[j];
          d = f16_to_f32(wb.d);
        } else {
          const auto wb = load_block<BlockQ4_0>(row, b);
          for (int j = 0; j < kQK4_0 / 2; ++j)
            isum += ((wb.qs[j] & 0xF) - 8) * xb.qs[j] + ((wb.qs[j] >> 4) - 8) * xb.qs[j + 16];
          d = f16_to_f32(wb.d);
        }
        sum += d * f16_to_f32(xb.d) * static_cast<float>(isum);
      }
      return sum;
    case DType::Q4_K:
      for (int64_t b = 0; b < n / kQK_K; ++b) {
        const auto wb = load_block<BlockQ4_K>(row, b);
        const auto xb = load_block<BlockQ8_K>(xq, b);
        int32_t s_q = 0, s_m = 0;
        for (int s = 0; s < 8; ++s) {
          uint8_t sc, m;
          q4k_scale_min(s, wb.scales, sc, m);
          const uint8_t* q = wb.qs + 32 * (s / 2);
          const int shift = 4 * (s % 2);
          int32_t qx = 0;
          for (int l = 0; l < 32; ++l) qx += ((q[l] >> shift) & 0xF) * xb.qs[32 * s + l];
          s_q += sc * qx;
          s_m += m * (xb.bsums[2 * s] + xb.bsums[2 * s + 1]);
        }
        sum += xb.d * (f16_to_f32(wb.d) * static_cast<float>(s_q) -
                       f16_to_f32(wb.dmin) * static_cast<float>(s_m));
      }
      return sum;
    case DType::Q6_K:
      for (int64_t b = 0; b < n / kQK_K; ++b) {
        const auto wb = load_block<BlockQ6_K>(row, b);
        const auto xb = load_block<BlockQ8_K>(xq, b);
        int8_t q[kQK_K];
        q6k_unpack(wb, q);
        int32_t s_q = 0;
        for (int s = 0; s < 16; ++s) {
          int32_t qx = 0;
          for (int l = 16 * s; l < 16 * s + 16; ++l) qx += q[l] * xb.qs[l];
          s_q += wb.scales[s] * qx;
        }
        sum += xb.d * f16_to_f32(wb.d) * static_cast<float>(s_q);
      }
      return sum;
  }
  return sum;
}

}  // namespace mamba
