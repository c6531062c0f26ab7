#include "core/json.h"

#include <gtest/gtest.h>

namespace {

std::string json(std::string_view s) {
  std::string out;
  gh::append_json_string(out, s);
  return out;
}

TEST(JsonString, ValidUtf8PassesThrough) {
  EXPECT_EQ(json("/api/caf\xc3\xa9"), "\"/api/caf\xc3\xa9\"");                       // é, 2 bytes
  EXPECT_EQ(json("\xe2\x82\xac 5"), "\"\xe2\x82\xac 5\"");                          // €, 3 bytes
  EXPECT_EQ(json("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");                      // U+1F600, 4 bytes
  EXPECT_EQ(json("\xef\xbf\xbf\xf4\x8f\xbf\xbf"), "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"");  // U+FFFF, U+10FFFF
}

TEST(JsonString, InvalidBytesBecomeReplacementCharacters) {
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(json("a\xe9z"), "\"a" + fffd + "z\"");                 // Latin-1 é alone
  EXPECT_EQ(json("\x80"), "\"" + fffd + "\"");                     // stray continuation byte
  EXPECT_EQ(json("\xc0\xaf"), "\"" + fffd + fffd + "\"");          // overlong '/'
  EXPECT_EQ(json("\xe0\x80\xaf"), "\"" + fffd + fffd + fffd + "\"");  // overlong, 3 bytes
  EXPECT_EQ(json("\xed\xa0\x80"), "\"" + fffd + fffd + fffd + "\"");  // a UTF-16 surrogate
  EXPECT_EQ(json("\xf4\x90\x80\x80"), "\"" + fffd + fffd + fffd + fffd + "\"");  // above U+10FFFF
  EXPECT_EQ(json("\xff"), "\"" + fffd + "\"");
  EXPECT_EQ(json("\xc3"), "\"" + fffd + "\"");                     // truncated at the end
  EXPECT_EQ(json("\xe2\x82z"), "\"" + fffd + fffd + "z\"");        // truncated before ASCII
}

TEST(JsonString, ControlCharactersAndQuotesAreEscaped) {
  EXPECT_EQ(json("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json("\n\r\t"), R"("\n\r\t")");
  EXPECT_EQ(json(std::string_view("\x00\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
}

}  // namespace
