#pragma once
// Rows16: 16 rows of a matrix at a time, as the batched integer kernels take them (the VNNI ones
// in dot_q8_multi_avx512.hpp and the AMX one in dot_q8_amx.hpp), on AVX-512.
#if defined(__AVX512F__)
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace mamba::simd::vnni {

// Rows r .. r + 15 of a matrix (row stride `stride` bytes) whose part [r0, r1) a kernel takes, a
// short last group repeating its last row: their addresses, gathers of a 32-bit word from each,
// the prefetch of the next 16 rows (which follow in memory: each block's step fetches its share)
// and the store of 16 results, those of the rows that exist.
struct Rows16 {
  const std::byte* w[16];
  __m512i at;  // byte offsets of the rows from w[0]
  const std::byte* next;
  __mmask16 keep;

  Rows16(const std::byte* rows, int64_t stride, int64_t r, int64_t r1) {
    const int nr = int(std::min<int64_t>(16, r1 - r));
    alignas(64) int32_t offsets[16];
    for (int l = 0; l < 16; ++l) {
      offsets[l] = int32_t(std::min(l, nr - 1) * stride);
      w[l] = rows + r * stride + offsets[l];
    }
    at = _mm512_load_si512(offsets);
    next = r + 16 < r1 ? rows + (r + 16) * stride : nullptr;
    keep = __mmask16((1u << nr) - 1);
  }
  // lane l = the 32-bit word at byte o of row l
  __m512i words(int64_t o) const { return _mm512_i32gather_epi32(at, w[0] + o, 1); }
  // the next rows' share of a block of `bytes` per row at offset o
  void prefetch_next(int64_t o, int64_t bytes) const {
    if (next)
      for (int64_t i = 0; i < 16 * bytes; i += 64) _mm_prefetch(next + 16 * o + i, _MM_HINT_T0);
  }
  void store(float* y, __m512 v) const { _mm512_mask_storeu_ps(y, keep, v); }
};

}  // namespace mamba::simd::vnni

#endif
