// Every SIMD kernel against its scalar twin, for every instruction set this build can run (the
// scalar packet, and AVX2 / AVX-512 when the compiler targets them), on random inputs whose
// lengths are not multiples of the vector width.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <mamba/model/mixer.hpp>
#include <mamba/ops/activations.hpp>
#include <mamba/ops/quant.hpp>
#include <mamba/ops/simd/simd.hpp>
#include <mamba/ssm/scan.hpp>
#include <random>
#include <vector>

namespace {

using mamba::DType;

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1, float hi = 1) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

std::vector<std::byte> stored_row(DType t, const std::vector<float>& v) {
  std::vector<std::byte> b(mamba::row_bytes(t, static_cast<int64_t>(v.size())) + 64);
  mamba::quantize_row(t, v.data(), b.data(), static_cast<int64_t>(v.size()));
  return b;
}

constexpr DType kTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0,
                            DType::Q4_0, DType::Q4_K, DType::Q6_K};

template <class O>
class SimdTest : public ::testing::Test {};
using Isas = ::testing::Types<mamba::simd::ScalarOps
#if defined(MAMBA_SIMD_AVX2)
                              ,
                              mamba::simd::Avx2Ops
#endif
#if defined(MAMBA_SIMD_AVX512)
                              ,
                              mamba::simd::Avx512Ops
#endif
#if defined(MAMBA_SIMD_NEON)
                              ,
                              mamba::simd::NeonOps
#endif
                              >;
TYPED_TEST_SUITE(SimdTest, Isas);

// Row lengths: every block size, plus plain lengths that end in a partial vector.
std::vector<int64_t> lengths_for(DType t) {
  const int64_t bs = mamba::traits(t).block_size;
  if (bs == 1) return {1, 3, 15, 17, 33, 63, 65, 100, 768, 1000};
  return {bs, 2 * bs, 3 * bs, 5 * bs, 6 * bs, 7 * bs, 1536};
}

TYPED_TEST(SimdTest, DotRowMatchesVecDotRow) {
  for (DType t : kTypes) {
    for (int64_t n : lengths_for(t)) {
      if (n % mamba::traits(t).block_size) continue;
      SCOPED_TRACE(testing::Message() << mamba::dtype_name(t) << " n=" << n);
      const auto w = random_floats(n, uint32_t(n) * 7 + 1), x = random_floats(n, uint32_t(n) + 2);
      const auto row = stored_row(t, w);
      const float want = mamba::vec_dot_row(t, row.data(), x.data(), n);
      const float got = mamba::simd::kernels::dot_row<TypeParam>(t, row.data(), x.data(), n);
      // bound: float rounding of n products of magnitude <= |w||x|
      double scale = 0;
      for (int64_t i = 0; i < n; ++i) scale += std::fabs(w[i] * x[i]);
      EXPECT_NEAR(got, want, 1e-5 * scale + 1e-6);
    }
  }
}

TYPED_TEST(SimdTest, DotRowsMatchesVecDotRowOnEveryRow) {
  // 37 rows: two groups of 16 (summed together on AVX-512) and 5 alone, from row 3 of 40 whose
  // stride leaves 64 unused bytes after each
  const int64_t n_rows = 40, r0 = 3, r1 = 40;
  for (DType t : kTypes) {
    for (int64_t n : {int64_t{256}, int64_t{768}}) {
      SCOPED_TRACE(testing::Message() << mamba::dtype_name(t) << " n=" << n);
      const int64_t rb = mamba::row_bytes(t, n), stride = rb + 64;
      std::vector<std::byte> m(n_rows * stride);
      const auto w = random_floats(n * n_rows, uint32_t(n) + 11), x = random_floats(n, 5);
      for (int64_t r = 0; r < n_rows; ++r) mamba::quantize_row(t, &w[r * n], &m[r * stride], n);
      std::vector<float> xsum(n / 32), y(n_rows, -1.0f);
      mamba::simd::kernels::block_sums32<TypeParam>(x.data(), n, xsum.data());
      mamba::simd::kernels::dot_rows<TypeParam>(t, m.data(), stride, r0, r1, x.data(), n,
                                                xsum.data(), y.data());
      for (int64_t r = 0; r < n_rows; ++r) {
        if (r < r0) {
          EXPECT_EQ(y[r], -1.0f) << "row " << r << " is outside the range";
          continue;
        }
        double scale = 0;
        for (int64_t i = 0; i < n; ++i) scale += std::fabs(w[r * n + i] * x[i]);
        EXPECT_NEAR(y[r], mamba::vec_dot_row(t, &m[r * stride], x.data(), n), 1e-5 * scale + 1e-6)
            << "row " << r;
      }
    }
  }
}

TEST(SimdInt8, DotRowQ8MatchesVecDotRowQ8) {
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    for (int64_t n : lengths_for(t)) {
      for (uint32_t seed : {1u, 2u, 3u}) {
        SCOPED_TRACE(testing::Message() << mamba::dtype_name(t) << " n=" << n << " seed=" << seed);
        const auto w = random_floats(n, seed * 100 + uint32_t(n)),
                   x = random_floats(n, seed * 7 + uint32_t(n), -3, 3);
        const auto row = stored_row(t, w);
        const auto act = mamba::activation_type(t);
        std::vector<std::byte> xq(mamba::activation_bytes(act, n));
        mamba::quantize_activation(act, x.data(), xq.data(), n);
        const float want = mamba::vec_dot_row_q8(t, row.data(), xq.data(), n);
        const float got = mamba::simd::dot_row_q8(t, row.data(), xq.data(), n);
        double scale = 0;
        for (int64_t i = 0; i < n; ++i) scale += std::fabs(w[i] * x[i]);
        EXPECT_NEAR(got, want, 1e-5 * scale + 1e-6);
        // and the quantized activations stay close to the float product
        EXPECT_NEAR(got, mamba::vec_dot_row(t, row.data(), x.data(), n), 0.02 * scale + 1e-4);
      }
    }
  }
}

TEST(SimdInt8, QuantizeActivationGivesTheScalarBytes) {
  using mamba::ActType;
  for (ActType a : {ActType::Q8_0, ActType::Q8_K}) {
    for (int64_t n : {256, 768, 1536}) {
      SCOPED_TRACE(testing::Message() << int(a) << " n=" << n);
      auto x = random_floats(n, uint32_t(n) + 9, -4, 4);
      // halves that round differently under ties-to-even and ties-away, and an all-zero block
      x[1] = 0.5f * (4.0f / 127.0f);
      std::fill(x.end() - 256, x.end(), 0.0f);
      std::vector<std::byte> want(mamba::activation_bytes(a, n)), got(want.size());
      mamba::quantize_activation(a, x.data(), want.data(), n);
      mamba::simd::quantize_activation(a, x.data(), got.data(), n);
      EXPECT_EQ(got, want);
    }
  }
}

TYPED_TEST(SimdTest, DotRowIsNotFooledByWrongRows) {
  // a kernel that skipped the tail or a block would differ by a whole product
  const int64_t n = 67;
  std::vector<float> w(n, 0.0f), x(n, 1.0f);
  w[n - 1] = 5.0f;
  const auto row = stored_row(DType::F32, w);
  EXPECT_EQ(mamba::simd::kernels::dot_row<TypeParam>(DType::F32, row.data(), x.data(), n), 5.0f);
}

TYPED_TEST(SimdTest, DequantizeRowMatchesScalar) {
  for (DType t : kTypes) {
    for (int64_t n : lengths_for(t)) {
      SCOPED_TRACE(testing::Message() << mamba::dtype_name(t) << " n=" << n);
      const auto w = random_floats(n, uint32_t(n) * 3 + 5, -2, 2);
      const auto row = stored_row(t, w);
      std::vector<float> want(n), got(n + 1, 123.0f);
      mamba::dequantize_row(t, row.data(), want.data(), n);
      mamba::simd::kernels::dequantize_row<TypeParam>(t, row.data(), got.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(got[i], want[i], 1e-6f * (1 + std::fabs(want[i])));
      EXPECT_EQ(got[n], 123.0f);  // nothing written past the end
    }
  }
}

// A matrix of `rows` stored rows of n random values (row stride row_bytes), and its floats.
struct StoredMatrix {
  DType type;
  int64_t n, stride;
  std::vector<float> values;
  std::vector<std::byte> bytes;
  StoredMatrix(DType t, int64_t rows, int64_t n, uint32_t seed)
      : type(t),
        n(n),
        stride(mamba::row_bytes(t, n)),
        values(random_floats(rows * n, seed, -2, 2)),
        bytes(stride * rows + 64) {
    for (int64_t r = 0; r < rows; ++r)
      mamba::quantize_row(t, &values[r * n], bytes.data() + r * stride, n);
  }
  // sum_i |w_ri x_i|: the scale of row r's dot product with x, for its tolerance
  double abs_dot(int64_t r, const float* x) const {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += std::fabs(values[r * n + i] * x[i]);
    return sum;
  }
};

// Y (vectors of ldy, filled with 123 before the kernel ran) holds, for the vectors b < nb and the
// rows [r0, r1), want(b, r) within 1e-5 of scale(b, r) (sum |w_i x_i|); 123 elsewhere.
template <class Want, class Scale>
void expect_products(const std::vector<float>& Y, int64_t ldy, int64_t nb, int64_t r0, int64_t r1,
                     Want want, Scale scale) {
  for (int64_t b = 0; b < int64_t(Y.size()) / ldy; ++b)
    for (int64_t r = 0; r < ldy; ++r) {
      const float got = Y[b * ldy + r];
      if (b >= nb || r < r0 || r >= r1)
        ASSERT_EQ(got, 123.0f) << "b=" << b << " r=" << r;
      else
        ASSERT_NEAR(got, want(b, r), 1e-5 * scale(b, r) + 1e-6) << "b=" << b << " r=" << r;
    }
}

// dot_rows_multi<O> of the rows [r0, r1) of W and nb vectors of X (stride ldx) into Y (y_vectors
// vectors of ldy, 123 before): the scalar twin's products there, and nothing written elsewhere.
template <class O>
void expect_dot_rows_multi(const StoredMatrix& W, const std::vector<float>& X, int64_t ldx,
                           int64_t nb, int64_t r0, int64_t r1, int64_t ldy, int64_t y_vectors) {
  const int64_t n = W.n;
  std::vector<float> Y(y_vectors * ldy, 123.0f);
  mamba::simd::kernels::dot_rows_multi<O>(W.type, W.bytes.data(), W.stride, r0, r1, n, X.data(),
                                          ldx, nb, Y.data(), ldy);
  expect_products(
      Y, ldy, nb, r0, r1,
      [&](int64_t b, int64_t r) {
        return mamba::vec_dot_row(W.type, W.bytes.data() + r * W.stride, &X[b * ldx], n);
      },
      [&](int64_t b, int64_t r) { return W.abs_dot(r, &X[b * ldx]); });
}

TYPED_TEST(SimdTest, DotRowsMultiMatchesVecDotRow) {
  // Every row range [r0, r1) (odd starts and lengths, one row) with 1 to 16 vectors: each
  // output is the scalar twin's dot product of that row and vector, and nothing else is written.
  constexpr int64_t kRows = 7, kMaxVectors = 16;
  const std::pair<int64_t, int64_t> ranges[] = {{0, 7}, {1, 6}, {2, 3}, {3, 7}, {0, 2}};
  for (DType t : kTypes) {
    for (int64_t n : lengths_for(t)) {
      if (n % mamba::traits(t).block_size) continue;
      const StoredMatrix W(t, kRows, n, uint32_t(n) * 13 + 3);
      const int64_t ldx = n + 3, ldy = kRows + 2;  // strides wider than the rows, as may be
      const auto X = random_floats(kMaxVectors * ldx, uint32_t(n) + 17);
      for (int64_t nb = 1; nb <= kMaxVectors; ++nb) {
        for (auto [r0, r1] : ranges) {
          SCOPED_TRACE(testing::Message() << mamba::dtype_name(t) << " n=" << n << " nb=" << nb
                                          << " rows " << r0 << ".." << r1);
          expect_dot_rows_multi<TypeParam>(W, X, ldx, nb, r0, r1, ldy, kMaxVectors);
        }
      }
    }
  }
}

TYPED_TEST(SimdTest, DotRowsMultiOnShortRowsMatchesVecDotRow) {
  // Short rows (dt_proj's), which AVX-512 takes 16 at a time (dot_short_avx512.hpp): even and
  // odd lengths up to the longest it takes and one past, ranges of whole 16-row groups, groups
  // off the grid with rows left over, and fewer rows than a group.
  constexpr int64_t kRows = 40;
  const std::pair<int64_t, int64_t> ranges[] = {{0, 32}, {3, 40}, {5, 21}, {1, 17}, {7, 12}};
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    for (int64_t n : {2, 3, 16, 31, 48, 95, 96, 97}) {
      const StoredMatrix W(t, kRows, n, uint32_t(n) * 5 + 11);
      const int64_t ldx = n + 1, ldy = kRows + 3;
      const auto X = random_floats(11 * ldx, uint32_t(n) + 29);
      for (int64_t nb : {1, 3, 8, 11}) {
        for (auto [r0, r1] : ranges) {
          SCOPED_TRACE(testing::Message() << mamba::dtype_name(t) << " n=" << n << " nb=" << nb
                                          << " rows " << r0 << ".." << r1);
          expect_dot_rows_multi<TypeParam>(W, X, ldx, nb, r0, r1, ldy, 11);
        }
      }
    }
  }
}

TEST(SimdInt8, DotRowsPackedMultiMatchesVecDotRowQ8) {
  // 16 rows per step: ranges with a short last group, starts off the 16-row grid, one row, and
  // 1 to 16 vectors (a second group of 8); outside the range and the vectors nothing is written.
  constexpr int64_t kRows = 37, kMaxVectors = 16;
  const std::pair<int64_t, int64_t> ranges[] = {{0, 37}, {0, 32}, {5, 22}, {16, 17}, {3, 36}};
  const std::pair<DType, int64_t> cases[] = {
      {DType::Q8_0, 32},   {DType::Q8_0, 96},   {DType::Q8_0, 1536}, {DType::Q4_0, 32},
      {DType::Q4_0, 160},  {DType::Q4_0, 1536}, {DType::Q4_K, 256},  {DType::Q4_K, 768},
      {DType::Q4_K, 1536}, {DType::Q6_K, 256},  {DType::Q6_K, 768},  {DType::Q6_K, 1536}};
  for (auto [t, n] : cases) {
    const StoredMatrix W(t, kRows, n, uint32_t(n) * 5 + 1);
    const auto act = mamba::activation_type(t);
    const int64_t ldy = kRows + 3, ldq = mamba::activation_bytes(act, n) + 7;
    const auto X = random_floats(kMaxVectors * n, uint32_t(n) + 31, -3, 3);
    std::vector<std::byte> xq(kMaxVectors * ldq);
    for (int64_t b = 0; b < kMaxVectors; ++b)
      mamba::quantize_activation(act, &X[b * n], &xq[b * ldq], n);
    for (int64_t nb : {1, 3, 8, 9, 16}) {
      std::vector<std::byte> xp(mamba::simd::multi_packed_bytes(t, n, nb));
      mamba::simd::pack_activations_multi(t, xq.data(), ldq, n, nb, xp.data());
      for (auto [r0, r1] : ranges) {
        SCOPED_TRACE(testing::Message() << mamba::dtype_name(t) << " n=" << n << " nb=" << nb
                                        << " rows " << r0 << ".." << r1);
        std::vector<float> Y(kMaxVectors * ldy, 123.0f);
        mamba::simd::dot_rows_packed_multi(t, W.bytes.data(), W.stride, r0, r1, n, xp.data(), nb,
                                           Y.data(), ldy);
        expect_products(
            Y, ldy, nb, r0, r1,
            [&](int64_t b, int64_t r) {
              return mamba::vec_dot_row_q8(t, W.bytes.data() + r * W.stride, &xq[b * ldq], n);
            },
            [&](int64_t b, int64_t r) { return W.abs_dot(r, &X[b * n]); });
      }
    }
  }
}

TEST(SimdInt8, AmxQ8_0MatchesVecDotRowQ8) {
  // The AMX kernel alone (dot_rows_packed_multi takes it for 8 vectors where it can): whole
  // groups of 16 rows from starts off the grid, an odd number of blocks (a last one without a
  // partner tile), and the rows past the last whole group left to the caller, unwritten.
#if defined(MAMBA_SIMD_AMX)
  if (!mamba::simd::amx::amx_usable()) GTEST_SKIP() << "AMX compiled in, but the OS refused it";
  constexpr int64_t kRows = 53, kVectors = 8;
  const std::pair<int64_t, int64_t> ranges[] = {{0, 53}, {0, 48}, {5, 37}, {16, 31}, {3, 52}};
  for (int64_t n : {32, 96, 1536}) {
    const DType t = DType::Q8_0;
    const StoredMatrix W(t, kRows, n, uint32_t(n) * 7 + 2);
    const int64_t ldy = kRows + 3, ldq = mamba::activation_bytes(mamba::ActType::Q8_0, n) + 5;
    const auto X = random_floats(kVectors * n, uint32_t(n) + 11, -3, 3);
    std::vector<std::byte> xq(kVectors * ldq);
    for (int64_t b = 0; b < kVectors; ++b)
      mamba::quantize_activation(mamba::ActType::Q8_0, &X[b * n], &xq[b * ldq], n);
    std::vector<std::byte> xp(mamba::simd::multi_packed_bytes(t, n, kVectors));
    mamba::simd::pack_activations_multi(t, xq.data(), ldq, n, kVectors, xp.data());
    for (auto [r0, r1] : ranges) {
      SCOPED_TRACE(testing::Message() << "n=" << n << " rows " << r0 << ".." << r1);
      std::vector<float> Y(kVectors * ldy, 123.0f);
      const int64_t end = mamba::simd::amx::dot_rows_q8_0_x8(W.bytes.data(), W.stride, r0, r1, n,
                                                             xp.data(), Y.data(), ldy);
      ASSERT_EQ(end, r0 + (r1 - r0) / 16 * 16);
      expect_products(
          Y, ldy, kVectors, r0, end,
          [&](int64_t b, int64_t r) {
            return mamba::vec_dot_row_q8(t, W.bytes.data() + r * W.stride, &xq[b * ldq], n);
          },
          [&](int64_t b, int64_t r) { return W.abs_dot(r, &X[b * n]); });
    }
  }
#else
  GTEST_SKIP() << "built without AMX (-march=native on a CPU with AMX-INT8 compiles it in)";
#endif
}

TEST(SimdInt8, DotRowsPackedMatchesVecDotRowQ8) {
  // Decode's row ranges: groups of rows that share the activations' loads (4 for Q4_0) and
  // single rows after them, starts off that grid, one row; nothing outside the range is written.
  constexpr int64_t kRows = 11;
  const std::pair<int64_t, int64_t> ranges[] = {{0, 11}, {0, 8}, {1, 10}, {5, 6}, {3, 7}};
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    for (int64_t n : lengths_for(t)) {
      const StoredMatrix W(t, kRows, n, uint32_t(n) * 3 + 5);
      const auto act = mamba::activation_type(t);
      const auto x = random_floats(n, uint32_t(n) + 41, -3, 3);
      std::vector<std::byte> xq(mamba::activation_bytes(act, n));
      mamba::quantize_activation(act, x.data(), xq.data(), n);
      const std::byte* xp = mamba::simd::pack_activation(
          t, xq.data(), n, mamba::simd::scratch(mamba::simd::packed_bytes(t, n)));
      for (auto [r0, r1] : ranges) {
        SCOPED_TRACE(testing::Message()
                     << mamba::dtype_name(t) << " n=" << n << " rows " << r0 << ".." << r1);
        std::vector<float> y(kRows, 123.0f);
        mamba::simd::dot_rows_packed(t, W.bytes.data(), W.stride, r0, r1, xp, n, y.data());
        expect_products(
            y, kRows, 1, r0, r1,
            [&](int64_t, int64_t r) {
              return mamba::vec_dot_row_q8(t, W.bytes.data() + r * W.stride, xq.data(), n);
            },
            [&](int64_t, int64_t r) { return W.abs_dot(r, x.data()); });
      }
    }
  }
}

TYPED_TEST(SimdTest, ExpSiluSoftplusMatchTheLibm) {
  std::vector<float> v = random_floats(1001, 11, -30, 30);
  for (float s :
       {-200.0f, -104.0f, -87.5f, -20.0f, -1e-6f, 0.0f, 1e-7f, 19.99f, 20.0f, 20.01f, 60.0f, 88.0f})
    v.push_back(s);
  const int64_t n = static_cast<int64_t>(v.size());
  std::vector<float> e(n), s(n), sp(n), bias(n, 0.0f);
  mamba::simd::exp_array<TypeParam>(v.data(), e.data(), n);
  mamba::simd::silu_array<TypeParam>(v.data(), s.data(), n);
  mamba::simd::softplus_bias_array<TypeParam>(v.data(), bias.data(), sp.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    SCOPED_TRACE(v[i]);
    const double want_e = std::exp(double(v[i]));
    if (v[i] < -87.0f)
      EXPECT_LE(e[i], 1.2e-38);  // flushed below the normal range
    else
      EXPECT_NEAR(e[i], want_e, 3e-7 * want_e);
    const double want_s = double(v[i]) / (1 + std::exp(-double(v[i])));
    EXPECT_NEAR(s[i], want_s, 3e-7 * std::fabs(want_s) + 1e-37);
    const double want_sp = v[i] > 20 ? v[i] : std::log1p(std::exp(double(v[i])));
    EXPECT_NEAR(sp[i], want_sp, 3e-7 * want_sp + 1e-37);
  }
  // PyTorch's threshold: above 20 softplus is the identity, exactly
  EXPECT_EQ(sp[n - 2], 60.0f);
}

TYPED_TEST(SimdTest, ExpAtTheEdgesOfTheFloatRange) {
  // exp(x) is 0 below x = -87 and infinity past the float range, never NaN
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> v = {-inf,   -1e30f, -200.0f, -87.5f, -87.0f, -86.9f, 88.0f, 88.7f,
                          88.72f, 88.73f, 89.0f,   89.5f,  100.0f, 1e30f,  inf};
  const int64_t n = static_cast<int64_t>(v.size());
  std::vector<float> e(n);
  mamba::simd::exp_array<TypeParam>(v.data(), e.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    SCOPED_TRACE(v[i]);
    const double want = std::exp(double(v[i]));
    if (v[i] < -87.0f) {
      EXPECT_GE(e[i], 0.0f);
      EXPECT_LE(e[i], 1.2e-38f);
    } else if (want > std::numeric_limits<float>::max()) {
      EXPECT_EQ(e[i], inf);
    } else {
      EXPECT_NEAR(e[i], want, 3e-7 * want);
    }
  }
}

TYPED_TEST(SimdTest, ExpSiluSoftplusKeepNaN) {
  // a NaN that came out as a number would hide a broken weight or input downstream
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> v(19, 1.0f), e(v.size()), s(v.size()), sp(v.size()), bias(v.size(), 0.0f);
  v[0] = v[5] = v[18] = nan;  // in a full vector and in the tail
  const int64_t n = static_cast<int64_t>(v.size());
  mamba::simd::exp_array<TypeParam>(v.data(), e.data(), n);
  mamba::simd::silu_array<TypeParam>(v.data(), s.data(), n);
  mamba::simd::softplus_bias_array<TypeParam>(v.data(), bias.data(), sp.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(std::isnan(e[i]), std::isnan(v[i]));
    EXPECT_EQ(std::isnan(s[i]), std::isnan(v[i]));
    EXPECT_EQ(std::isnan(sp[i]), std::isnan(v[i]));
  }
}

TYPED_TEST(SimdTest, ScanSequenceMatchesTheScalarScan) {
  // 37 channels: full blocks and a masked one on every ISA; two ranges, as two threads split them
  const int64_t E = 37, T = 6, x_stride = 2 * E + 3, bc_stride = 40;
  for (int64_t N : {16, 5, 23}) {
    for (bool gate : {true, false}) {
      SCOPED_TRACE(testing::Message() << "d_state " << N << (gate ? ", gated" : ""));
      const auto x = random_floats(T * x_stride, 1), dt = random_floats(T * E, 2, 0.001f, 0.5f),
                 A = random_floats(E * N, 3, -4, -0.1f), B = random_floats(T * bc_stride, 4),
                 C = random_floats(T * bc_stride, 5), D = random_floats(E, 6),
                 z = random_floats(T * x_stride, 8);
      const float* zp = gate ? z.data() + E : nullptr;
      auto h = random_floats(E * N, 7), h_want = h;
      std::vector<float> y(T * E), y_want(T * E);
      mamba::selective_scan<float>(T, E, N, x.data(), x_stride, dt.data(), A.data(), B.data(),
                                   C.data(), bc_stride, D.data(), zp, x_stride, h_want.data(),
                                   y_want.data());
      for (auto [c0, c1] : {std::pair<int64_t, int64_t>{0, 16}, {16, E}})
        mamba::simd::kernels::scan_sequence<TypeParam>(
            T, E, c0, c1, N, x.data(), x_stride, dt.data(), A.data(), B.data(), C.data(), bc_stride,
            D.data(), zp, x_stride, h.data(), y.data());
      for (int64_t i = 0; i < E * N; ++i) ASSERT_NEAR(h[i], h_want[i], 1e-5f);
      for (int64_t i = 0; i < T * E; ++i) ASSERT_NEAR(y[i], y_want[i], 2e-5f);
    }
  }
}

TYPED_TEST(SimdTest, ScanStepMatchesTheScalarStep) {
  for (int64_t N : {16, 5, 23, 8, 32}) {
    const int64_t E = 37;
    SCOPED_TRACE(N);
    const auto x = random_floats(E, 1), dt = random_floats(E, 2, 0.001f, 0.5f),
               A = random_floats(E * N, 3, -4, -0.1f), B = random_floats(N, 4),
               C = random_floats(N, 5), D = random_floats(E, 6);
    auto h = random_floats(E * N, 7), h_want = h;
    std::vector<float> y(E), y_want(E);
    mamba::selective_scan_step<float>(E, N, x.data(), dt.data(), A.data(), B.data(), C.data(),
                                      D.data(), nullptr, h_want.data(), y_want.data());
    // two ranges, as two threads would split them
    mamba::simd::kernels::scan_step<TypeParam>(0, 20, N, x.data(), dt.data(), A.data(), B.data(),
                                               C.data(), D.data(), h.data(), y.data());
    mamba::simd::kernels::scan_step<TypeParam>(20, E, N, x.data(), dt.data(), A.data(), B.data(),
                                               C.data(), D.data(), h.data(), y.data());
    for (int64_t i = 0; i < E * N; ++i) ASSERT_NEAR(h[i], h_want[i], 1e-6f);
    for (int64_t c = 0; c < E; ++c) ASSERT_NEAR(y[c], y_want[c], 1e-5f);
    // the gate
    const auto z = random_floats(E, 8, -6, 6);
    auto gated = y;
    mamba::simd::mul_silu_array<TypeParam>(z.data(), gated.data(), E);
    for (int64_t c = 0; c < E; ++c) EXPECT_NEAR(gated[c], y[c] * mamba::silu(z[c]), 1e-6f);
  }
}

}  // namespace

namespace {

// The products split across two threads give what one thread gives (rows are independent, so
// the sums are the same to the bit, but for the GEMM's blocking), for every path: matrix-vector,
// float and int8 activations, the few-vector product (batched decode) and the panel GEMM (prefill).
TEST(Threads, TwoThreadsComputeWhatOneComputes) {
  for (DType t : kTypes) {
    SCOPED_TRACE(mamba::dtype_name(t));
    // big enough for every type to pass mamba::kParallelWork, so two threads really split it
    const int64_t rows = 1031, cols = 2048;
    ASSERT_GE(rows * mamba::row_bytes(t, cols), mamba::kParallelWork);
    const auto w = random_floats(rows * cols, 77);
    const int64_t stride = mamba::row_bytes(t, cols);
    std::vector<std::byte> bytes(rows * stride);
    for (int64_t r = 0; r < rows; ++r)
      mamba::quantize_row(t, &w[r * cols], &bytes[r * stride], cols);
    const mamba::MatrixView W{t, bytes.data(), rows, cols};
    const auto X = random_floats(40 * cols, 78);
    for (auto mode : {mamba::QuantizedDot::Float, mamba::QuantizedDot::Int8}) {
      mamba::QuantizedDotScope scope(mode);
      for (int64_t n : {1, 5, 40}) {
        std::vector<float> one(n * rows), two(n * rows);
        mamba::set_num_threads(1);
        mamba::project(W, X.data(), n, one.data());
        mamba::set_num_threads(2);
        mamba::project(W, X.data(), n, two.data());
        if (n < 40) {
          EXPECT_EQ(one, two) << "n=" << n;  // rows split across threads: the same sums
        } else {
          // the panel GEMM: Eigen sizes its K blocks by the thread count, so the order of the
          // additions (not what is added) may change with it
          double num = 0, den = 0;
          for (size_t i = 0; i < one.size(); ++i) {
            num += double(one[i] - two[i]) * (one[i] - two[i]);
            den += double(one[i]) * one[i];
          }
          EXPECT_LE(std::sqrt(num / den), 1e-6) << "n=" << n;
        }
      }
    }
  }
  mamba::set_num_threads(0);
}

TEST(Threads, ScanSplitByChannelsComputesWhatOneThreadComputes) {
  const int64_t E = 1536, N = 16, T = 7;
  const auto x = random_floats(T * E, 1), dt = random_floats(T * E, 2, 0.001f, 0.5f),
             A = random_floats(E * N, 3, -4, -0.1f), B = random_floats(T * N, 4),
             C = random_floats(T * N, 5), D = random_floats(E, 6), z = random_floats(T * E, 7);
  std::vector<float> h1(E * N, 0.1f), h2 = h1, y1(T * E), y2(T * E);
  mamba::set_num_threads(1);
  mamba::selective_scan_fast(T, E, N, x.data(), E, dt.data(), A.data(), B.data(), C.data(), N,
                             D.data(), z.data(), E, h1.data(), y1.data());
  mamba::set_num_threads(2);
  mamba::selective_scan_fast(T, E, N, x.data(), E, dt.data(), A.data(), B.data(), C.data(), N,
                             D.data(), z.data(), E, h2.data(), y2.data());
  mamba::set_num_threads(0);
  EXPECT_EQ(h1, h2);
  EXPECT_EQ(y1, y2);
}

}  // namespace
