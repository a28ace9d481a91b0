#pragma once
// Float -> block quantizers, one block at a time. The rules are ggml's reference (non-imatrix)
// ones, re-derived: Q8_0 and Q4_0 scale by the largest magnitude; Q4_K searches each 32-value
// sub-block for the (scale, min) pair of least weighted error, then quantizes the 8 scales and 8
// mins to 6 bits; Q6_K searches each 16-value sub-block for the scale of least weighted error
// (weights x^2), then quantizes the 16 scales to int8.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "mamba/ops/blocks.hpp"
#include "mamba/ops/half.hpp"

namespace mamba {

// Round to nearest, ties to even (what ggml's nearest_int does for the magnitudes seen here).
inline int nearest_int(float v) {
  return static_cast<int>(std::nearbyint(v));
}

inline BlockQ8_0 quantize_block_q8_0(const float* x) {
  float amax = 0.0f;
  for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  BlockQ8_0 b;
  b.d = f32_to_f16(d);
  for (int j = 0; j < kQK8_0; ++j) b.qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  return b;
}

inline BlockQ4_0 quantize_block_q4_0(const float* x) {
  // The value of largest magnitude maps to -8 exactly (so the scale carries its sign).
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kQK4_0; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  BlockQ4_0 b;
  b.d = f32_to_f16(d);
  auto q = [&](float v) {  // truncation of v*id + 8.5 is round-half-up of v*id, offset by 8
    return static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(v * id + 8.5f))));
  };
  for (int j = 0; j < kQK4_0 / 2; ++j)
    b.qs[j] = static_cast<uint8_t>(q(x[j]) | (q(x[j + kQK4_0 / 2]) << 4));
  return b;
}

// Fit x[i] ~ scale * L[i] - min with L in [0, nmax], min >= 0, minimizing sum w[i] * err^2.
// Starts from the range, then tries nstep+1 slightly stretched grids and keeps, for each, the
// least-squares scale and offset of its levels. Returns the scale; the min is written to `min_out`.
inline float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L,
                           float& min_out, float rmin, float rdelta, int nstep) {
  float lo = x[0], hi = x[0], sum_w = w[0], sum_x = w[0] * x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  lo = std::min(lo, 0.0f);
  if (hi == lo) {
    std::fill(L, L + n, uint8_t{0});
    min_out = -lo;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (hi - lo), scale = 1.0f / iscale, offset = lo;
  float best = 0.0f;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(std::clamp(nearest_int(iscale * (x[i] - lo)), 0, nmax));
    const float diff = scale * L[i] + lo - x[i];
    best += w[i] * diff * diff;
  }
  uint8_t trial[64];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - lo)), 0, nmax);
      trial[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det <= 0) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float this_offset = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (this_offset > 0) {  // mins are stored as non-negative amounts to subtract
      this_offset = 0;
      this_scale = sum_xl / sum_l2;
    }
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = this_scale * trial[i] + this_offset - x[i];
      err += w[i] * diff * diff;
    }
    if (err < best) {
      std::copy(trial, trial + n, L);
      best = err;
      scale = this_scale;
      offset = this_offset;
    }
  }
  min_out = -offset;
  return scale;
}

inline BlockQ4_K quantize_block_q4_k(const float* x) {
  float scales[8], mins[8], w[32];
  uint8_t L[kQK_K];
  float max_scale = 0, max_min = 0;
  for (int s = 0; s < 8; ++s) {
    const float* xs = x + 32 * s;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(xs[l]);  // favour the large values
    scales[s] = fit_scale_min(32, 15, xs, w, L + 32 * s, mins[s], -1.0f, 0.1f, 20);
    max_scale = std::max(max_scale, scales[s]);
    max_min = std::max(max_min, mins[s]);
  }
  BlockQ4_K b{};
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  for (int s = 0; s < 8; ++s) {
    const auto ls = static_cast<uint8_t>(std::min(63, nearest_int(inv_scale * scales[s])));
    const auto lm = static_cast<uint8_t>(std::min(63, nearest_int(inv_min * mins[s])));
    q4k_pack_scale_min(s, ls, lm, b.scales);
  }
  b.d = f32_to_f16(max_scale / 63.0f);
  b.dmin = f32_to_f16(max_min / 63.0f);
  // Requantize against the scales as stored (6-bit and F16 rounded).
  for (int s = 0; s < 8; ++s) {
    uint8_t sc, m;
    q4k_scale_min(s, b.scales, sc, m);
    const float d = f16_to_f32(b.d) * sc;
    if (d == 0.0f) continue;
    const float dm = f16_to_f32(b.dmin) * m;
    for (int l = 0; l < 32; ++l)
      L[32 * s + l] =
          static_cast<uint8_t>(std::clamp(nearest_int((x[32 * s + l] + dm) / d), 0, 15));
  }
  for (int j = 0; j < kQK_K; j += 64)
    for (int l = 0; l < 32; ++l)
      b.qs[j / 2 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  return b;
}

// Fit x[i] ~ scale * L[i], L in [-nmax, nmax-1], minimizing sum x^2 * err^2 (large values matter
// most); the grid anchored at the largest magnitude is stretched by +-0.9 levels in 19 tries.
// L is returned offset by nmax (0 .. 2*nmax-1).
inline float fit_scale_symmetric(int n, int nmax, const float* x, int8_t* L) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < 1e-15f) {
    std::fill(L, L + n, int8_t{0});
    return 0.0f;
  }
  auto level = [&](float iscale, int i) {
    return std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
  };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = level(iscale, i);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;  // the error reduction of the least-squares scale
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    const float iscale_is = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = level(iscale_is, i);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(level(iscale_is, i) + nmax);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

inline BlockQ6_K quantize_block_q6_k(const float* x) {
  int8_t L[kQK_K];
  float scales[16];
  float max_scale = 0, max_abs_scale = 0;
  for (int s = 0; s < 16; ++s) {
    scales[s] = fit_scale_symmetric(16, 32, x + 16 * s, L + 16 * s);
    if (std::fabs(scales[s]) > max_abs_scale) {
      max_abs_scale = std::fabs(scales[s]);
      max_scale = scales[s];
    }
  }
  BlockQ6_K b{};
  if (max_abs_scale < 1e-15f) return b;  // all zero
  const float iscale = -128.0f / max_scale;
  b.d = f32_to_f16(1.0f / iscale);
  for (int s = 0; s < 16; ++s)
    b.scales[s] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[s])));
  for (int s = 0; s < 16; ++s) {
    const float d = f16_to_f32(b.d) * b.scales[s];
    if (d == 0.0f) continue;
    for (int l = 0; l < 16; ++l)
      L[16 * s + l] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * s + l] / d), -32, 31) + 32);
  }
  for (int half = 0; half < 2; ++half) {
    const int8_t* Lh = L + 128 * half;
    uint8_t* ql = b.ql + 64 * half;
    uint8_t* qh = b.qh + 32 * half;
    for (int l = 0; l < 32; ++l) {
      ql[l] = static_cast<uint8_t>((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) |
                                   ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
    }
  }
  return b;
}

// Activations for the integer dot products against K-quant rows: 256 values at 8 bits with a
// float scale, and the sums of each 16 (they fold the Q4_K mins into one multiply).
inline BlockQ8_K quantize_block_q8_k(const float* x) {
  float amax = 0;
  for (int j = 0; j < kQK_K; ++j) amax = std::max(amax, std::fabs(x[j]));
  BlockQ8_K b{};
  if (amax == 0) return b;
  const float id = 127.0f / amax;
  for (int j = 0; j < kQK_K; ++j)
    b.qs[j] = static_cast<int8_t>(std::clamp(nearest_int(id * x[j]), -127, 127));
  for (int g = 0; g < kQK_K / 16; ++g) {
    int sum = 0;
    for (int l = 0; l < 16; ++l) sum += b.qs[16 * g + l];
    b.bsums[g] = static_cast<int16_t>(sum);
  }
  b.d = 1.0f / id;
  return b;
}

}  // namespace mamba
