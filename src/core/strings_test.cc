#include "core/strings.h"

#include <gtest/gtest.h>

using namespace std::chrono_literals;

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
