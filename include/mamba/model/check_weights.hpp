#pragma once
// Scanning weights for NaN and Inf, in whatever type they are stored (block-quantized rows are
// dequantized first: a Q8_0 block whose f16 scale is Inf makes the whole block Inf). A file from
// the internet can hold them, and a model with one NaN weight produces NaN logits that a sampler
// refuses much later; this says where they are.
//
//   for (const auto& w : mamba::check_weights(model)) std::cout << w.describe() << "\n";
//
// check_weights(Checkpoint) names tensors as the checkpoint does (Hugging Face names, before any
// conversion); check_weights(Model) scans what the model computes with, including the vectors
// converted at load (A = -exp(A_log) can overflow to -Inf even when A_log is finite).
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mamba/io/checkpoint.hpp"
#include "mamba/model/model.hpp"
#include "mamba/ops/quant.hpp"

namespace mamba {

// One tensor holding non-finite values.
struct WeightIssue {
  std::string tensor;     // its name
  int64_t first_row = 0;  // the first row (of the tensor seen as rows x last dimension) affected
  int64_t rows = 0;       // rows with at least one non-finite value
  int64_t nan = 0;        // NaN values
  int64_t inf = 0;        // +Inf and -Inf values

  std::string describe() const {
    return tensor + ": " + std::to_string(nan) + " NaN, " + std::to_string(inf) + " Inf in " +
           std::to_string(rows) + " row" + (rows == 1 ? "" : "s") + " (first: row " +
           std::to_string(first_row) + ")";
  }
};

namespace check_weights_detail {

// Counts the non-finite values of `rows` rows read by row(r, buffer); appends an issue if any.
template <class RowFn>
void scan(const std::string& name, int64_t rows, int64_t cols, RowFn&& row,
          std::vector<WeightIssue>& out) {
  WeightIssue issue{name, -1, 0, 0, 0};
  std::vector<float> buf(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    const std::span<const float> v = row(r, buf.data());
    int64_t nan = 0, inf = 0;
    for (float x : v) {
      nan += std::isnan(x);
      inf += std::isinf(x);
    }
    if (nan + inf == 0) continue;
    if (issue.first_row < 0) issue.first_row = r;
    ++issue.rows;
    issue.nan += nan;
    issue.inf += inf;
  }
  if (issue.rows > 0) out.push_back(std::move(issue));
}

inline void scan_matrix(const std::string& name, const MatrixView& m,
                        std::vector<WeightIssue>& out) {
  scan(
      name, m.rows, m.cols,
      [&](int64_t r, float* buf) {
        dequantize_row(m.type, m.row(r), buf, m.cols);
        return std::span<const float>(buf, static_cast<size_t>(m.cols));
      },
      out);
}

template <class T>
void scan_vector(const std::string& name, std::span<const T> v, std::vector<WeightIssue>& out) {
  if (v.empty()) return;
  scan(
      name, 1, static_cast<int64_t>(v.size()),
      [&](int64_t, float* buf) {
        for (size_t i = 0; i < v.size(); ++i) buf[i] = static_cast<float>(v[i]);
        return std::span<const float>(buf, v.size());
      },
      out);
}

}  // namespace check_weights_detail

// Every tensor of a checkpoint, by its name.
inline std::vector<WeightIssue> check_weights(const Checkpoint& ck) {
  std::vector<WeightIssue> out;
  for (const auto& [name, t] : ck.tensors) {
    const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
    if (cols <= 0) continue;
    int64_t rows = 1;
    for (size_t i = 0; i + 1 < t.shape.size(); ++i) rows *= t.shape[i];
    check_weights_detail::scan_matrix(name, MatrixView{t.type, t.data, rows, cols}, out);
  }
  return out;
}

// Every weight a model computes with, named as in a Hugging Face checkpoint (A is reported as
// `mixer.A`, the -exp(A_log) the model uses).
template <class T>
std::vector<WeightIssue> check_weights(const BasicModel<T>& model) {
  using namespace check_weights_detail;
  const Weights<T>& w = model.weights();
  std::vector<WeightIssue> out;
  scan_matrix("backbone.embeddings.weight", w.embedding, out);
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const LayerWeights<T>& l = w.layers[i];
    const std::string p = "backbone.layers." + std::to_string(i) + ".", m = p + "mixer.";
    scan_vector(p + "norm.weight", l.norm, out);
    scan_matrix(m + "in_proj.weight", l.in_proj, out);
    scan_vector(m + "in_proj.bias", l.in_proj_bias, out);
    scan_vector(m + "conv1d.weight", l.conv_w, out);
    scan_vector(m + "conv1d.bias", l.conv_b, out);
    scan_matrix(m + "x_proj.weight", l.x_proj, out);
    scan_matrix(m + "dt_proj.weight", l.dt_proj, out);
    const bool m2 = model.config().arch == Arch::Mamba2;
    scan_vector(m + (m2 ? "dt_bias" : "dt_proj.bias"), l.dt_bias, out);
    scan_vector(m + "A", l.A, out);
    scan_vector(m + "D", l.D, out);
    scan_vector(m + "norm.weight", l.gate_norm, out);
    scan_matrix(m + "out_proj.weight", l.out_proj, out);
    scan_vector(m + "out_proj.bias", l.out_proj_bias, out);
  }
  scan_vector("backbone.norm_f.weight", w.norm_f, out);
  if (w.lm_head.data != w.embedding.data) scan_matrix("lm_head.weight", w.lm_head, out);
  return out;
}

}  // namespace mamba
