#include "routing/normalize.h"

#include <gtest/gtest.h>

#include <string>

namespace gh::routing {
namespace {

struct Case {
  const char* in;
  const char* out;  // nullptr: rejected
};

class NormalizePath : public testing::TestWithParam<Case> {};

TEST_P(NormalizePath, Table) {
  const Case& c = GetParam();
  std::string out;
  const bool ok = normalize_path(c.in, out);
  if (c.out == nullptr) {
    EXPECT_FALSE(ok) << c.in << " -> " << out;
  } else {
    ASSERT_TRUE(ok) << c.in;
    EXPECT_EQ(out, c.out) << c.in;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Spec, NormalizePath,
    testing::Values(
        // Unchanged.
        Case{"/", "/"}, Case{"/api/users", "/api/users"}, Case{"/api/users/", "/api/users/"},
        // Repeated slashes.
        Case{"//api//users", "/api/users"}, Case{"//", "/"}, Case{"/a///", "/a/"},
        // Dot segments.
        Case{"/api/./admin", "/api/admin"}, Case{"/api/x/../admin", "/api/admin"}, Case{"/a/.", "/a/"},
        Case{"/a/b/..", "/a/"}, Case{"/a/..", "/"}, Case{"/.", "/"}, Case{"/a/b/../../c", "/c"},
        Case{"/a/.../b", "/a/.../b"}, Case{"/a/..b/.c", "/a/..b/.c"},
        // Decoding unreserved characters.
        Case{"/api/%61dmin", "/api/admin"}, Case{"/%7E", "/~"}, Case{"/%7e%2D%5F%2E%30", "/~-_.0"},
        // Dot segments reached through decoding.
        Case{"/a/%2e%2e/b", "/b"}, Case{"/a/%2E/b", "/a/b"}, Case{"/a/.%2e/b", "/b"},
        // Other escapes kept, hex upper-cased.
        Case{"/%3A", "/%3A"}, Case{"/%3a", "/%3A"}, Case{"/a%20b", "/a%20b"}, Case{"/%25", "/%25"},
        Case{"/%ff", "/%FF"}, Case{"/caf\xc3\xa9", "/caf\xc3\xa9"},
        // Rejected.
        Case{"/%2e%2e/x", nullptr}, Case{"/..", nullptr}, Case{"/a/../..", nullptr},
        Case{"/../a", nullptr}, Case{"/a/%2F/b", nullptr}, Case{"/a%2fb", nullptr},
        Case{"/a%5cb", nullptr}, Case{"/a%5Cb", nullptr}, Case{"/a%00", nullptr}, Case{"/%zz", nullptr},
        Case{"/%4", nullptr}, Case{"/%", nullptr}, Case{"/%4/x", nullptr}, Case{"/%g1", nullptr},
        Case{"/a\\b", nullptr}, Case{"/a\tb", nullptr}, Case{"/a\x7f", nullptr}, Case{"/a\rb", nullptr},
        Case{"", nullptr}, Case{"api", nullptr}, Case{"*", nullptr}));

TEST(NormalizePathNul, RawNulRejected) {
  std::string out;
  EXPECT_FALSE(normalize_path(std::string_view("/a\0b", 4), out));
}

TEST(NormalizePathReuse, ClearsOutput) {
  std::string out = "stale";
  ASSERT_TRUE(normalize_path("/x", out));
  EXPECT_EQ(out, "/x");
}

}  // namespace
}  // namespace gh::routing
