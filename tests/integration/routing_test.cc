// Routing: which route, and so which service, a request reaches (SPEC §2 routes, §3 404).
#include <gtest/gtest.h>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

// Three services, each one instance that answers with its own name.
class Routing : public ::testing::Test {
 protected:
  Upstream a_{"svc-a"}, b_{"svc-b"}, c_{"svc-c"};

  std::string services() const {
    return fill(R"(
services:
  a: {instances: ["{A}"]}
  b: {instances: ["{B}"]}
  c: {instances: ["{C}"]}
)",
                {{"A", a_.url()}, {"B", b_.url()}, {"C", c_.url()}});
  }

  // The body of the answer: which service the request reached, or "404", "400", ...
  static std::string reached(const Response& r) {
    if (r.status == 200) return r.body;
    return std::to_string(r.status);
  }
};

TEST_F(Routing, PrefixMatchesWholeSegmentsOnly) {
  Gateway gw(services() + R"(
routes:
  - path: /api/users
    service: a
)");
  GH_START(gw);
  EXPECT_EQ(reached(http_get(gw.port(), "/api/users")), "svc-a");
  EXPECT_EQ(reached(http_get(gw.port(), "/api/users/42")), "svc-a");
  EXPECT_EQ(reached(http_get(gw.port(), "/api/users?x=1")), "svc-a");
  EXPECT_EQ(reached(http_get(gw.port(), "/api/usersX")), "404");
  EXPECT_EQ(reached(http_get(gw.port(), "/api")), "404");
  EXPECT_EQ(reached(http_get(gw.port(), "/")), "404");
}

TEST_F(Routing, NoRouteIs404Json) {
  Gateway gw(services() + R"(
routes:
  - path: /api
    service: a
)");
  GH_START(gw);
  auto r = http_get(gw.port(), "/nothing/here");
  EXPECT_TRUE(IsJsonError(r, 404, "No route"));
  EXPECT_EQ(a_.request_count(), 0u);
}

TEST_F(Routing, ExactBeatsPrefixWhateverTheOrder) {
  Gateway gw(services() + R"(
routes:
  - path: /api/users
    service: a
  - exact: /api/users/me
    service: b
)");
  GH_START(gw);
  EXPECT_EQ(reached(http_get(gw.port(), "/api/users/me")), "svc-b");
  EXPECT_EQ(reached(http_get(gw.port(), "/api/users/me/x")), "svc-a");
  EXPECT_EQ(reached(http_get(gw.port(), "/api/users/mee")), "svc-a");
  EXPECT_EQ(reached(http_get(gw.port(), "/api/users")), "svc-a");
}

TEST_F(Routing, LongestPrefixWinsWhateverTheOrder) {
  Gateway gw(services() + R"(
routes:
  - path: /api
    service: a
  - path: /api/users
    service: b
  - path: /api/users/admin
    service: c
)");
  GH_START(gw);
  EXPECT_EQ(reached(http_get(gw.port(), "/api/users/1")), "svc-b");
  EXPECT_EQ(reached(http_get(gw.port(), "/api/users")), "svc-b");
  EXPECT_EQ(reached(http_get(gw.port(), "/api/users/admin/1")), "svc-c");
  EXPECT_EQ(reached(http_get(gw.port(), "/api/other")), "svc-a");
  EXPECT_EQ(reached(http_get(gw.port(), "/api/usersadmin")), "svc-a");
}

TEST_F(Routing, EqualPrefixesTieToTheEarlierRoute) {
  Gateway gw(services() + R"(
routes:
  - name: first
    path: /same
    service: b
  - name: second
    path: /same
    service: a
)");
  GH_START(gw);
  EXPECT_EQ(reached(http_get(gw.port(), "/same/x")), "svc-b");
}

TEST_F(Routing, RegexInFileOrderAfterPrefixes) {
  Gateway gw(services() + R"(
routes:
  - regex: "^/files/special$"
    service: c
  - regex: "^/items/[0-9]+$"
    service: b
  - regex: "^/items/.*"
    service: c
  - path: /files
    service: a
)");
  GH_START(gw);
  EXPECT_EQ(reached(http_get(gw.port(), "/items/42")), "svc-b");
  EXPECT_EQ(reached(http_get(gw.port(), "/items/abc")), "svc-c");
  EXPECT_EQ(reached(http_get(gw.port(), "/files/x")), "svc-a");
  // A prefix match is more specific than a regex one.
  EXPECT_EQ(reached(http_get(gw.port(), "/files/special")), "svc-a");
  EXPECT_EQ(reached(http_get(gw.port(), "/itemsX")), "404");
}

TEST_F(Routing, RegexIsSearchedInThePath) {
  // SPEC §2: searched in the normalized path without the query; anchor with ^ and $ as needed.
  Gateway gw(services() + R"(
routes:
  - regex: "^/v2/orders/"
    service: a
  - regex: "/reports$"
    service: b
)");
  GH_START(gw);
  EXPECT_EQ(reached(http_get(gw.port(), "/v2/orders/abc")), "svc-a");
  EXPECT_EQ(reached(http_get(gw.port(), "/v2/orders/abc?x=1")), "svc-a");
  EXPECT_EQ(reached(http_get(gw.port(), "/v2//orders/./abc")), "svc-a");  // normalized first
  EXPECT_EQ(reached(http_get(gw.port(), "/v1/v2/orders/abc")), "404");
  EXPECT_EQ(reached(http_get(gw.port(), "/team/7/reports")), "svc-b");
  EXPECT_EQ(reached(http_get(gw.port(), "/team/7/reports?format=csv")), "svc-b");
  EXPECT_EQ(reached(http_get(gw.port(), "/team/7/reports/x")), "404");
}

TEST_F(Routing, MethodsSelectTheRoute) {
  Gateway gw(services() + R"(
routes:
  - name: m-read
    path: /m
    methods: [GET]
    service: a
  - name: m-write
    path: /m
    methods: [POST, PUT]
    service: b
)");
  GH_START(gw);
  EXPECT_EQ(reached(http_request(gw.port(), "GET", "/m")), "svc-a");
  EXPECT_EQ(reached(http_request(gw.port(), "POST", "/m", {}, "x")), "svc-b");
  EXPECT_EQ(reached(http_request(gw.port(), "PUT", "/m", {}, "x")), "svc-b");
  auto r = http_request(gw.port(), "DELETE", "/m");
  EXPECT_TRUE(IsJsonError(r, 404, "No route"));
}

TEST_F(Routing, HostExactAndWildcard) {
  Gateway gw(services() + R"(
routes:
  - name: h-api
    path: /h
    host: api.example.com
    service: a
  - name: h-wildcard
    path: /h
    host: "*.example.com"
    service: b
  - name: h-any
    path: /h
    service: c
)");
  GH_START(gw);
  auto get_host = [&](std::string host) {
    return reached(roundtrip(gw.port(), make_request("GET", "/h", {}, {}, host)));
  };
  EXPECT_EQ(get_host("api.example.com"), "svc-a");
  EXPECT_EQ(get_host("API.Example.COM"), "svc-a");
  EXPECT_EQ(get_host("api.example.com:8080"), "svc-a");
  EXPECT_EQ(get_host("shop.example.com"), "svc-b");
  EXPECT_EQ(get_host("example.com"), "svc-c");
  EXPECT_EQ(get_host("other.org"), "svc-c");
}

TEST_F(Routing, HeadersExactAndRegex) {
  Gateway gw(services() + R"(
routes:
  - name: hd-blue
    path: /hd
    headers: {X-Tenant: blue}
    service: a
  - name: hd-green
    path: /hd
    headers:
      X-Tenant: {regex: "^gr[a-z]+$"}
    service: b
  - name: hd-any
    path: /hd
    service: c
)");
  GH_START(gw);
  EXPECT_EQ(reached(http_get(gw.port(), "/hd", {{"X-Tenant", "blue"}})), "svc-a");
  EXPECT_EQ(reached(http_get(gw.port(), "/hd", {{"x-tenant", "blue"}})), "svc-a");
  EXPECT_EQ(reached(http_get(gw.port(), "/hd", {{"X-Tenant", "green"}})), "svc-b");
  EXPECT_EQ(reached(http_get(gw.port(), "/hd", {{"X-Tenant", "blue2"}})), "svc-c");
  EXPECT_EQ(reached(http_get(gw.port(), "/hd", {{"X-Tenant", "red"}})), "svc-c");
  EXPECT_EQ(reached(http_get(gw.port(), "/hd")), "svc-c");
}

TEST_F(Routing, StripPrefixRemovesTheMatchedSegments) {
  a_.set_handler([](const Request& r) { return Reply::text(r.target); });
  b_.set_handler([](const Request& r) { return Reply::text(r.target); });
  Gateway gw(services() + R"(
routes:
  - path: /svc
    strip_prefix: true
    service: a
  - path: /keep
    service: b
)");
  GH_START(gw);
  EXPECT_EQ(reached(http_get(gw.port(), "/svc/items/7?q=1&r=2")), "/items/7?q=1&r=2");
  EXPECT_EQ(reached(http_get(gw.port(), "/svc")), "/");
  EXPECT_EQ(reached(http_get(gw.port(), "/svc?q=1")), "/?q=1");
  EXPECT_EQ(reached(http_get(gw.port(), "/keep/items?q=1")), "/keep/items?q=1");
}

TEST_F(Routing, PathsAreMatchedAfterNormalization) {
  Gateway gw(services() + R"(
routes:
  - path: /api/users
    service: a
  - path: /admin
    service: b
)");
  GH_START(gw);
  EXPECT_EQ(reached(http_get(gw.port(), "/api//users/42")), "svc-a");
  EXPECT_EQ(reached(http_get(gw.port(), "/api/./users/42")), "svc-a");
  EXPECT_EQ(reached(http_get(gw.port(), "/api/x/../users/42")), "svc-a");
  EXPECT_EQ(reached(http_get(gw.port(), "/%61pi/users")), "svc-a");  // %61 = 'a', unreserved
  // Dot segments cannot smuggle a request past its route into another.
  EXPECT_EQ(reached(http_get(gw.port(), "/api/users/../../admin")), "svc-b");
}

TEST_F(Routing, UnsafePathsAre400AndNeverForwarded) {
  Gateway gw(services() + R"(
routes:
  - path: /
    service: a
)");
  GH_START(gw);
  for (const char* path : {"/%2e%2e/x", "/%2E%2E/%2E%2E/etc/passwd", "/a/%2F/b", "/a%2fb", "/a/%00", "/a%00b",
                           "/a%5cb", "/..", "/a/../../b", "/a/%zz", "/a/%4", "/a/%"}) {
    SCOPED_TRACE(path);
    auto r = http_get(gw.port(), path);
    EXPECT_TRUE(IsJsonError(r, 400, "Bad request"));
  }
  EXPECT_TRUE(ReachedNothing(a_));
}

}  // namespace
}  // namespace gh::integ
