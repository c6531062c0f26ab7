// HTTP/2 to clients (SPEC §7 "HTTP/2 to clients"), end to end: the HTTP/1.1 suite's routing,
// forwarded headers, auth, rate limits, bodies, errors and access-log lines re-run over h2c (prior
// knowledge on a plain listener with `h2c: true`) and over TLS with ALPN h2, against services that
// still receive HTTP/1.1; the h2c listener keeps serving HTTP/1.1 and never honours
// `Upgrade: h2c`; `limits.http2`: the advertised windows and stream limit, REFUSED_STREAM beyond
// it, the idle timeout; and SIGTERM's GOAWAY with the streams in progress finished.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <tuple>

#include "harness/assertions.h"
#include "harness/h2.h"
#include "harness/tls.h"

#ifndef GH_FIXTURES_DIR
#error "GH_FIXTURES_DIR must point at tests/fixtures"
#endif

namespace gh::integ {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSecret = "h2-integration-secret";

enum class Mode { H2c, Tls };

void PrintTo(Mode m, std::ostream* os) { *os << (m == Mode::H2c ? "h2c" : "TLS with ALPN h2"); }

std::string mode_name(const ::testing::TestParamInfo<Mode>& info) {
  return info.param == Mode::H2c ? "h2c" : "tls";
}

std::optional<std::string> capture(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return std::nullopt;
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  if (::pclose(p) != 0) return std::nullopt;
  return out;
}

std::vector<Json> log_lines(const std::string& text) {
  std::vector<Json> out;
  std::istringstream s(text);
  for (std::string line; std::getline(s, line);) {
    if (auto j = Json::parse(line)) out.push_back(*j);
  }
  return out;
}

const Json* line_with(const std::vector<Json>& lines, std::string_view key, std::string_view value) {
  for (const Json& j : lines) {
    if (j.get(key) && j.get(key)->is_string(value)) return &j;
  }
  return nullptr;
}

// Every test: a private CA and a certificate for api.test and 127.0.0.1, two services, and a gateway
// whose one listener is h2c or TLS as the parameter says.
class Http2 : public ::testing::TestWithParam<Mode> {
 protected:
  static void SetUpTestSuite() {
    const fs::path dir = fs::path(GH_FIXTURES_DIR) / "jose";
    if (!fs::exists(dir / "node_modules" / "jose" / "package.json")) {
      jose_error_ = (dir / "node_modules").string() + " is missing: run scripts/deps.sh (it runs npm ci there)";
      return;
    }
    const std::string cmd = "timeout 30 node '" + (dir / "seed_tokens.mjs").string() + "' '" + kSecret + "'";
    auto out = capture(cmd);
    auto json = out ? Json::parse(*out) : std::nullopt;
    for (const char* name : {"admin", "user"}) {
      const Json* t = json ? json->get(name) : nullptr;
      if (t == nullptr || t->type != Json::Type::String) {
        jose_error_ = "`" + cmd + "` did not print the tokens";
        return;
      }
      tokens_[name] = t->string;
    }
  }

  bool tls() const { return GetParam() == Mode::Tls; }
  std::string authority() const { return tls() ? "api.test" : "gw.test"; }
  std::string proto() const { return tls() ? "https" : "http"; }

  // The listener's YAML for the mode.
  std::string listen_yaml() const {
    if (tls()) return fill("  - address: \"127.0.0.1:{PORT}\"\n    tls: {cert: \"{C}\", key: \"{K}\"}\n", {{"C", cert.cert}, {"K", cert.key}});
    return "  - address: \"127.0.0.1:{PORT}\"\n    h2c: true\n";
  }

  // Starts a gateway with BODY (services, policies, routes) and TOP (limits, ...).
  void start(const std::string& body, const std::string& top = "", bool access_log = false) {
    Gateway::Options o;
    o.add_header = false;
    const std::string log = access_log ? "\"" + dir.path() + "/access.log\"" : "off";
    gw = std::make_unique<Gateway>("listen:\n" + listen_yaml() + "workers: 2\naccess_log: " + log + "\n" + top + "\n" + body, o);
    GH_START(*gw);
  }

  // One service `a` on up_a at /, and TOP.
  void start_simple(const std::string& route_extra = "", const std::string& top = "", const std::string& service_extra = "") {
    start(fill(R"(services:
  a:
    instances: ["{A}"]
{SX}
routes:
  - path: /
    service: a
{RX}
)",
               {{"A", up_a.url()}, {"RX", route_extra}, {"SX", service_extra}}),
          top);
  }

  H2Options options() const {
    H2Options o;
    o.authority = authority();
    if (tls()) {
      TlsOptions t;
      t.ca_file = pki.ca_file();
      t.verify_name = "api.test";
      t.sni = "api.test";
      o.tls = t;
    }
    return o;
  }

  std::unique_ptr<H2Client> client() {
    auto c = std::make_unique<H2Client>(gw->port(), options());
    EXPECT_TRUE(c->ok()) << c->error() << "\n" << gw->diagnostics();
    if (tls()) { EXPECT_EQ(c->alpn(), "h2"); }
    return c;
  }

  std::optional<TlsOptions> raw_tls() const { return options().tls; }

  TempDir dir;
  Pki pki{dir.path()};
  CertFiles cert = pki.issue("api", [] {
    CertSpec s;
    s.cn = "api.test";
    s.dns = {"api.test"};
    s.ips = {"127.0.0.1"};
    return s;
  }());
  Upstream up_a{"svc-a"}, up_b{"svc-b"};
  std::unique_ptr<Gateway> gw;

  static inline std::map<std::string, std::string> tokens_;
  static inline std::string jose_error_;
};

INSTANTIATE_TEST_SUITE_P(Http2Parity, Http2, ::testing::Values(Mode::H2c, Mode::Tls), mode_name);

TEST_P(Http2, RoutesLikeHttp1) {
  start(fill(R"(services:
  a: {instances: ["{A}"]}
  b: {instances: ["{B}"]}
routes:
  - path: /api/users
    service: a
  - exact: /api/users/me
    service: b
  - path: /svc
    strip_prefix: true
    service: b
)",
             {{"A", up_a.url()}, {"B", up_b.url()}}));
  auto c = client();
  auto reached = [&](std::string_view path) {
    auto r = c->get(path);
    EXPECT_EQ(r.status, 200) << path << ": " << r.describe();
    return r.body;
  };
  EXPECT_EQ(reached("/api/users"), "svc-a");
  EXPECT_EQ(reached("/api/users/me"), "svc-b");
  EXPECT_EQ(reached("/api/users/me/x"), "svc-a");
  EXPECT_EQ(reached("/api/users/mee"), "svc-a");
  up_b.clear();
  EXPECT_EQ(reached("/svc/items/7?q=1&r=2"), "svc-b");
  EXPECT_EQ(reached("/svc"), "svc-b");
  ASSERT_EQ(up_b.request_count(), 2u);
  EXPECT_EQ(up_b.requests()[0].target, "/items/7?q=1&r=2");
  EXPECT_EQ(up_b.requests()[1].target, "/");

  auto none = c->get("/nowhere");
  EXPECT_TRUE(IsJsonError(none.as_http1(), 404, "No route")) << none.describe();
  // All of it on one connection.
  EXPECT_FALSE(c->goaway().has_value());
  EXPECT_FALSE(c->peer_closed());
}

TEST_P(Http2, ServicesReceiveHttp1WithForwardedHeadersAndRequestId) {
  ASSERT_NO_FATAL_FAILURE(start_simple());
  auto c = client();
  auto r = c->get("/h?x=1", {{"x-request-id", "h2-req-1"}, {"x-custom", "kept"}});
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.headers.value_or("x-request-id", ""), "h2-req-1") << r.describe();
  ASSERT_EQ(up_a.request_count(), 1u);
  Request got = up_a.requests()[0];
  EXPECT_EQ(got.version, "HTTP/1.1");
  EXPECT_EQ(got.method, "GET");
  EXPECT_EQ(got.target, "/h?x=1");
  EXPECT_EQ(got.headers.value_or("X-Forwarded-For", "<none>"), "127.0.0.1") << got.headers.to_string();
  EXPECT_EQ(got.headers.value_or("X-Forwarded-Proto", "<none>"), proto());
  EXPECT_EQ(got.headers.value_or("X-Forwarded-Host", "<none>"), authority());
  EXPECT_EQ(got.headers.count("Host"), 1u) << got.headers.to_string();
  EXPECT_EQ(got.headers.value_or("Host", ""), "127.0.0.1:" + std::to_string(up_a.port()));
  EXPECT_EQ(got.headers.value_or("X-Request-Id", ""), "h2-req-1");
  EXPECT_EQ(got.headers.value_or("X-Custom", ""), "kept");
  for (const Header& h : got.headers.list()) EXPECT_NE(h.name[0], ':') << "a pseudo-field reached the service";

  // Without one, the gateway makes the id, and the service and the client see the same.
  up_a.clear();
  auto r2 = c->get("/h2");
  ASSERT_EQ(r2.status, 200);
  ASSERT_EQ(up_a.request_count(), 1u);
  const std::string made = up_a.requests()[0].headers.value_or("X-Request-Id", "");
  EXPECT_FALSE(made.empty());
  EXPECT_EQ(r2.headers.value_or("x-request-id", ""), made);
}

TEST_P(Http2, PreserveHostSendsTheAuthority) {
  ASSERT_NO_FATAL_FAILURE(start_simple("", "", "    preserve_host: true"));
  auto r = client()->get("/h");
  ASSERT_EQ(r.status, 200) << r.describe();
  ASSERT_EQ(up_a.request_count(), 1u);
  EXPECT_EQ(up_a.requests()[0].headers.count("Host"), 1u);
  EXPECT_EQ(up_a.requests()[0].headers.value_or("Host", ""), authority());
}

TEST_P(Http2, JwtAndRolesAsForHttp1) {
  ASSERT_TRUE(jose_error_.empty()) << jose_error_;
  start(fill(R"(services:
  a: {instances: ["{A}"]}
policies:
  jwt: {type: jwt, secret: "{S}", forward_claims: {sub: X-User-Id}}
  admins: {type: require_role, roles: [admin]}
routes:
  - path: /api/admin
    service: a
    policies: [jwt, admins]
  - path: /api
    service: a
    policies: [jwt]
)",
             {{"A", up_a.url()}, {"S", kSecret}}));
  auto c = client();
  auto missing = c->get("/api/items");
  EXPECT_TRUE(IsJsonError(missing.as_http1(), 401, "Access token required"));
  EXPECT_EQ(missing.headers.value_or("www-authenticate", "").rfind("Bearer", 0), 0u) << missing.describe();
  EXPECT_TRUE(ReachedNothing(up_a));

  auto bad = c->get("/api/items", {{"authorization", "Bearer not.a.token"}});
  EXPECT_EQ(bad.status, 401) << bad.describe();
  EXPECT_TRUE(ReachedNothing(up_a));

  auto ok = c->get("/api/items", {{"authorization", "Bearer " + tokens_["user"]}});
  EXPECT_EQ(ok.status, 200) << ok.describe();
  ASSERT_EQ(up_a.request_count(), 1u);
  EXPECT_EQ(up_a.requests()[0].headers.value_or("X-User-Id", ""), "jose-user");

  auto forbidden = c->get("/api/admin/stats", {{"authorization", "Bearer " + tokens_["user"]}});
  EXPECT_TRUE(IsJsonError(forbidden.as_http1(), 403, "Insufficient permissions"));
  auto admin = c->get("/api/admin/stats", {{"authorization", "Bearer " + tokens_["admin"]}});
  EXPECT_EQ(admin.status, 200) << admin.describe();
  EXPECT_EQ(up_a.request_count(), 2u);
}

TEST_P(Http2, ApiKeyAsForHttp1) {
  start(fill(R"(services:
  a: {instances: ["{A}"]}
policies:
  keys: {type: api_key, header: X-API-Key, keys: {k-123: mobile-app}}
routes:
  - path: /
    service: a
    policies: [keys]
)",
             {{"A", up_a.url()}}));
  auto c = client();
  EXPECT_EQ(c->get("/x").status, 401);
  EXPECT_EQ(c->get("/x", {{"x-api-key", "wrong"}}).status, 401);
  EXPECT_TRUE(ReachedNothing(up_a));
  auto ok = c->get("/x", {{"x-api-key", "k-123"}});
  EXPECT_EQ(ok.status, 200) << ok.describe();
  EXPECT_EQ(up_a.request_count(), 1u);
}

TEST_P(Http2, RateLimitAnswers429WithHeaders) {
  start(fill(R"(services:
  a: {instances: ["{A}"]}
policies:
  two: {type: rate_limit, limit: 2, window: 1m, store: memory}
routes:
  - path: /
    service: a
    policies: [two]
)",
             {{"A", up_a.url()}}));
  auto c = client();
  auto first = c->get("/r");
  EXPECT_EQ(first.status, 200) << first.describe();
  EXPECT_EQ(first.headers.value_or("ratelimit-limit", ""), "2") << first.describe();
  EXPECT_EQ(first.headers.value_or("ratelimit-remaining", ""), "1") << first.describe();
  EXPECT_EQ(c->get("/r").status, 200);
  auto third = c->get("/r");
  EXPECT_EQ(third.status, 429) << third.describe();
  EXPECT_EQ(third.headers.value_or("content-type", "").rfind("application/json", 0), 0u) << third.describe();
  EXPECT_TRUE(third.headers.has("retry-after")) << third.describe();
  EXPECT_EQ(third.headers.value_or("ratelimit-limit", ""), "2") << third.describe();
  EXPECT_EQ(third.headers.value_or("ratelimit-remaining", ""), "0") << third.describe();
  EXPECT_TRUE(third.headers.has("ratelimit-reset")) << third.describe();
  EXPECT_EQ(up_a.request_count(), 2u);
}

TEST_P(Http2, RequestBodiesReachTheServiceWhole) {
  up_a.set_handler(Upstream::echo_body());
  ASSERT_NO_FATAL_FAILURE(start_simple());
  auto c = client();
  // With content-length: the service gets it as Content-Length.
  auto r = c->request("POST", "/with-length", {{"content-type", "text/plain"}, {"content-length", "11"}}, "hello world");
  EXPECT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body, "hello world");
  // Without: whichever framing the gateway picks, the service gets the bytes.
  auto r2 = c->request("POST", "/no-length", {{"content-type", "text/plain"}}, "streamed body");
  EXPECT_EQ(r2.status, 200) << r2.describe();
  EXPECT_EQ(r2.body, "streamed body");
  ASSERT_EQ(up_a.request_count(), 2u);
  auto got = up_a.requests();
  EXPECT_EQ(got[0].body, "hello world");
  EXPECT_EQ(got[0].headers.value_or("Content-Length", ""), "11") << got[0].headers.to_string();
  EXPECT_FALSE(got[0].chunked);
  EXPECT_EQ(got[1].body, "streamed body");
  EXPECT_TRUE(got[1].chunked || got[1].headers.value_or("Content-Length", "") == "13") << got[1].headers.to_string();

  // 1 MiB, many times the 64 KiB stream window: it flows only as the gateway gives window back.
  const std::string big = pattern_body(1 << 20, 7);
  up_a.clear();
  auto r3 = c->request("PUT", "/big", {{"content-length", std::to_string(big.size())}}, big);
  EXPECT_EQ(r3.status, 200) << r3.describe();
  EXPECT_TRUE(r3.body == big) << "echoed " << r3.body.size() << " bytes";
  auto r4 = c->request("POST", "/big-unframed", {}, big);
  EXPECT_EQ(r4.status, 200) << r4.describe();
  ASSERT_EQ(up_a.request_count(), 2u);
  EXPECT_TRUE(up_a.requests()[0].body == big) << up_a.requests()[0].body.size();
  EXPECT_TRUE(up_a.requests()[1].body == big) << up_a.requests()[1].body.size();
}

TEST_P(Http2, LargeResponsesFlowUnderFlowControl) {
  const std::string big = pattern_body(5 << 20, 3);
  up_a.set_handler([&](const Request& r) {
    Reply reply = Reply::text(big);
    reply.chunked = r.target == "/chunked";
    return reply;
  });
  ASSERT_NO_FATAL_FAILURE(start_simple());
  H2Options o = options();
  o.timeout = 20s;
  H2Client c(gw->port(), o);
  ASSERT_TRUE(c.ok()) << c.error();
  std::int32_t a = c.submit("GET", "/length");
  std::int32_t b = c.submit("GET", "/chunked");
  ASSERT_TRUE(c.run(20s)) << c.response(a).describe() << "\n" << c.response(b).describe();
  EXPECT_EQ(c.response(a).status, 200);
  EXPECT_TRUE(c.response(a).body == big) << c.response(a).body.size();
  EXPECT_EQ(c.response(a).headers.value_or("content-length", ""), std::to_string(big.size()));
  EXPECT_EQ(c.response(b).status, 200);
  EXPECT_TRUE(c.response(b).body == big) << c.response(b).body.size();
  EXPECT_FALSE(c.response(b).headers.has("transfer-encoding")) << "a connection-specific field in an h2 response";
}

TEST_P(Http2, HeadHasNoBody) {
  up_a.set_handler([](const Request&) { return Reply::text("twelve bytes"); });
  ASSERT_NO_FATAL_FAILURE(start_simple());
  auto c = client();
  auto r = c->request("HEAD", "/x");
  EXPECT_EQ(r.status, 200) << r.describe();
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(r.headers.value_or("content-length", "<none>"), "12") << r.describe();
  ASSERT_EQ(up_a.request_count(), 1u);
  EXPECT_EQ(up_a.requests()[0].method, "HEAD");
  // The connection carries on.
  EXPECT_EQ(c->get("/y").body, "twelve bytes");
}

TEST_P(Http2, ServiceErrorsAre502_503_504AndTheConnectionCarriesOn) {
  Upstream slow("slow");
  slow.set_handler([](const Request&) {
    Reply r = Reply::text("late");
    r.delay = 3s;
    return r;
  });
  up_b.stop();
  start(fill(R"(services:
  a: {instances: ["{A}"]}
  gone: {instances: ["{B}"]}
  slow:
    instances: ["{S}"]
    timeouts: {response: 300ms}
routes:
  - path: /gone
    service: gone
  - path: /slow
    service: slow
  - path: /
    service: a
)",
             {{"A", up_a.url()}, {"B", up_b.url()}, {"S", slow.url()}}));
  auto c = client();
  auto down = c->get("/gone");
  EXPECT_TRUE(down.status == 502 || down.status == 503) << down.describe();
  EXPECT_TRUE(IsJsonError(down.as_http1(), down.status, down.status == 502 ? "Bad gateway" : "Service unavailable"));
  const auto t0 = Clock::now();
  auto late = c->get("/slow");
  EXPECT_TRUE(IsJsonError(late.as_http1(), 504, "Gateway timeout")) << gw->diagnostics();
  EXPECT_LT(Clock::now() - t0, 2500ms) << "the 504 came after the service answered, not at the timeout";
  auto ok = c->get("/fine");
  EXPECT_EQ(ok.status, 200) << ok.describe();
  EXPECT_FALSE(c->goaway().has_value());
}

// The request limits answer as for HTTP/1.1 (413, 414, 431), on that stream only.
TEST_P(Http2, RequestLimitsAnswerOnTheStream) {
  ASSERT_NO_FATAL_FAILURE(start_simple("", "limits: {max_body_bytes: 1KiB, max_uri_bytes: 1KiB, max_header_bytes: 4KiB}"));
  auto c = client();
  auto big = c->request("POST", "/body", {{"content-length", "2048"}}, std::string(2048, 'b'));
  EXPECT_TRUE(IsJsonError(big.as_http1(), 413, "Payload too large")) << big.describe();
  auto uri = c->get("/" + std::string(2000, 'u'));
  EXPECT_TRUE(IsJsonError(uri.as_http1(), 414, "URI too long")) << uri.describe();
  auto fields = c->get("/fields", {{"x-big", std::string(5000, 'h')}});
  EXPECT_TRUE(IsJsonError(fields.as_http1(), 431, "Request header fields too large")) << fields.describe();
  // A :path that could not be an HTTP/1.1 request-target (a fragment) is refused as over HTTP/1.1.
  auto fragment = c->get("/api/x#frag");
  EXPECT_EQ(fragment.status, 400) << fragment.describe();
  EXPECT_TRUE(ReachedNothing(up_a));
  auto ok = c->request("POST", "/small", {{"content-length", "4"}}, "fits");
  EXPECT_EQ(ok.status, 200) << ok.describe();
  EXPECT_FALSE(c->goaway().has_value());
  EXPECT_EQ(up_a.request_count(), 1u);
}

TEST_P(Http2, ManyConcurrentStreamsEachGetTheirOwnAnswer) {
  up_a.set_handler([](const Request& r) {
    Reply reply = Reply::text("for " + r.target);
    reply.delay = 50ms;  // keep them overlapping at the service
    return reply;
  });
  ASSERT_NO_FATAL_FAILURE(start_simple());
  auto c = client();
  std::map<std::int32_t, std::string> sent;
  for (int i = 0; i < 60; ++i) {
    std::string path = "/item/" + std::to_string(i);
    std::int32_t id = c->submit(i % 3 == 0 ? "POST" : "GET", path, {}, i % 3 == 0 ? "body " + std::to_string(i) : "");
    ASSERT_GT(id, 0);
    sent[id] = path;
  }
  ASSERT_TRUE(c->run(15s)) << c->open_streams() << " streams still open";
  for (const auto& [id, path] : sent) {
    const auto& r = c->response(id);
    EXPECT_EQ(r.status, 200) << path << ": " << r.describe();
    EXPECT_EQ(r.body, "for " + path);
  }
  EXPECT_EQ(up_a.request_count(), 60u);
  for (const Request& r : up_a.requests()) {
    EXPECT_EQ(r.version, "HTTP/1.1");
    if (r.method == "POST") { EXPECT_EQ(r.body, "body " + r.target.substr(6)); }
  }
  EXPECT_FALSE(c->goaway().has_value());
}

// The access-log line of an h2 request has the fields, types and values of an HTTP/1.1 one.
TEST_P(Http2, AccessLogLineHasTheShapeOfAnHttp1One) {
  ASSERT_NO_FATAL_FAILURE(start(fill(R"(services:
  a: {instances: ["{A}"]}
routes:
  - name: the-route
    path: /api
    service: a
)",
                                     {{"A", up_a.url()}}),
                                "", true));
  auto c = client();
  auto r = c->request("POST", "/api/log?x=1", {{"x-request-id", "h2-line"}, {"content-length", "5"}}, "12345");
  ASSERT_EQ(r.status, 200) << r.describe();
  Response h1;
  if (tls()) {
    TlsOptions t = *options().tls;
    t.alpn = {"http/1.1"};
    TlsClient tc(gw->port(), t);
    ASSERT_TRUE(tc.ok()) << tc.error();
    EXPECT_EQ(tc.alpn(), "http/1.1");
    ASSERT_TRUE(tc.send(make_request("POST", "/api/log?x=1", {{"X-Request-Id", "h1-line"}}, "12345", authority())));
    h1 = tc.read_response().value_or(Response{});
  } else {
    h1 = http_request(gw->port(), "POST", "/api/log?x=1", {{"X-Request-Id", "h1-line"}}, "12345");
  }
  ASSERT_EQ(h1.status, 200) << h1.describe();

  const std::string log_path = dir.path() + "/access.log";
  std::vector<Json> lines;
  ASSERT_TRUE(eventually([&] {
    lines = log_lines(read_file(log_path));
    return line_with(lines, "request_id", "h2-line") && line_with(lines, "request_id", "h1-line");
  })) << "access log:\n" << read_file(log_path);
  const Json& two = *line_with(lines, "request_id", "h2-line");
  const Json& one = *line_with(lines, "request_id", "h1-line");
  std::set<std::string> keys_two, keys_one;
  for (const auto& [k, v] : two.object) keys_two.insert(k);
  for (const auto& [k, v] : one.object) keys_one.insert(k);
  EXPECT_EQ(keys_two, keys_one);
  for (const auto& [k, v] : one.object) {
    const Json* other = two.get(k);
    if (!other) continue;
    EXPECT_EQ(static_cast<int>(other->type), static_cast<int>(v.type)) << "field " << k;
  }
  for (const char* k : {"method", "path", "route", "service", "instance", "client_ip"}) {
    ASSERT_TRUE(two.get(k) && one.get(k)) << k;
    EXPECT_EQ(two.get(k)->string, one.get(k)->string) << k;
  }
  for (const char* k : {"status", "bytes_in", "bytes_out"}) {
    ASSERT_TRUE(two.get(k) && one.get(k)) << k;
    EXPECT_EQ(two.get(k)->number, one.get(k)->number) << k;
  }
}

// HTTP/1.1 and h2 share the listener: by prior knowledge on an h2c one, by ALPN on a TLS one.
TEST_P(Http2, TheListenerStillServesHttp1) {
  ASSERT_NO_FATAL_FAILURE(start_simple());
  auto c = client();
  EXPECT_EQ(c->get("/two").status, 200);
  if (tls()) {
    TlsOptions t = *options().tls;
    t.alpn = {"http/1.1"};
    auto r = tls_get(gw->port(), "/one", t);
    EXPECT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(r.version, "HTTP/1.1");
    t.alpn = {};
    auto no_alpn = tls_get(gw->port(), "/none", t);
    EXPECT_EQ(no_alpn.status, 200) << no_alpn.describe();
  } else {
    auto r = http_get(gw->port(), "/one");
    EXPECT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(r.version, "HTTP/1.1");
    // Keep-alive HTTP/1.1 on the same port, then h2 again.
    Conn k(gw->port());
    ASSERT_TRUE(k.send(make_request("GET", "/k1") + make_request("GET", "/k2")));
    EXPECT_EQ(k.read_response().value_or(Response{}).status, 200);
    EXPECT_EQ(k.read_response().value_or(Response{}).status, 200);
  }
  EXPECT_EQ(c->get("/two-again").status, 200);
  EXPECT_EQ(up_a.request_count(), tls() ? 4u : 5u);
}

// On an h2c listener too, `Upgrade: h2c` is just a field the gateway drops: the request is
// answered in HTTP/1.1 and the service never sees the upgrade.
TEST(Http2Listener, UpgradeH2cIsNeverHonoured) {
  Upstream up("svc");
  Gateway::Options o;
  o.add_header = false;
  Gateway gw(fill(R"(listen:
  - address: "127.0.0.1:{PORT}"
    h2c: true
workers: 2
access_log: off
services:
  svc: {instances: ["{U}"]}
routes:
  - path: /
    service: svc
)",
                  {{"U", up.url()}}),
             o);
  GH_START(gw);
  Conn c(gw.port());
  ASSERT_TRUE(c.send(make_request(
      "GET", "/first",
      {{"Connection", "Upgrade, HTTP2-Settings"}, {"Upgrade", "h2c"}, {"HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"}})));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value()) << c.pending();
  EXPECT_EQ(r->status, 200) << r->describe();
  EXPECT_EQ(r->version, "HTTP/1.1");
  EXPECT_FALSE(r->headers.has("Upgrade")) << r->describe();
  ASSERT_TRUE(up.wait_requests(1));
  auto got = up.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].headers.has("Upgrade"));
  EXPECT_FALSE(got[0].headers.has("HTTP2-Settings"));
  EXPECT_EQ(got[0].headers.value_or("Connection", "").find("pgrade"), std::string::npos);
}

// A plain listener without `h2c: true` does not speak h2: the preface is a bad HTTP/1.1 request.
TEST(Http2Listener, PlainListenerWithoutH2cRefusesThePreface) {
  Upstream up("svc");
  Gateway gw(fill(R"(services:
  svc: {instances: ["{U}"]}
routes:
  - path: /
    service: svc
)",
                  {{"U", up.url()}}));
  GH_START(gw);
  H2Client c(gw.port());
  auto r = c.get("/x");
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_TRUE(ReachedNothing(up));
}

// ---- limits.http2 ------------------------------------------------------------------------------

std::string held_config(const HoldingService& svc, const std::string& http2_limits) {
  return fill(R"(listen:
  - address: "127.0.0.1:{PORT}"
    h2c: true
workers: 2
access_log: off
{L}
services:
  held:
    instances: ["{U}"]
    timeouts: {response: 20s}
routes:
  - path: /
    service: held
)",
              {{"U", svc.url()}, {"L", http2_limits.empty() ? "" : "limits:\n  http2: " + http2_limits}});
}

Gateway::Options raw_options() {
  Gateway::Options o;
  o.add_header = false;
  return o;
}

// Opens N streams (1, 3, ...) at once on RAW after the SETTINGS exchange; the last id used.
std::int32_t open_streams(RawH2& raw, int n, std::int32_t first = 1) {
  std::string batch;
  std::int32_t id = first;
  for (int i = 0; i < n; ++i, id += 2) {
    batch += frame::headers(id, Hpack().request("GET", "/held/" + std::to_string(id)).bytes(), true);
  }
  EXPECT_TRUE(raw.send(batch));
  return id - 2;
}

// Holds 100 streams open at a slow service, opened 20 at a time; the 101st is refused with
// REFUSED_STREAM, the connection lives on and the 100 are answered.
TEST(Http2Limits, The101stConcurrentStreamIsRefused) {
  HoldingService svc(8s);
  Gateway gw(held_config(svc, ""), raw_options());
  GH_START(gw);
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  auto settings = raw.wait_for([](const Frame& f) { return f.type == h2::SETTINGS && !f.has(h2::ACK); });
  ASSERT_TRUE(settings) << raw.summary();
  EXPECT_EQ(raw.server_setting(h2::MAX_CONCURRENT_STREAMS).value_or(0), 100u) << raw.summary();
  raw.wait_for([](const Frame& f) { return f.type == h2::SETTINGS && f.has(h2::ACK); }, 2s);
  for (int batch = 0; batch < 5; ++batch) {
    open_streams(raw, 20, 1 + 40 * batch);
    ASSERT_TRUE(eventually([&] { return svc.in_flight() == 20 * (batch + 1); }, 8s))
        << svc.in_flight() << " requests held at the service after " << 20 * (batch + 1) << " streams\n"
        << raw.summary();
  }
  const std::int32_t extra = 201;
  ASSERT_TRUE(raw.send(frame::headers(extra, Hpack().request("GET", "/held/101st").bytes(), true)));
  auto refused = raw.response(extra, 5s);
  EXPECT_EQ(refused.rst_code, h2::REFUSED_STREAM) << refused.describe() << "\n" << raw.summary();
  EXPECT_FALSE(raw.goaway().has_value()) << raw.summary();
  EXPECT_LE(svc.max_in_flight(), 100);
  svc.release();
  int answered = 0;
  for (std::int32_t id = 1; id <= 199; id += 2) answered += raw.response(id, 5s).status == 200 ? 1 : 0;
  EXPECT_EQ(answered, 100) << raw.summary();
  EXPECT_EQ(svc.heads(), 100);
}

// 100 HEADERS in one write (as a browser opening a page may send): every one of them reaches the
// service without the client having to send anything more.
TEST(Http2Limits, AHundredStreamsInOneWriteAllStart) {
  HoldingService svc(8s);
  Gateway gw(held_config(svc, ""), raw_options());
  GH_START(gw);
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  raw.wait_for([](const Frame& f) { return f.type == h2::SETTINGS && f.has(h2::ACK); }, 2s);
  open_streams(raw, 100);
  EXPECT_TRUE(eventually([&] { return svc.in_flight() == 100; }, 5s))
      << svc.in_flight() << " of 100 requests reached the service\n" << raw.summary();
  svc.release();
  int answered = 0;
  for (std::int32_t id = 1; id <= 199; id += 2) answered += raw.response(id, 5s).status == 200 ? 1 : 0;
  EXPECT_EQ(answered, 100) << raw.summary();
}

TEST(Http2Limits, ASmallerMaxConcurrentStreamsIsHonoured) {
  HoldingService svc(8s);
  Gateway gw(held_config(svc, "{max_concurrent_streams: 5}"), raw_options());
  GH_START(gw);
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  ASSERT_TRUE(raw.wait_for([](const Frame& f) { return f.type == h2::SETTINGS && !f.has(h2::ACK); })) << raw.summary();
  EXPECT_EQ(raw.server_setting(h2::MAX_CONCURRENT_STREAMS).value_or(0), 5u) << raw.summary();
  raw.wait_for([](const Frame& f) { return f.type == h2::SETTINGS && f.has(h2::ACK); }, 2s);
  open_streams(raw, 5);
  ASSERT_TRUE(eventually([&] { return svc.in_flight() == 5; }, 5s)) << svc.in_flight() << "\n" << raw.summary();
  ASSERT_TRUE(raw.send(frame::headers(11, Hpack().request("GET", "/held/6th").bytes(), true)));
  auto refused = raw.response(11, 5s);
  EXPECT_EQ(refused.rst_code, h2::REFUSED_STREAM) << refused.describe() << "\n" << raw.summary();
  EXPECT_EQ(svc.heads(), 5);
  svc.release();
  EXPECT_EQ(raw.response(1, 5s).status, 200) << raw.summary();
  // Streams that ended make room again.
  for (std::int32_t id = 3; id <= 9; id += 2) raw.response(id, 5s);
  ASSERT_TRUE(raw.send(frame::headers(13, Hpack().request("GET", "/held/again").bytes(), true)));
  EXPECT_EQ(raw.response(13, 5s).status, 200) << raw.summary();
}

// The windows the gateway opens: SETTINGS_INITIAL_WINDOW_SIZE is the stream window, and a
// WINDOW_UPDATE on stream 0 raises the connection window from 65535 to connection_window.
TEST(Http2Limits, WindowsAreAdvertisedAsConfigured) {
  HoldingService svc(10ms);
  for (const auto& [limits, stream_window, connection_window] :
       std::vector<std::tuple<std::string, std::uint32_t, std::uint32_t>>{
           {"", 64 * 1024, 1024 * 1024},
           {"{stream_window: 128KiB, connection_window: 4MiB, max_concurrent_streams: 7}", 128 * 1024, 4 * 1024 * 1024}}) {
    SCOPED_TRACE(limits);
    Gateway gw(held_config(svc, limits), raw_options());
    GH_START(gw);
    RawH2 raw(gw.port());
    ASSERT_TRUE(raw.handshake());
    std::uint32_t raised = 0;
    raw.wait_for(
        [&](const Frame& f) {
          if (f.type == h2::WINDOW_UPDATE && f.stream == 0 && f.payload.size() == 4) {
            raised = (static_cast<std::uint32_t>(static_cast<unsigned char>(f.payload[0])) << 24 |
                      static_cast<std::uint32_t>(static_cast<unsigned char>(f.payload[1])) << 16 |
                      static_cast<std::uint32_t>(static_cast<unsigned char>(f.payload[2])) << 8 |
                      static_cast<std::uint32_t>(static_cast<unsigned char>(f.payload[3]))) &
                     0x7fffffffu;
            return true;
          }
          return false;
        },
        3s);
    EXPECT_EQ(raw.server_setting(h2::INITIAL_WINDOW_SIZE).value_or(65535), stream_window) << raw.summary();
    EXPECT_EQ(65535u + raised, connection_window) << raw.summary();
    if (!limits.empty()) { EXPECT_EQ(raw.server_setting(h2::MAX_CONCURRENT_STREAMS).value_or(0), 7u) << raw.summary(); }
    // Requests still flow.
    ASSERT_TRUE(raw.send(frame::headers(1, Hpack().request("GET", "/held/w").bytes(), true)));
    EXPECT_EQ(raw.response(1).status, 200) << raw.summary();
  }
}

TEST(Http2Limits, IdleTimeoutSendsGoawayThenCloses) {
  Upstream up("svc");
  Gateway gw(fill(R"(listen:
  - address: "127.0.0.1:{PORT}"
    h2c: true
workers: 2
access_log: off
limits:
  http2: {idle_timeout: 1s}
services:
  svc: {instances: ["{U}"]}
routes:
  - path: /
    service: svc
)",
                  {{"U", up.url()}}),
             raw_options());
  GH_START(gw);
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  ASSERT_TRUE(raw.send(frame::headers(1, Hpack().request("GET", "/once").bytes(), true)));
  EXPECT_EQ(raw.response(1).status, 200) << raw.summary();
  const auto t0 = Clock::now();
  auto g = raw.wait_for_goaway(6s);
  ASSERT_TRUE(g.has_value()) << "no GOAWAY after the idle timeout\n" << raw.summary();
  EXPECT_GE(Clock::now() - t0, 700ms) << "GOAWAY long before the idle timeout";
  EXPECT_EQ(g->code, h2::NO_ERROR) << raw.summary();
  EXPECT_EQ(g->last_stream_id, 1);
  EXPECT_TRUE(raw.wait_closed(5s)) << raw.summary();
}

// A connection with a stream in progress is not idle.
TEST(Http2Limits, IdleTimeoutSparesAConnectionWithAStream) {
  HoldingService svc(2500ms);
  Gateway gw(held_config(svc, "{idle_timeout: 1s}"), raw_options());
  GH_START(gw);
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  ASSERT_TRUE(raw.send(frame::headers(1, Hpack().request("GET", "/long").bytes(), true)));
  auto r = raw.response(1, 8s);
  EXPECT_EQ(r.status, 200) << r.describe() << "\n" << raw.summary();
  EXPECT_EQ(r.body, "held");
}

// SIGTERM: GOAWAY to the client at once, the stream in progress completes, then the connection
// closes and the gateway exits 0.
TEST(Http2Limits, SigtermSendsGoawayAndFinishesStreamsInProgress) {
  HoldingService svc(1500ms, "finished");
  Gateway gw(held_config(svc, ""), raw_options());
  GH_START(gw);
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  ASSERT_TRUE(raw.send(frame::headers(1, Hpack().request("GET", "/held/1").bytes(), true)));
  ASSERT_TRUE(eventually([&] { return svc.in_flight() == 1; }, 5s)) << raw.summary();
  ASSERT_TRUE(gw.signal(SIGTERM));
  auto g = raw.wait_for_goaway(3s);
  ASSERT_TRUE(g.has_value()) << "no GOAWAY on SIGTERM\n" << raw.summary();
  EXPECT_EQ(g->code, h2::NO_ERROR);
  EXPECT_GE(g->last_stream_id, 1) << "the stream in progress was not kept";
  auto r = raw.response(1, 5s);
  EXPECT_EQ(r.status, 200) << r.describe() << "\n" << raw.summary();
  EXPECT_EQ(r.body, "finished");
  EXPECT_TRUE(r.ended);
  EXPECT_TRUE(raw.wait_closed(5s)) << raw.summary();
  EXPECT_EQ(gw.stop(10s), 0) << gw.diagnostics();
}

}  // namespace
}  // namespace gh::integ
