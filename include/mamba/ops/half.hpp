#pragma once
// IEEE half (F16) and bfloat16 (BF16) to and from float, scalar and bit-exact (round to nearest
// even). The SIMD kernels convert in registers; these are their scalar twins and the loaders' tools.
#include <bit>
#include <cstdint>

namespace mamba {

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (mant << 13));  // inf, nan
  if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return std::bit_cast<float>(sign);  // +-0
  // subnormal half: mant * 2^-24
  const float v = static_cast<float>(mant) * 0x1p-24f;
  return sign ? -v : v;
}

inline uint16_t f32_to_f16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u) return sign | (ax > 0x7F800000u ? 0x7E00u : 0x7C00u);  // nan, inf
  if (ax >= 0x477FF000u) return sign | 0x7C00u;  // rounds past 65504: inf
  if (ax < 0x38800000u) {                          // below the smallest normal half, 2^-14
    // subnormal: value / 2^-24, rounded to nearest even
    const float v = std::bit_cast<float>(ax) * 0x1p24f;
    const uint32_t m = static_cast<uint32_t>(v);
    const float rem = v - static_cast<float>(m);
    const uint32_t r = (rem > 0.5f || (rem == 0.5f && (m & 1u))) ? m + 1 : m;
    return sign | static_cast<uint16_t>(r);
  }
  // normal: rebias the exponent, round the 13 dropped mantissa bits to nearest even
  const uint32_t rebased = ax - (112u << 23);
  const uint32_t round = 0xFFFu + ((rebased >> 13) & 1u);
  return sign | static_cast<uint16_t>((rebased + round) >> 13);
}

inline float bf16_to_f32(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

inline uint16_t f32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet nan
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace mamba
