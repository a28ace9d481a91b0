#pragma once
// GPT-2's byte-level alphabet: every byte value gets a printable Unicode character, so that a
// vocabulary of strings can hold any byte sequence. Bytes that are printable Latin-1 ('!'..'~',
// U+00A1..U+00AC, U+00AE..U+00FF) stand for themselves; the other 68 bytes, in increasing order,
// take U+0100, U+0101, ... (so the space 0x20 is U+0120 'Ġ' and '\n' is U+010A 'Ċ').
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mamba/tokenizer/unicode.hpp"

namespace mamba {

// The code point that stands for byte b.
inline std::uint32_t byte_to_codepoint(std::uint8_t b) {
  static const std::array<std::uint16_t, 256> table = [] {
    std::array<std::uint16_t, 256> t{};
    std::uint16_t next = 0x100;
    for (int v = 0; v < 256; ++v) {
      const bool printable = (v >= 0x21 && v <= 0x7E) || (v >= 0xA1 && v <= 0xAC) || v >= 0xAE;
      t[static_cast<std::size_t>(v)] = printable ? static_cast<std::uint16_t>(v) : next++;
    }
    return t;
  }();
  return table[b];
}

// The byte that code point cp stands for, or nothing when cp is not in the alphabet.
inline std::optional<std::uint8_t> codepoint_to_byte(std::int32_t cp) {
  static const std::array<std::int16_t, 0x144> table = [] {
    std::array<std::int16_t, 0x144> t{};
    t.fill(-1);
    for (int b = 0; b < 256; ++b) {
      t[byte_to_codepoint(static_cast<std::uint8_t>(b))] = static_cast<std::int16_t>(b);
    }
    return t;
  }();
  if (cp < 0 || cp >= static_cast<std::int32_t>(table.size()) || table[cp] < 0) return {};
  return static_cast<std::uint8_t>(table[cp]);
}

// The byte-level string (UTF-8 of the alphabet characters) for raw bytes.
inline std::string bytes_to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) utf8_append(out, byte_to_codepoint(static_cast<std::uint8_t>(c)));
  return out;
}

// The raw bytes a byte-level string stands for, or nothing when one of its characters is not in
// the alphabet (the reference decoder then outputs that token's own UTF-8 text).
inline std::optional<std::string> byte_level_to_bytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const Utf8Char c = utf8_next(text, i);
    const std::optional<std::uint8_t> b = codepoint_to_byte(c.cp);
    if (!b) return {};
    out += static_cast<char>(*b);
    i += c.len;
  }
  return out;
}

}  // namespace mamba
