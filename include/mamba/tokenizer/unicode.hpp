#pragma once
// UTF-8 decoding, NFC normalization and the character classes of the GPT-2 split pattern, all
// from utf8proc (no hand-made Unicode tables).
//
// Invalid UTF-8 policy (the whole tokenizer follows it): a byte sequence that is not valid UTF-8
// is cut into "maximal subparts" (the Unicode / WHATWG rule: a lead byte plus the continuation
// bytes that could still have completed it). Each subpart is kept byte for byte: it is not
// normalized, it counts as a "other" character (not a letter, number or space) when splitting,
// and it becomes the byte tokens of its bytes. So encoding never fails and decode_bytes() gives
// the input back, except bytes the vocabulary has no token for: GPT-NeoX-20B has none for the
// 13 bytes that never occur in UTF-8 (C0, C1, F5..FF), and they are dropped, as the reference
// BPE drops characters it cannot represent when it has no unknown token. Where text must be
// valid UTF-8 (decode()), each invalid subpart becomes U+FFFD.
#include <utf8proc.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace mamba {

// One decoded character: its code point (or -1 when invalid) and how many bytes it spans.
struct Utf8Char {
  std::int32_t cp;
  std::uint32_t len;
  bool valid() const { return cp >= 0; }
};

// Decodes the character at s[i]; i < s.size(). Overlongs, surrogates and code points past
// U+10FFFF are invalid; an invalid sequence spans its maximal subpart (at least one byte).
inline Utf8Char utf8_next(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return {b0, 1};
  std::uint32_t need = 0;
  std::int32_t cp = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // no overlongs
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  // no overlongs
    if (b0 == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    return {-1, 1};  // a stray continuation byte or an impossible lead byte
  }
  for (std::uint32_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return {-1, k};
    const unsigned char b = byte(i + k);
    const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return {-1, k};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, need + 1};
}

// How many bytes at the end of s are the beginning of a valid character that more bytes could
// still complete (0 to 3). A streaming decoder holds these back.
inline std::size_t utf8_incomplete_tail(std::string_view s) {
  const std::size_t n = s.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    const std::size_t i = n - back;
    const unsigned char b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) == 0x80) continue;  // a continuation byte: the lead is further back
    if (b < 0xC2) return 0;            // ASCII or an impossible lead: nothing pending
    const Utf8Char c = utf8_next(s, i);
    // Incomplete (not invalid) when decoding ran out of input exactly at the end.
    return (!c.valid() && i + c.len == n) ? back : 0;
  }
  return 0;
}

// Appends code point cp as UTF-8.
inline void utf8_append(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Valid UTF-8 from any bytes: each maximal invalid subpart becomes U+FFFD (as Rust's
// String::from_utf8_lossy, which the reference tokenizer's decode uses).
inline std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const Utf8Char c = utf8_next(s, i);
    if (c.valid()) {
      out.append(s.substr(i, c.len));
    } else {
      utf8_append(out, 0xFFFD);
    }
    i += c.len;
  }
  return out;
}

inline bool utf8_is_valid(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const Utf8Char c = utf8_next(s, i);
    if (!c.valid()) return false;
    i += c.len;
  }
  return true;
}

namespace detail {

// NFC of valid UTF-8 through utf8proc; on any utf8proc failure the text is kept as it is.
inline void nfc_append_valid(std::string& out, std::string_view s) {
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(
      reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()),
      &mapped, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n >= 0 && mapped != nullptr) {
    out.append(reinterpret_cast<const char*>(mapped), static_cast<std::size_t>(n));
  } else {
    out.append(s);
  }
  std::free(mapped);
}

// NFC of a stretch that may hold invalid UTF-8: valid runs are normalized, invalid subparts are
// copied as they are.
inline void nfc_append_segment(std::string& out, std::string_view s) {
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size();) {
    const Utf8Char c = utf8_next(s, i);
    if (!c.valid()) {
      nfc_append_valid(out, s.substr(run, i - run));
      out.append(s.substr(i, c.len));
      run = i + c.len;
    }
    i += c.len;
  }
  nfc_append_valid(out, s.substr(run));
}

}  // namespace detail

// Unicode Normalization Form C. ASCII characters never combine with what precedes them and
// are their own normal form, so the text is cut before ASCII characters and only the stretches
// holding non-ASCII bytes (with the one ASCII character before them, which a combining mark
// may compose with) go through utf8proc. Pure ASCII text is returned as it is.
inline std::string nfc(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  std::size_t copied = 0;  // s[0, copied) is in out
  std::size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    std::size_t start = i > copied ? i - 1 : i;  // the ASCII starter before, when not yet copied
    std::size_t end = i;
    while (end < s.size() && static_cast<unsigned char>(s[end]) >= 0x80) ++end;
    out.append(s.substr(copied, start - copied));
    detail::nfc_append_segment(out, s.substr(start, end - start));
    copied = end;
    i = end;
  }
  out.append(s.substr(copied));
  return out;
}

// The classes the GPT-2 split pattern tells apart: \p{L}, \p{N}, \s (the Unicode White_Space
// set: U+0009..U+000D, U+0085 and the separators Zs, Zl, Zp) and everything else. Invalid
// bytes are "other".
enum class CharClass : std::uint8_t { letter, number, whitespace, other };

inline CharClass char_class(std::int32_t cp) {
  if (cp < 0) return CharClass::other;
  if (cp < 0x80) {
    const auto c = static_cast<char>(cp);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return CharClass::letter;
    if (c >= '0' && c <= '9') return CharClass::number;
    if (c == ' ' || (c >= '\t' && c <= '\r')) return CharClass::whitespace;
    return CharClass::other;
  }
  if (cp == 0x85) return CharClass::whitespace;
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return CharClass::letter;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return CharClass::number;
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
      return CharClass::whitespace;
    default:
      return CharClass::other;
  }
}

}  // namespace mamba
