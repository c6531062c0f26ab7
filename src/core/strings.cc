#include "core/strings.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace gh {

namespace {

constexpr std::uint64_t kOnes = 0x0101010101010101ULL;

// The eight bytes of `x` with 'A'..'Z' lowered; every other byte, non-ASCII ones included,
// as it was. Each byte's sums stay below 0x100, so no carry crosses into the next.
std::uint64_t lower_word(std::uint64_t x) noexcept {
  const std::uint64_t low7 = x & (0x7f * kOnes);
  const std::uint64_t at_least_a = low7 + (0x80 - 'A') * kOnes;  // bit 7: low7 >= 'A'
  const std::uint64_t above_z = low7 + (0x7f - 'Z') * kOnes;     // bit 7: low7 > 'Z'
  const std::uint64_t upper = at_least_a & ~above_z & ~x & (0x80 * kOnes);
  return x | (upper >> 2);
}

std::uint64_t load_word(const char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

// Whether two words are equal but for the case of their letters. Most pairs are equal
// outright or differ in more than bit 5 somewhere: folding is left for the rest.
bool iequal_words(std::uint64_t a, std::uint64_t b) noexcept {
  const std::uint64_t d = a ^ b;
  if (d == 0) return true;
  if ((d & ~(0x20 * kOnes)) != 0) return false;
  return lower_word(a) == lower_word(b);
}

void store_word(char* p, std::uint64_t w) noexcept { std::memcpy(p, &w, sizeof w); }

}  // namespace

void lower_copy(char* dst, std::string_view s) noexcept {
  const std::size_t n = s.size();
  if (n < 8) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = ascii_lower(s[i]);
    return;
  }
  for (std::size_t i = 0; i + 8 <= n; i += 8) store_word(dst + i, lower_word(load_word(s.data() + i)));
  // The last partial word: the final eight bytes again, lowered the same.
  store_word(dst + n - 8, lower_word(load_word(s.data() + n - 8)));
}

bool iequals_words(const char* a, const char* b, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    if (!iequal_words(load_word(a + i), load_word(b + i))) return false;
  // The last partial word: the final eight bytes, overlapping ones already compared.
  return i == n || iequal_words(load_word(a + n - 8), load_word(b + n - 8));
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    bool tchar = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!tchar) return false;
  }
  return true;
}

namespace {
std::optional<std::pair<double, std::string_view>> split_number(std::string_view s) {
  s = trim_ows(s);
  std::size_t i = 0;
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + i, v);
  if (ec != std::errc{} || p != s.data() + i || v < 0) return std::nullopt;
  return std::make_pair(v, trim_ows(s.substr(i)));
}
}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  auto nu = split_number(s);
  if (!nu) return std::nullopt;
  auto [v, unit] = *nu;
  double ms;
  if (unit.empty() || unit == "s") ms = v * 1000;
  else if (unit == "ms") ms = v;
  else if (unit == "m") ms = v * 60'000;
  else if (unit == "h") ms = v * 3'600'000;
  else if (unit == "d") ms = v * 86'400'000;
  else return std::nullopt;
  if (ms > 1e15) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

std::optional<std::uint64_t> parse_size(std::string_view s) {
  auto nu = split_number(s);
  if (!nu) return std::nullopt;
  auto [v, unit] = *nu;
  double mul;
  std::string u = to_lower(unit);
  if (u.empty() || u == "b") mul = 1;
  else if (u == "kib" || u == "k" || u == "kb") mul = 1024;
  else if (u == "mib" || u == "m" || u == "mb") mul = 1024.0 * 1024;
  else if (u == "gib" || u == "g" || u == "gb") mul = 1024.0 * 1024 * 1024;
  else return std::nullopt;
  double bytes = v * mul;
  if (bytes > 1e18) return std::nullopt;
  return static_cast<std::uint64_t>(bytes);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t sub = prev[j - 1] + (ascii_lower(a[i - 1]) == ascii_lower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string suggest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

void append_hex(std::string& out, std::uint64_t value, int min_digits) {
  char digits[16];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[value & 0xf];
    value >>= 4;
  } while (value != 0);
  for (int pad = std::min(min_digits, 16) - n; pad > 0; --pad) out.push_back('0');
  while (n > 0) out.push_back(digits[--n]);
}

}  // namespace gh
