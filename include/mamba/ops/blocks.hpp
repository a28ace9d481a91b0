#pragma once
// ggml's block-quantized weight layouts (byte for byte, so llama.cpp files map onto them) and the
// decoding of one block. Every block stores its scales as F16 (`uint16_t` bits here).
//
//   Q8_0  32 values:  d, int8 q[32]                       x = d * q
//   Q4_0  32 values:  d, 16 bytes of nibbles              x = d * (q - 8); byte j holds
//                     value j (low nibble) and value j + 16 (high nibble)
//   Q4_K 256 values:  d, dmin, 12 bytes of 6-bit scales and mins for 8 sub-blocks of 32,
//                     128 bytes of nibbles                x = d * sc[s] * q - dmin * m[s]
//   Q6_K 256 values:  128 bytes of low nibbles, 64 bytes of high 2-bit pairs, int8 scales for
//                     16 sub-blocks of 16, d             x = d * sc[s] * (q - 32)
//   Q8_K 256 values:  float d, int8 q[256], int16 sums of each 16 (activations only, never stored)
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mamba/ops/dtype.hpp"
#include "mamba/ops/half.hpp"

namespace mamba {

inline constexpr int64_t kQK4_0 = 32;  // values per Q4_0 block
inline constexpr int64_t kQK8_0 = 32;  // values per Q8_0 block
inline constexpr int64_t kQK_K = 256;  // values per K-quant super-block

struct BlockQ8_0 {
  uint16_t d;         // F16 scale
  int8_t qs[kQK8_0];  // signed quants
};

struct BlockQ4_0 {
  uint16_t d;              // F16 scale
  uint8_t qs[kQK4_0 / 2];  // value j: low nibble of qs[j]; value j+16: high nibble of qs[j]
};

struct BlockQ4_K {
  uint16_t d;             // F16 scale of the sub-block scales
  uint16_t dmin;          // F16 scale of the sub-block mins
  uint8_t scales[12];     // 8 scales and 8 mins, 6 bits each (see q4k_scale_min)
  uint8_t qs[kQK_K / 2];  // per 64 values: 32 bytes, low nibbles first 32, high nibbles next 32
};

struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];      // low 4 bits
  uint8_t qh[kQK_K / 4];      // high 2 bits
  int8_t scales[kQK_K / 16];  // one per 16 values
  uint16_t d;                 // F16 super-block scale
};

struct BlockQ8_K {
  float d;                    // scale (float, not F16)
  int8_t qs[kQK_K];           // quants
  int16_t bsums[kQK_K / 16];  // sum of each group of 16 quants
};

static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 4 + 256 + 32);
static_assert(sizeof(BlockQ8_0) == traits(DType::Q8_0).block_bytes);
static_assert(sizeof(BlockQ4_0) == traits(DType::Q4_0).block_bytes);
static_assert(sizeof(BlockQ4_K) == traits(DType::Q4_K).block_bytes);
static_assert(sizeof(BlockQ6_K) == traits(DType::Q6_K).block_bytes);

// Blocks in a file sit at any 2-byte offset: copy them out instead of casting the pointer.
template <class Block>
inline Block load_block(const std::byte* src, int64_t i) {
  Block b;
  std::memcpy(&b, src + i * static_cast<int64_t>(sizeof(Block)), sizeof(Block));
  return b;
}

template <class Block>
inline void store_block(std::byte* dst, int64_t i, const Block& b) {
  std::memcpy(dst + i * static_cast<int64_t>(sizeof(Block)), &b, sizeof(Block));
}

// Q4_K packs 8 (scale, min) pairs of 6 bits into 12 bytes: pairs 0-3 in the low 6 bits of bytes
// 0-3 (scales) and 4-7 (mins); pairs 4-7 keep their low 4 bits in bytes 8-11 (scale low nibble,
// min high nibble) and their top 2 bits in the top bits of bytes 0-3 (scales) and 4-7 (mins).
inline void q4k_scale_min(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

inline void q4k_pack_scale_min(int j, uint8_t sc, uint8_t m, uint8_t* q) {
  if (j < 4) {
    q[j] = static_cast<uint8_t>((q[j] & 0xC0) | sc);
    q[j + 4] = static_cast<uint8_t>((q[j + 4] & 0xC0) | m);
  } else {
    q[j + 4] = static_cast<uint8_t>((sc & 0xF) | ((m & 0xF) << 4));
    q[j - 4] = static_cast<uint8_t>((q[j - 4] & 63) | ((sc >> 4) << 6));
    q[j] = static_cast<uint8_t>((q[j] & 63) | ((m >> 4) << 6));
  }
}

// The 6-bit quant (0..63) of value l (0..255) of a Q6_K block. Per 128 values: ql[0..63] and
// qh[0..31]; values l, l+32, l+64, l+96 (l < 32) share qh[l] (bit pairs 0-1, 2-3, 4-5, 6-7); values
// l and l+64 share ql[l] (low, high nibble), values l+32 and l+96 share ql[l+32].
inline int q6k_quant(const BlockQ6_K& b, int l) {
  const int half = l / 128, r = l % 128, quarter = r / 32, i = r % 32;
  const uint8_t* ql = b.ql + 64 * half;
  const uint8_t* qh = b.qh + 32 * half;
  const int lo = (quarter & 1) ? ql[i + 32] : ql[i];
  const int low4 = (quarter < 2) ? (lo & 0xF) : (lo >> 4);
  const int high2 = (qh[i] >> (2 * quarter)) & 3;
  return low4 | (high2 << 4);
}

// All 256 quants of a Q6_K block, centred (-32..31), in value order (the fast form of q6k_quant).
inline void q6k_unpack(const BlockQ6_K& b, int8_t* q) {
  for (int half = 0; half < 2; ++half, q += 128) {
    const uint8_t* ql = b.ql + 64 * half;
    const uint8_t* qh = b.qh + 32 * half;
    for (int i = 0; i < 32; ++i) {
      q[i] = static_cast<int8_t>(((ql[i] & 0xF) | (((qh[i] >> 0) & 3) << 4)) - 32);
      q[i + 32] = static_cast<int8_t>(((ql[i + 32] & 0xF) | (((qh[i] >> 2) & 3) << 4)) - 32);
      q[i + 64] = static_cast<int8_t>(((ql[i] >> 4) | (((qh[i] >> 4) & 3) << 4)) - 32);
      q[i + 96] = static_cast<int8_t>(((ql[i + 32] >> 4) | (((qh[i] >> 6) & 3) << 4)) - 32);
    }
  }
}

inline void dequantize_block(const BlockQ8_0& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kQK8_0; ++j) y[j] = d * static_cast<float>(b.qs[j]);
}

inline void dequantize_block(const BlockQ4_0& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kQK4_0 / 2; ++j) {
    y[j] = d * static_cast<float>((b.qs[j] & 0xF) - 8);
    y[j + kQK4_0 / 2] = d * static_cast<float>((b.qs[j] >> 4) - 8);
  }
}

inline void dequantize_block(const BlockQ4_K& b, float* y) {
  const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
  const uint8_t* q = b.qs;
  for (int s = 0; s < 8; s += 2, q += 32, y += 64) {
    uint8_t sc, m;
    q4k_scale_min(s, b.scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    q4k_scale_min(s + 1, b.scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) y[l + 32] = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}

inline void dequantize_block(const BlockQ6_K& b, float* y) {
  const float d = f16_to_f32(b.d);
  int8_t q[kQK_K];
  q6k_unpack(b, q);
  for (int s = 0; s < kQK_K / 16; ++s) {
    const float ds = d * static_cast<float>(b.scales[s]);  // (d * scale) * q, as ggml groups it
    for (int l = 16 * s; l < 16 * s + 16; ++l) y[l] = ds * static_cast<float>(q[l]);
  }
}

}  // namespace mamba
