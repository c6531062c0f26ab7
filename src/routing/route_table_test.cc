#include "routing/route_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

// Counts heap allocations, so a test can check that match() makes none.
namespace {
std::atomic<long> g_allocations{0};
}  // namespace

// GCC pairs the inlined malloc/free below with new/delete at each call site and warns
// (-Wmismatched-new-delete); the pairing is correct, as both sides are replaced together.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace gh::routing {
namespace {

using config::MatchKind;
using config::RouteConfig;

RouteConfig prefix(std::string p) { return RouteConfig{.name = p, .kind = MatchKind::Prefix, .pattern = p}; }
RouteConfig exact(std::string p) { return RouteConfig{.name = p, .kind = MatchKind::Exact, .pattern = p}; }
RouteConfig regex(std::string p) { return RouteConfig{.name = p, .kind = MatchKind::Regex, .pattern = p}; }

RouteConfig with_methods(RouteConfig r, std::vector<std::string> m) {
  r.methods = std::move(m);
  return r;
}
RouteConfig with_host(RouteConfig r, std::string h) {
  r.host = std::move(h);
  return r;
}
RouteConfig with_header(RouteConfig r, std::string name, std::string value, bool is_regex = false) {
  r.headers.push_back({std::move(name), std::move(value), is_regex});
  return r;
}

std::shared_ptr<const RouteTable> build(const std::vector<RouteConfig>& routes) {
  std::string error;
  auto t = RouteTable::build(routes, &error);
  EXPECT_TRUE(t) << error;
  return t;
}

int match(const RouteTable& t, std::string_view path, std::string_view method = "GET",
          std::string_view host = "", const http::Fields* fields = nullptr) {
  return t.match(MatchInput{.method = method, .host = host, .path = path, .fields = fields});
}

TEST(RouteTable, PrefixMatchesWholeSegments) {
  auto t = build({prefix("/api/users")});
  EXPECT_EQ(match(*t, "/api/users"), 0);
  EXPECT_EQ(match(*t, "/api/users/"), 0);
  EXPECT_EQ(match(*t, "/api/users/42"), 0);
  EXPECT_EQ(match(*t, "/api/usersX"), -1);
  EXPECT_EQ(match(*t, "/api"), -1);
  EXPECT_EQ(match(*t, "/"), -1);
}

TEST(RouteTable, RootPrefixMatchesEverything) {
  auto t = build({prefix("/")});
  EXPECT_EQ(match(*t, "/"), 0);
  EXPECT_EQ(match(*t, "/anything/at/all"), 0);
}

TEST(RouteTable, PrefixPatternIsNormalized) {
  auto t = build({prefix("/api//v1/")});
  EXPECT_EQ(match(*t, "/api/v1"), 0);
  EXPECT_EQ(match(*t, "/api/v1/x"), 0);
  EXPECT_EQ(t->prefix(0), "/api/v1");
}

TEST(RouteTable, ExactBeatsPrefix) {
  auto t = build({prefix("/api"), exact("/api/health")});
  EXPECT_EQ(match(*t, "/api/health"), 1);
  EXPECT_EQ(match(*t, "/api/health/x"), 0);
  EXPECT_EQ(match(*t, "/api/healthz"), 0);
}

TEST(RouteTable, ExactIsExact) {
  auto t = build({exact("/a")});
  EXPECT_EQ(match(*t, "/a"), 0);
  EXPECT_EQ(match(*t, "/a/"), -1);
  EXPECT_EQ(match(*t, "/a/b"), -1);
  EXPECT_EQ(match(*t, "/A"), -1);
}

TEST(RouteTable, LongerPrefixBeatsShorter) {
  auto t = build({prefix("/"), prefix("/api"), prefix("/api/users"), prefix("/api/users/admin")});
  EXPECT_EQ(match(*t, "/x"), 0);
  EXPECT_EQ(match(*t, "/api/orders"), 1);
  EXPECT_EQ(match(*t, "/api/users/7"), 2);
  EXPECT_EQ(match(*t, "/api/users/admin/7"), 3);
  // Order in the file does not matter for specificity.
  auto r = build({prefix("/api/users"), prefix("/api")});
  EXPECT_EQ(match(*r, "/api/users/7"), 0);
  EXPECT_EQ(match(*r, "/api/x"), 1);
}

TEST(RouteTable, PrefixBeatsRegex) {
  auto t = build({regex("/api/.*"), prefix("/api")});
  EXPECT_EQ(match(*t, "/api/x"), 1);
  auto r = build({regex("/api/.*"), prefix("/other")});
  EXPECT_EQ(match(*r, "/api/x"), 0);
}

TEST(RouteTable, RegexIsSearchedInFileOrder) {
  auto t = build({regex("^/items/[0-9]+$"), regex("^/items/"), regex("/tail$")});
  EXPECT_EQ(match(*t, "/items/42"), 0);
  EXPECT_EQ(match(*t, "/items/42/x"), 1);   // the first is anchored at both ends; the second is not
  EXPECT_EQ(match(*t, "/items/abc"), 1);
  EXPECT_EQ(match(*t, "/items"), -1);
  EXPECT_EQ(match(*t, "/x/items/42"), -1);  // ^ anchors at the start of the path
  EXPECT_EQ(match(*t, "/any/deep/tail"), 2);
  EXPECT_EQ(match(*t, "/tail/no"), -1);
  auto u = build({regex("orders")});
  EXPECT_EQ(match(*u, "/v2/orders/abc"), 0);  // unanchored: found anywhere
  EXPECT_EQ(match(*u, "/v2/order"), -1);
}

TEST(RouteTable, RegexSearchWithSetAndRanges) {
  // Enough regexes for the RE2::Set pre-pass; the anchored ones get a range, the others none.
  std::vector<RouteConfig> routes;
  for (int i = 0; i < 12; ++i) routes.push_back(regex("^/r" + std::to_string(i) + "/"));
  routes.push_back(regex("/deep/[a-z]+$"));
  auto t = build(routes);
  EXPECT_EQ(match(*t, "/r3/anything/here"), 3);
  EXPECT_EQ(match(*t, "/r11/"), 11);
  EXPECT_EQ(match(*t, "/x/r3/"), -1);
  EXPECT_EQ(match(*t, "/a/b/deep/xyz"), 12);
  EXPECT_EQ(match(*t, "/a/b/deep/xyz/1"), -1);
}

TEST(RouteTable, RegexMatchRangeDoesNotHideMatches) {
  // Patterns whose possible-match range is wide, empty or case-folded must still match.
  auto t = build({regex("(?i)/CASE/[a-z]+"), regex("/(a|b)x"), regex(".*/tail"), regex("/\\d{2}"),
                  regex("/caf\xc3\xa9/.*"), regex("/" + std::string(100, 'z') + ".*")});
  EXPECT_EQ(match(*t, "/case/abc"), 0);
  EXPECT_EQ(match(*t, "/CaSe/abc"), 0);
  EXPECT_EQ(match(*t, "/bx"), 1);
  EXPECT_EQ(match(*t, "/any/deep/tail"), 2);
  EXPECT_EQ(match(*t, "/42"), 3);
  EXPECT_EQ(match(*t, "/caf\xc3\xa9/x"), 4);
  EXPECT_EQ(match(*t, "/" + std::string(100, 'z') + "more"), 5);
  EXPECT_EQ(match(*t, "/" + std::string(99, 'z')), -1);
}

TEST(RouteTable, RegexSetPrefilterKeepsFileOrder) {
  std::vector<RouteConfig> routes;
  for (int i = 0; i < 10; ++i) routes.push_back(regex("/r" + std::to_string(i) + "/[a-z]+"));
  routes.push_back(regex("/r3/.*"));
  routes.push_back(with_methods(regex("/r5/.*"), {"POST"}));
  auto t = build(routes);
  ASSERT_GE(routes.size(), kRegexSetMin);
  EXPECT_EQ(match(*t, "/r3/abc"), 3);
  EXPECT_EQ(match(*t, "/r3/123"), 10);
  EXPECT_EQ(match(*t, "/r9/z"), 9);
  EXPECT_EQ(match(*t, "/r5/1", "POST"), 11);
  EXPECT_EQ(match(*t, "/r5/1", "GET"), -1);
  EXPECT_EQ(match(*t, "/nope"), -1);
}

TEST(RouteTable, TiesGoToEarlierRoute) {
  auto t = build({prefix("/api"), prefix("/api/"), exact("/x"), exact("/x"), regex("/y.*"), regex("/y")});
  EXPECT_EQ(match(*t, "/api/a"), 0);
  EXPECT_EQ(match(*t, "/x"), 2);
  EXPECT_EQ(match(*t, "/y"), 4);
}

TEST(RouteTable, Methods) {
  auto t = build({with_methods(prefix("/a"), {"POST", "PUT"}), prefix("/a")});
  EXPECT_EQ(match(*t, "/a", "POST"), 0);
  EXPECT_EQ(match(*t, "/a", "PUT"), 0);
  EXPECT_EQ(match(*t, "/a", "GET"), 1);
  EXPECT_EQ(match(*t, "/a", "post"), 1);  // methods are case-sensitive
  auto only = build({with_methods(exact("/a"), {"POST"})});
  EXPECT_EQ(match(*only, "/a", "GET"), -1);
}

TEST(RouteTable, HeadAllowedByGet) {
  auto t = build({with_methods(prefix("/a"), {"GET"}), with_methods(prefix("/b"), {"POST"}),
                  with_methods(prefix("/c"), {"HEAD"})});
  EXPECT_EQ(match(*t, "/a", "HEAD"), 0);
  EXPECT_EQ(match(*t, "/b", "HEAD"), -1);
  EXPECT_EQ(match(*t, "/c", "HEAD"), 2);
  EXPECT_EQ(match(*t, "/c", "GET"), -1);  // HEAD does not allow GET
}

TEST(RouteTable, HostExact) {
  auto t = build({with_host(prefix("/"), "API.example.com"), prefix("/")});
  EXPECT_EQ(match(*t, "/", "GET", "api.example.com"), 0);
  EXPECT_EQ(match(*t, "/", "GET", "Api.Example.COM"), 0);
  EXPECT_EQ(match(*t, "/", "GET", "api.example.com:8443"), 0);  // port ignored
  EXPECT_EQ(match(*t, "/", "GET", "api.example.com."), 0);      // trailing dot ignored
  EXPECT_EQ(match(*t, "/", "GET", "www.example.com"), 1);
  EXPECT_EQ(match(*t, "/", "GET", "api.example.com.evil"), 1);
  EXPECT_EQ(match(*t, "/", "GET", ""), 1);  // no Host: only host-less routes
}

TEST(RouteTable, HostIpv6Literal) {
  auto t = build({with_host(prefix("/"), "[::1]")});
  EXPECT_EQ(match(*t, "/", "GET", "[::1]:8080"), 0);
  EXPECT_EQ(match(*t, "/", "GET", "[::1]"), 0);
  EXPECT_EQ(match(*t, "/", "GET", "[::2]"), -1);
}

TEST(RouteTable, HostWildcardMatchesOneOrMoreLabels) {
  auto t = build({with_host(prefix("/"), "*.example.com")});
  EXPECT_EQ(match(*t, "/", "GET", "a.example.com"), 0);
  EXPECT_EQ(match(*t, "/", "GET", "A.B.Example.com:80"), 0);
  EXPECT_EQ(match(*t, "/", "GET", "example.com"), -1);
  EXPECT_EQ(match(*t, "/", "GET", ".example.com"), -1);
  EXPECT_EQ(match(*t, "/", "GET", "badexample.com"), -1);
  EXPECT_EQ(match(*t, "/", "GET", "a.example.org"), -1);
}

TEST(RouteTable, HeadersExactAndRegex) {
  auto t = build({with_header(prefix("/a"), "X-Canary", "true"),
                  with_header(prefix("/a"), "X-Version", "v[0-9]+", true), prefix("/a")});
  http::Fields f;
  EXPECT_EQ(match(*t, "/a", "GET", "", &f), 2);
  EXPECT_EQ(match(*t, "/a", "GET", "", nullptr), 2);

  http::Fields canary;
  canary.add("x-canary", "true");  // names are case-insensitive
  EXPECT_EQ(match(*t, "/a", "GET", "", &canary), 0);

  http::Fields wrong;
  wrong.add("X-Canary", "TRUE");  // values are exact
  EXPECT_EQ(match(*t, "/a", "GET", "", &wrong), 2);

  http::Fields version;
  version.add("X-Version", "v12");
  EXPECT_EQ(match(*t, "/a", "GET", "", &version), 1);

  http::Fields partial;
  partial.add("X-Version", "v12-beta");  // regex must match the whole value
  EXPECT_EQ(match(*t, "/a", "GET", "", &partial), 2);

  http::Fields first;
  first.add("X-Canary", "false");
  first.add("X-Canary", "true");  // only the first occurrence counts
  EXPECT_EQ(match(*t, "/a", "GET", "", &first), 2);
}

TEST(RouteTable, EmptyHeaderValueNeedsThePresentHeader) {
  auto t = build({with_header(exact("/a"), "X-Empty", "")});
  http::Fields none;
  EXPECT_EQ(match(*t, "/a", "GET", "", &none), -1);
  http::Fields empty;
  empty.add("X-Empty", "");
  EXPECT_EQ(match(*t, "/a", "GET", "", &empty), 0);
}

TEST(RouteTable, FallsThroughToNextCandidate) {
  // Exact fails its method -> deepest prefix fails its host -> shorter prefix fails its header
  // -> root prefix fails its method -> the regex.
  auto t = build({with_methods(exact("/api/users/7"), {"POST"}),
                  with_host(prefix("/api/users"), "admin.example.com"),
                  with_header(prefix("/api"), "X-Internal", "1"),
                  with_methods(prefix("/"), {"DELETE"}),
                  regex("/api/users/[0-9]+")});
  EXPECT_EQ(match(*t, "/api/users/7", "GET", "www.example.com"), 4);
  EXPECT_EQ(match(*t, "/api/users/7", "POST"), 0);
  EXPECT_EQ(match(*t, "/api/users/7", "GET", "admin.example.com"), 1);
  http::Fields internal;
  internal.add("X-Internal", "1");
  EXPECT_EQ(match(*t, "/api/users/7", "GET", "", &internal), 2);
  EXPECT_EQ(match(*t, "/api/users/x", "GET"), -1);
  EXPECT_EQ(match(*t, "/api/users/x", "DELETE"), 3);
}

TEST(RouteTable, NoMatch) {
  auto t = build({exact("/a"), prefix("/b"), regex("/c[0-9]")});
  EXPECT_EQ(match(*t, "/"), -1);
  EXPECT_EQ(match(*t, "/d"), -1);
  EXPECT_EQ(match(*t, "/c"), -1);
  auto empty = build({});
  EXPECT_EQ(empty->size(), 0u);
  EXPECT_EQ(match(*empty, "/"), -1);
}

TEST(RouteTable, SizeAndPrefix) {
  auto t = build({prefix("/"), exact("/a"), prefix("/b/c/")});
  EXPECT_EQ(t->size(), 3u);
  EXPECT_EQ(t->prefix(0), "/");
  EXPECT_EQ(t->prefix(1), "");
  EXPECT_EQ(t->prefix(2), "/b/c");
}

TEST(RouteTable, BuildReportsBadRegex) {
  std::string error;
  EXPECT_FALSE(RouteTable::build({prefix("/"), regex("/a(")}, &error));
  EXPECT_NE(error.find("routes[1]"), std::string::npos) << error;
  EXPECT_FALSE(RouteTable::build({with_header(prefix("/"), "X", "[", true)}, &error));
  EXPECT_NE(error.find("routes[0]"), std::string::npos) << error;
  EXPECT_FALSE(RouteTable::build({prefix("/a/../..")}, &error));
  EXPECT_FALSE(RouteTable::build({regex("(")}, nullptr));  // error is optional
}

TEST(RouteTable, MatchAllocatesNothing) {
  std::vector<RouteConfig> routes;
  for (int i = 0; i < 100; ++i) {
    routes.push_back(prefix("/svc" + std::to_string(i) + "/v1"));
    routes.push_back(exact("/svc" + std::to_string(i) + "/health"));
    routes.push_back(with_header(regex("/re" + std::to_string(i) + "/[0-9]+"), "X-V", "v[0-9]", true));
  }
  routes.push_back(with_host(prefix("/other"), "*.example.com"));
  const long at_build = g_allocations.load();
  auto t = build(routes);
  EXPECT_GT(g_allocations.load(), at_build);  // the counter works
  http::Fields f;
  f.add("X-V", "v2");
  const std::vector<std::pair<std::string, int>> cases = {
      {"/svc42/v1/items/7", 126}, {"/svc7/health", 22},   {"/re99/123", 299},
      {"/other/x", 300},          {"/re5/x", -1},       {"/nothing/at/all", -1}};
  for (const auto& [path, want] : cases) EXPECT_EQ(match(*t, path, "GET", "a.example.com:80", &f), want) << path;
  // Warmed up (RE2 fills its DFA cache on first use); now count.
  const long before = g_allocations.load();
  int sum = 0;
  for (int round = 0; round < 10; ++round)
    for (const auto& [path, want] : cases) sum += match(*t, path, "GET", "a.example.com:80", &f);
  EXPECT_EQ(g_allocations.load() - before, 0);
  EXPECT_EQ(sum, 10 * (126 + 22 + 299 + 300 - 2));
}

TEST(StripPrefix, Examples) {
  EXPECT_EQ(strip_prefix("/api/users/42", "/api/users"), "/42");
  EXPECT_EQ(strip_prefix("/api/users", "/api/users"), "/");
  EXPECT_EQ(strip_prefix("/api/users/", "/api/users"), "/");
  EXPECT_EQ(strip_prefix("/api/users/42/x/", "/api/users/"), "/42/x/");
  EXPECT_EQ(strip_prefix("/api/users/42", "/"), "/api/users/42");
  EXPECT_EQ(strip_prefix("/api/usersX", "/api/users"), "/api/usersX");
  EXPECT_EQ(strip_prefix("/other", "/api"), "/other");
}

}  // namespace
}  // namespace gh::routing
