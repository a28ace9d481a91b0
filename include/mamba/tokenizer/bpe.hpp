#pragma once
// Byte-pair encoding of one pre-tokenized word. The word starts as one symbol per byte (the
// token of that byte's byte-level character); the pair with the lowest merge rank is merged,
// leftmost first among equal ranks, until no pair has a merge. Pairs wait in a priority queue
// keyed by (rank, position) and symbols form a linked list, so a word of n bytes costs
// O(n log n), not a rescan per merge. Words already seen come from a cache.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mamba/error.hpp"
#include "mamba/tokenizer/byte_level.hpp"
#include "mamba/tokenizer/word_cache.hpp"

namespace mamba {

class BpeModel {
 public:
  // vocab[id] is the byte-level string of token id ("" for ids that are only added tokens);
  // merges are pairs of byte-level strings, rank = position in the list.
  BpeModel(std::vector<std::string> vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges,
           const std::string& source)
      : vocab_(std::move(vocab)), ignore_merges_(ignore_merges), cache_(new Cache) {
    ids_.reserve(vocab_.size());
    for (std::size_t id = 0; id < vocab_.size(); ++id) {
      if (vocab_[id].empty()) continue;
      if (!ids_.emplace(vocab_[id], static_cast<std::int32_t>(id)).second) {
        throw FormatError(source + ": token '" + vocab_[id] + "' appears twice in the vocabulary");
      }
    }
    for (int b = 0; b < 256; ++b) {
      std::string ch;
      utf8_append(ch, byte_to_codepoint(static_cast<std::uint8_t>(b)));
      const auto it = ids_.find(ch);
      byte_id_[b] = it == ids_.end() ? -1 : it->second;
    }
    merges_ = MergeTable(merges.size());
    for (std::size_t rank = 0; rank < merges.size(); ++rank) {
      const std::string& a = merges[rank].first;  // not a structured binding: clang 14 cannot
      const std::string& b = merges[rank].second;  // capture those in the lambda below
      const auto name = [&] {
        return source + ": merge " + std::to_string(rank) + " ('" + a + "' '" + b + "')";
      };
      const auto ia = ids_.find(a), ib = ids_.find(b), iab = ids_.find(a + b);
      if (ia == ids_.end()) throw FormatError(name() + " names '" + a + "', not in the vocabulary");
      if (ib == ids_.end()) throw FormatError(name() + " names '" + b + "', not in the vocabulary");
      if (iab == ids_.end()) {
        throw FormatError(name() + ": the merged token '" + a + b + "' is not in the vocabulary");
      }
      // A repeated pair takes its last rank, as in the reference (a map filled in order).
      merges_.set(ia->second, ib->second, {static_cast<std::int32_t>(rank), iab->second});
    }
  }

  // Appends the tokens of one word, given as raw bytes. Bytes whose character has no token are
  // dropped (what the reference does without an unknown token; byte-level vocabularies have
  // all 256).
  void encode_word(std::string_view bytes, std::vector<std::int32_t>& out) const {
    if (bytes.empty()) return;
    const std::uint64_t hash = word_hash(bytes);
    {
      std::lock_guard<std::mutex> lock(cache_->mutex);
      if (cache_->words.find(bytes, hash, out)) return;
    }
    const std::size_t first = out.size();
    merge_word(bytes, out);
    std::lock_guard<std::mutex> lock(cache_->mutex);
    cache_->words.insert(bytes, hash, out.data() + first, out.size() - first);
  }

  void clear_cache() const {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    cache_->words.clear();
  }

  const std::vector<std::string>& vocab() const { return vocab_; }

  // The id of a byte-level string, or -1.
  std::int32_t find(std::string_view token) const {
    const auto it = ids_.find(token);
    return it == ids_.end() ? -1 : it->second;
  }

 private:
  using Merge = MergeTable::Merge;

  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  struct Cache {
    std::mutex mutex;
    WordCache words;
  };

  const Merge* find_merge(std::int32_t a, std::int32_t b) const { return merges_.find(a, b); }

  void merge_word(std::string_view bytes, std::vector<std::int32_t>& out) const {
    struct Symbol {
      std::int32_t id, prev, next;
      bool alive;
    };
    struct Candidate {
      std::int32_t rank, pos, id;
      bool operator>(const Candidate& o) const {
        return rank != o.rank ? rank > o.rank : pos > o.pos;
      }
    };
    std::vector<Symbol> sym;
    sym.reserve(bytes.size());
    for (const char c : bytes) {
      const std::int32_t id = byte_id_[static_cast<unsigned char>(c)];
      if (id < 0) continue;
      const auto i = static_cast<std::int32_t>(sym.size());
      sym.push_back({id, i - 1, i + 1, true});
    }
    if (sym.empty()) return;
    sym.back().next = -1;
    if (ignore_merges_) {
      std::string whole = bytes_to_byte_level(bytes);
      if (const std::int32_t id = find(whole); id >= 0) {
        out.push_back(id);
        return;
      }
    }
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
    const auto consider = [&](std::int32_t pos) {
      const std::int32_t next = sym[static_cast<std::size_t>(pos)].next;
      if (next < 0) return;
      if (const Merge* m = find_merge(sym[static_cast<std::size_t>(pos)].id,
                                      sym[static_cast<std::size_t>(next)].id)) {
        queue.push({m->rank, pos, m->id});
      }
    };
    for (std::int32_t i = 0; i + 1 < static_cast<std::int32_t>(sym.size()); ++i) consider(i);
    while (!queue.empty()) {
      const Candidate top = queue.top();
      queue.pop();
      Symbol& left = sym[static_cast<std::size_t>(top.pos)];
      if (!left.alive || left.next < 0) continue;
      Symbol& right = sym[static_cast<std::size_t>(left.next)];
      // Stale entry: one side has been merged since this candidate was queued.
      const Merge* m = find_merge(left.id, right.id);
      if (m == nullptr || m->id != top.id) continue;
      left.id = top.id;
      right.alive = false;
      left.next = right.next;
      if (right.next >= 0) sym[static_cast<std::size_t>(right.next)].prev = top.pos;
      if (left.prev >= 0) consider(left.prev);
      consider(top.pos);
    }
    for (std::int32_t i = 0; i >= 0; i = sym[static_cast<std::size_t>(i)].next) {
      out.push_back(sym[static_cast<std::size_t>(i)].id);
    }
  }

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>> ids_;
  MergeTable merges_;
  std::int32_t byte_id_[256];
  bool ignore_merges_;
  std::unique_ptr<Cache> cache_;  // behind a pointer so that the model stays movable
};

}  // namespace mamba
