#pragma once
// Flat hash tables for the BPE hot path. Encoding text looks up every word in the word cache and
// every adjacent token pair in the merge table; node-based std::unordered_map spends most of
// that time on cache misses (bucket, node, then the key's heap block), so both tables here are
// open-addressing arrays of small slots with linear probing, the cache's keys and ids packed in
// one arena.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace mamba {

// 64-bit FNV-1a, plus a final mix so that the low bits (the slot index) depend on every byte.
inline std::uint64_t word_hash(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 32);
}

// word (bytes) -> its token ids. Holds at most half as many words as it has slots; when that is
// reached it starts over empty (a cache, not a store).
class WordCache {
 public:
  explicit WordCache(unsigned slots_log2 = 17) : slots_(std::size_t{1} << slots_log2) {}

  // Appends the ids of word to out and returns true when the word is cached.
  bool find(std::string_view word, std::uint64_t hash, std::vector<std::int32_t>& out) const {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.count == 0) return false;
      if (s.hash == hash && s.key_len == word.size() &&
          std::memcmp(arena_.data() + s.offset, word.data(), word.size()) == 0) {
        const std::size_t n = out.size();
        out.resize(n + s.count);
        std::memcpy(out.data() + n, arena_.data() + s.offset + s.key_len,
                    s.count * sizeof(std::int32_t));
        return true;
      }
    }
  }

  // Caches word -> ids. Words longer than kMaxWordBytes (seldom repeated; with use_regex false
  // a whole text is one word) are not cached, so the arena stays under a few MB.
  void insert(std::string_view word, std::uint64_t hash, const std::int32_t* ids,
              std::size_t count) {
    if (count == 0 || word.size() > kMaxWordBytes) return;
    if (2 * (size_ + 1) > slots_.size() || arena_.size() > kMaxArenaBytes) clear();
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = hash & mask;
    while (slots_[i].count != 0) {
      const Slot& s = slots_[i];
      if (s.hash == hash && s.key_len == word.size() &&
          std::memcmp(arena_.data() + s.offset, word.data(), word.size()) == 0) {
        return;  // already there
      }
      i = (i + 1) & mask;
    }
    const std::size_t offset = arena_.size();
    arena_.insert(arena_.end(), word.begin(), word.end());
    const auto* bytes = reinterpret_cast<const char*>(ids);
    arena_.insert(arena_.end(), bytes, bytes + count * sizeof(std::int32_t));
    slots_[i] = {hash, static_cast<std::uint32_t>(offset), static_cast<std::uint16_t>(word.size()),
                 static_cast<std::uint16_t>(count)};
    ++size_;
  }

  void clear() {
    std::fill(slots_.begin(), slots_.end(), Slot{});
    arena_.clear();
    size_ = 0;
  }

  std::size_t size() const { return size_; }

  static constexpr std::size_t kMaxWordBytes = 256;
  static constexpr std::size_t kMaxArenaBytes = std::size_t{16} << 20;

 private:
  struct Slot {
    std::uint64_t hash = 0;
    std::uint32_t offset = 0;  // into arena_: the word's bytes, then its ids
    std::uint16_t key_len = 0;
    std::uint16_t count = 0;  // 0: empty slot
  };
  std::vector<Slot> slots_;
  std::vector<char> arena_;
  std::size_t size_ = 0;
};

// (left id, right id) -> (rank, merged id), fixed after construction.
class MergeTable {
 public:
  struct Merge {
    std::int32_t rank;
    std::int32_t id;  // the merged token
  };

  explicit MergeTable(std::size_t expected = 0) {
    std::size_t n = 16;
    while (n < 2 * expected) n *= 2;
    slots_.assign(n, Slot{kEmpty, {0, 0}});
  }

  // Sets the merge of pair (a, b), replacing an earlier one.
  void set(std::int32_t a, std::int32_t b, Merge m) {
    if (2 * (size_ + 1) > slots_.size()) grow();
    Slot& s = slot_for(key(a, b));
    if (s.key == kEmpty) ++size_;
    s = {key(a, b), m};
  }

  const Merge* find(std::int32_t a, std::int32_t b) const {
    const std::uint64_t k = key(a, b);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = mix(k) & mask;; i = (i + 1) & mask) {
      if (slots_[i].key == k) return &slots_[i].merge;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};  // ids are never both -1
  struct Slot {
    std::uint64_t key;
    Merge merge;
  };

  static std::uint64_t key(std::int32_t a, std::int32_t b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) |
           static_cast<std::uint32_t>(b);
  }
  static std::uint64_t mix(std::uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    return k ^ (k >> 33);
  }

  Slot& slot_for(std::uint64_t k) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = mix(k) & mask;
    while (slots_[i].key != kEmpty && slots_[i].key != k) i = (i + 1) & mask;
    return slots_[i];
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.size() * 2, Slot{kEmpty, {0, 0}});
    for (const Slot& s : old) {
      if (s.key != kEmpty) slot_for(s.key) = s;
    }
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace mamba
