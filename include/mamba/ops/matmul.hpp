#pragma once
// Products with weight matrices in their stored type (F32, F16, BF16 or ggml blocks):
// matrix-vector (decode), a few vectors at once (batched decode) and matrix-matrix (prefill). In
// float, the products run on the SIMD kernels of ops/simd/ and Eigen's GEMM, split by rows across
// the threads of ops/threads.hpp; a weight is never expanded whole. Other scalars (double, for
// the reference checks) take plain loops and Eigen.
#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "mamba/error.hpp"
#include "mamba/ops/aligned_vector.hpp"
#include "mamba/ops/dtype.hpp"
#include "mamba/ops/quant.hpp"
#include "mamba/ops/simd/simd.hpp"
#include "mamba/ops/threads.hpp"

namespace mamba {

// A weight matrix as stored: `rows` rows of `cols` elements, row-major, any DType.
struct MatrixView {
  DType type = DType::F32;
  const std::byte* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t stride = 0;  // bytes from one row to the next; 0: the rows are packed

  int64_t row_stride() const { return stride ? stride : row_bytes(type, cols); }
  const std::byte* row(int64_t r) const { return data + r * row_stride(); }
  // the bytes of its weights
  int64_t bytes() const { return rows * row_bytes(type, cols); }
  // rows [r0, r1) as a matrix of their own
  MatrixView slice_rows(int64_t r0, int64_t r1) const {
    return {type, row(r0), r1 - r0, cols, stride};
  }
  // columns [c0, c1) as a matrix of their own; c0 and c1 multiples of the type's block size
  MatrixView slice_cols(int64_t c0, int64_t c1) const {
    return {type, data + row_bytes(type, c0), rows, c1 - c0, row_stride()};
  }
};

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// dst[0..n) = one stored row, converted to T.
template <class T>
inline void load_row(DType type, const std::byte* src, T* dst, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    dequantize_row(type, src, dst, n);
  } else {
    thread_local std::vector<float> row;
    row.resize(n);
    dequantize_row(type, src, row.data(), n);
    std::copy(row.begin(), row.end(), dst);
  }
}

// How block-quantized weights (Q8_0, Q4_0, Q4_K, Q6_K) meet the activations in products with
// up to kMaxRowsForMultiDot vectors (decode, batched decode, prefill chunks that short); the
// GEMMs of longer prefills are unaffected:
//   Int8 (the default where the integer kernels are SIMD: AVX-512 VNNI or AVX2): each vector is
//     quantized once per product to 8-bit blocks (Q8_0 for Q8_0/Q4_0 rows, Q8_K for K-quants)
//     and each block is an integer dot product, as llama.cpp computes them: the way these formats
//     are meant to be used. Decode runs near the memory ceiling; the logits move by about 1e-2
//     relative (measured in test_simd_int8_model and mamba-bench). A batch of vectors rounds each
//     the same way as a single one, so batched decode gives what stepping alone gives.
//   Float (the default elsewhere): each block is decoded in registers and multiplies the float
//     activations: the stored weights times x up to float rounding, the same as prefill, at up
//     to 2x the decode time.
enum class QuantizedDot { Float, Int8 };

namespace matmul_detail {
inline std::atomic<QuantizedDot>& quantized_dot() {
  static std::atomic<QuantizedDot> mode{simd::kInt8Kernels ? QuantizedDot::Int8
                                                           : QuantizedDot::Float};
  return mode;
}
}  // namespace matmul_detail

inline void set_quantized_dot(QuantizedDot mode) {
  matmul_detail::quantized_dot().store(mode);
}
inline QuantizedDot quantized_dot() {
  return matmul_detail::quantized_dot().load();
}

// The mode for the rest of a scope, the previous one restored after:
//   { mamba::QuantizedDotScope exact(mamba::QuantizedDot::Float); ... }
class QuantizedDotScope {
 public:
  explicit QuantizedDotScope(QuantizedDot mode) : saved_(quantized_dot()) {
    set_quantized_dot(mode);
  }
  ~QuantizedDotScope() { set_quantized_dot(saved_); }
  QuantizedDotScope(const QuantizedDotScope&) = delete;
  QuantizedDotScope& operator=(const QuantizedDotScope&) = delete;

 private:
  QuantizedDot saved_;
};

namespace matmul_detail {
// X's n vectors quantized once to 8-bit blocks for rows of type t and packed for the integer
// kernels: all together for dot_rows_packed_multi (`multi`), else the one vector (n = 1) for
// dot_rows_packed. Valid until the thread's next product.
inline const std::byte* pack_int8(DType t, const float* X, int64_t n, int64_t cols, bool multi) {
  const ActType act = activation_type(t);
  const int64_t ldq = activation_bytes(act, cols);
  thread_local std::vector<std::byte> xq;
  xq.resize(n * ldq);
  for (int64_t b = 0; b < n; ++b)
    simd::quantize_activation(act, X + b * cols, xq.data() + b * ldq, cols);
  if (!multi)
    return simd::pack_activation(t, xq.data(), cols, simd::scratch(simd::packed_bytes(t, cols)));
  std::byte* out = simd::scratch(simd::multi_packed_bytes(t, cols, n));
  simd::pack_activations_multi(t, xq.data(), ldq, cols, n, out);
  return out;
}
}  // namespace matmul_detail

// y = W x    x: (cols), y: (rows)
// float: rows split across the threads, each row dotted in its stored type by the SIMD kernel,
// so every weight byte is streamed once. Other scalars: converted a row at a time.
template <class T>
inline void matvec(const MatrixView& W, const T* x, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    const ActType act = activation_type(W.type);
    const int64_t stride = W.row_stride();
    if (act != ActType::F32 && quantized_dot() == QuantizedDot::Int8) {
      const std::byte* xp = matmul_detail::pack_int8(W.type, x, 1, W.cols, false);
      parallel_for(W.rows, 16, W.bytes(), [&](int64_t r0, int64_t r1) {
        simd::dot_rows_packed(W.type, W.data, stride, r0, r1, xp, W.cols, y);
      });
      return;
    }
    thread_local std::vector<float> sums;  // the block sums some kernels take, once per product
    const float* xsum = nullptr;
    if (simd::needs_block_sums(W.type)) {
      sums.resize(W.cols / 32);
      simd::block_sums32(x, W.cols, sums.data());
      xsum = sums.data();
    }
    parallel_for(W.rows, 16, W.bytes(), [&](int64_t r0, int64_t r1) {
      simd::dot_rows(W.type, W.data, stride, r0, r1, x, W.cols, xsum, y);
    });
  } else {
    std::vector<T> row(W.cols);
    for (int64_t r = 0; r < W.rows; ++r) {
      load_row(W.type, W.row(r), row.data(), W.cols);
      T acc = 0;
      for (int64_t i = 0; i < W.cols; ++i) acc += row[i] * x[i];
      y[r] = acc;
    }
  }
}

// Up to this many rows of X, a matrix product reads each weight row once and dots it with every
// row of X in registers (batched decode); above, it is a GEMM on decoded panels (prefill).
inline constexpr int64_t kMaxRowsForMultiDot = 16;

// Y = X W^T    X: (n, cols), Y: (n, rows), both row-major
template <class T>
inline void matmul(const MatrixView& W, const T* X, int64_t n, T* Y) {
  Eigen::Map<const RowMatrix<T>> x(X, n, W.cols);
  Eigen::Map<RowMatrix<T>> y(Y, n, W.rows);
  if constexpr (std::is_same_v<T, float>) {
    // A few vectors make the products compute-bound: what a part costs is its multiply-adds
    // (x_proj and dt_proj of mamba-130m are worth two threads at 8 vectors, not at one).
    const int64_t macs = n * W.rows * W.cols;
    if (n <= kMaxRowsForMultiDot && activation_type(W.type) != ActType::F32 &&
        quantized_dot() == QuantizedDot::Int8) {
      // all the vectors against 16 rows at a time, in registers
      const std::byte* xp = matmul_detail::pack_int8(W.type, X, n, W.cols, true);
      parallel_for(W.rows, 16, macs, [&](int64_t r0, int64_t r1) {
        simd::dot_rows_packed_multi(W.type, W.data, W.row_stride(), r0, r1, W.cols, xp, n, Y,
                                    W.rows);
      });
      return;
    }
    if (n <= kMaxRowsForMultiDot) {
      parallel_for(W.rows, 16, macs, [&](int64_t r0, int64_t r1) {
        simd::dot_rows_multi(W.type, W.data, W.row_stride(), r0, r1, W.cols, X, W.cols, n, Y,
                             W.rows);
      });
      return;
    }
    // Float weights, or others whose float copy is small (x_proj, dt_proj: at most 2 MiB, made
    // once by all the threads): Eigen's own threaded GEMM, whose threads share one packed copy
    // of X. Split by weight rows instead, each part would pack all of X for itself.
    constexpr int64_t kWholeBytes = int64_t{2} << 20;
    if (W.type == DType::F32 || W.rows * W.cols * 4 <= kWholeBytes) {
      const float* w = reinterpret_cast<const float*>(W.data);
      int64_t ldw = W.row_stride() / 4;
      if (W.type != DType::F32) {
        // the calling thread's float copy, filled by all the threads; only ever grown (the
        // sizes of x_proj and dt_proj alternate, and a resize would reallocate each time)
        thread_local AlignedVector<float> copy;
        if (copy.size() < size_t(W.rows * W.cols)) copy.resize(size_t(W.rows * W.cols));
        float* whole = copy.data();
        parallel_for(W.rows, 16, W.rows * W.cols * 4, [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r)
            simd::dequantize_row(W.type, W.row(r), whole + r * W.cols, W.cols);
        });
        w = whole, ldw = W.cols;
      }
      y.noalias() = x * Eigen::Map<const RowMatrix<float>, 0, Eigen::OuterStride<>>(
                            w, W.rows, W.cols, Eigen::OuterStride<>(ldw))
                            .transpose();
      return;
    }
    // Larger weights: the rows are shared out in contiguous parts; each part is multiplied panel
    // by panel: a panel of rows decoded to float (at most 2 MiB, about an L2) and handed to
    // Eigen's GEMM.
    const int64_t panel = std::clamp<int64_t>(kWholeBytes / (W.cols * 4) / 16 * 16, 16, W.rows);
    parallel_for(W.rows, 16, 2 * n * W.rows * W.cols, [&](int64_t r0, int64_t r1) {
      thread_local RowMatrix<float> buf;
      buf.resize(panel, W.cols);
      for (int64_t p0 = r0; p0 < r1; p0 += panel) {
        const int64_t m = std::min(panel, r1 - p0);
        for (int64_t r = 0; r < m; ++r)
          simd::dequantize_row(W.type, W.row(p0 + r), buf.row(r).data(), W.cols);
        y.middleCols(p0, m).noalias() = x * buf.topRows(m).transpose();
      }
    });
    return;
  }
  // Convert a panel of rows at a time (about 256 KiB of T) and hand it to the GEMM.
  const int64_t panel = std::clamp<int64_t>((256 << 10) / (W.cols * sizeof(T)), 1, W.rows);
  RowMatrix<T> buf(panel, W.cols);
  for (int64_t r0 = 0; r0 < W.rows; r0 += panel) {
    const int64_t m = std::min(panel, W.rows - r0);
    for (int64_t r = 0; r < m; ++r) load_row(W.type, W.row(r0 + r), buf.row(r).data(), W.cols);
    y.middleCols(r0, m).noalias() = x * buf.topRows(m).transpose();
  }
}

}  // namespace mamba
