#pragma once
// Q8_0 rows against 8 vectors at once (batched decode) on AMX: a tile multiply (tdpbssd) takes
// 16 rows' 32 quants of a block, as they lie in the rows (tileloadd with the row stride), against
// the 8 vectors' 32 quants, and gives the 16 x 8 exact integer dot products of that block, which
// the vector unit then scales (the rows' and the vectors' block scales) into float sums. Where
// the VNNI kernel (dot_q8_multi_avx512.hpp) transposes each block of 16 rows in registers and
// runs 64 vpdpbusd on it, this is one tile multiply, so the vector work left is the scaling.
// Measured on Emerald Rapids (random 130m model, the two kernels alternated step by step in one
// process, medians of 150 / 80): a batch-8 Q8_0 step 10.1 -> 9.0 ms on 2 threads, 18.7 -> 16.4
// ms on 1; with the two blocks in flight below rather than one, and the next rows prefetched.
// Groups of fewer than 8 vectors and a last group of fewer than 16 rows take the VNNI kernel.
// Linux grants a process the tile registers on request (arch_prctl); without them, or without
// AMX at compile time, amx_usable() is false. Scalar twin: vec_dot_row_q8 in ops/quant.hpp.
#if defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__AVX512F__) && \
    defined(__AVX512BW__) && defined(__linux__)
#define MAMBA_SIMD_AMX 1
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "mamba/ops/simd/rows16_avx512.hpp"

namespace mamba::simd::amx {

// Whether this process may use the tile registers: asked of the kernel once (Linux 5.16 on).
inline bool amx_usable() {
  static const bool usable = [] {
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return usable;
}

// The tiles: C (16 rows x 8 int32 sums) for two blocks in flight, A (16 rows x 32 weight
// quants) and B (the 8 vectors' 32 quants, four per 32-bit word: 8 rows of 8 words).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
inline constexpr TileConfig kConfig = [] {
  TileConfig c;
  for (int t = 0; t < 6; ++t) {  // C0 C1, A0 A1, B0 B1
    c.rows[t] = t < 4 ? 16 : 8;
    c.colsb[t] = 32;
  }
  return c;
}();

// The block's products in `sums` (int32 [16 rows][8 vectors]) into acc: acc[i] lanes 0-7 row 2i
// against vectors 0-7, lanes 8-15 row 2i + 1; dw: the 16 rows' scales, dx: the vectors' twice.
inline void scale_into(const int32_t* sums, __m512 dw, __m512 dx, __m512* acc) {
  for (int i = 0; i < 8; ++i) {
    const __m512i pair = _mm512_set_epi32(2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1,
                                          2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i, 2 * i, 2 * i,
                                          2 * i, 2 * i, 2 * i, 2 * i, 2 * i);
    const __m512 s = _mm512_mul_ps(_mm512_permutexvar_ps(pair, dw), dx);
    acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(sums + 16 * i)), s, acc[i]);
  }
}

// Y[b * ldy + r] = row r . vector b, b < 8, for the rows [r0, r0 + 16 k) of Q8_0 rows (row stride
// `stride` bytes, n values), k = (r1 - r0) / 16; xp: the 8 vectors packed per block of 32 as
// pack_activations_multi lays them out (quants [8 words][8 vectors][4], scales d[8], then what
// this kernel does not read). Returns the first row not done.
inline int64_t dot_rows_q8_0_x8(const std::byte* rows, int64_t stride, int64_t r0, int64_t r1,
                                int64_t n, const std::byte* xp, float* Y, int64_t ldy) {
  constexpr int64_t kBlockBytes = 8 * 40, kWeightBytes = 34;
  const int64_t nblk = n / 32, end = r0 + (r1 - r0) / 16 * 16;
  if (end == r0 || nblk == 0) return r0;
  _tile_loadconfig(&kConfig);
  alignas(64) int32_t sums[2][16 * 8];
  for (int64_t r = r0; r < end; r += 16) {
    const vnni::Rows16 g(rows, stride, r, r1);
    const std::byte* w = g.w[0];
    __m512 acc[8];
    for (auto& a : acc) a = _mm512_setzero_ps();
    // the 16 rows' F16 scales, each the low half of a 32-bit gather at the block's start
    auto dw = [&](int64_t blk) {
      return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g.words(blk * kWeightBytes)));
    };
    auto dx = [&](int64_t blk) {
      const __m256 d =
          _mm256_loadu_ps(reinterpret_cast<const float*>(xp + blk * kBlockBytes + 32 * 8));
      return _mm512_insertf32x8(_mm512_castps256_ps512(d), d, 1);
    };
    // Block blk's product goes to tile blk % 2 (its weights to tile 2 + blk % 2, the vectors' to
    // 4 + blk % 2), issued a block ahead of its scaling, so that the tile unit multiplies the
    // next block while the vector unit scales this one. (The tile numbers are immediates.)
    auto issue0 = [&](int64_t blk) {
      _tile_zero(0);
      _tile_loadd(2, w + blk * kWeightBytes + 2, stride);
      _tile_loadd(4, xp + blk * kBlockBytes, 32);
      _tile_dpbssd(0, 2, 4);
    };
    auto issue1 = [&](int64_t blk) {
      _tile_zero(1);
      _tile_loadd(3, w + blk * kWeightBytes + 2, stride);
      _tile_loadd(5, xp + blk * kBlockBytes, 32);
      _tile_dpbssd(1, 3, 5);
    };
    // Each block's step prefetches its share of the next 16 rows, as the VNNI kernel does (perf
    // put a first form's time on the tile loads of the weights).
    issue0(0);
    for (int64_t blk = 0; blk < nblk; blk += 2) {
      g.prefetch_next(blk * kWeightBytes, kWeightBytes);
      if (blk + 1 < nblk) {
        g.prefetch_next((blk + 1) * kWeightBytes, kWeightBytes);
        issue1(blk + 1);
      }
      _tile_stored(0, sums[0], 32);
      if (blk + 2 < nblk) issue0(blk + 2);
      scale_into(sums[0], dw(blk), dx(blk), acc);
      if (blk + 1 < nblk) {
        _tile_stored(1, sums[1], 32);
        scale_into(sums[1], dw(blk + 1), dx(blk + 1), acc);
      }
    }
    alignas(64) float out[16][8];
    for (int i = 0; i < 8; ++i) _mm512_store_ps(&out[2 * i][0], acc[i]);
    for (int b = 0; b < 8; ++b)
      for (int l = 0; l < 16; ++l) Y[b * ldy + r + l] = out[l][b];
  }
  _tile_release();
  return end;
}

}  // namespace mamba::simd::amx

#endif
