// Exchange, with a fake Downstream (MemoryDownstream) and a scripted fake Outbound: retries,
// at most once, local replies, policy verdicts and on_log exactly once, fast and deterministic.
// The same behaviour over real sockets is in tests/integration (retries_test, upgrade_test...).
#include "proxy/exchange.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <deque>
#include <stdexcept>

#include "app/registry.h"
#include "app/snapshot_builder.h"
#include "config/config.h"
#include "proxy/offline.h"
#include "proxy/worker.h"

namespace gh::proxy {
namespace {

namespace asio = boost::asio;

// One attempt of the scripted instance, in the order the exchange makes them.
struct Attempt {
  enum class Kind {
    Refuse,        // connect fails: nothing reached the instance
    WriteFails,    // the first write fails before a byte is written
    ResetAfterRead,  // the request arrives whole, then the connection is reset before an answer
    PooledClosed,  // a pooled connection the instance had closed: no byte of answer (retryable)
    Answer,
  };
  Kind kind = Kind::Answer;
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> fields{};
  bool pooled = false;  // the connection comes from the pool
};

class ScriptedOutbound final : public clients::Outbound {
 public:
  std::deque<Attempt> script;
  // What the instance received whole (head and body), one entry per delivery.
  std::vector<std::string> delivered;
  std::vector<std::uint16_t> opened_ports;
  std::vector<bool> opened_pooled_allowed, opened_check_idle;
  int finished_complete = 0;

  asio::awaitable<Result<void>> open(const asio::ip::tcp::endpoint& address, const std::string&, const clients::TlsTarget*, bool, bool pooled,
                                     bool check_idle) override {
    opened_ports.push_back(address.port());
    opened_pooled_allowed.push_back(pooled);
    opened_check_idle.push_back(check_idle);
    if (script.empty()) throw std::logic_error("no attempt scripted");
    current_ = script.front();
    script.pop_front();
    reused_ = pooled && current_.pooled;
    if (current_.kind == Attempt::Kind::Refuse)
      co_return Error::upstream(ErrorCode::ConnectRefused, "refused", true);
    request_.clear();
    co_return Result<void>{};
  }
  bool reused() const noexcept override { return reused_; }
  void send_head(const http::OutgoingRequest& req) override { http::write_request_head(request_, req); }
  asio::awaitable<Result<void>> send_body(std::string_view data, bool last) override {
    if (current_.kind == Attempt::Kind::WriteFails) co_return Error::upstream(ErrorCode::UpstreamClosed, "reset", true);
    request_.append(data);
    if (last) delivered.push_back(request_);
    co_return Result<void>{};
  }
  asio::awaitable<Result<http::ResponseHead*>> read_head(bool) override {
    if (current_.kind == Attempt::Kind::ResetAfterRead)
      co_return Error::upstream(ErrorCode::UpstreamClosed, "reset", false);
    if (current_.kind == Attempt::Kind::PooledClosed)
      co_return Error::upstream(ErrorCode::UpstreamClosed, "eof", reused_);
    head_.reset();
    head_.status = current_.status;
    for (const auto& [n, v] : current_.fields) head_.fields.add(n, v);
    head_.body = http::BodyKind::Length;
    head_.content_length = current_.body.size();
    body_done_ = false;
    co_return &head_;
  }
  asio::awaitable<Result<http::BodyPart>> read_body() override {
    if (body_done_) co_return http::BodyPart{{}, true};
    body_done_ = true;
    co_return http::BodyPart{current_.body, true};
  }
  void finish(bool complete) override { finished_complete += complete ? 1 : 0; }
  void close() noexcept override {}
  void cancel() noexcept override {}
  std::string_view take_buffered() noexcept override { return {}; }
  net::Stream* tunnel_stream() noexcept override { return nullptr; }

 private:
  Attempt current_;
  std::string request_;
  http::ResponseHead head_;
  bool reused_ = false, body_done_ = false;
};

// Counts its hooks; refuses, or throws, when told to by a request field.
class ProbePolicy final : public Policy {
 public:
  std::string_view name() const override { return "probe"; }
  std::string_view type() const override { return "probe"; }
  std::optional<Verdict> decide_now(RequestContext& ctx) override {
    ++requests;
    if (ctx.request().fields.has("x-refuse")) return Verdict{LocalReply{403, "probe_refused"}};
    if (ctx.request().fields.has("x-throw")) throw std::runtime_error("policy bug");
    return Verdict{Continue{}};
  }
  void on_response(RequestContext&, http::ResponseHead& head) override {
    ++responses;
    head.fields.add("X-Probe", "seen");
  }
  void on_log(const RequestContext&) override { ++logs; }
  int requests = 0, responses = 0, logs = 0;
};

constexpr const char* kConfig = R"(
listen: 127.0.0.1:0
access_log: off
limits: {max_body_bytes: 1MiB}
services:
  api:
    instances: [http://127.0.0.1:1001, http://127.0.0.1:1002]
    retries: {attempts: 1, retry_on: [connect_failure, 502]}
routes:
  - path: /api
    service: api
)";

class ExchangeTest : public ::testing::Test {
 protected:
  // What outlives a config (declared first: it outlives the snapshot).
  boost::asio::io_context control_;
  app::Runtime runtime_{control_.get_executor(), 1};

  void SetUp() override { build(false); }

  // With `admin`, the snapshot records metrics (as when the file has `admin:`).
  void build(bool admin) {
    auto loaded = config::load_string(kConfig, "exchange_test.yaml", app::policy_catalog());
    ASSERT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors[0].to_string());
    if (admin) loaded.config->admin = config::AdminConfig{"127.0.0.1", 0, "token", {}};
    auto built = app::build_snapshot(std::make_shared<const config::Config>(std::move(*loaded.config)), nullptr, runtime_);
    ASSERT_TRUE(built) << built.error().context;
    Snapshot copy = **built;
    for (auto& r : copy.routes) r.chain.push_back(probe_);
    snap_ = std::make_shared<const Snapshot>(std::move(copy));
    worker_.set_snapshot(snap_);
  }

  // Runs one request through a fresh exchange; returns what the client got.
  struct Outcome {
    int status = 0;
    std::string body;
    std::string reason;
    bool aborted = false;
    bool closes = false;
    bool logged = false;
    int status_logged = 0;
    std::vector<std::pair<std::string, std::string>> fields;
    std::string field(std::string_view name) const {
      for (const auto& [n, v] : fields)
        if (n == name) return v;
      return "<absent>";
    }
  };
  Outcome run(std::string method, std::string target, std::string body = {},
              std::vector<std::pair<std::string, std::string>> extra = {}) {
    raw_ = method + " " + target + " HTTP/1.1\r\nHost: gw.test\r\n";
    for (const auto& [n, v] : extra) raw_ += n + ": " + v + "\r\n";
    if (!body.empty()) raw_ += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    raw_ += "\r\n";
    http::RequestHead req;
    EXPECT_EQ(http::parse_request(raw_, snap_->parse_limits, req).state, http::ParseState::Complete);
    MemoryDownstream down(req, "198.51.100.7", body);
    Outcome out;
    {
      Exchange exchange(worker_, snap_, down, up_, scratch_);
      std::exception_ptr failure;
      asio::co_spawn(worker_.io(), exchange.run(), [&](std::exception_ptr e) { failure = e; });
      worker_.io().restart();
      worker_.io().run();
      EXPECT_FALSE(failure);
      out.reason = std::string(exchange.context().reply_reason);
      out.logged = exchange.context().logged;
      out.status_logged = exchange.context().status;
    }
    out.status = down.status();
    out.body = down.body();
    out.aborted = down.aborted();
    out.closes = down.closes();
    out.fields = down.fields();
    return out;
  }

  GatewayShared shared_;
  Worker worker_{0, shared_, nullptr};
  std::shared_ptr<ProbePolicy> probe_ = std::make_shared<ProbePolicy>();
  std::shared_ptr<const Snapshot> snap_;
  ScriptedOutbound up_;
  ExchangeScratch scratch_;
  std::string raw_;
};

TEST_F(ExchangeTest, ProxiesTheAnswerAndLogsOnce) {
  up_.script.push_back({Attempt::Kind::Answer, 200, "hello", {{"Connection", "x-hop"}, {"X-Hop", "1"}, {"X-Kept", "2"}}});
  Outcome o = run("GET", "/api/items?q=1", {}, {{"X-Forwarded-For", "203.0.113.9"}, {"Connection", "x-secret"},
                                              {"X-Secret", "s"}});
  EXPECT_EQ(o.status, 200);
  EXPECT_EQ(o.body, "hello");
  EXPECT_EQ(o.field("X-Kept"), "2");
  EXPECT_EQ(o.field("X-Hop"), "<absent>");       // named by the instance's Connection field
  EXPECT_EQ(o.field("X-Probe"), "seen");          // on_response ran
  EXPECT_NE(o.field("X-Request-Id"), "<absent>");
  ASSERT_EQ(up_.delivered.size(), 1u);
  const std::string& sent = up_.delivered[0];
  EXPECT_EQ(sent.rfind("GET /api/items?q=1 HTTP/1.1\r\nHost: 127.0.0.1:100", 0), 0u) << sent;
  EXPECT_NE(sent.find("X-Forwarded-For: 203.0.113.9, 198.51.100.7\r\n"), std::string::npos) << sent;
  EXPECT_EQ(sent.find("X-Secret"), std::string::npos) << sent;  // named by the client's Connection field
  EXPECT_EQ(probe_->requests, 1);
  EXPECT_EQ(probe_->responses, 1);
  EXPECT_EQ(probe_->logs, 1);
  EXPECT_TRUE(o.logged);
  EXPECT_EQ(up_.finished_complete, 1);
}

TEST_F(ExchangeTest, RequestIdsAre28HexDigitsFromOnePrefixAndACounter) {
  std::string a, b;
  worker_.next_request_id(a);
  worker_.next_request_id(b);
  ASSERT_EQ(a.size(), 28u) << a;
  ASSERT_EQ(b.size(), 28u) << b;
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos) << a;
  EXPECT_EQ(a.substr(0, 18), b.substr(0, 18));  // the worker's random prefix, then its id
  EXPECT_EQ(a.substr(16, 2), "00");
  EXPECT_EQ(std::stoull(b.substr(18), nullptr, 16), std::stoull(a.substr(18), nullptr, 16) + 1);
}

TEST_F(ExchangeTest, NoRouteIsALocal404WithoutPolicies) {
  Outcome o = run("GET", "/elsewhere");
  EXPECT_EQ(o.status, 404);
  EXPECT_EQ(o.reason, "no_route");
  EXPECT_NE(o.body.find("No route"), std::string::npos);
  EXPECT_TRUE(o.logged);
  EXPECT_EQ(probe_->requests, 0);
  EXPECT_TRUE(up_.opened_ports.empty());
}

TEST_F(ExchangeTest, APolicyVerdictStopsTheChainAndResponseHooksStillRun) {
  Outcome o = run("GET", "/api/x", {}, {{"X-Refuse", "1"}});
  EXPECT_EQ(o.status, 403);
  EXPECT_EQ(o.reason, "probe_refused");
  EXPECT_EQ(o.field("X-Probe"), "seen");
  EXPECT_EQ(probe_->logs, 1);
  EXPECT_TRUE(up_.opened_ports.empty());
}

TEST_F(ExchangeTest, AnExceptionIsA500WithItsLogLine) {
  Outcome o = run("GET", "/api/x", {}, {{"X-Throw", "1"}});
  EXPECT_EQ(o.status, 500);
  EXPECT_EQ(o.reason, "internal_error");
  EXPECT_TRUE(o.closes);
  EXPECT_EQ(probe_->logs, 1);
  EXPECT_EQ(shared_.internal_errors.load(), 1u);
}

TEST_F(ExchangeTest, AConnectFailureIsRetriedOnAnotherInstanceWhateverTheMethod) {
  up_.script.push_back({Attempt::Kind::Refuse});
  up_.script.push_back({Attempt::Kind::Answer, 201, "made"});
  Outcome o = run("POST", "/api/orders", "{\"n\":1}");
  EXPECT_EQ(o.status, 201);
  ASSERT_EQ(up_.opened_ports.size(), 2u);
  EXPECT_NE(up_.opened_ports[0], up_.opened_ports[1]);
  ASSERT_EQ(up_.delivered.size(), 1u);
  EXPECT_NE(up_.delivered[0].find("{\"n\":1}"), std::string::npos);
  EXPECT_TRUE(up_.opened_check_idle[0]);  // a POST never takes a pooled connection unchecked
}

TEST_F(ExchangeTest, APostThatReachedTheInstanceIsNeverSentAgain) {
  up_.script.push_back({Attempt::Kind::ResetAfterRead});
  up_.script.push_back({Attempt::Kind::Answer, 200, "second"});
  Outcome o = run("POST", "/api/pay", "amount=10");
  EXPECT_EQ(o.status, 502);
  EXPECT_EQ(o.reason, "bad_response");
  EXPECT_EQ(up_.delivered.size(), 1u);
  EXPECT_EQ(up_.opened_ports.size(), 1u);
}

TEST_F(ExchangeTest, AGetThatFailedWith502IsRetriedOnTheOtherInstance) {
  up_.script.push_back({Attempt::Kind::ResetAfterRead});
  up_.script.push_back({Attempt::Kind::Answer, 200, "second"});
  Outcome o = run("GET", "/api/items");
  EXPECT_EQ(o.status, 200);
  EXPECT_EQ(o.body, "second");
  EXPECT_EQ(up_.delivered.size(), 2u);
  ASSERT_EQ(up_.opened_ports.size(), 2u);
  EXPECT_NE(up_.opened_ports[0], up_.opened_ports[1]);
}

TEST_F(ExchangeTest, AnAnswerInRetryOnIsRetriedOnceThenRelayed) {
  up_.script.push_back({Attempt::Kind::Answer, 502, "first"});
  up_.script.push_back({Attempt::Kind::Answer, 502, "second"});
  Outcome o = run("GET", "/api/items");
  EXPECT_EQ(o.status, 502);
  EXPECT_EQ(o.body, "second");  // attempts: 1 retry; the last answer is the service's own
  EXPECT_EQ(up_.delivered.size(), 2u);
}

TEST_F(ExchangeTest, AWriteThatPutNoByteOnTheWireIsRetriedForAPost) {
  up_.script.push_back({Attempt::Kind::WriteFails});
  up_.script.push_back({Attempt::Kind::Answer, 200, "ok"});
  Outcome o = run("POST", "/api/pay", "amount=10");
  EXPECT_EQ(o.status, 200);
  EXPECT_EQ(up_.delivered.size(), 1u);
}

TEST_F(ExchangeTest, AClosedPooledConnectionReplaysAGetOnAFreshOneToTheSameInstance) {
  up_.script.push_back({Attempt::Kind::PooledClosed, 0, {}, {}, true});
  up_.script.push_back({Attempt::Kind::Answer, 200, "fresh"});
  Outcome o = run("GET", "/api/items");
  EXPECT_EQ(o.status, 200);
  ASSERT_EQ(up_.opened_ports.size(), 2u);
  EXPECT_EQ(up_.opened_ports[0], up_.opened_ports[1]);
  EXPECT_TRUE(up_.opened_pooled_allowed[0]);
  EXPECT_FALSE(up_.opened_pooled_allowed[1]);  // the replay never takes another pooled one
}

TEST_F(ExchangeTest, AClosedPooledConnectionDoesNotReplayAPost) {
  up_.script.push_back({Attempt::Kind::PooledClosed, 0, {}, {}, true});
  up_.script.push_back({Attempt::Kind::Answer, 200, "fresh"});
  Outcome o = run("POST", "/api/pay", "amount=10");
  EXPECT_EQ(o.status, 502);
  EXPECT_EQ(up_.delivered.size(), 1u);
}

TEST_F(ExchangeTest, ABodyOverTheLimitIs413BeforeAnyInstance) {
  std::string big(2 * 1024 * 1024, 'x');
  Outcome o = run("POST", "/api/upload", big);
  EXPECT_EQ(o.status, 413);
  EXPECT_TRUE(o.closes);
  EXPECT_TRUE(up_.opened_ports.empty());
  EXPECT_EQ(probe_->logs, 1);
}

TEST_F(ExchangeTest, AHeadErrorIsAnsweredAndLoggedWithoutPolicies) {
  http::RequestHead req;
  MemoryDownstream down(req, "198.51.100.7");
  bool logged = false;
  {
    Exchange exchange(worker_, snap_, down, up_, scratch_);
    asio::co_spawn(worker_.io(), exchange.reject_head(431, "bad_head"), asio::detached);
    worker_.io().restart();
    worker_.io().run();
    logged = exchange.context().logged;
  }
  EXPECT_EQ(down.status(), 431);
  EXPECT_TRUE(down.closes());
  EXPECT_TRUE(logged);
  EXPECT_EQ(probe_->requests, 0);
}

std::uint64_t requests(core::Metrics& m, const std::string& route, const std::string& service, const std::string& code) {
  return m.counter(kRequestsTotal, {{"route", route}, {"service", service}, {"code", code}}).value();
}

// Every request is counted once, when its log line is written, under its route (or route=""
// when none matched) and its status class; the upstream time only when an instance was asked.
TEST_F(ExchangeTest, MetricsCountEachRequestOnceByRouteAndStatusClass) {
  build(true);
  core::Metrics& m = runtime_.metrics();
  up_.script.push_back({Attempt::Kind::Answer, 200, "ok"});
  EXPECT_EQ(run("GET", "/api/a").status, 200);
  up_.script.push_back({Attempt::Kind::Answer, 204, ""});
  EXPECT_EQ(run("DELETE", "/api/a").status, 204);
  up_.script.push_back({Attempt::Kind::ResetAfterRead});  // 502, after one retry on the other instance
  up_.script.push_back({Attempt::Kind::ResetAfterRead});
  EXPECT_EQ(run("GET", "/api/b").status, 502);
  EXPECT_EQ(run("GET", "/api/c", {}, {{"X-Refuse", "1"}}).status, 403);  // a policy's local reply
  EXPECT_EQ(run("GET", "/elsewhere").status, 404);

  EXPECT_EQ(requests(m, "/api", "api", "2xx"), 2u);
  EXPECT_EQ(requests(m, "/api", "api", "4xx"), 1u);
  EXPECT_EQ(requests(m, "/api", "api", "5xx"), 1u);
  EXPECT_EQ(requests(m, "/api", "api", "3xx"), 0u);
  EXPECT_EQ(requests(m, "", "", "4xx"), 1u);
  EXPECT_EQ(m.histogram(kRequestDuration, {{"route", "/api"}}).read().count(), 4u);
  EXPECT_EQ(m.histogram(kRequestDuration, {{"route", ""}}).read().count(), 1u);
  // The 403 asked no instance; the 502 counts its last attempt.
  EXPECT_EQ(m.histogram(kUpstreamDuration, {{"route", "/api"}}).read().count(), 3u);
  EXPECT_EQ(m.histogram(kUpstreamDuration, {{"route", ""}}).read().count(), 0u);

  // A head that could not be read: no route.
  http::RequestHead req;
  MemoryDownstream down(req, "198.51.100.7");
  {
    Exchange exchange(worker_, snap_, down, up_, scratch_);
    asio::co_spawn(worker_.io(), exchange.reject_head(431, "bad_head"), asio::detached);
    worker_.io().restart();
    worker_.io().run();
  }
  EXPECT_EQ(requests(m, "", "", "4xx"), 2u);
}

// Without `admin:` nothing is recorded: the snapshot has no metrics and no series is made.
TEST_F(ExchangeTest, NoMetricsWithoutAdmin) {
  EXPECT_EQ(snap_->metrics, nullptr);
  EXPECT_EQ(snap_->routes[0].metrics, nullptr);
  up_.script.push_back({Attempt::Kind::Answer, 200, "ok"});
  EXPECT_EQ(run("GET", "/api/a").status, 200);
  for (const auto& f : runtime_.metrics().families()) {
    if (f.name == kRequestsTotal || f.name == kRequestDuration) {
      EXPECT_TRUE(f.series.empty()) << f.name;
    }
  }
}

}  // namespace
}  // namespace gh::proxy
