#include "core/strings.h"

#include <gtest/gtest.h>

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
