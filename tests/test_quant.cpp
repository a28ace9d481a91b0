// Block codecs: decoding checked against hand-computed blocks and against an independent Python
// implementation (fixtures from scripts/make_gguf_fixtures.py), round-trip error bounds,
// dot products against decode-then-dot.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <mamba/ops/quant.hpp>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

using namespace mamba;

namespace {

const DType kAllTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0,
                           DType::Q4_0, DType::Q4_K, DType::Q6_K};

std::vector<char> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  return {std::istreambuf_iterator<char>(f), {}};
}

std::vector<float> read_f32(const std::string& path) {
  const auto b = read_file(path);
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

std::string fixture(DType t, const std::string& suffix) {
  return std::string(MAMBA_FIXTURES_DIR) + "/quant/" + std::string(dtype_name(t)) + suffix;
}

std::vector<float> gaussian(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

std::vector<std::byte> encode(DType t, const std::vector<float>& x) {
  std::vector<std::byte> q(static_cast<size_t>(row_bytes(t, static_cast<int64_t>(x.size()))));
  quantize_row(t, x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}

std::vector<float> decode(DType t, const std::vector<std::byte>& q, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row(t, q.data(), y.data(), n);
  return y;
}

double rel_rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0, s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    s += double(a[i]) * a[i];
  }
  return std::sqrt(e / s);
}

std::string name_of(const testing::TestParamInfo<DType>& info) {
  return std::string(dtype_name(info.param));
}

class PerType : public testing::TestWithParam<DType> {};

}  // namespace

// --- decoding, checked by hand ---------------------------------------------------------------

TEST(QuantHand, Q8_0) {
  BlockQ8_0 b;
  b.d = 0x3800;  // 0.5
  for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(j - 16);
  b.qs[31] = -128;
  float y[32];
  dequantize_row(DType::Q8_0, reinterpret_cast<const std::byte*>(&b), y, 32);
  EXPECT_EQ(y[0], -8.0f);
  EXPECT_EQ(y[16], 0.0f);
  EXPECT_EQ(y[17], 0.5f);
  EXPECT_EQ(y[31], -64.0f);
}

TEST(QuantHand, Q4_0) {
  BlockQ4_0 b;
  b.d = 0xB400;  // -0.25
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  dequantize_row(DType::Q4_0, reinterpret_cast<const std::byte*>(&b), y, 32);
  EXPECT_EQ(y[0], 2.0f);     // low nibble 0: -0.25 * (0 - 8)
  EXPECT_EQ(y[15], -1.75f);  // low nibble 15: -0.25 * 7
  EXPECT_EQ(y[16], -1.75f);  // high nibble of byte 0 is 15
  EXPECT_EQ(y[31], 2.0f);    // high nibble of byte 15 is 0
  EXPECT_EQ(y[8], 0.0f);
}

TEST(QuantHand, Q4_K) {
  BlockQ4_K b{};
  b.d = 0x3C00;     // 1.0
  b.dmin = 0x3800;  // 0.5
  // sub-block 0: scale 1, min 2 (bytes 0 and 4, low 6 bits)
  // sub-block 1: scale 63, min 0
  // sub-block 5: scale 42 = 0b10'1010 (low 4 bits 0xA in byte 9, top 2 bits 0b10 in byte 1 bits
  // 6-7)
  //              min 21 = 0b01'0101 (low 4 bits 0x5 in byte 9 high nibble, top bits 0b01 in byte 5)
  b.scales[0] = 1;
  b.scales[4] = 2;
  b.scales[1] = static_cast<uint8_t>(63 | (0b10 << 6));
  b.scales[5] = static_cast<uint8_t>(0 | (0b01 << 6));
  b.scales[9] = 0x5A;
  b.qs[0] = 0x73;       // value 0 (sub-block 0): 3; value 32 (sub-block 1): 7
  b.qs[64 + 5] = 0xF0;  // chunk 2 holds sub-blocks 4 (low) and 5 (high): value 160+5 has q 15
  float y[256];
  dequantize_row(DType::Q4_K, reinterpret_cast<const std::byte*>(&b), y, 256);
  EXPECT_EQ(y[0], 1.0f * 1 * 3 - 0.5f * 2);  // 2
  EXPECT_EQ(y[1], -1.0f);                    // q 0: just the min
  EXPECT_EQ(y[32], 63.0f * 7);               // 441
  EXPECT_EQ(y[160 + 5], 42.0f * 15 - 0.5f * 21);
  EXPECT_EQ(y[160], -10.5f);
  EXPECT_EQ(y[128 + 5], 0.0f);  // sub-block 4: scale 0, min 0
}

TEST(QuantHand, Q6_K) {
  BlockQ6_K b{};
  b.d = 0x3800;  // 0.5
  for (auto& s : b.scales) s = 1;
  b.scales[0] = 2;
  b.scales[15] = -3;
  b.ql[0] = 0x05;    // value 0 low nibble 5 (value 64 would take the high nibble)
  b.qh[0] = 0x02;    // value 0 high bits 2  -> q = 5 + 32 = 37
  b.ql[127] = 0xA0;  // value 255 = half 1, quarter 3, i 31: high nibble of ql[64 + 32 + 31]
  b.qh[63] = 0x40;   // and bits 6-7 of qh[32 + 31] -> q = 10 + 16 = 26
  b.ql[32] = 0x0F;   // value 32 (quarter 1) low nibble of ql[32]; its high bits qh[0] bits 2-3 = 0
  float y[256];
  dequantize_row(DType::Q6_K, reinterpret_cast<const std::byte*>(&b), y, 256);
  EXPECT_EQ(y[0], 0.5f * 2 * (37 - 32));
  EXPECT_EQ(y[1], 0.5f * 2 * -32);
  EXPECT_EQ(y[255], 0.5f * -3 * (26 - 32));
  EXPECT_EQ(y[32], 0.5f * 1 * (15 - 32));
  EXPECT_EQ(y[64], 0.5f * 1 * -32);
}

// --- decoding, checked against the Python codecs ---------------------------------------------

TEST_P(PerType, DecodesLikeThePythonCodec) {
  const DType t = GetParam();
  const auto blocks = read_file(fixture(t, ".blocks"));
  const auto expected = read_f32(fixture(t, ".expected.f32"));
  ASSERT_FALSE(expected.empty());
  ASSERT_EQ(static_cast<int64_t>(blocks.size()),
            row_bytes(t, static_cast<int64_t>(expected.size())));
  std::vector<float> got(expected.size());
  dequantize_row(t, reinterpret_cast<const std::byte*>(blocks.data()), got.data(),
                 static_cast<int64_t>(got.size()));
  for (size_t i = 0; i < got.size(); ++i) {
    if (t == DType::Q4_K) {
      // d*sc*q - dmin*m: a compiler may fuse the multiply-subtract (one rounding, not two).
      ASSERT_NEAR(got[i], expected[i], 1e-6 * (std::fabs(expected[i]) + 64.0)) << "value " << i;
    } else {
      ASSERT_EQ(got[i], expected[i]) << "value " << i;
    }
  }
}

// The encoders are the same rules as the Python ones (ggml's reference quantizers): same bytes
// for the directly rounded types, the same quality (within 5% RMS error) for the K-quants,
// whose searches differ in summation order.
TEST_P(PerType, EncodesLikeThePythonCodec) {
  const DType t = GetParam();
  const auto x = read_f32(fixture(t, ".input.f32"));
  const auto py = read_file(fixture(t, ".blocks"));
  const auto summary =
      nlohmann::json::parse(read_file(std::string(MAMBA_FIXTURES_DIR) + "/quant/summary.json"));
  const double py_err = summary.at(std::string(dtype_name(t))).at("python_rel_rmse");
  const auto q = encode(t, x);
  const double err = x.empty() ? 0 : rel_rmse(x, decode(t, q, static_cast<int64_t>(x.size())));
  if (t == DType::F32 || t == DType::F16 || t == DType::BF16) {
    EXPECT_EQ(std::memcmp(q.data(), py.data(), q.size()), 0);
  } else if (t == DType::Q8_0 || t == DType::Q4_0) {
    // Ties may round differently when x*id+8.5 is fused; allow a handful of differing bytes.
    size_t diff = 0;
    for (size_t i = 0; i < q.size(); ++i) diff += q[i] != static_cast<std::byte>(py[i]);
    EXPECT_LE(diff, q.size() / 100);
  }
  EXPECT_LE(err, py_err * 1.05 + 1e-7);
  EXPECT_GE(err, py_err * 0.80);  // not better by a suspicious margin either
}

// --- round trips ------------------------------------------------------------------------------

// Relative RMS error on N(0,1) values (64 rows of 256), and the per-value bounds each type
// guarantees by construction.
//   F32 exact; F16 within 2^-11 relative (2^-25 absolute for subnormals); BF16 within 2^-8
//   relative; Q8_0 within amax/254 + amax*2^-11 of its block (rounding plus the F16 scale); Q4_0
//   within amax/8 of its block (the value opposite the anchor clamps at +7); RMS: Q8_0 <= 0.0065,
//   Q4_0 <= 0.10, Q4_K <= 0.08, Q6_K <= 0.021 (measured 0.0054, 0.088, 0.072, 0.018; uniform-step
//   theory: step/sqrt(12) with step amax/127, amax/8, range/15, amax/32).
TEST_P(PerType, RoundTripBounds) {
  const DType t = GetParam();
  const int64_t n = 256 * 64;
  const auto x = gaussian(n, 42);
  const auto y = decode(t, encode(t, x), n);
  const double rms = rel_rmse(x, y);
  const int64_t bs = traits(t).block_size;
  for (int64_t b = 0; b < n / bs; ++b) {
    float amax = 0;
    for (int64_t j = 0; j < bs; ++j) amax = std::max(amax, std::fabs(x[b * bs + j]));
    for (int64_t j = b * bs; j < (b + 1) * bs; ++j) {
      const float e = std::fabs(x[j] - y[j]);
      switch (t) {
        case DType::F32:
          ASSERT_EQ(e, 0.0f);
          break;
        case DType::F16:  // half an ulp; below 2^-14 (subnormal) half of 2^-24
          ASSERT_LE(e, std::max(std::ldexp(std::fabs(x[j]), -11), std::ldexp(1.0f, -25)));
          break;
        case DType::BF16:
          ASSERT_LE(e, std::ldexp(std::fabs(x[j]), -8));
          break;
        case DType::Q8_0:
          ASSERT_LE(e, amax / 254 + std::ldexp(amax, -11)) << j;
          break;
        case DType::Q4_0:
          ASSERT_LE(e, amax / 8 * 1.002f) << j;
          break;
        default:
          break;
      }
    }
  }
  const double bound = t == DType::Q8_0   ? 0.0065
                       : t == DType::Q4_0 ? 0.10
                       : t == DType::Q4_K ? 0.08
                       : t == DType::Q6_K ? 0.021
                       : t == DType::BF16 ? 0.003
                       : t == DType::F16  ? 0.0004
                                          : 0.0;
  EXPECT_LE(rms, bound);
  // Re-encoding the decoded values is (nearly) a fixed point for the plain-scaled types.
  if (t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::Q8_0) {
    EXPECT_LE(rel_rmse(y, decode(t, encode(t, y), n)), 1e-3);
  }
}

TEST_P(PerType, ZerosAndConstantsSurvive) {
  const DType t = GetParam();
  const int64_t n = 512;
  std::vector<float> z(n, 0.0f);
  for (float v : decode(t, encode(t, z), n)) ASSERT_EQ(v, 0.0f);
  std::vector<float> c(n, 0.75f);
  for (float v : decode(t, encode(t, c), n)) ASSERT_NEAR(v, 0.75f, 0.75f * 0.01f);
  std::vector<float> neg(n, -3.0f);
  for (float v : decode(t, encode(t, neg), n)) ASSERT_NEAR(v, -3.0f, 3.0f * 0.01f);
}

// Rows are independent: a matrix of an odd number of rows decodes the same whole or row by row.
TEST_P(PerType, OddRowCounts) {
  const DType t = GetParam();
  const int64_t n = 512;
  for (int64_t rows : {1, 3, 7}) {
    const auto x = gaussian(static_cast<size_t>(n * rows), 7 + static_cast<uint32_t>(rows));
    const auto whole = encode(t, x);
    const int64_t rb = row_bytes(t, n);
    ASSERT_EQ(static_cast<int64_t>(whole.size()), rb * rows);
    const auto all = decode(t, whole, n * rows);
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<float> xr(x.begin() + r * n, x.begin() + (r + 1) * n);
      const auto qr = encode(t, xr);
      ASSERT_EQ(std::memcmp(qr.data(), whole.data() + r * rb, static_cast<size_t>(rb)), 0);
      const auto yr = decode(t, qr, n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(yr[i], all[r * n + i]);
    }
  }
}

TEST_P(PerType, RejectsPartialBlocks) {
  const DType t = GetParam();
  const int64_t bs = traits(t).block_size;
  std::vector<float> x(600, 1.0f), y(600);
  std::vector<std::byte> q(4096);
  if (bs == 1) {
    dequantize_row(t, q.data(), y.data(), 0);  // empty rows are fine
    SUCCEED();
    return;
  }
  EXPECT_THROW(dequantize_row(t, q.data(), y.data(), bs + 1), ShapeError);
  EXPECT_THROW(quantize_row(t, x.data(), q.data(), bs - 1), ShapeError);
  EXPECT_THROW(vec_dot_row(t, q.data(), x.data(), bs / 2), ShapeError);
}

// --- dot products ---------------------------------------------------------------------------

// vec_dot_row is exact arithmetic on the decoded values up to float rounding: within 1e-5 of
// sum |w_i x_i|. vec_dot_row_q8 also rounds x to 8 bits per block: within
// sum over blocks of (sum |w_i|) * amax_x / 254 (plus float rounding) of the exact value.
TEST_P(PerType, VecDotMatchesDecodeThenDot) {
  const DType t = GetParam();
  for (int64_t n : {256, 1024, 2560}) {
    const auto w = gaussian(static_cast<size_t>(n), 100 + static_cast<uint32_t>(n));
    const auto x = gaussian(static_cast<size_t>(n), 200 + static_cast<uint32_t>(n), 2.0f);
    const auto q = encode(t, w);
    const auto wd = decode(t, q, n);
    double exact = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      exact += double(wd[i]) * x[i];
      mag += std::fabs(double(wd[i]) * x[i]);
    }
    EXPECT_NEAR(vec_dot_row(t, q.data(), x.data(), n), exact, 1e-5 * mag) << n;

    const ActType a = activation_type(t);
    std::vector<std::byte> xq(static_cast<size_t>(activation_bytes(a, n)));
    quantize_activation(a, x.data(), xq.data(), n);
    const int64_t abs = a == ActType::Q8_K ? 256 : a == ActType::Q8_0 ? 32 : 1;
    double bound = 1e-5 * mag;
    for (int64_t b = 0; a != ActType::F32 && b < n / abs; ++b) {
      double sw = 0, amax = 0;
      for (int64_t i = b * abs; i < (b + 1) * abs; ++i) {
        sw += std::fabs(wd[i]);
        amax = std::max(amax, double(std::fabs(x[i])));
      }
      bound +=
          sw * amax / 254 * (a == ActType::Q8_0 ? 1.01 : 1.0) + sw * amax * std::ldexp(1.0, -11);
    }
    EXPECT_NEAR(vec_dot_row_q8(t, q.data(), xq.data(), n), exact, bound) << n;
  }
}

TEST(QuantActivations, Q8KBlockSums) {
  const auto x = gaussian(512, 5);
  std::vector<std::byte> xq(static_cast<size_t>(activation_bytes(ActType::Q8_K, 512)));
  quantize_activation(ActType::Q8_K, x.data(), xq.data(), 512);
  for (int b = 0; b < 2; ++b) {
    const auto blk = load_block<BlockQ8_K>(xq.data(), b);
    for (int g = 0; g < 16; ++g) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += blk.qs[16 * g + l];
      EXPECT_EQ(s, blk.bsums[g]);
    }
    for (int j = 0; j < 256; ++j)
      EXPECT_NEAR(blk.d * blk.qs[j], x[256 * b + j], blk.d * 0.5f + 1e-6f);
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, PerType, testing::ValuesIn(kAllTypes), name_of);

// The Q6_K unpacking loop agrees with the per-value definition of the layout.
TEST(QuantHand, Q6KUnpackMatchesDefinition) {
  std::mt19937 g(9);
  for (int trial = 0; trial < 20; ++trial) {
    BlockQ6_K b;
    auto* p = reinterpret_cast<uint8_t*>(&b);
    for (size_t i = 0; i < sizeof b; ++i) p[i] = static_cast<uint8_t>(g());
    int8_t q[256];
    q6k_unpack(b, q);
    for (int l = 0; l < 256; ++l) ASSERT_EQ(q[l], q6k_quant(b, l) - 32) << l;
  }
}
