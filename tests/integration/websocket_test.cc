// WebSocket through the gateway (SPEC §7), with the npm `ws` package at both ends: the service
// is tests/fixtures/ws/server.mjs (a `ws` server, or a hand-written one for the answers `ws`
// would never give) and the client tests/fixtures/ws/client.mjs (a `ws` client), except where
// a test needs raw bytes. The packages are installed by scripts/deps.sh (`npm ci`), never here.
// Covered: echo, the policy chain at the upgrade (jwt from the header, the query and a cookie,
// removed before the service; rate limits counted once per upgrade), the 101 validated, other
// answers relayed with nothing more delivered, idle timeout, half-closes both ways, reloads,
// the drain deadline, `websocket: false`, and the tunnel's access-log line.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness/assertions.h"
#include "harness/child.h"
#include "harness/json.h"

#ifndef GH_FIXTURES_DIR
#error "GH_FIXTURES_DIR must point at tests/fixtures"
#endif

namespace gh::integ {
namespace {

namespace fs = std::filesystem;

const std::string kSecret = "websocket-tests-secret-of-32-bytes!";

fs::path fixture_dir() { return fs::path(GH_FIXTURES_DIR) / "ws"; }

std::string missing_fixture() {
  if (fs::exists(fixture_dir() / "node_modules" / "ws" / "package.json")) return "";
  return (fixture_dir() / "node_modules").string() + " is missing: run scripts/deps.sh (it runs npm ci there)";
}

// A JSON string literal.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      continue;
    }
    out += c;
  }
  return out + "\"";
}

// `node SCRIPT ARGS...` with SCRIPT in the fixture folder (harness/child.h).
class Node : public ChildProcess {
 public:
  Node(const std::string& script, const std::vector<std::string>& args)
      : ChildProcess(argv(script, args)) {}

 private:
  static std::vector<std::string> argv(const std::string& script, const std::vector<std::string>& args) {
    std::vector<std::string> v = {"node", (fixture_dir() / script).string()};
    v.insert(v.end(), args.begin(), args.end());
    return v;
  }
};

// The fixture service in one MODE (see server.mjs).
class WsService {
 public:
  explicit WsService(const std::string& mode = "echo") : node_("server.mjs", {mode}) {
    if (auto l = node_.line()) {
      if (auto j = Json::parse(*l); j && j->get("port")) port_ = static_cast<int>(j->get("port")->number);
    }
  }
  bool ok() const { return port_ > 0; }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // What the service saw (GET /_state, straight to the service).
  Json state() const {
    Response r = http_get(port_, "/_state");
    auto j = Json::parse(r.body);
    if (j && j->get("upgrades") && j->get("requests") && j->get("messages") && j->get("open")) return *j;
    ADD_FAILURE() << "the ws fixture's state is unreadable: " << r.status << " " << r.body;
    return *Json::parse(R"({"upgrades": [], "requests": [], "messages": -1, "open": -1})");
  }
  std::size_t upgrades() const { return state().get("upgrades")->array.size(); }
  std::size_t plain_requests() const { return state().get("requests")->array.size(); }

 private:
  Node node_;
  int port_ = 0;
};

#define GH_SERVICE(svc) ASSERT_TRUE((svc).ok()) << "the ws fixture service did not start"

// A `ws` client run (see client.mjs): its events, in order.
struct ClientRun {
  std::vector<Json> events;
  const Json* first(std::string_view event) const {
    for (const auto& e : events)
      if (e.get("event")->is_string(event)) return &e;
    return nullptr;
  }
  std::vector<const Json*> all(std::string_view event) const {
    std::vector<const Json*> out;
    for (const auto& e : events)
      if (e.get("event")->is_string(event)) out.push_back(&e);
    return out;
  }
  bool opened() const { return first("open") != nullptr; }
  // The status of a refused handshake, 0 when none.
  int refused_status() const {
    const Json* u = first("unexpected");
    return u ? static_cast<int>(u->get("status")->number) : 0;
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const Json* m : all("message"))
      if (!m->get("binary")->boolean) out.push_back(m->get("data")->string);
    return out;
  }
  std::string to_string() const {
    std::string out;
    for (const auto& e : events) {
      out += e.get("event")->string;
      if (const Json* d = e.get("data")) out += "(" + d->string + ")";
      if (const Json* s = e.get("status")) out += "(" + std::to_string(static_cast<int>(s->number)) + ")";
      if (const Json* m = e.get("message"); m && m->type == Json::Type::String) out += "(" + m->string + ")";
      out += " ";
    }
    return out;
  }
};

// Starts a client; events are read with next() or all at once with finish().
class WsClient {
 public:
  WsClient(const std::string& url, const std::string& steps_json, const std::vector<std::pair<std::string, std::string>>& headers = {})
      : node_("client.mjs", {args(url, steps_json, headers)}) {}

  // The next event, nullopt when none comes within TIMEOUT.
  std::optional<Json> next(Millis timeout = 10s) {
    auto l = node_.line(timeout);
    if (!l) return std::nullopt;
    auto j = Json::parse(*l);
    if (!j || !j->get("event")) return std::nullopt;
    run_.events.push_back(*j);
    return j;
  }
  // Reads every event up to "done".
  const ClientRun& finish(Millis timeout = 30s) {
    const auto deadline = Clock::now() + timeout;
    while (run_.events.empty() || !run_.events.back().get("event")->is_string("done")) {
      auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
      if (left <= Millis(0) || !next(left)) break;
    }
    return run_;
  }
  const ClientRun& run() const { return run_; }

 private:
  static std::string args(const std::string& url, const std::string& steps_json,
                          const std::vector<std::pair<std::string, std::string>>& headers) {
    std::string h;
    for (const auto& [n, v] : headers) h += (h.empty() ? "" : ",") + quote(n) + ":" + quote(v);
    return "{\"url\":" + quote(url) + ",\"headers\":{" + h + "},\"steps\":" + steps_json + "}";
  }
  Node node_;
  ClientRun run_;
};

ClientRun run_client(const std::string& url, const std::string& steps_json,
                     const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  WsClient c(url, steps_json, headers);
  return c.finish();
}

std::string ws_url(const Gateway& gw, const std::string& target) {
  return "ws://127.0.0.1:" + std::to_string(gw.port()) + target;
}

// A token for the tests' secret, minted by `gatehouse token`.
std::string token(const std::string& sub = "alice") {
  auto r = run_gatehouse({"token", "--secret", kSecret, "--sub", sub, "--ttl", "1h"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string t = r.out;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

// One service, one route /chat with ROUTE_EXTRA, POLICIES (YAML under `policies:`), TOP at the
// top level.
std::string config(const WsService& svc, const std::string& route_extra = "", const std::string& policies = "",
                   const std::string& top = "") {
  return fill(R"(
{TOP}
services:
  chat: {instances: ["{U}"]}
{P}
routes:
  - path: /chat
    service: chat
{X}
)",
              {{"U", svc.url()},
               {"X", route_extra},
               {"TOP", top},
               {"P", policies.empty() ? "" : "policies:\n" + policies}});
}

std::string jwt_policy(const std::string& token_from = "") {
  return "  auth: {type: jwt, secret: " + quote(kSecret) + (token_from.empty() ? "" : ", token_from: " + token_from) +
         "}\n";
}

// A header of the upgrade request the service saw, "" when absent.
std::string seen_header(const Json& upgrade, const std::string& name) {
  const Json* h = upgrade.get("headers")->get(name);
  return h ? h->string : "";
}

class WebSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string missing = missing_fixture();
    ASSERT_TRUE(missing.empty()) << missing;
  }
};

// A bad token_from stops `gatehouse check` (and a start) with the place and what is expected.
TEST(WebSocketConfig, CheckNamesABadTokenSource) {
  TempDir dir;
  const std::string path = dir.write("gatehouse.yaml", R"(
services:
  chat: {instances: ["http://127.0.0.1:9"]}
policies:
  auth: {type: jwt, secret: s3cret, token_from: [header, 'query:', 'form:token']}
routes:
  - {path: /chat, service: chat, policies: [auth]}
)");
  auto r = run_gatehouse({"check", "-c", path});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("policies.auth.token_from[1]: query needs a name, e.g. query:access_token"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("policies.auth.token_from[2]: unknown token source \"form:token\"; expected header, "
                       "query:NAME or cookie:NAME"),
            std::string::npos)
      << r.err;
}

TEST_F(WebSocket, EchoesTextAndBinaryThroughTheGateway) {
  WsService svc;
  GH_SERVICE(svc);
  Gateway gw(config(svc));
  GH_START(gw);
  const std::string big(70'000, 'x');  // a frame with a 64-bit length
  ClientRun run = run_client(ws_url(gw, "/chat?room=1"), R"([
    {"send": "hello"}, {"send_binary": "AAEC/w=="}, {"send": "héllo wörld"}, {"send": ")" + big + R"("},
    {"send_binary": ")" + std::string(4000, 'A') + R"("}, {"await": 5}, {"close": true}])");
  ASSERT_TRUE(run.opened()) << run.to_string();
  auto messages = run.all("message");
  ASSERT_EQ(messages.size(), 5u) << run.to_string();
  EXPECT_EQ(run.texts(), (std::vector<std::string>{"hello", "héllo wörld", big}));
  EXPECT_TRUE(messages[1]->get("binary")->boolean);
  EXPECT_EQ(messages[1]->get("data")->string, "AAEC/w==");
  EXPECT_TRUE(messages[4]->get("binary")->boolean);
  EXPECT_EQ(messages[4]->get("data")->string, std::string(4000, 'A'));
  ASSERT_NE(run.first("close"), nullptr) << run.to_string();
  EXPECT_TRUE(run.first("close")->get("code")->is_number(1000));
  EXPECT_EQ(run.first("error"), nullptr) << run.to_string();
  Json st = svc.state();
  ASSERT_EQ(st.get("upgrades")->array.size(), 1u);
  EXPECT_EQ(st.get("upgrades")->array[0].get("url")->string, "/chat?room=1");
  EXPECT_TRUE(st.get("messages")->is_number(5));
  EXPECT_EQ(seen_header(st.get("upgrades")->array[0], "x-forwarded-for"), "127.0.0.1");
}

TEST_F(WebSocket, NoTokenIs401AndNothingReachesTheService) {
  WsService svc;
  GH_SERVICE(svc);
  Gateway gw(config(svc, "    policies: [auth]", jwt_policy()));
  GH_START(gw);
  ClientRun none = run_client(ws_url(gw, "/chat"), R"([{"send": "x"}])");
  EXPECT_FALSE(none.opened());
  EXPECT_EQ(none.refused_status(), 401) << none.to_string();
  EXPECT_NE(none.first("unexpected")->get("body")->string.find("Access token required"), std::string::npos);
  ClientRun forged = run_client(ws_url(gw, "/chat"), R"([{"send": "x"}])",
                                {{"Authorization", "Bearer " + token() + "x"}});
  EXPECT_EQ(forged.refused_status(), 401) << forged.to_string();
  EXPECT_EQ(svc.upgrades(), 0u);
  EXPECT_EQ(svc.plain_requests(), 0u);
  // The same with a good token opens.
  ClientRun good = run_client(ws_url(gw, "/chat"), R"([{"send": "x"}, {"await": 1}, {"close": true}])",
                              {{"Authorization", "Bearer " + token()}});
  EXPECT_EQ(good.texts(), std::vector<std::string>{"x"}) << good.to_string();
  EXPECT_EQ(svc.upgrades(), 1u);
}

TEST_F(WebSocket, TokenInTheQueryIsAcceptedAndRemoved) {
  WsService svc;
  GH_SERVICE(svc);
  Gateway::Options options;
  options.access_log_file = true;
  Gateway gw(config(svc, "    policies: [auth]", jwt_policy("[query:access_token]")), options);
  GH_START(gw);
  const std::string alice = token();
  ClientRun run = run_client(ws_url(gw, "/chat?room=7&access_token=" + alice + "&lang=fr"),
                             R"([{"send": "q"}, {"await": 1}, {"close": true}])");
  EXPECT_EQ(run.texts(), std::vector<std::string>{"q"}) << run.to_string();
  ClientRun only = run_client(ws_url(gw, "/chat?access_token=" + token()), R"([{"close": true}])");
  EXPECT_TRUE(only.opened()) << only.to_string();
  // A header token is not where this route looks.
  ClientRun header = run_client(ws_url(gw, "/chat"), "[]", {{"Authorization", "Bearer " + token()}});
  EXPECT_EQ(header.refused_status(), 401) << header.to_string();
  Json st = svc.state();
  const auto& ups = st.get("upgrades")->array;
  ASSERT_EQ(ups.size(), 2u);
  EXPECT_EQ(ups[0].get("url")->string, "/chat?room=7&lang=fr");
  EXPECT_EQ(ups[1].get("url")->string, "/chat");
  EXPECT_EQ(seen_header(ups[0], "authorization"), "");
  // Nor does the access log show the token.
  ASSERT_TRUE(eventually([&] { return gw.access_log_text().find("\"/chat?room=7&lang=fr\"") != std::string::npos; }))
      << gw.access_log_text();
  EXPECT_EQ(gw.access_log_text().find(alice.substr(alice.rfind('.'))), std::string::npos) << gw.access_log_text();
}

TEST_F(WebSocket, TokenInACookieIsAcceptedAndRemoved) {
  WsService svc;
  GH_SERVICE(svc);
  Gateway gw(config(svc, "    policies: [auth]", jwt_policy("[header, cookie:session]")));
  GH_START(gw);
  ClientRun run = run_client(ws_url(gw, "/chat"), R"([{"send": "c"}, {"await": 1}, {"close": true}])",
                             {{"Cookie", "theme=dark; session=" + token() + "; lang=fr"}});
  EXPECT_EQ(run.texts(), std::vector<std::string>{"c"}) << run.to_string();
  ClientRun only = run_client(ws_url(gw, "/chat"), R"([{"close": true}])", {{"Cookie", "session=" + token()}});
  EXPECT_TRUE(only.opened()) << only.to_string();
  ClientRun stale = run_client(ws_url(gw, "/chat"), "[]", {{"Cookie", "session=" + token() + "x"}});
  EXPECT_EQ(stale.refused_status(), 401) << stale.to_string();
  Json st = svc.state();
  const auto& ups = st.get("upgrades")->array;
  ASSERT_EQ(ups.size(), 2u);
  EXPECT_EQ(seen_header(ups[0], "cookie"), "theme=dark; lang=fr");
  EXPECT_EQ(ups[1].get("headers")->get("cookie"), nullptr) << "an empty Cookie field was sent";
}

TEST_F(WebSocket, AFake101Is502) {
  WsService svc("bad_accept");
  GH_SERVICE(svc);
  Gateway gw(config(svc));
  GH_START(gw);
  ClientRun run = run_client(ws_url(gw, "/chat"), R"([{"send": "x"}])");
  EXPECT_FALSE(run.opened());
  EXPECT_EQ(run.refused_status(), 502) << run.to_string();
  Json st = svc.state();
  ASSERT_EQ(st.get("upgrades")->array.size(), 1u);
  EXPECT_EQ(st.get("upgrades")->array[0].get("after_head")->string, "") << "bytes went into a refused tunnel";
}

// The client does not wait for the 101: what it sends right after its head is the new protocol's,
// and must never reach the service as a request when no tunnel opens.
TEST_F(WebSocket, A426IsRelayedAndTheBytesAfterTheHeadGoNowhere) {
  WsService svc("426");
  GH_SERVICE(svc);
  Gateway gw(config(svc));
  GH_START(gw);
  Headers h{{"Connection", "Upgrade"},
            {"Upgrade", "websocket"},
            {"Sec-WebSocket-Version", "13"},
            {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}};
  Conn c(gw.port());
  ASSERT_TRUE(c.send(make_request("GET", "/chat", h) + make_request("GET", "/chat/smuggled") +
                     "\x81\x85\x01\x02\x03\x04raw!!"));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 426);
  EXPECT_EQ(r->body, "this service wants another protocol version");
  EXPECT_EQ(r->headers.value_or("Sec-WebSocket-Version", ""), "13");
  EXPECT_TRUE(c.wait_closed()) << "the connection stays open after a refused upgrade";
  // The ws client sees the same answer.
  ClientRun run = run_client(ws_url(gw, "/chat"), R"([{"send": "x"}])");
  EXPECT_EQ(run.refused_status(), 426) << run.to_string();
  std::this_thread::sleep_for(200ms);
  Json st = svc.state();
  ASSERT_EQ(st.get("upgrades")->array.size(), 2u);
  for (const auto& u : st.get("upgrades")->array) {
    EXPECT_EQ(u.get("url")->string, "/chat");
    EXPECT_EQ(u.get("after_head")->string, "") << "bytes after the head reached the service";
  }
  EXPECT_EQ(svc.plain_requests(), 0u) << "bytes after the head were delivered as a request";
}

// A client may send frames right behind its head, without waiting for the 101: they reach the
// service once the tunnel is open.
TEST_F(WebSocket, BytesSentEarlyAreDeliveredAfterThe101) {
  WsService svc;
  GH_SERVICE(svc);
  Gateway gw(config(svc));
  GH_START(gw);
  // A masked text frame "early" (RFC 6455 §5.3), mask 01 02 03 04.
  std::string frame = "\x81\x85\x01\x02\x03\x04";
  const std::string payload = "early";
  for (std::size_t i = 0; i < payload.size(); ++i) frame += static_cast<char>(payload[i] ^ (1 + i % 4));
  Conn c(gw.port());
  ASSERT_TRUE(c.send(make_request("GET", "/chat",
                                  {{"Connection", "Upgrade"},
                                   {"Upgrade", "websocket"},
                                   {"Sec-WebSocket-Version", "13"},
                                   {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}}) +
                     frame));
  auto r = c.read_response();
  ASSERT_TRUE(r && r->status == 101);
  EXPECT_EQ(r->headers.value_or("Sec-WebSocket-Accept", ""), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_TRUE(c.wait_for("\x81\x05" "early")) << "the early frame was not echoed";
  EXPECT_TRUE(svc.state().get("messages")->is_number(1));
}

TEST_F(WebSocket, RateLimitCountsEachUpgradeOnce) {
  WsService svc;
  GH_SERVICE(svc);
  Gateway gw(config(svc, "    policies: [two]", "  two: {type: rate_limit, limit: 2, window: 1m, store: memory}\n"));
  GH_START(gw);
  // Two tunnels, open at once, each carrying many messages.
  TempDir dir;
  const std::string go = dir.path() + "/go";
  std::string held = "[";
  for (int i = 0; i < 10; ++i) held += R"({"send": "m)" + std::to_string(i) + R"("},)";
  held += R"({"await": 10}, {"wait_file": )" + quote(go) + R"(}, {"close": true}])";
  WsClient a(ws_url(gw, "/chat"), held), b(ws_url(gw, "/chat"), held);
  for (WsClient* c : {&a, &b}) {
    auto open = c->next();
    ASSERT_TRUE(open && open->get("event")->is_string("open")) << c->run().to_string();
  }
  ASSERT_TRUE(eventually([&] { return svc.state().get("messages")->is_number(20); }));
  ClientRun third = run_client(ws_url(gw, "/chat"), "[]");
  EXPECT_EQ(third.refused_status(), 429) << third.to_string();
  std::ofstream(go).put('\n');
  for (WsClient* c : {&a, &b}) {
    const ClientRun& r = c->finish();
    EXPECT_EQ(r.all("message").size(), 10u) << r.to_string();
    EXPECT_EQ(r.first("error"), nullptr) << r.to_string();
  }
  EXPECT_EQ(svc.upgrades(), 2u);
}

TEST_F(WebSocket, IdleTunnelIsClosedAfterTheRoutesTimeout) {
  WsService svc;
  GH_SERVICE(svc);
  Gateway gw(config(svc, "    websocket_idle_timeout: 1s", "", "limits: {websocket_idle_timeout: 1m}"));
  GH_START(gw);
  // Talking every 300ms for 2s keeps it open; then silence closes it about 1s later.
  std::string steps = "[";
  for (int i = 0; i < 7; ++i) steps += R"({"send": "t)" + std::to_string(i) + R"("}, {"sleep": 300},)";
  steps += R"({"await": 7}, {"wait_close": 5000}])";
  ClientRun run = run_client(ws_url(gw, "/chat"), steps);
  ASSERT_TRUE(run.opened()) << run.to_string();
  EXPECT_EQ(run.all("message").size(), 7u) << run.to_string();
  const Json* close = run.first("close");
  ASSERT_NE(close, nullptr) << "the idle tunnel was not closed: " << run.to_string();
  EXPECT_GE(close->get("ms")->number, 2000) << "closed while in use";
  EXPECT_GE(close->get("idle_ms")->number, 900);
  EXPECT_LT(close->get("idle_ms")->number, 2500);
  EXPECT_TRUE(close->get("code")->is_number(1006)) << "the gateway closes the TCP connection, without a close frame";
  EXPECT_TRUE(eventually([&] { return svc.state().get("open")->is_number(0); }))
      << "the service's side of the tunnel stayed open";
}

// The client ends its sending side first; the service still answers, then ends its own.
TEST_F(WebSocket, ClientHalfClosePassesThrough) {
  WsService svc("half_close");
  GH_SERVICE(svc);
  Gateway gw(config(svc));
  GH_START(gw);
  Conn c(gw.port());
  ASSERT_TRUE(c.send(make_request("GET", "/chat",
                                  {{"Connection", "Upgrade"},
                                   {"Upgrade", "websocket"},
                                   {"Sec-WebSocket-Version", "13"},
                                   {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}})));
  auto r = c.read_response();
  ASSERT_TRUE(r && r->status == 101);
  EXPECT_EQ(r->headers.value_or("Sec-WebSocket-Accept", ""), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  ASSERT_TRUE(c.send("client-bytes"));
  ASSERT_TRUE(eventually([&] { return svc.state().get("upgrades")->array[0].get("after_head")->string == "client-bytes"; }));
  c.shutdown_write();
  EXPECT_TRUE(c.wait_for("\x81\x09" "after-eof")) << "the service's answer after the client's half-close was lost";
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(svc.state().get("upgrades")->array[0].get("eof")->boolean);
}

// The service ends its sending side first; the client can still send.
TEST_F(WebSocket, ServiceHalfClosePassesThrough) {
  WsService svc("server_half_close");
  GH_SERVICE(svc);
  Gateway gw(config(svc));
  GH_START(gw);
  Conn c(gw.port());
  ASSERT_TRUE(c.send(make_request("GET", "/chat",
                                  {{"Connection", "Upgrade"},
                                   {"Upgrade", "websocket"},
                                   {"Sec-WebSocket-Version", "13"},
                                   {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}})));
  auto r = c.read_response();
  ASSERT_TRUE(r && r->status == 101);
  EXPECT_TRUE(c.wait_for("\x81\x03" "bye"));
  ASSERT_TRUE(c.wait_closed(3s)) << "the service's EOF was not passed on";
  ASSERT_TRUE(c.send("still-talking")) << "the client's sending side was closed with the service's";
  EXPECT_TRUE(eventually([&] { return svc.state().get("upgrades")->array[0].get("after_head")->string == "still-talking"; }));
  c.shutdown_write();
  EXPECT_TRUE(eventually([&] { return svc.state().get("upgrades")->array[0].get("eof")->boolean; }));
}

TEST_F(WebSocket, AReloadKeepsAnOpenTunnel) {
  WsService svc;
  GH_SERVICE(svc);
  Gateway gw(config(svc));
  GH_START(gw);
  TempDir dir;
  const std::string go = dir.path() + "/go";
  WsClient held(ws_url(gw, "/chat"), R"([{"send": "before"}, {"await": 1}, {"wait_file": )" + quote(go) +
                                         R"(}, {"send": "after"}, {"await": 2}, {"close": true}])");
  auto open = held.next();
  ASSERT_TRUE(open && open->get("event")->is_string("open")) << held.run().to_string();
  // The route now needs a token: new upgrades are refused, the open tunnel goes on.
  gw.write_config(config(svc, "    policies: [auth]", jwt_policy()));
  ASSERT_TRUE(gw.reload());
  ASSERT_TRUE(eventually([&] { return run_client(ws_url(gw, "/chat"), "[]").refused_status() == 401; }, 10s))
      << gw.diagnostics();
  std::ofstream(go).put('\n');
  const ClientRun& run = held.finish();
  EXPECT_EQ(run.texts(), (std::vector<std::string>{"before", "after"})) << run.to_string();
  ASSERT_NE(run.first("close"), nullptr);
  EXPECT_TRUE(run.first("close")->get("code")->is_number(1000)) << run.to_string();
  EXPECT_EQ(svc.upgrades(), 1u);
}

TEST_F(WebSocket, DrainClosesAnOpenTunnelAtTheDeadline) {
  WsService svc;
  GH_SERVICE(svc);
  Gateway::Options options;
  options.access_log_file = true;
  Gateway gw(config(svc, "", "", "limits: {drain_timeout: 1s}"), options);
  GH_START(gw);
  // Talks every 100ms for up to 10s.
  std::string steps = "[";
  for (int i = 0; i < 100; ++i) steps += R"({"send": "d)" + std::to_string(i) + R"("}, {"sleep": 100},)";
  steps += R"({"wait_close": 100}])";
  WsClient c(ws_url(gw, "/chat"), steps);
  auto open = c.next();
  ASSERT_TRUE(open && open->get("event")->is_string("open")) << c.run().to_string();
  std::this_thread::sleep_for(300ms);
  const auto t0 = Clock::now();
  ASSERT_TRUE(gw.signal(SIGTERM));
  std::optional<Json> close;
  while (auto e = c.next(5s)) {
    if (e->get("event")->is_string("close")) {
      close = e;
      break;
    }
  }
  const auto elapsed = Clock::now() - t0;
  ASSERT_TRUE(close.has_value()) << "the tunnel outlived the drain: " << c.run().to_string();
  EXPECT_GE(elapsed, 900ms) << "closed before the drain deadline";
  EXPECT_LT(elapsed, 3s);
  // Messages kept flowing while the gateway drained.
  int during = 0;
  for (const Json* m : c.run().all("message")) during += m->get("ms")->number >= 400 ? 1 : 0;
  EXPECT_GE(during, 5) << c.run().to_string();
  auto code = gw.stop(5s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << gw.diagnostics();
  // The tunnel ended at the deadline: its line is written all the same.
  EXPECT_NE(gw.access_log_text().find("\"status\":101"), std::string::npos)
      << "the drained tunnel has no access-log line: " << gw.access_log_text();
}

TEST_F(WebSocket, RouteWithoutWebSocketSendsAPlainRequest) {
  WsService svc;
  GH_SERVICE(svc);
  Gateway gw(config(svc, "    websocket: false"));
  GH_START(gw);
  ClientRun run = run_client(ws_url(gw, "/chat"), R"([{"send": "x"}])");
  EXPECT_FALSE(run.opened());
  EXPECT_EQ(run.refused_status(), 200) << run.to_string();
  EXPECT_EQ(run.first("unexpected")->get("body")->string, "plain /chat");
  Json st = svc.state();
  EXPECT_EQ(st.get("upgrades")->array.size(), 0u) << "an upgrade reached the service";
  ASSERT_EQ(st.get("requests")->array.size(), 1u);
  const Json& req = st.get("requests")->array[0];
  EXPECT_EQ(req.get("headers")->get("upgrade"), nullptr);
  EXPECT_EQ(req.get("headers")->get("connection") ? req.get("headers")->get("connection")->string.find("pgrade")
                                                  : std::string::npos,
            std::string::npos);
}

TEST_F(WebSocket, TheTunnelsAccessLogLineIsWrittenAtItsEnd) {
  WsService svc;
  GH_SERVICE(svc);
  Gateway::Options options;
  options.access_log_file = true;
  Gateway gw(config(svc), options);
  GH_START(gw);
  TempDir dir;
  const std::string go = dir.path() + "/go";
  // Ten text messages of 10 bytes each way, then a wait, then a normal close.
  std::string steps = "[";
  for (int i = 0; i < 10; ++i) steps += R"({"send": "message-0)" + std::to_string(i) + R"("},)";
  steps += R"({"await": 10}, {"wait_file": )" + quote(go) + R"(}, {"sleep": 300}, {"close": true}])";
  WsClient c(ws_url(gw, "/chat"), steps);
  auto open = c.next();
  ASSERT_TRUE(open && open->get("event")->is_string("open"));
  ASSERT_TRUE(eventually([&] { return svc.state().get("messages")->is_number(10); }));
  std::this_thread::sleep_for(300ms);  // more than the access log's flush period
  EXPECT_EQ(gw.access_log_text().find("\"status\":101"), std::string::npos) << "logged before the tunnel ended";
  std::ofstream(go).put('\n');
  const ClientRun& run = c.finish();
  ASSERT_NE(run.first("close"), nullptr) << run.to_string();
  ASSERT_TRUE(eventually([&] { return gw.access_log_text().find("\"status\":101") != std::string::npos; }))
      << gw.access_log_text();
  std::optional<Json> line;
  std::istringstream lines(gw.access_log_text());
  int count = 0;
  for (std::string l; std::getline(lines, l);) {
    if (l.find("\"status\":101") == std::string::npos) continue;
    ++count;
    line = Json::parse(l);
  }
  EXPECT_EQ(count, 1);
  ASSERT_TRUE(line.has_value());
  // Client frames are masked: 6 bytes of header per short message, 2 from the service; both add
  // the close frames (the client's 8 bytes with its code, the service's 4).
  EXPECT_TRUE(line->get("bytes_in")->is_number(10 * (6 + 10) + 8)) << gw.access_log_text();
  EXPECT_TRUE(line->get("bytes_out")->is_number(10 * (2 + 10) + 4)) << gw.access_log_text();
  EXPECT_GE(line->get("total_ms")->number, 600) << "the duration is the tunnel's whole life";
  EXPECT_TRUE(line->get("path")->is_string("/chat"));
  EXPECT_TRUE(line->get("service")->is_string("chat"));
}

}  // namespace
}  // namespace gh::integ
