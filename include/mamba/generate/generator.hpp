#pragma once
// The generation loop: prompt -> prefill -> (sample -> step)* with a callback per token, stop on
// EOS, on any stop string, or at max_tokens; with timings.
//
// Text is streamed through the tokenizer's streaming decoder, so a callback never sees half of a
// multi-byte character. Text that might be the start of a stop string is held back until it is
// known not to be; a stop string itself is never emitted.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mamba/error.hpp"
#include "mamba/generate/sampler.hpp"
#include "mamba/model/model.hpp"
#include "mamba/tokenizer/stream_decoder.hpp"
#include "mamba/tokenizer/tokenizer.hpp"

namespace mamba {

struct GenerateParams {
  int max_tokens = 128;           // generated tokens at most
  std::vector<std::string> stop{};  // stop strings (not emitted)
  bool stop_at_eos = true;        // stop when the tokenizer's EOS id is sampled
  bool want_probs = false;        // pass the sampler's candidates to the callback
};

// One generated token, as the callback sees it.
struct TokenEvent {
  int32_t id;
  std::string_view text;              // text released by this token (may be empty, or more)
  std::span<const TokenProb> probs;   // candidates and probabilities when want_probs
};

enum class StopReason { MaxTokens, Eos, StopString, Callback };

struct GenerateStats {
  int64_t prompt_tokens = 0;     // tokens prefilled in this call
  double prompt_seconds = 0;
  int64_t generated_tokens = 0;  // tokens sampled
  double generate_seconds = 0;   // from the first sample to the last
  StopReason stop = StopReason::MaxTokens;
  std::vector<int32_t> tokens;   // the generated ids

  double prompt_tokens_per_second() const {
    return prompt_seconds > 0 ? prompt_tokens / prompt_seconds : 0;
  }
  double generated_tokens_per_second() const {
    return generate_seconds > 0 ? generated_tokens / generate_seconds : 0;
  }
};

// Return false to stop.
using TokenCallback = std::function<bool(const TokenEvent&)>;

namespace detail {

// Holds back text that could be the beginning of a stop string.
class StopMatcher {
 public:
  explicit StopMatcher(const std::vector<std::string>& stops) : stops_(stops) {
    for (const auto& s : stops_)
      if (s.empty()) throw ArgumentError("empty stop string");
  }

  // Adds text; returns what can be released now. Sets stopped() when a stop string appeared
  // (the text before it is released, the stop string and anything after it are not).
  std::string put(std::string_view text) {
    pending_ += text;
    size_t first = std::string::npos;
    for (const auto& s : stops_) first = std::min(first, pending_.find(s));
    if (first != std::string::npos) {
      stopped_ = true;
      std::string out = pending_.substr(0, first);
      pending_.clear();
      return out;
    }
    size_t hold = 0;  // longest tail of pending_ that is a proper prefix of a stop string
    for (const auto& s : stops_)
      for (size_t k = std::min(s.size() - 1, pending_.size()); k > hold; --k)
        if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
    std::string out = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
    return out;
  }

  std::string flush() { return std::exchange(pending_, std::string()); }
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace detail

class Generator {
 public:
  // The tokenizer may be null: then no text is produced (callbacks get ids and empty text), EOS
  // is unknown and stop strings are an error.
  Generator(const Model& model, const Tokenizer* tokenizer) : model_(model), tok_(tokenizer) {}

  // Prefills `prompt` into `state` (which may already hold earlier context) and generates.
  // Afterwards the state has consumed the prompt and every generated token except a final EOS,
  // so a conversation continues by calling generate again with the next input.
  // The prompt's tokens also enter the sampler's penalty window.
  GenerateStats generate(std::span<const int32_t> prompt, State& state, Sampler& sampler,
                         const GenerateParams& params, const TokenCallback& on_token) const {
    if (prompt.empty()) throw ArgumentError("generate: empty prompt");
    if (!tok_ && !params.stop.empty()) throw ArgumentError("stop strings need a tokenizer");
    using clock = std::chrono::steady_clock;
    GenerateStats stats;
    const auto t0 = clock::now();
    std::vector<float> logits = model_.prefill(prompt, state);
    const auto t1 = clock::now();
    stats.prompt_tokens = static_cast<int64_t>(prompt.size());
    stats.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();
    for (int32_t t : prompt) sampler.accept(t);

    std::optional<StreamDecoder> decoder;
    if (tok_) decoder.emplace(*tok_);
    detail::StopMatcher stops(params.stop);
    const int32_t eos = tok_ ? tok_->eos_id() : -1;
    auto emit = [&](int32_t id, const std::string& text) {
      const std::span<const TokenProb> probs =
          params.want_probs ? sampler.candidates() : std::span<const TokenProb>();
      return on_token ? on_token(TokenEvent{id, text, probs}) : true;
    };

    stats.stop = StopReason::MaxTokens;
    for (int i = 0; i < params.max_tokens; ++i) {
      const int32_t id = sampler.sample(logits);
      sampler.accept(id);
      stats.tokens.push_back(id);
      ++stats.generated_tokens;
      if (params.stop_at_eos && id == eos) {
        stats.stop = StopReason::Eos;
        break;
      }
      model_.step(id, state, logits);  // the state holds every generated token but EOS
      const std::string text = decoder ? stops.put(decoder->put(id)) : std::string();
      if (!emit(id, text)) {
        stats.stop = StopReason::Callback;
        break;
      }
      if (stops.stopped()) {
        stats.stop = StopReason::StopString;
        break;
      }
    }
    // What the decoder and the stop matcher still hold belongs to the text, unless a stop string
    // ended it.
    if (decoder && !stops.stopped()) {
      const std::string rest = stops.put(decoder->flush()) + stops.flush();
      if (!rest.empty() && on_token) on_token(TokenEvent{-1, rest, {}});
    }
    stats.generate_seconds = std::chrono::duration<double>(clock::now() - t1).count();
    return stats;
  }

 private:
  const Model& model_;
  const Tokenizer* tok_;
};

}  // namespace mamba
