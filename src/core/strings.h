// Small string helpers shared by every module: ASCII case folding, trimming, duration and size parsing.
// Thread: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace gh {

constexpr char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }
// iequals for two strings of one size, at least 8 bytes: eight bytes at a time.
bool iequals_words(const char* a, const char* b, std::size_t n) noexcept;

// ASCII case-insensitive equality. Inline: most calls compare field names of different
// lengths, which the size check settles without a call.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.size() >= 8 && !std::is_constant_evaluated()) return iequals_words(a.data(), b.data(), a.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}
std::string to_lower(std::string_view s);
// Writes `s` lowered (ASCII letters only) to dst[0, s.size()), eight bytes at a time.
void lower_copy(char* dst, std::string_view s) noexcept;
std::string_view trim_ows(std::string_view s) noexcept;  // spaces and tabs
// An RFC 9110 token (a field name, a method): one or more tchar.
bool is_token(std::string_view s) noexcept;

// "250ms", "30s", "15m", "1h", "1d"; a bare number is seconds. nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s);
// "10MiB", "8KiB", "512", "1KB"... nullopt when malformed.
std::optional<std::uint64_t> parse_size(std::string_view s);

// Appends `value` in lowercase hexadecimal, zero-padded to at least `min_digits` digits (at
// most 16 are ever needed), as fmt's "{:0Nx}" would, without parsing a format.
void append_hex(std::string& out, std::uint64_t value, int min_digits = 1);

// Levenshtein distance, for did-you-mean suggestions.
std::size_t edit_distance(std::string_view a, std::string_view b);
// The closest candidate within a small distance, or empty.
std::string suggest(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace gh
