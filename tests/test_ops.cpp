// Every op against plain double loops written here from the equations, on random inputs with
// sizes that are not multiples of any vector width.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <mamba/ops/activations.hpp>
#include <mamba/ops/half.hpp>
#include <mamba/ops/matmul.hpp>
#include <mamba/ops/quant.hpp>
#include <mamba/ops/rmsnorm.hpp>
#include <mamba/ops/threads.hpp>
#include <mamba/ssm/conv.hpp>
#include <mamba/ssm/discretize.hpp>
#include <mamba/ssm/scan.hpp>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

#include "reference_fixture.hpp"

namespace {

std::vector<double> random_vector(size_t n, uint32_t seed, double lo = -1, double hi = 1) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

template <class T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

TEST(ParallelFor, CoversEveryIndexOnceInShrinkingGrainAlignedParts) {
  for (int threads : {1, 2, 3, 8}) {
    mamba::set_num_threads(threads);
    for (int64_t grain : {1, 16, 1000})
      for (int64_t n : {1, 15, 16, 17, 999, 4097, 100003}) {
        SCOPED_TRACE(testing::Message() << threads << " threads, n " << n << ", grain " << grain);
        const int64_t units = (n + grain - 1) / grain;
        std::mutex m;
        std::vector<std::pair<int64_t, int64_t>> parts;
        mamba::parallel_for(n, grain, int64_t{1} << 40, [&](int64_t b, int64_t e) {
          // inside a split job, a nested call runs on the calling thread, as one part
          int nested = 0;
          mamba::parallel_for(4, 1, int64_t{1} << 40, [&](int64_t, int64_t) { ++nested; });
          const std::lock_guard lock(m);
          if (threads > 1 && units > 1) {
            EXPECT_EQ(nested, 1);
          }
          parts.emplace_back(b, e);
        });
        std::sort(parts.begin(), parts.end());
        ASSERT_FALSE(parts.empty());
        EXPECT_EQ(parts.front().first, 0);
        EXPECT_EQ(parts.back().second, n);
        EXPECT_LE(static_cast<int64_t>(parts.size()), std::min<int64_t>(units, 4 * threads));
        for (size_t i = 0; i < parts.size(); ++i) {
          EXPECT_LT(parts[i].first, parts[i].second);
          EXPECT_EQ(parts[i].first % grain, 0);
          if (i + 1 < parts.size()) {
            EXPECT_EQ(parts[i].second, parts[i + 1].first);
            // the last part may be cut short by n
            if (i + 2 < parts.size()) {
              EXPECT_GE(parts[i].second - parts[i].first, parts[i + 1].second - parts[i + 1].first);
            }
          }
        }
      }
  }
  mamba::set_num_threads(0);
}

TEST(Activations, MatchTheirDefinitions) {
  for (double v : {-30.0, -5.0, -0.3, 0.0, 1e-8, 0.7, 19.99, 20.0, 20.01, 40.0}) {
    EXPECT_NEAR(mamba::silu(v), v / (1 + std::exp(-v)), 1e-15 * (1 + std::abs(v)));
    const double sp = v > 20 ? v : std::log(1 + std::exp(v));
    EXPECT_NEAR(mamba::softplus(v), sp, 1e-12 * (1 + std::abs(v)));
  }
  // PyTorch's threshold: above 20 softplus is the identity, exactly
  EXPECT_EQ(mamba::softplus(20.5f), 20.5f);
  EXPECT_NE(mamba::softplus(19.5), 19.5);
}

TEST(RmsNorm, MatchesDoubleLoop) {
  for (int n : {1, 7, 33, 257}) {
    const auto x = random_vector(n, n), w = random_vector(n, n + 1);
    double ms = 0;
    for (double v : x) ms += v * v;
    ms /= n;
    std::vector<double> want(n);
    for (int i = 0; i < n; ++i) want[i] = x[i] / std::sqrt(ms + 1e-5) * w[i];
    std::vector<float> xf = cast<float>(x), wf = cast<float>(w), yf(n);
    mamba::rmsnorm(xf.data(), wf.data(), yf.data(), n, 1e-5);
    EXPECT_LE(relative_error(yf, want), 1e-6);
    std::vector<double> yd(n);
    mamba::rmsnorm(x.data(), w.data(), yd.data(), n, 1e-5);
    EXPECT_LE(relative_error(yd, want), 1e-14);
    mamba::rmsnorm(x.data(), static_cast<const double*>(nullptr), yd.data(), n, 1e-5);
    for (int i = 0; i < n; ++i) EXPECT_NEAR(yd[i], want[i] / w[i], 1e-12);
  }
}

TEST(Discretize, ExactAndSimplifiedAgreeToFirstOrder) {
  const double a = -3.0, b = 0.7;
  double previous_gap = 0;
  for (double dt : {1e-2, 1e-3, 1e-4, 1e-5}) {
    const auto exact = mamba::zoh_exact(dt, a, b);
    const auto simple = mamba::zoh_simplified(dt, a, b);
    EXPECT_EQ(exact.A_bar, simple.A_bar);
    EXPECT_DOUBLE_EQ(exact.A_bar, std::exp(dt * a));
    // (exp(dt a) - 1)/a b = dt b (1 + dt a / 2 + O(dt^2)): the relative gap is about |dt a| / 2
    const double gap = std::abs(exact.B_bar - simple.B_bar) / std::abs(simple.B_bar);
    EXPECT_NEAR(gap, std::abs(dt * a) / 2, std::pow(dt * a, 2));
    if (previous_gap > 0) {
      EXPECT_NEAR(previous_gap / gap, 10.0, 0.5);  // first order in dt
    }
    previous_gap = gap;
  }
  // a = 0 is the limit: both are dt * b
  EXPECT_EQ(mamba::zoh_exact(0.5, 0.0, 2.0).B_bar, 1.0);
}

TEST(Discretize, ExactFormIsTheIntegralOfTheContinuousSystem) {
  // Bbar = integral_0^dt exp(a s) ds * b, by the midpoint rule with many steps
  const double a = -2.5, b = 1.3, dt = 0.4;
  const int steps = 100000;
  double integral = 0;
  for (int i = 0; i < steps; ++i) integral += std::exp(a * (i + 0.5) * dt / steps) * dt / steps;
  EXPECT_NEAR(mamba::zoh_exact(dt, a, b).B_bar, integral * b, 1e-10);
}

// Reference conv from the formula: y[t,c] = b[c] + sum_k w[c,k] x[t-(K-1)+k, c] with zeros before
// t=0
std::vector<double> conv_reference(const std::vector<double>& x, const std::vector<double>& w,
                                   const std::vector<double>& b, int n, int E, int K) {
  std::vector<double> y(n * E);
  for (int t = 0; t < n; ++t)
    for (int c = 0; c < E; ++c) {
      double acc = b[c];
      for (int k = 0; k < K; ++k) {
        const int s = t - (K - 1) + k;
        if (s >= 0) acc += w[c * K + k] * x[s * E + c];
      }
      y[t * E + c] = acc;
    }
  return y;
}

TEST(Conv, SequenceAndStepMatchTheFormula) {
  for (int K : {1, 2, 4, 5}) {
    for (int n : {1, 3, 11}) {
      SCOPED_TRACE(testing::Message() << "K=" << K << " n=" << n);
      const int E = 13;
      const auto x = random_vector(n * E, 1), w = random_vector(E * K, 2), b = random_vector(E, 3);
      const auto want = conv_reference(x, w, b, n, E, K);
      std::vector<double> state(std::max(K - 1, 0) * E, 0.0), y(n * E);
      mamba::causal_conv1d(n, E, K, w.data(), b.data(), state.data(), x.data(), E, y.data());
      EXPECT_LE(relative_error(y, want), 1e-15);
      std::vector<double> state2((K - 1) * E, 0.0), y2(n * E);
      for (int t = 0; t < n; ++t)
        mamba::causal_conv1d_step(E, K, w.data(), b.data(), state2.data(), &x[t * E], &y2[t * E]);
      EXPECT_LE(relative_error(y2, y), 1e-15);
      EXPECT_EQ(state2, state);  // copies of the inputs: exact
      // the state holds the last K-1 inputs (zeros before the start)
      for (int k = 0; k < K - 1; ++k)
        for (int c = 0; c < E; ++c) {
          const int s = n - (K - 1) + k;
          EXPECT_EQ(state[k * E + c], s >= 0 ? x[s * E + c] : 0.0);
        }
    }
  }
}

// What the model runs: taps transposed to (K, E), fed in chunks of any length (1 = decode), with
// and without a bias; against the formula, in double (to rounding) and float.
TEST(Conv, FastFormMatchesTheFormulaInAnyChunksAndChannelRanges) {
  for (int K : {1, 2, 4, 5}) {
    for (bool bias : {true, false}) {
      SCOPED_TRACE(testing::Message() << "K=" << K << " bias=" << bias);
      const int E = 37, n = 13, stride = E + 3;  // rows of x inside wider ones, as in xz
      const auto x = random_vector(n * stride, 11), w = random_vector(E * K, 12);
      const auto b = bias ? random_vector(E, 13) : std::vector<double>(E, 0.0);
      std::vector<double> x_dense(n * E);
      for (int t = 0; t < n; ++t) std::copy(&x[t * stride], &x[t * stride] + E, &x_dense[t * E]);
      const auto want = conv_reference(x_dense, w, b, n, E, K);
      std::vector<double> w_t(K * E);
      for (int c = 0; c < E; ++c)
        for (int k = 0; k < K; ++k) w_t[k * E + c] = w[c * K + k];
      const std::vector<float> xf(x.begin(), x.end()), w_tf(w_t.begin(), w_t.end()),
          bf(b.begin(), b.end());
      std::vector<double> state(std::max(K - 1, 0) * E, 0.0), y(n * E);
      std::vector<float> statef(state.size(), 0.0f), yf(n * E);
      for (int t = 0, len = 1; t < n; t += len, len = len % 4 + 1) {  // chunks 1, 2, 3, 4, 1, ...
        const int m = std::min(len, n - t);
        // in double over two channel ranges (as decode splits them), in float over all at once
        for (auto [c0, c1] : {std::pair{0, 16}, std::pair{16, E}})
          mamba::causal_conv1d_fast<double>(c0, c1, m, E, K, w_t.data(), bias ? b.data() : nullptr,
                                            state.data(), &x[t * stride], stride, &y[t * E]);
        mamba::causal_conv1d_fast(m, E, K, w_tf.data(), bias ? bf.data() : nullptr, statef.data(),
                                  &xf[t * stride], stride, &yf[t * E]);
      }
      EXPECT_LE(relative_error(y, want), 1e-15);
      EXPECT_LE(relative_error(std::vector<double>(yf.begin(), yf.end()), want), 1e-6);
      for (int k = 0; k < K - 1; ++k)  // the last K-1 inputs, exactly
        for (int c = 0; c < E; ++c) EXPECT_EQ(state[k * E + c], x[(n - (K - 1) + k) * stride + c]);
    }
  }
}

TEST(Scan, SequenceAndStepMatchTheRecurrence) {
  const int E = 11, N = 7, n = 9;
  const auto x = random_vector(n * E, 4), dt = random_vector(n * E, 5, 0.001, 0.5);
  const auto Araw = random_vector(E * N, 6, 0.1, 3.0), B = random_vector(n * N, 7),
             C = random_vector(n * N, 8), D = random_vector(E, 9), z = random_vector(n * E, 10);
  std::vector<double> A(E * N);
  for (int i = 0; i < E * N; ++i) A[i] = -Araw[i];
  // the recurrence, written out
  std::vector<double> h(E * N, 0.0), want(n * E);
  for (int t = 0; t < n; ++t)
    for (int c = 0; c < E; ++c) {
      double y = 0;
      for (int s = 0; s < N; ++s) {
        double& hs = h[c * N + s];
        hs = std::exp(dt[t * E + c] * A[c * N + s]) * hs +
             dt[t * E + c] * B[t * N + s] * x[t * E + c];
        y += hs * C[t * N + s];
      }
      y += D[c] * x[t * E + c];
      const double g = z[t * E + c];
      want[t * E + c] = y * g / (1 + std::exp(-g));
    }
  std::vector<double> hs(E * N, 0.0), y(n * E);
  mamba::selective_scan(n, E, N, x.data(), E, dt.data(), A.data(), B.data(), C.data(), N, D.data(),
                        z.data(), E, hs.data(), y.data());
  EXPECT_LE(relative_error(y, want), 1e-14);
  EXPECT_LE(relative_error(hs, h), 1e-14);
  // float, against the same double reference
  auto xf = cast<float>(x), dtf = cast<float>(dt), Af = cast<float>(A), Bf = cast<float>(B),
       Cf = cast<float>(C), Df = cast<float>(D), zf = cast<float>(z);
  std::vector<float> hf(E * N, 0.f), yf(n * E);
  for (int t = 0; t < n; ++t)
    mamba::selective_scan_step(E, N, &xf[t * E], &dtf[t * E], Af.data(), &Bf[t * N], &Cf[t * N],
                               Df.data(), &zf[t * E], hf.data(), &yf[t * E]);
  EXPECT_LE(relative_error(yf, want), 1e-5);
}

// A weight matrix stored as `type`, with its decoded values as double for the reference.
struct StoredMatrix {
  std::vector<std::byte> bytes;
  std::vector<double> values;
  mamba::MatrixView view;
};

StoredMatrix make_matrix(mamba::DType type, int rows, int cols, uint32_t seed) {
  StoredMatrix m;
  const auto v = random_vector(rows * cols, seed);
  const std::vector<float> f(v.begin(), v.end());
  const int64_t stride = mamba::row_bytes(type, cols);
  m.bytes.resize(rows * stride);
  std::vector<float> decoded(cols);
  for (int r = 0; r < rows; ++r) {
    mamba::quantize_row(type, &f[r * cols], &m.bytes[r * stride], cols);
    mamba::dequantize_row(type, &m.bytes[r * stride], decoded.data(), cols);
    m.values.insert(m.values.end(), decoded.begin(), decoded.end());
  }
  m.view = {type, m.bytes.data(), rows, cols};
  return m;
}

template <class T>
class MatmulTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(MatmulTest, Scalars);

TYPED_TEST(MatmulTest, MatchesDoubleLoops) {
  using T = TypeParam;
  const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-14;
  using mamba::DType;
  for (auto type :
       {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const int64_t block = mamba::traits(type).block_size;
    // n above kMaxRowsForMultiDot takes the GEMM: 40 x 256 a float copy of the whole matrix,
    // 600 x 1024 (2.4 MiB in float) panels of rows; both with one and with two threads
    for (auto [rows, cols, n, threads] : {std::tuple{7, 13, 5, 1},
                                          {1, 1, 2, 1},
                                          {37, 100, 3, 1},
                                          {300, 17, 9, 1},
                                          {5, 256, 3, 1},
                                          {3, 768, 4, 1},
                                          {40, 256, 20, 1},
                                          {40, 256, 20, 2},
                                          {600, 1024, 17, 2}}) {
      if (cols % block != 0) continue;
      SCOPED_TRACE(testing::Message() << mamba::dtype_name(type) << " " << rows << "x" << cols
                                      << " n " << n << ", " << threads << " threads");
      mamba::set_num_threads(threads);
      const auto W = make_matrix(type, rows, cols, rows * cols);
      const auto X = random_vector(n * cols, 42);
      std::vector<double> want(n * rows);
      for (int t = 0; t < n; ++t)
        for (int r = 0; r < rows; ++r) {
          double acc = 0;
          for (int c = 0; c < cols; ++c) acc += W.values[r * cols + c] * X[t * cols + c];
          want[t * rows + r] = acc;
        }
      const auto Xt = cast<T>(X);
      std::vector<T> Y(n * rows);
      {
        mamba::QuantizedDotScope exact(mamba::QuantizedDot::Float);
        mamba::matmul(W.view, Xt.data(), n, Y.data());
        EXPECT_LE(relative_error(Y, want), tol);
      }
      // the default (int8 on AVX-512 VNNI and AVX2) rounds the vectors to 8 bits per block for
      // block-quantized rows, within about 1% of the largest |x| in each block
      const bool int8 = std::is_same_v<T, float> && block > 1 &&
                        mamba::quantized_dot() == mamba::QuantizedDot::Int8;
      mamba::matmul(W.view, Xt.data(), n, Y.data());
      EXPECT_LE(relative_error(Y, want), int8 ? 3e-2 : tol);
      // one vector: the same
      const std::vector<double> want0(want.begin(), want.begin() + rows);
      std::vector<T> y(rows);
      {
        mamba::QuantizedDotScope exact(mamba::QuantizedDot::Float);
        mamba::matvec(W.view, Xt.data(), y.data());
        EXPECT_LE(relative_error(y, want0), tol);
      }
      mamba::matvec(W.view, Xt.data(), y.data());
      EXPECT_LE(relative_error(y, want0), int8 ? 3e-2 : tol);
    }
  }
  mamba::set_num_threads(0);
}

TYPED_TEST(MatmulTest, ColumnSlicesMultiplyAsTheirBlock) {
  // a slice's rows are strided: each product must step by the parent's row, not its own width
  using T = TypeParam;
  const int64_t rows = 24, cols = 512, c0 = 256, c1 = 512;
  for (auto type : {mamba::DType::F32, mamba::DType::F16, mamba::DType::Q8_0}) {
    for (int64_t n : {1, 5, 20}) {
      SCOPED_TRACE(testing::Message() << mamba::dtype_name(type) << " n " << n);
      const auto W = make_matrix(type, rows, cols, 7);
      const auto X = random_vector(n * (c1 - c0), 8);
      std::vector<double> want(n * rows);
      for (int64_t t = 0; t < n; ++t)
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = c0; c < c1; ++c)
            want[t * rows + r] += W.values[r * cols + c] * X[t * (c1 - c0) + c - c0];
      const auto Xt = cast<T>(X);
      std::vector<T> Y(n * rows);
      mamba::QuantizedDotScope exact(mamba::QuantizedDot::Float);
      mamba::matmul(W.view.slice_cols(c0, c1), Xt.data(), n, Y.data());
      EXPECT_LE(relative_error(Y, want), (std::is_same_v<T, float> ? 1e-6 : 1e-14));
    }
  }
}

}  // namespace
