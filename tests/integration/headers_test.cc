// Headers both ways: X-Forwarded-*, X-Request-Id, hop-by-hop removal, Host rewriting and the
// security_headers policy (SPEC §2 services, policies; §3).
#include <gtest/gtest.h>

#include <regex>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

bool valid_request_id(const std::string& id) {
  static const std::regex re("^[A-Za-z0-9._:-]{1,128}$");
  return std::regex_match(id, re);
}

class HeadersTest : public ::testing::Test {
 protected:
  void start(const std::string& service_extra = "", const std::string& route_extra = "") {
    gw_ = std::make_unique<Gateway>(fill(R"(
services:
  svc:
    instances: ["{U}"]
{SX}
routes:
  - path: /
    service: svc
{RX}
)",
                                         {{"U", up_.url()}, {"SX", service_extra}, {"RX", route_extra}}));
    GH_START(*gw_);
  }

  // Sends one GET and returns what the service received; the response goes to *RESPONSE.
  Request forwarded(const Headers& extra, Response* response = nullptr, std::string host = "gw.test") {
    up_.clear();
    Response r = roundtrip(gw_->port(), make_request("GET", "/h", extra, {}, host));
    EXPECT_EQ(r.status, 200) << r.describe();
    if (response) *response = r;
    if (up_.request_count() != 1) {
      ADD_FAILURE() << "the service received " << up_.request_count() << " requests";
      return {};
    }
    return up_.requests()[0];
  }

  Upstream up_{"svc"};
  std::unique_ptr<Gateway> gw_;
};

TEST_F(HeadersTest, ForwardedHeadersAreSetAndAppended) {
  start();
  Request got = forwarded({});
  EXPECT_EQ(got.headers.value_or("X-Forwarded-For", "<none>"), "127.0.0.1");
  EXPECT_EQ(got.headers.value_or("X-Forwarded-Proto", "<none>"), "http");
  EXPECT_EQ(got.headers.value_or("X-Forwarded-Host", "<none>"), "gw.test");

  got = forwarded({{"X-Forwarded-For", "203.0.113.7"}});
  EXPECT_EQ(got.headers.count("X-Forwarded-For"), 1u) << got.headers.to_string();
  EXPECT_EQ(got.headers.value_or("X-Forwarded-For", "<none>"), "203.0.113.7, 127.0.0.1");
}

TEST_F(HeadersTest, RequestIdIsGeneratedWhenAbsentAndEchoed) {
  start();
  Response r1, r2;
  Request g1 = forwarded({}, &r1);
  Request g2 = forwarded({}, &r2);
  const std::string id1 = g1.headers.value_or("X-Request-Id", ""), id2 = g2.headers.value_or("X-Request-Id", "");
  EXPECT_TRUE(valid_request_id(id1)) << "'" << id1 << "'";
  EXPECT_NE(id1, id2);
  EXPECT_EQ(r1.headers.value_or("X-Request-Id", "<none>"), id1);
  EXPECT_EQ(r2.headers.value_or("X-Request-Id", "<none>"), id2);
}

TEST_F(HeadersTest, ValidRequestIdIsKept) {
  start();
  for (std::string id : {std::string("abc-123.x:y_z"), std::string("7"), std::string(128, 'k')}) {
    Response r;
    Request got = forwarded({{"X-Request-Id", id}}, &r);
    EXPECT_EQ(got.headers.count("X-Request-Id"), 1u);
    EXPECT_EQ(got.headers.value_or("X-Request-Id", ""), id);
    EXPECT_EQ(r.headers.value_or("X-Request-Id", ""), id);
  }
}

TEST_F(HeadersTest, InvalidRequestIdIsReplaced) {
  start();
  for (std::string id : {std::string("bad id!"), std::string(129, 'k'), std::string("a/b"), std::string("<script>")}) {
    SCOPED_TRACE(id);
    Response r;
    Request got = forwarded({{"X-Request-Id", id}}, &r);
    const std::string sent = got.headers.value_or("X-Request-Id", "");
    EXPECT_EQ(got.headers.count("X-Request-Id"), 1u);
    EXPECT_NE(sent, id);
    EXPECT_TRUE(valid_request_id(sent)) << "'" << sent << "'";
    EXPECT_EQ(r.headers.value_or("X-Request-Id", ""), sent);
  }
}

TEST_F(HeadersTest, HopByHopRequestHeadersAreRemoved) {
  start();
  Request got = forwarded({{"Connection", "keep-alive, X-Secret-Hop"},
                           {"X-Secret-Hop", "1"},
                           {"Keep-Alive", "timeout=5"},
                           {"Proxy-Connection", "keep-alive"},
                           {"TE", "trailers"},
                           {"Trailer", "X-Trailing"},
                           {"Upgrade", "h2c"},
                           {"X-End-To-End", "kept"}});
  for (const char* name : {"X-Secret-Hop", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade"}) {
    EXPECT_FALSE(got.headers.has(name)) << name << " was forwarded:\n" << got.headers.to_string();
  }
  for (const std::string& c : got.headers.all("Connection")) {
    EXPECT_EQ(c.find("X-Secret-Hop"), std::string::npos) << "Connection forwarded as is: " << c;
  }
  EXPECT_EQ(got.headers.value_or("X-End-To-End", ""), "kept");
}

TEST_F(HeadersTest, HopByHopResponseHeadersAreRemoved) {
  up_.set_handler([](const Request&) {
    Reply r = Reply::text("ok");
    r.headers.add("Connection", "X-Up-Hop");
    r.headers.add("X-Up-Hop", "1");
    r.headers.add("Keep-Alive", "timeout=5");
    r.headers.add("Proxy-Connection", "keep-alive");
    r.headers.add("Trailer", "X-Trailing");
    r.headers.add("Upgrade", "h2c");
    r.headers.add("X-End-To-End", "kept");
    return r;
  });
  start();
  Response r;
  forwarded({}, &r);
  for (const char* name : {"X-Up-Hop", "Keep-Alive", "Proxy-Connection", "Trailer", "Upgrade"}) {
    EXPECT_FALSE(r.headers.has(name)) << name << " was relayed:\n" << r.describe();
  }
  for (const std::string& c : r.headers.all("Connection")) {
    EXPECT_EQ(c.find("X-Up-Hop"), std::string::npos) << "Connection relayed as is: " << c;
  }
  EXPECT_EQ(r.headers.value_or("X-End-To-End", ""), "kept");
}

TEST_F(HeadersTest, HostIsTheInstancesByDefault) {
  start();
  Request got = forwarded({});
  EXPECT_EQ(got.headers.count("Host"), 1u);
  EXPECT_EQ(got.headers.value_or("Host", ""), "127.0.0.1:" + std::to_string(up_.port()));
}

TEST_F(HeadersTest, PreserveHostKeepsTheClientsHost) {
  start("    preserve_host: true");
  Request got = forwarded({}, nullptr, "api.example.com");
  EXPECT_EQ(got.headers.count("Host"), 1u);
  EXPECT_EQ(got.headers.value_or("Host", ""), "api.example.com");
}

TEST_F(HeadersTest, SecurityHeadersArePresentAndXPoweredByRemoved) {
  up_.set_handler([](const Request&) {
    Reply r = Reply::text("ok");
    r.headers.add("X-Powered-By", "Express");
    return r;
  });
  start("", "    policies: [security_headers]");
  Response r;
  forwarded({}, &r);
  EXPECT_EQ(r.headers.value_or("X-Content-Type-Options", ""), "nosniff") << r.describe();
  EXPECT_EQ(r.headers.value_or("X-Frame-Options", ""), "SAMEORIGIN");
  EXPECT_NE(r.headers.value_or("Content-Security-Policy", "").find("default-src 'self'"), std::string::npos)
      << r.describe();
  EXPECT_NE(r.headers.value_or("Strict-Transport-Security", "").find("max-age="), std::string::npos) << r.describe();
  EXPECT_EQ(r.headers.value_or("Referrer-Policy", ""), "no-referrer");
  EXPECT_EQ(r.headers.value_or("Cross-Origin-Opener-Policy", ""), "same-origin");
  EXPECT_EQ(r.headers.value_or("Cross-Origin-Resource-Policy", ""), "same-origin");
  EXPECT_EQ(r.headers.value_or("X-DNS-Prefetch-Control", ""), "off");
  EXPECT_EQ(r.headers.value_or("X-Download-Options", ""), "noopen");
  EXPECT_EQ(r.headers.value_or("X-Permitted-Cross-Domain-Policies", ""), "none");
  EXPECT_EQ(r.headers.value_or("X-XSS-Protection", ""), "0");
  EXPECT_FALSE(r.headers.has("X-Powered-By")) << r.describe();
}

TEST_F(HeadersTest, SecurityHeadersKeepTheServicesOwnByDefault) {
  up_.set_handler([](const Request&) {
    Reply r = Reply::text("ok");
    r.headers.add("X-Frame-Options", "DENY");
    return r;
  });
  start("", "    policies: [security_headers]");
  Response r;
  forwarded({}, &r);
  EXPECT_EQ(r.headers.all("X-Frame-Options").size(), 1u) << r.describe();
  EXPECT_EQ(r.headers.value_or("X-Frame-Options", ""), "DENY");
  EXPECT_EQ(r.headers.value_or("X-Content-Type-Options", ""), "nosniff");
}

TEST_F(HeadersTest, SecurityHeadersAlsoOnGatewayMadeReplies) {
  up_.stop();
  start("", "    policies: [security_headers]");
  Response r = http_get(gw_->port(), "/down");
  EXPECT_GE(r.status, 500) << r.describe();
  EXPECT_EQ(r.headers.value_or("X-Content-Type-Options", ""), "nosniff") << r.describe();
}

TEST_F(HeadersTest, NoSecurityHeadersWithoutThePolicy) {
  up_.set_handler([](const Request&) {
    Reply r = Reply::text("ok");
    r.headers.add("X-Powered-By", "Express");
    return r;
  });
  start();
  Response r;
  forwarded({}, &r);
  EXPECT_EQ(r.headers.value_or("X-Powered-By", ""), "Express");
  EXPECT_FALSE(r.headers.has("Content-Security-Policy"));
}

}  // namespace
}  // namespace gh::integ

namespace gh::integ {
namespace {

// SPEC limits.underscores_in_headers: many frameworks read '_' as '-', so a field such as
// Transfer_Encoding could become a second framing field behind the gateway.
TEST(Underscores, DroppedByDefault) {
  Upstream up("svc");
  Gateway gw(fill(R"(
services:
  svc: {instances: ["{U}"]}
routes:
  - path: /
    service: svc
)",
                  {{"U", up.url()}}));
  GH_START(gw);
  auto r = http_request(gw.port(), "POST", "/u",
                        {{"Transfer_Encoding", "chunked"}, {"X_Forwarded_For", "10.9.9.9"}, {"X-Kept", "yes"}},
                        "hello");
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(up.request_count(), 1u);
  const Request got = up.requests()[0];
  EXPECT_FALSE(got.headers.has("Transfer_Encoding")) << got.headers.to_string();
  EXPECT_FALSE(got.headers.has("X_Forwarded_For")) << got.headers.to_string();
  EXPECT_EQ(got.headers.value_or("X-Kept", ""), "yes");
  EXPECT_EQ(got.body, "hello");
}

TEST(Underscores, RejectAnswers400AndPassForwards) {
  Upstream up("svc");
  const std::string yaml = R"(
limits: {underscores_in_headers: {MODE}}
services:
  svc: {instances: ["{U}"]}
routes:
  - path: /
    service: svc
)";
  {
    Gateway gw(fill(yaml, {{"U", up.url()}, {"MODE", "reject"}}));
    GH_START(gw);
    EXPECT_TRUE(IsJsonError(http_get(gw.port(), "/u", {{"X_Api_Key", "k"}}), 400, "Bad request"));
    EXPECT_TRUE(ReachedNothing(up));
    EXPECT_EQ(http_get(gw.port(), "/u", {{"X-Api-Key", "k"}}).status, 200);
  }
  up.clear();
  {
    Gateway gw(fill(yaml, {{"U", up.url()}, {"MODE", "pass"}}));
    GH_START(gw);
    EXPECT_EQ(http_get(gw.port(), "/u", {{"X_Api_Key", "k"}}).status, 200);
    ASSERT_EQ(up.request_count(), 1u);
    EXPECT_EQ(up.requests()[0].headers.value_or("X_Api_Key", ""), "k");
  }
  auto bad = run_gatehouse({"check", "-c", TempDir().write("u.yaml", fill(yaml, {{"U", up.url()}, {"MODE", "drpo"}}))});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("limits.underscores_in_headers"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("did you mean \"drop\""), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace gh::integ
