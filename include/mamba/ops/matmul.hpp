#pragma once
// Products with weight matrices in their stored type (F32, F16, BF16 or ggml blocks):
// matrix-vector (decode) and matrix-matrix (prefill). Float weights go straight to Eigen; other
// types are converted a row or a panel of rows at a time, so a weight is never expanded whole.
#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "mamba/error.hpp"
#include "mamba/ops/dtype.hpp"
#include "mamba/ops/quant.hpp"
#include "mamba/ops/quant.hpp"

namespace mamba {

// A weight matrix as stored: `rows` rows of `cols` elements, row-major, any DType.
struct MatrixView {
  DType type = DType::F32;
  const std::byte* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;

  int64_t row_stride() const { return row_bytes(type, cols); }
  const std::byte* row(int64_t r) const { return data + r * row_stride(); }
  int64_t bytes() const { return rows * row_stride(); }
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

// y = W x    x: (cols), y: (rows)
template <class T>
inline void matvec(const MatrixView& W, const T* x, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (W.type == DType::F32) {
      Eigen::Map<const RowMatrix<float>> w(reinterpret_cast<const float*>(W.data), W.rows, W.cols);
      Eigen::Map<Eigen::VectorXf>(y, W.rows).noalias() =
          w * Eigen::Map<const Eigen::VectorXf>(x, W.cols);
      return;
    }
  }
  std::vector<T> row(W.cols);
  for (int64_t r = 0; r < W.rows; ++r) {
    load_row(W.type, W.row(r), row.data(), W.cols);
    T acc = 0;
    for (int64_t i = 0; i < W.cols; ++i) acc += row[i] * x[i];
    y[r] = acc;
  }
}

// Y = X W^T    X: (n, cols), Y: (n, rows), both row-major
template <class T>
inline void matmul(const MatrixView& W, const T* X, int64_t n, T* Y) {
  Eigen::Map<const RowMatrix<T>> x(X, n, W.cols);
  Eigen::Map<RowMatrix<T>> y(Y, n, W.rows);
  if constexpr (std::is_same_v<T, float>) {
    if (W.type == DType::F32) {
      Eigen::Map<const RowMatrix<float>> w(reinterpret_cast<const float*>(W.data), W.rows, W.cols);
      y.noalias() = x * w.transpose();
      return;
    }
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
