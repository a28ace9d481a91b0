#pragma once
// Sampler: turns one row of logits into the next token.
//
// The steps run in the order of llama.cpp's default chain:
//
//   1. penalties   over the last `repeat_last_n` tokens given to accept(): a token seen c > 0
//                  times gets   logit = logit > 0 ? logit / repeat_penalty : logit * repeat_penalty
//                  (CTRL / llama.cpp), then   logit -= c * frequency_penalty + presence_penalty
//                  (OpenAI).
//   2. top-k       keep the k largest logits.
//   3. top-p       softmax over what is left; keep the smallest prefix (by falling probability)
//                  whose cumulative probability reaches top_p.
//   4. min-p       keep tokens with p >= min_p * p_max (p over what is left).
//   5. temperature p ~ exp(logit / temperature) over the survivors.
//   6. sample      one uniform draw against the cumulative probabilities.
//
// Steps 3 and 4 see probabilities at temperature 1, as in llama.cpp. temperature <= 0 is greedy:
// the argmax of the penalized logits (the lowest id on ties); the filters cannot change it.
//
// Determinism: the engine is std::mt19937_64, whose output the standard fixes bit for bit; the
// uniform draw is made from its top 53 bits here, because std::uniform_real_distribution and
// std::discrete_distribution are implementation-defined. Ties in the sort are broken by token id.
// The same seed, logits and accepted tokens give the same tokens everywhere.
//
// Non-finite logits: NaN is an ArgumentError. -inf means "never" (the token is dropped). If any
// logit is +inf, only the +inf tokens remain, equally likely. A row with no finite or +inf logit
// is an ArgumentError.
//
// Buffers are kept between calls: after the first token, sample() does not allocate (accept() may
// when it first sees a larger token id).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "mamba/error.hpp"

namespace mamba {

struct SamplerParams {
  float temperature = 0.8f;        // <= 0: greedy
  int32_t top_k = 40;              // <= 0: off
  float top_p = 0.95f;             // >= 1: off
  float min_p = 0.05f;             // <= 0: off
  float repeat_penalty = 1.0f;     // 1: off; > 1 discourages repeats
  float frequency_penalty = 0.0f;  // subtracted once per occurrence in the window
  float presence_penalty = 0.0f;   // subtracted once if the token occurs in the window
  int32_t repeat_last_n = 64;      // window of accepted tokens the penalties look at; 0: off
  uint64_t seed = 0x5eed;          // fixed by default so runs repeat; pass your own for variety
};

// One surviving candidate of the last sample() call.
struct TokenProb {
  int32_t id;
  float logit;  // after the penalties, before the temperature
  float p;      // probability in the distribution the token was drawn from
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params = {}) : params_(params), rng_(params.seed) {
    validate(params_);
    window_.assign(static_cast<size_t>(params_.repeat_last_n), 0);
  }

  const SamplerParams& params() const { return params_; }

  // Picks the next token. Does not remember it: call accept() with the token that is actually
  // fed to the model (and with the prompt's tokens, if the penalties should see them).
  int32_t sample(std::span<const float> logits) { return sample_impl(logits); }
  int32_t sample(std::span<const double> logits) { return sample_impl(logits); }

  // The candidates that survived the filters in the last sample() call, by falling probability
  // (ties by id), with the probabilities the token was drawn from (they sum to 1). With greedy
  // sampling it is the chosen token alone, with p = 1.
  std::span<const TokenProb> candidates() const { return candidates_; }

  // Records a token for the penalties; the window keeps the last repeat_last_n of them.
  void accept(int32_t token) {
    if (token < 0) throw ArgumentError("sampler: token id " + std::to_string(token) + " < 0");
    if (window_.empty()) return;
    if (static_cast<size_t>(token) >= counts_.size()) {
      counts_.resize(static_cast<size_t>(token) + 1, 0);
      applied_.resize(counts_.size(), 0);
    }
    if (window_size_ == window_.size()) {
      --counts_[window_[window_next_]];  // the oldest token leaves the window
    } else {
      ++window_size_;
    }
    window_[window_next_] = token;
    ++counts_[token];
    window_next_ = (window_next_ + 1) % window_.size();
  }

  // How often `token` occurs in the penalty window.
  int32_t count(int32_t token) const {
    return token >= 0 && static_cast<size_t>(token) < counts_.size() ? counts_[token] : 0;
  }

  // Forgets the accepted tokens and restarts the random sequence from `seed`.
  void reset(uint64_t seed) {
    window_size_ = window_next_ = 0;
    std::fill(counts_.begin(), counts_.end(), 0);
    rng_.seed(seed);
  }
  void reset() { reset(params_.seed); }

  // A uniform double in [0, 1) from the top 53 bits of the engine: exact and portable.
  double uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

 private:
  static void validate(const SamplerParams& p) {
    auto check = [](bool ok, const char* what) {
      if (!ok) throw ArgumentError(std::string("sampler: ") + what);
    };
    check(!std::isnan(p.temperature), "temperature is NaN");
    check(!std::isnan(p.top_p), "top_p is NaN");
    check(!std::isnan(p.min_p), "min_p is NaN");
    check(std::isfinite(p.repeat_penalty) && p.repeat_penalty > 0,
          "repeat_penalty must be finite and > 0");
    check(std::isfinite(p.frequency_penalty), "frequency_penalty must be finite");
    check(std::isfinite(p.presence_penalty), "presence_penalty must be finite");
    check(p.repeat_last_n >= 0, "repeat_last_n must be >= 0");
  }

  // Orders candidates by falling logit, then rising id: a total order, so every standard library
  // sorts the same way.
  static bool before(const TokenProb& a, const TokenProb& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }

  template <class T>
  int32_t sample_impl(std::span<const T> logits) {
    if (logits.empty()) throw ArgumentError("sampler: empty logits");
    if (logits.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
      throw ArgumentError("sampler: more logits than token ids");
    const int32_t n_vocab = static_cast<int32_t>(logits.size());
    candidates_.clear();
    candidates_.reserve(logits.size());
    for (int32_t i = 0; i < n_vocab; ++i) {
      const T v = logits[i];
      if (std::isnan(v))
        throw ArgumentError("sampler: logit of token " + std::to_string(i) + " is NaN");
      candidates_.push_back({i, static_cast<float>(v), 0.0f});
    }
    apply_penalties(n_vocab);  // candidates_ is still indexed by id here
    keep_possible();
    if (params_.temperature <= 0) {
      const TokenProb best = *std::min_element(candidates_.begin(), candidates_.end(), before);
      candidates_.assign(1, {best.id, best.logit, 1.0f});
      return best.id;
    }
    const size_t k = static_cast<size_t>(std::max(params_.top_k, 0));
    if (k > 0 && k < candidates_.size()) {
      std::partial_sort(candidates_.begin(), candidates_.begin() + k, candidates_.end(), before);
      candidates_.resize(k);
    } else {
      std::sort(candidates_.begin(), candidates_.end(), before);
    }
    if (params_.top_p < 1) {
      softmax(1.0);
      double cumulative = 0;
      size_t keep = candidates_.size();
      for (size_t i = 0; i < candidates_.size(); ++i) {
        cumulative += candidates_[i].p;
        if (cumulative >= params_.top_p) {
          keep = i + 1;
          break;
        }
      }
      candidates_.resize(keep);
    }
    if (params_.min_p > 0) {
      // p_i >= min_p * p_max  <=>  logit_i - logit_max >= log(min_p)
      const double floor = static_cast<double>(candidates_[0].logit) + std::log(params_.min_p);
      size_t keep = 1;
      while (keep < candidates_.size() && candidates_[keep].logit >= floor) ++keep;
      candidates_.resize(keep);
    }
    softmax(params_.temperature);
    const double u = uniform();
    double cumulative = 0;
    for (const TokenProb& c : candidates_) {
      cumulative += c.p;
      if (u < cumulative) return c.id;
    }
    return candidates_.back().id;  // rounding left u just past the total
  }

  void apply_penalties(int32_t n_vocab) {
    const SamplerParams& p = params_;
    if (window_size_ == 0 ||
        (p.repeat_penalty == 1 && p.frequency_penalty == 0 && p.presence_penalty == 0))
      return;
    for (size_t i = 0; i < window_size_; ++i) {
      const int32_t t = window_[i];
      if (t >= n_vocab || applied_[t]) continue;
      applied_[t] = 1;
      float& logit = candidates_[t].logit;
      logit = logit > 0 ? logit / p.repeat_penalty : logit * p.repeat_penalty;
      logit -= static_cast<float>(counts_[t]) * p.frequency_penalty + p.presence_penalty;
    }
    for (size_t i = 0; i < window_size_; ++i) applied_[window_[i]] = 0;
  }

  // Drops -inf tokens; if any token is +inf, keeps only those, as equals (logit 0).
  void keep_possible() {
    constexpr float inf = std::numeric_limits<float>::infinity();
    const bool any_inf = std::any_of(candidates_.begin(), candidates_.end(),
                                     [](const TokenProb& c) { return c.logit == inf; });
    std::erase_if(candidates_,
                  [&](const TokenProb& c) { return any_inf ? c.logit != inf : c.logit == -inf; });
    if (candidates_.empty())
      throw ArgumentError("sampler: every logit is -inf, no token can be sampled");
    if (any_inf)
      for (TokenProb& c : candidates_) c.logit = 0;
  }

  // p_i = exp((logit_i - logit_max) / temperature) / sum; candidates_ is sorted, so [0] is the max.
  void softmax(double temperature) {
    const double max = candidates_[0].logit;
    double sum = 0;
    for (TokenProb& c : candidates_) {
      const double e = std::exp((c.logit - max) / temperature);
      c.p = static_cast<float>(e);
      sum += e;
    }
    for (TokenProb& c : candidates_) c.p = static_cast<float>(c.p / sum);
  }

  SamplerParams params_;
  std::mt19937_64 rng_;
  std::vector<TokenProb> candidates_;
  std::vector<int32_t> window_;   // ring buffer of the last repeat_last_n accepted tokens
  size_t window_size_ = 0;        // how many of its slots are filled
  size_t window_next_ = 0;        // slot the next token goes to
  std::vector<int32_t> counts_;   // occurrences in the window, by token id
  std::vector<uint8_t> applied_;  // scratch: penalty already applied to this id in this call
};

}  // namespace mamba
