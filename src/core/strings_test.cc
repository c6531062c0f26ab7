#include "core/strings.h"

#include <gtest/gtest.h>

#include <random>

using namespace std::chrono_literals;

TEST(Strings, AppendsHexLikeAZeroPaddedFormat) {
  std::string out = "x";
  gh::append_hex(out, 0);
  EXPECT_EQ(out, "x0");
  out.clear();
  gh::append_hex(out, 0xbeef, 6);
  EXPECT_EQ(out, "00beef");
  out.clear();
  gh::append_hex(out, 0x123456789abcdef0ull, 4);  // wider than asked: every digit
  EXPECT_EQ(out, "123456789abcdef0");
  out.clear();
  gh::append_hex(out, ~0ull, 20);  // never more than 16 digits of padding
  EXPECT_EQ(out, "ffffffffffffffff");
}

TEST(Strings, ParsesDurations) {
  EXPECT_EQ(gh::parse_duration("250ms"), 250ms);
  EXPECT_EQ(gh::parse_duration("30s"), 30s);
  EXPECT_EQ(gh::parse_duration("15m"), 15min);
  EXPECT_EQ(gh::parse_duration("1h"), 1h);
  EXPECT_EQ(gh::parse_duration("2"), 2s);
  EXPECT_FALSE(gh::parse_duration("abc"));
  EXPECT_FALSE(gh::parse_duration("10 parsecs"));
  EXPECT_FALSE(gh::parse_duration("-1s"));
}

TEST(Strings, ParsesSizes) {
  EXPECT_EQ(gh::parse_size("8KiB"), 8192u);
  EXPECT_EQ(gh::parse_size("10MiB"), 10u * 1024 * 1024);
  EXPECT_EQ(gh::parse_size("100"), 100u);
  EXPECT_FALSE(gh::parse_size("ten"));
}

TEST(Strings, SuggestsCloseNames) {
  EXPECT_EQ(gh::suggest("usr", {"user", "product", "order"}), "user");
  EXPECT_EQ(gh::suggest("zzzzzz", {"user", "product"}), "");
  EXPECT_TRUE(gh::iequals("Content-Length", "content-length"));
}

// iequals against a byte-by-byte reference, at every length up to 40 (the word path starts at
// 8), with bytes that a sloppy case fold confuses: '@' and '`', '[' and '{', '^' and '~',
// non-ASCII bytes that differ by 0x20, NUL and DEL.
TEST(Strings, IequalsMatchesTheByteByByteFold) {
  auto reference = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (gh::ascii_lower(a[i]) != gh::ascii_lower(b[i])) return false;
    return true;
  };
  const std::string alphabet = std::string("@AZ[`az{^~_-09") + '\0' + "\x7f\x80\xa0\xc1\xe1\xda\xfa\xff";
  std::mt19937 rng(20261207);
  std::size_t equal = 0, unequal = 0;
  for (std::size_t len = 0; len <= 40; ++len) {
    for (int round = 0; round < 400; ++round) {
      std::string a(len, ' ');
      for (char& c : a) c = alphabet[rng() % alphabet.size()];
      std::string b = a;
      // Flip the case of some letters, and now and then change one byte to another.
      for (char& c : b)
        if (rng() % 2 && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) c = static_cast<char>(c ^ 0x20);
      if (len > 0 && rng() % 2) b[rng() % len] = alphabet[rng() % alphabet.size()];
      const bool want = reference(a, b);
      (want ? equal : unequal) += 1;
      ASSERT_EQ(gh::iequals(a, b), want) << "len " << len << " round " << round;
      ASSERT_EQ(gh::iequals(b, a), want);
    }
  }
  EXPECT_GT(equal, 1000u);
  EXPECT_GT(unequal, 1000u);
  static_assert(gh::iequals("Content-Length", "content-LENGTH"));
  // lower_copy folds the same bytes, at every length.
  for (std::size_t len = 0; len <= 40; ++len) {
    std::string a(len, ' ');
    for (char& c : a) c = alphabet[rng() % alphabet.size()];
    std::string want = a;
    for (char& c : want) c = gh::ascii_lower(c);
    std::string got(len + 2, '#');
    gh::lower_copy(got.data() + 1, a);
    EXPECT_EQ(got, "#" + want + "#") << len;
  }
  static_assert(!gh::iequals("Content-Length", "content-lengtx"));
}

