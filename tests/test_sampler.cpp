// The sampler: each rule keeps exactly the tokens its definition keeps (expected sets computed here
// from sorted probabilities and cumulative sums), penalties move the right logits by the right
// amounts, draws follow the distribution, and seeds repeat.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mamba/generate/sampler.hpp>
#include <numeric>
#include <random>
#include <set>
#include <vector>

namespace {

using mamba::Sampler;
using mamba::SamplerParams;

// A fixed, irregular logit row with distinct values, positive and negative.
std::vector<float> test_logits(int n = 24) {
  std::vector<float> l(n);
  for (int i = 0; i < n; ++i) l[i] = static_cast<float>(std::sin(1.7 * i + 0.3) * 3.0 + 0.05 * i);
  return l;
}

// Only the rule under test is on.
SamplerParams only(float temperature = 1.0f) {
  SamplerParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

std::vector<double> softmax(const std::vector<double>& logits, double temperature = 1.0) {
  const double max = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) sum += p[i] = std::exp((logits[i] - max) / temperature);
  for (double& v : p) v /= sum;
  return p;
}

// Ids by falling logit.
std::vector<int32_t> ranked(const std::vector<double>& logits) {
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  return ids;
}

std::vector<int32_t> kept_ids(const Sampler& s) {
  std::vector<int32_t> ids;
  for (const auto& c : s.candidates()) ids.push_back(c.id);
  return ids;
}

std::vector<double> as_double(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

TEST(Sampler, DefaultsAreLlamaCpps) {
  const SamplerParams p;
  EXPECT_FLOAT_EQ(p.temperature, 0.8f);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_FLOAT_EQ(p.top_p, 0.95f);
  EXPECT_FLOAT_EQ(p.min_p, 0.05f);
  EXPECT_FLOAT_EQ(p.repeat_penalty, 1.0f);
  EXPECT_EQ(p.repeat_last_n, 64);
  EXPECT_EQ(p.frequency_penalty, 0.0f);
  EXPECT_EQ(p.presence_penalty, 0.0f);
}

TEST(Sampler, GreedyPicksTheArgmax) {
  std::mt19937_64 gen(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);  // only makes inputs; any values will do
  Sampler s(only(0.0f));
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> l(1 + trial % 97);
    for (float& v : l) v = normal(gen);
    const int32_t expected = static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
    ASSERT_EQ(s.sample(l), expected);
    ASSERT_EQ(s.candidates().size(), 1u);
    EXPECT_EQ(s.candidates()[0].p, 1.0f);
  }
  // ties go to the lowest id; the default filters do not change the argmax
  SamplerParams p;
  p.temperature = 0;
  Sampler d(p);
  EXPECT_EQ(d.sample(std::vector<float>{1, 3, 0, 3, 2}), 1);
  EXPECT_EQ(d.sample(test_logits()), ranked(as_double(test_logits()))[0]);
}

TEST(Sampler, TopKKeepsTheKLargest) {
  const auto logits = test_logits();
  const auto order = ranked(as_double(logits));
  for (int k = 1; k <= static_cast<int>(logits.size()) + 2; ++k) {
    SCOPED_TRACE(k);
    auto p = only();
    p.top_k = k;
    Sampler s(p);
    s.sample(logits);
    const size_t n = std::min<size_t>(k, logits.size());
    EXPECT_EQ(kept_ids(s), std::vector<int32_t>(order.begin(), order.begin() + n));
  }
}

// The smallest prefix of the probability-sorted tokens whose sum reaches top_p.
std::vector<int32_t> expected_top_p(const std::vector<double>& logits, double top_p) {
  const auto probs = softmax(logits);
  const auto order = ranked(logits);
  std::vector<int32_t> kept;
  double cumulative = 0;
  for (int32_t id : order) {
    kept.push_back(id);
    cumulative += probs[id];
    if (cumulative >= top_p) break;
  }
  return kept;
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  const auto logits = test_logits();
  const auto probs = softmax(as_double(logits));
  size_t tested = 0;
  for (double top_p = 0.02; top_p < 1.0; top_p += 0.0137) {
    // stay clear of the cumulative sums themselves, where float rounding decides
    double cumulative = 0, gap = 1;
    for (int32_t id : ranked(as_double(logits)))
      gap = std::min(gap, std::abs((cumulative += probs[id]) - top_p));
    if (gap < 1e-4) continue;
    SCOPED_TRACE(top_p);
    auto p = only();
    p.top_p = static_cast<float>(top_p);
    Sampler s(p);
    s.sample(logits);
    EXPECT_EQ(kept_ids(s), expected_top_p(as_double(logits), top_p));
    ++tested;
  }
  EXPECT_GT(tested, 50u);
  auto p = only();
  p.top_p = 0.0f;  // keeps at least one token
  Sampler s(p);
  s.sample(logits);
  EXPECT_EQ(kept_ids(s).size(), 1u);
}

TEST(Sampler, MinPKeepsTokensAboveAFractionOfTheMax) {
  const auto logits = test_logits();
  const auto probs = softmax(as_double(logits));
  const double p_max = *std::max_element(probs.begin(), probs.end());
  for (double min_p : {0.001, 0.01, 0.05, 0.1, 0.2, 0.33, 0.5, 0.9, 1.0}) {
    SCOPED_TRACE(min_p);
    std::set<int32_t> expected;
    for (size_t i = 0; i < probs.size(); ++i)
      if (probs[i] >= min_p * p_max) expected.insert(static_cast<int32_t>(i));
    auto p = only();
    p.min_p = static_cast<float>(min_p);
    Sampler s(p);
    s.sample(logits);
    const auto ids = kept_ids(s);
    EXPECT_EQ(std::set<int32_t>(ids.begin(), ids.end()), expected);
  }
}

TEST(Sampler, ChainOrderIsTopKThenTopPThenMinPThenTemperature) {
  // top-p sees probabilities renormalized over the top-k survivors, at temperature 1, and min-p
  // sees what top-p left; the temperature only shapes the final draw.
  const auto logits = test_logits();
  const auto all = as_double(logits);
  const auto order = ranked(all);
  SamplerParams p;
  p.top_k = 8;
  p.top_p = 0.9f;
  p.min_p = 0.2f;
  p.temperature = 1.7f;
  std::vector<double> top_k_logits;
  for (int i = 0; i < p.top_k; ++i) top_k_logits.push_back(all[order[i]]);
  auto kept = expected_top_p(top_k_logits, p.top_p);  // indices into top_k_logits
  const double max = top_k_logits[kept[0]];
  std::erase_if(kept, [&](int32_t i) { return std::exp(top_k_logits[i] - max) < p.min_p; });
  std::vector<int32_t> expected_ids;
  std::vector<double> kept_logits;
  for (int32_t i : kept) {
    expected_ids.push_back(order[i]);
    kept_logits.push_back(top_k_logits[i]);
  }
  ASSERT_GE(expected_ids.size(), 2u);  // the case exercises something
  ASSERT_LT(expected_ids.size(), 8u);
  const auto expected_p = softmax(kept_logits, p.temperature);
  Sampler s(p);
  s.sample(logits);
  ASSERT_EQ(kept_ids(s), expected_ids);
  for (size_t i = 0; i < expected_p.size(); ++i)
    EXPECT_NEAR(s.candidates()[i].p, expected_p[i], 1e-6);
}

// 200k draws: each frequency has standard deviation sqrt(p(1-p)/n) <= 0.0011, so 0.005 is more than
// 4.4 sigma for every token; the chi-square bound is the 0.999 quantile for the degrees of freedom.
void expect_distribution(Sampler& s, const std::vector<float>& logits,
                         const std::vector<double>& expected, double chi2_bound) {
  const int n = 200000;
  std::vector<int> counts(logits.size());
  for (int i = 0; i < n; ++i) ++counts.at(s.sample(logits));
  double chi2 = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double freq = static_cast<double>(counts[i]) / n;
    EXPECT_NEAR(freq, expected[i], 0.005) << "token " << i;
    if (expected[i] > 0) {
      const double d = counts[i] - n * expected[i];
      chi2 += d * d / (n * expected[i]);
    } else {
      EXPECT_EQ(counts[i], 0) << "token " << i << " has probability 0";
    }
  }
  EXPECT_LT(chi2, chi2_bound);
}

TEST(Sampler, DrawsFollowTheTemperedDistribution) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f};
  for (float temperature : {0.5f, 1.0f, 2.5f}) {
    SCOPED_TRACE(temperature);
    Sampler s(only(temperature));
    const auto expected = softmax(as_double(logits), temperature);
    s.sample(logits);
    for (const auto& c : s.candidates()) EXPECT_NEAR(c.p, expected[c.id], 1e-6);
    expect_distribution(s, logits, expected, 18.47);  // chi-square, 4 degrees of freedom
  }
}

TEST(Sampler, DrawsStayInsideTheFilteredSet) {
  // top-k 3 over 6 tokens at temperature 0.8: the other three never appear, the three kept follow
  // their renormalized tempered probabilities.
  const std::vector<float> logits = {0.2f, 1.1f, -0.4f, 0.9f, 1.4f, 0.0f};
  auto p = only(0.8f);
  p.top_k = 3;
  Sampler s(p);
  const auto order = ranked(as_double(logits));
  std::vector<double> kept_logits;
  for (int i = 0; i < 3; ++i) kept_logits.push_back(logits[order[i]]);
  const auto kept_p = softmax(kept_logits, 0.8);
  std::vector<double> expected(logits.size(), 0.0);
  for (int i = 0; i < 3; ++i) expected[order[i]] = kept_p[i];
  expect_distribution(s, logits, expected, 13.82);  // chi-square, 2 degrees of freedom
}

TEST(Sampler, DrawIsTheInverseCdfOfThePortableUniform) {
  // The engine is mt19937_64 (fixed by the standard); u = top 53 bits / 2^53; the token is the
  // first candidate whose cumulative probability exceeds u.
  EXPECT_EQ(Sampler(SamplerParams{.seed = 5489}).uniform(),
            static_cast<double>(14514284786278117030ull >> 11) * 0x1.0p-53);
  const auto logits = test_logits();
  auto p = only(1.3f);
  p.seed = 1234;
  Sampler s(p);
  std::mt19937_64 engine(1234);
  const auto order = ranked(as_double(logits));
  const auto probs = softmax(as_double(logits), 1.3);
  for (int i = 0; i < 2000; ++i) {
    const double u = static_cast<double>(engine() >> 11) * 0x1.0p-53;
    double cumulative = 0;
    int32_t expected = order.back();
    for (int32_t id : order)
      if (u < (cumulative += probs[id])) {
        expected = id;
        break;
      }
    ASSERT_EQ(s.sample(logits), expected) << "draw " << i;
  }
}

TEST(Sampler, SeedsRepeatAndDiffer) {
  const auto logits = test_logits();
  auto draws = [&](uint64_t seed) {
    SamplerParams p;
    p.seed = seed;
    p.top_k = 0;
    p.min_p = 0;
    Sampler s(p);
    std::vector<int32_t> out;
    for (int i = 0; i < 300; ++i) out.push_back(s.sample(logits));
    return out;
  };
  EXPECT_EQ(draws(42), draws(42));
  EXPECT_NE(draws(42), draws(43));
  EXPECT_NE(draws(42), draws(0));
  // reset() starts the sequence over
  Sampler s(SamplerParams{.seed = 42});
  std::vector<int32_t> first, again;
  for (int i = 0; i < 50; ++i) first.push_back(s.sample(logits));
  s.reset();
  for (int i = 0; i < 50; ++i) again.push_back(s.sample(logits));
  EXPECT_EQ(first, again);
}

TEST(Sampler, FloatAndDoubleLogitsAgree) {
  const auto logits = test_logits();
  Sampler a(SamplerParams{.seed = 9}), b(SamplerParams{.seed = 9});
  for (int i = 0; i < 200; ++i) ASSERT_EQ(a.sample(logits), b.sample(as_double(logits)));
}

TEST(Sampler, PenaltiesChangeTheRightLogitsByTheRightAmounts) {
  const auto logits = test_logits(12);
  auto p = only();
  p.repeat_penalty = 1.3f;
  p.frequency_penalty = 0.25f;
  p.presence_penalty = 0.4f;
  p.repeat_last_n = 6;
  Sampler s(p);
  // 11 accepted; the window holds the last 6: 5, 5, 2, 7, 2, 5 (and 30, past the vocab, is older)
  const std::vector<int32_t> history = {1, 1, 9, 30, 3, 5, 5, 2, 7, 2, 5};
  for (int32_t t : history) s.accept(t);
  const std::vector<int32_t> window(history.end() - p.repeat_last_n, history.end());
  ASSERT_GT(logits[5], 0.0f);  // both signs are exercised
  ASSERT_LT(logits[2], 0.0f);
  s.sample(logits);
  ASSERT_EQ(s.candidates().size(), logits.size());
  for (const auto& c : s.candidates()) {
    const int n = static_cast<int>(std::count(window.begin(), window.end(), c.id));
    EXPECT_EQ(s.count(c.id), n);
    float expected = logits[c.id];
    if (n > 0) {
      expected = expected > 0 ? expected / p.repeat_penalty : expected * p.repeat_penalty;
      expected -= static_cast<float>(n) * p.frequency_penalty + p.presence_penalty;
    }
    EXPECT_EQ(c.logit, expected) << "token " << c.id << " seen " << n << " times";
  }
  EXPECT_EQ(s.count(1), 0);  // slid out of the window
  s.reset();
  s.sample(logits);
  for (const auto& c : s.candidates()) EXPECT_EQ(c.logit, logits[c.id]);
}

TEST(Sampler, RepeatPenaltyMovesGreedyOffARepeatedToken) {
  const std::vector<float> logits = {2.0f, 1.8f, -1.0f};
  auto p = only(0.0f);
  p.repeat_penalty = 1.2f;  // 2.0 / 1.2 = 1.67 < 1.8
  Sampler s(p);
  EXPECT_EQ(s.sample(logits), 0);
  s.accept(0);
  EXPECT_EQ(s.sample(logits), 1);
  p.repeat_last_n = 0;  // window off
  Sampler off(p);
  off.accept(0);
  EXPECT_EQ(off.sample(logits), 0);
}

TEST(Sampler, NanIsAnErrorAndInfinitiesAreHandled) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (float t : {0.0f, 0.8f}) {
    Sampler s(only(t));
    EXPECT_THROW(s.sample(std::vector<float>{0.1f, nan, 0.3f}), mamba::ArgumentError);
    EXPECT_THROW(s.sample(std::vector<float>{-inf, -inf}), mamba::ArgumentError);
    EXPECT_THROW(s.sample(std::vector<float>{}), mamba::ArgumentError);
  }
  // -inf tokens are never drawn
  Sampler s(only(1.0f));
  const std::vector<float> some_impossible = {0.0f, -inf, 0.0f, -inf};
  for (int i = 0; i < 1000; ++i) {
    const int32_t t = s.sample(some_impossible);
    ASSERT_TRUE(t == 0 || t == 2) << t;
  }
  // +inf tokens take all the probability, shared equally
  const std::vector<float> certain = {5.0f, inf, 1e30f, inf, -inf};
  s.sample(certain);
  ASSERT_EQ(s.candidates().size(), 2u);
  EXPECT_EQ(s.candidates()[0].p, 0.5f);
  expect_distribution(s, certain, {0, 0.5, 0, 0.5, 0}, 10.83);  // chi-square, 1 degree of freedom
  EXPECT_EQ(Sampler(only(0.0f)).sample(certain), 1);
}

TEST(Sampler, RejectsBadParametersAndTokens) {
  auto bad = [](auto change) {
    SamplerParams p;
    change(p);
    return p;
  };
  EXPECT_THROW(Sampler(bad([](SamplerParams& p) { p.repeat_penalty = 0; })), mamba::ArgumentError);
  EXPECT_THROW(Sampler(bad([](SamplerParams& p) { p.temperature = NAN; })), mamba::ArgumentError);
  EXPECT_THROW(Sampler(bad([](SamplerParams& p) { p.repeat_last_n = -1; })), mamba::ArgumentError);
  EXPECT_THROW(Sampler(bad([](SamplerParams& p) { p.frequency_penalty = INFINITY; })),
               mamba::ArgumentError);
  Sampler s;
  EXPECT_THROW(s.accept(-1), mamba::ArgumentError);
}

TEST(Sampler, ReusesItsCandidateBuffer) {
  const auto logits = test_logits(1000);
  auto p = only();
  Sampler s(p);
  s.sample(logits);
  const auto* first = s.candidates().data();
  for (int i = 0; i < 10; ++i) s.sample(logits);
  EXPECT_EQ(s.candidates().data(), first);
}

}  // namespace
