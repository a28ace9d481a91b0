#pragma once
// The GPT-2 pre-tokenizer split, written out as a scanner instead of a regex engine:
//
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// At each position the first alternative that matches wins (regex alternation order), and each
// run is greedy. The two whitespace alternatives together mean: a run of whitespace followed by
// a non-space is cut before its last character (which then joins the word after it when it is
// an ASCII space, or stands alone otherwise); a run at the end of the text is taken whole.
// Invalid UTF-8 subparts count as "other" characters (see unicode.hpp).
#include <cstddef>
#include <string_view>

#include "mamba/tokenizer/unicode.hpp"

namespace mamba {

namespace detail {

struct ClassedChar {
  CharClass cls;
  std::size_t len;
};

inline ClassedChar classify_at(std::string_view s, std::size_t i) {
  const unsigned char b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return {char_class(b), 1};
  const Utf8Char c = utf8_next(s, i);
  return {char_class(c.cp), c.len};
}

// Length of the contraction ('s 't 're 've 'm 'll 'd, case-sensitive) at s[i], or 0.
inline std::size_t contraction_at(std::string_view s, std::size_t i) {
  if (s[i] != '\'' || i + 1 >= s.size()) return 0;
  const char a = s[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= s.size()) return 0;
  const char b = s[i + 2];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

}  // namespace detail

// Calls piece(std::string_view) for each piece of s, in order; the pieces concatenate to s.
template <class F>
void gpt2_split(std::string_view s, F&& piece) {
  using detail::classify_at;
  const std::size_t n = s.size();
  std::size_t pos = 0;
  while (pos < n) {
    const std::size_t start = pos;
    if (const std::size_t c = detail::contraction_at(s, pos)) {
      piece(s.substr(start, c));
      pos += c;
      continue;
    }
    detail::ClassedChar first = classify_at(s, pos);
    std::size_t p = pos;
    // ' ?' : an ASCII space followed by a letter, number or other character joins that run.
    if (s[pos] == ' ' && pos + 1 < n) {
      const detail::ClassedChar next = classify_at(s, pos + 1);
      if (next.cls != CharClass::whitespace) {
        first = next;
        p = pos + 1;
      }
    }
    if (first.cls != CharClass::whitespace) {
      p += first.len;
      while (p < n) {
        const detail::ClassedChar c = classify_at(s, p);
        if (c.cls != first.cls) break;
        p += c.len;
      }
      piece(s.substr(start, p - start));
      pos = p;
      continue;
    }
    // Whitespace: find the run and its last character.
    std::size_t last = pos;
    p = pos + first.len;
    while (p < n) {
      const detail::ClassedChar c = classify_at(s, p);
      if (c.cls != CharClass::whitespace) break;
      last = p;
      p += c.len;
    }
    // \s+(?!\S) backs off one character when a non-space follows; \s+ takes a lone character.
    const std::size_t end = (p == n || last == pos) ? p : last;
    piece(s.substr(start, end - start));
    pos = end;
  }
}

// The same pieces without the split (a ByteLevel pre-tokenizer with use_regex false).
template <class F>
void no_split(std::string_view s, F&& piece) {
  if (!s.empty()) piece(s);
}

}  // namespace mamba
