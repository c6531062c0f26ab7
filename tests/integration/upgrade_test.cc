// Upgrades (SPEC §3, §7 WebSocket): the only upgrade is WebSocket; `h2c` and every other token
// never reach a service. A tunnel opens only on a 101 with `Upgrade: websocket` and the right
// `Sec-WebSocket-Accept`; after any other answer the connection closes, so nothing the client
// sent after its head is read as a new request. Tunnels time out when idle and pass half-closes.
#include <gtest/gtest.h>

#include <sstream>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

// RFC 6455 §1.3's example key and the answer it requires.
constexpr const char* kKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr const char* kAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

Headers websocket_request(Headers extra = {}) {
  extra.add("Connection", "Upgrade");
  extra.add("Upgrade", "websocket");
  extra.add("Sec-WebSocket-Version", "13");
  extra.add("Sec-WebSocket-Key", kKey);
  return extra;
}

// A service that answers 101 to anything, with ACCEPT (none when empty), then echoes.
Handler switching(std::string accept, std::string upgrade = "websocket", std::string after_eof = "") {
  return [=](const Request&) {
    Reply r;
    r.status = 101;
    r.reason = "Switching Protocols";
    r.upgrade = true;
    r.after_eof = after_eof;
    if (!upgrade.empty()) {
      r.headers.add("Upgrade", upgrade);
      r.headers.add("Connection", "Upgrade");
    }
    if (!accept.empty()) r.headers.add("Sec-WebSocket-Accept", accept);
    return r;
  };
}

std::string one_service(const Upstream& up, const std::string& route_extra = "", const std::string& top = "") {
  return fill(R"(
{TOP}
services:
  svc: {instances: ["{U}"]}
routes:
  - path: /
    service: svc
{X}
)",
              {{"U", up.url()}, {"X", route_extra}, {"TOP", top}});
}

TEST(Upgrade, H2cNeverReachesTheService) {
  Upstream up("svc");
  Gateway gw(one_service(up));
  GH_START(gw);
  const std::vector<Headers> asks = {
      {{"Connection", "Upgrade, HTTP2-Settings"}, {"Upgrade", "h2c"}, {"HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"}},
      {{"Connection", "Upgrade"}, {"Upgrade", "h2c"}},
      {{"Upgrade", "h2c"}, {"HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"}},  // Connection not naming it
      {{"Connection", "Upgrade"}, {"Upgrade", "foo/2, websocket"}},
      {{"Connection", "Upgrade"}, {"Upgrade", "TLS/1.2"}},
  };
  for (const Headers& h : asks) {
    SCOPED_TRACE(h.to_string());
    up.clear();
    Conn c(gw.port());
    // The next request rides behind the first, as an h2c client's preface would.
    ASSERT_TRUE(c.send(make_request("GET", "/first", h) + make_request("GET", "/smuggled")));
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(c.wait_closed()) << "the connection stays open after an upgrade request";
    ASSERT_TRUE(up.wait_requests(1));
    auto got = up.requests();
    ASSERT_EQ(got.size(), 1u) << "bytes after an upgrade request were read as a new request";
    EXPECT_EQ(got[0].target, "/first");
    EXPECT_FALSE(got[0].headers.has("Upgrade"));
    EXPECT_FALSE(got[0].headers.has("HTTP2-Settings"));
    EXPECT_EQ(got[0].headers.value_or("Connection", "").find("pgrade"), std::string::npos);
  }
}

TEST(Upgrade, A101ToAnythingButWebSocketIs502) {
  Upstream up("svc");
  up.set_handler(switching(kAccept, "h2c"));
  Gateway gw(one_service(up));
  GH_START(gw);
  auto r = http_get(gw.port(), "/x", {{"Connection", "Upgrade, HTTP2-Settings"}, {"Upgrade", "h2c"},
                                     {"HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"}});
  EXPECT_TRUE(IsJsonError(r, 502, "Bad gateway"));
  auto plain = http_get(gw.port(), "/y");  // a 101 to a plain request
  EXPECT_TRUE(IsJsonError(plain, 502, "Bad gateway"));
}

TEST(Upgrade, WebSocketTunnelOpensOnTheRightAnswer) {
  Upstream up("svc");
  up.set_handler(switching(kAccept));
  Gateway gw(one_service(up));
  GH_START(gw);
  Conn c(gw.port());
  ASSERT_TRUE(c.send(make_request("GET", "/chat", websocket_request())));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 101);
  EXPECT_EQ(r->headers.value_or("Sec-WebSocket-Accept", ""), kAccept);
  EXPECT_TRUE(iequals(r->headers.value_or("Upgrade", ""), "websocket"));
  ASSERT_TRUE(c.send("frame-bytes-1"));
  EXPECT_TRUE(c.wait_for("frame-bytes-1"));
  auto got = up.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].headers.value_or("Upgrade", ""), "websocket");
  EXPECT_EQ(got[0].headers.value_or("Sec-WebSocket-Key", ""), kKey);
}

TEST(Upgrade, WrongOrMissingAcceptIs502) {
  const std::vector<std::pair<const char*, Handler>> cases = {
      {"wrong accept", switching("AAAAAAAAAAAAAAAAAAAAAAAAAAA=")},
      {"no accept", switching("")},
      {"no Upgrade field", switching(kAccept, "")},
      {"another protocol", switching(kAccept, "h2c")},
  };
  for (const auto& [name, handler] : cases) {
    SCOPED_TRACE(name);
    Upstream up("svc");
    up.set_handler(handler);
    Gateway gw(one_service(up));
    GH_START(gw);
    Conn c(gw.port());
    ASSERT_TRUE(c.send(make_request("GET", "/chat", websocket_request())));
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(IsJsonError(*r, 502, "Bad gateway"));
    EXPECT_TRUE(c.wait_closed());
  }
}

TEST(Upgrade, AnyOtherAnswerClosesAndNothingMoreIsDelivered) {
  Upstream up("svc");
  up.set_handler([](const Request&) { return Reply::text("no tunnel for you", 403); });
  Gateway gw(one_service(up));
  GH_START(gw);
  Conn c(gw.port());
  // A client that does not wait for the 101 sends what looks like a second request.
  ASSERT_TRUE(c.send(make_request("GET", "/chat", websocket_request()) +
                     make_request("POST", "/admin/delete-everything", {}, "x")));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(r->body, "no tunnel for you");
  EXPECT_TRUE(c.wait_closed());
  EXPECT_FALSE(c.pending().find("HTTP/1.1") != std::string::npos) << "a second response came";
  ASSERT_TRUE(up.wait_requests(1));
  std::this_thread::sleep_for(200ms);
  auto got = up.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target, "/chat");
}

TEST(Upgrade, MalformedWebSocketRequestsAre400) {
  Upstream up("svc");
  Gateway gw(one_service(up));
  GH_START(gw);
  Headers no_key{{"Connection", "Upgrade"}, {"Upgrade", "websocket"}, {"Sec-WebSocket-Version", "13"}};
  EXPECT_TRUE(IsJsonError(http_get(gw.port(), "/chat", no_key), 400, "Bad request"));
  Headers bad_key = no_key;
  bad_key.add("Sec-WebSocket-Key", "not-a-key");
  EXPECT_TRUE(IsJsonError(http_get(gw.port(), "/chat", bad_key), 400, "Bad request"));
  EXPECT_TRUE(IsJsonError(http_request(gw.port(), "POST", "/chat", websocket_request(), "body"), 400, "Bad request"));
  EXPECT_TRUE(ReachedNothing(up));
}

TEST(Upgrade, RouteWithoutWebSocketGetsAPlainRequest) {
  Upstream up("svc");
  up.set_handler(switching(kAccept));
  Gateway gw(one_service(up, "    websocket: false"));
  GH_START(gw);
  auto r = http_get(gw.port(), "/chat", websocket_request());
  EXPECT_TRUE(IsJsonError(r, 502, "Bad gateway"));  // the service's 101 answers no upgrade asked for
  auto got = up.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].headers.has("Upgrade"));
}

TEST(Upgrade, IdleTunnelIsClosed) {
  Upstream up("svc");
  up.set_handler(switching(kAccept));
  Gateway gw(one_service(up, "    websocket_idle_timeout: 400ms"));
  GH_START(gw);
  Conn c(gw.port());
  ASSERT_TRUE(c.send(make_request("GET", "/chat", websocket_request())));
  auto r = c.read_response();
  ASSERT_TRUE(r && r->status == 101);
  // Traffic keeps it open past the timeout...
  for (int i = 0; i < 4; ++i) {
    std::string msg = "tick" + std::to_string(i);
    ASSERT_TRUE(c.send(msg));
    ASSERT_TRUE(c.wait_for(msg)) << "tunnel closed while in use";
    std::this_thread::sleep_for(200ms);
  }
  // ...and silence closes it.
  const auto t0 = Clock::now();
  EXPECT_TRUE(c.wait_closed(3s));
  EXPECT_LT(Clock::now() - t0, 2s);
}

TEST(Upgrade, LimitsDefaultIdleTimeoutApplies) {
  Upstream up("svc");
  up.set_handler(switching(kAccept));
  Gateway gw(one_service(up, "", "limits: {websocket_idle_timeout: 300ms}"));
  GH_START(gw);
  Conn c(gw.port());
  ASSERT_TRUE(c.send(make_request("GET", "/chat", websocket_request())));
  auto r = c.read_response();
  ASSERT_TRUE(r && r->status == 101);
  EXPECT_TRUE(c.wait_closed(3s));
}

TEST(Upgrade, HalfClosePassesThrough) {
  Upstream up("svc");
  up.set_handler(switching(kAccept, "websocket", "bye-after-your-eof"));
  Gateway::Options options;
  options.access_log_file = true;
  Gateway gw(one_service(up), options);
  GH_START(gw);
  Conn c(gw.port());
  ASSERT_TRUE(c.send(make_request("GET", "/chat", websocket_request())));
  auto r = c.read_response();
  ASSERT_TRUE(r && r->status == 101);
  ASSERT_TRUE(c.send("last-words"));
  ASSERT_TRUE(c.wait_for("last-words"));
  c.shutdown_write();  // the client is done sending; the service may still talk
  EXPECT_TRUE(c.wait_for("bye-after-your-eof")) << "the service's reply after the half-close was lost";
  EXPECT_TRUE(c.wait_closed());
  // The tunnel's access-log line is written when it ends, with the bytes of both ways.
  ASSERT_TRUE(eventually([&] { return gw.access_log_text().find("\"status\":101") != std::string::npos; }))
      << gw.access_log_text();
  std::istringstream lines(gw.access_log_text());
  int count = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("\"status\":101") == std::string::npos) continue;
    ++count;
    EXPECT_NE(line.find("\"bytes_in\":10"), std::string::npos) << line;
    EXPECT_NE(line.find("\"bytes_out\":28"), std::string::npos) << line;
  }
  EXPECT_EQ(count, 1);
}

}  // namespace
}  // namespace gh::integ
