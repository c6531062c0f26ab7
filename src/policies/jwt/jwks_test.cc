// JWKS: keys and tokens minted by the npm `jose` package (tests/fixtures/jose/jwks.mjs), served by
// a real loopback HTTP server thread whose document the test changes (rotation, outage, junk),
// fetched by the policy's JwksSource on a control loop of its own thread (as the gateway's main
// thread runs it). Time that the sources and policies read is a FakeClock: the tests advance it
// past a refetch window instead of sleeping. Needs node and the fixture's packages, like
// jwt_jose_test.cc.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "policies/jwt/jwks.h"
#include "policies/jwt/jwt.h"
#include "policies/jwt/jose_fixture.h"
#include "policies/jwt/jwt_test_util.h"

#ifndef GH_FIXTURES_DIR
#error "GH_FIXTURES_DIR must point at tests/fixtures"
#endif

namespace gh::policies {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Status = JwtCheck::Status;
using namespace std::chrono_literals;

// A loopback HTTP/1.1 server on its own thread: answers every request with the current document,
// framed as the test chooses, and counts requests.
class JwksServer {
 public:
  enum class Mode { Length, Chunked, Close, Junk, Status500, Huge, Hang, Stall };

  JwksServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 64), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~JwksServer() { stop(); }

  // Closes the listening socket: connections are refused from now on.
  void stop() {
    if (stopped_.exchange(true)) return;
    thread_.join();
    ::close(fd_);
  }
  void set_body(std::string body) {
    std::lock_guard lock(mu_);
    body_ = std::move(body);
  }
  void set_mode(Mode m) { mode_ = m; }
  int requests() const { return requests_.load(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/.well-known/jwks.json"; }
  std::string last_request() {
    std::lock_guard lock(mu_);
    return last_request_;
  }

 private:
  void loop() {
    while (!stopped_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      serve(c);
      ::close(c);
    }
  }
  void serve(int c) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) return;
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      req.append(buf, static_cast<std::size_t>(n));
    }
    ++requests_;
    std::string body;
    {
      std::lock_guard lock(mu_);
      last_request_ = req;
      body = body_;
    }
    std::string out;
    switch (mode_.load()) {
      case Mode::Length:
        out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
              "\r\n\r\n" + body;
        break;
      case Mode::Chunked: {
        out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (std::size_t i = 0; i < body.size(); i += 100) {
          std::string piece = body.substr(i, 100);
          std::ostringstream hex;
          hex << std::hex << piece.size();
          out += hex.str() + "\r\n" + piece + "\r\n";
        }
        out += "0\r\n\r\n";
        break;
      }
      case Mode::Close: out = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body; break;
      case Mode::Junk: out = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json!"; break;
      case Mode::Status500: out = "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"; break;
      case Mode::Huge:
        out = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(2 * 1024 * 1024) + "\r\n\r\n" +
              std::string(64 * 1024, ' ');
        break;
      case Mode::Hang: return;  // says nothing and closes
      case Mode::Stall: std::this_thread::sleep_for(1s); return;  // says nothing for a second
    }
    for (std::size_t sent = 0; sent < out.size();) {
      ssize_t n = ::send(c, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopped_{false};
  std::atomic<Mode> mode_{Mode::Length};
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::string body_ = R"({"keys":[]})";
  std::string last_request_;
  std::thread thread_;
};

class Jwks : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    out_dir_ = jose_fixture::out_dir("gh_jwks_");
    std::string text = jose_fixture::run("jwks.mjs", out_dir_, "jwks.json", error_);
    if (!error_.empty()) return;
    fx_ = json::parse(text, nullptr, false);
    if (fx_.is_discarded() || !fx_.contains("initial")) error_ = "jwks.json is not what jwks.mjs writes";
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!out_dir_.empty()) fs::remove_all(out_dir_, ec);
  }
  void SetUp() override {
    ASSERT_TRUE(error_.empty()) << error_;
    server_.set_body(fx_["initial"].dump());
    clock_.set_wall(core::Clock::Wall(std::chrono::seconds(fx_["now"].get<long long>())));
    control_thread_ = std::thread([this] { control_.run(); });
  }
  void TearDown() override {
    work_.reset();
    control_.stop();
    if (control_thread_.joinable()) control_thread_.join();
  }

  std::shared_ptr<JwksSource> source(JwksSource::Options o) {
    return std::make_shared<JwksSource>(std::move(o), control_.get_executor(), clock_);
  }

  // A policy on `url`, on a clock fixed at the minting time.
  std::unique_ptr<JwtPolicy> policy(const std::string& url, std::chrono::milliseconds min_refetch,
                                    const std::string& extra_yaml = ", jwks_refresh: 1h") {
    YAML::Node n = YAML::Load("{type: jwt" + extra_yaml + "}");
    n["jwks_url"] = url;
    n["issuer"] = fx_["issuer"].get<std::string>();
    n["audience"] = fx_["audience"].get<std::string>();
    config::PolicyConfig entry;
    entry.name = "auth";
    entry.type = "jwt";
    entry.path = "policies.auth";
    entry.options = n;
    config::Diagnostics diag("t.yaml");
    JwtConfig cfg = parse_jwt(entry, diag);
    for (const auto& d : diag.list()) ADD_FAILURE() << d.to_string();
    if (!diag.empty()) return nullptr;
    cfg.jwks_min_refetch = min_refetch;
    JwksSource::Options o;
    o.url = cfg.jwks_url;
    o.refresh = cfg.jwks_refresh;
    o.min_refetch = cfg.jwks_min_refetch;
    return std::make_unique<JwtPolicy>("auth", std::move(cfg), clock_, 4, source(std::move(o)));
  }

  // Waits until the source has finished `n` fetches.
  static bool wait_fetches(const JwtPolicy& p, std::uint64_t n, std::chrono::milliseconds bound = 5s) {
    const auto until = std::chrono::steady_clock::now() + bound;
    while (p.jwks()->fetches_finished() < n) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  // One request through on_request on a throwaway worker.
  static proxy::Verdict run(JwtPolicy& p, const std::string& token, unsigned worker = 0) {
    jwt_test::Harness h(worker);
    h.bearer(token);
    return h.run(p);
  }
  static bool accepted(const proxy::Verdict& v) { return std::holds_alternative<proxy::Continue>(v); }
  static std::string token_of(const std::string& kid) {
    for (const auto& t : fx_["tokens"])
      if (t["kid"] == kid) return t["token"].get<std::string>();
    return {};
  }
  // A well-formed token naming `kid`; its signature is never looked at.
  static std::string made_up(const std::string& kid) {
    return jwt_test::b64url(json{{"alg", "RS256"}, {"kid", kid}}.dump()) + "." +
           jwt_test::b64url(R"({"sub":"x"})") + "." + jwt_test::b64url("sig");
  }

  JwksServer server_;
  core::FakeClock clock_;
  boost::asio::io_context control_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ = boost::asio::make_work_guard(control_);
  std::thread control_thread_;
  static inline std::string error_;
  static inline fs::path out_dir_;
  static inline json fx_;
};

TEST(JwksUrl, ParsesHttpAndHttpsAndRefusesTheRest) {
  std::string error;
  auto u = parse_http_url("http://idp.example:8080/keys?v=1", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->host, "idp.example");
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->target, "/keys?v=1");
  EXPECT_EQ(u->host_header, "idp.example:8080");
  u = parse_http_url("http://[::1]/", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "80");
  u = parse_http_url("http://idp", error);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->target, "/");
  u = parse_http_url("https://idp/keys", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->port, "443");
  EXPECT_EQ(u->host_header, "idp");
  u = parse_http_url("http://IdP.example/realms/a%20b/certs?x=%2F", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->target, "/realms/a%20b/certs?x=%2F");  // sent as written
  EXPECT_EQ(u->host_header, "IdP.example");
  for (const char* bad : {"ftp://idp/keys", "idp/keys", "http:///keys", "http://idp:0/", "http://idp:99999/",
                          "http://idp:x/", "http://u@idp/", "http://idp/a b", "http://idp/#f", "http://[::1/"})
    EXPECT_FALSE(parse_http_url(bad, error)) << bad;
}

TEST(JwksConfig, ValidatesTheUrlAndTheRefresh) {
  struct Case {
    const char* yaml;
    const char* error;  // nullptr: accepted
  };
  for (const Case& c : std::initializer_list<Case>{
           {"{type: jwt, jwks_url: 'http://127.0.0.1:9/jwks'}", nullptr},
           {"{type: jwt, jwks_url: 'http://127.0.0.1:9/jwks', jwks_refresh: 30s}", nullptr},
           {"{type: jwt, jwks_url: 'https://idp.example/jwks'}", nullptr},
           {"{type: jwt, jwks_url: 'ftp://idp.example/jwks'}", "expected an http(s)://host[:port]/path URL"},
           {"{type: jwt, jwks_url: 'http://127.0.0.1:9/jwks', jwks_refresh: soon}", "positive duration"},
           {"{type: jwt, jwks_url: 'http://127.0.0.1:9/jwks', algorithms: [HS256]}", "HS256 cannot be used"},
       }) {
    config::PolicyConfig entry;
    entry.name = "auth";
    entry.type = "jwt";
    entry.path = "policies.auth";
    entry.options = YAML::Load(c.yaml);
    config::Diagnostics diag("t.yaml");
    JwtConfig cfg = parse_jwt(entry, diag);
    if (c.error == nullptr) {
      EXPECT_TRUE(diag.empty()) << c.yaml << ": " << (diag.empty() ? "" : diag.list().front().to_string());
      EXPECT_EQ(cfg.key_kind, JwtKeyKind::Jwks);
      EXPECT_EQ(cfg.algorithms, default_algorithms(JwtKeyKind::Jwks));
    } else {
      ASSERT_FALSE(diag.empty()) << c.yaml;
      EXPECT_NE(diag.list().front().to_string().find(c.error), std::string::npos) << diag.list().front().to_string();
    }
  }
}

TEST_F(Jwks, KeySetParsesRsaEcAndEd25519AndIgnoresOct) {
  std::string error;
  std::vector<std::string> skipped;
  auto set = KeySet::parse(fx_["initial"].dump(), 1, error, &skipped);
  ASSERT_NE(set, nullptr) << error;
  EXPECT_EQ(set->size(), 4u);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("oct"), std::string::npos) << skipped[0];
  ASSERT_NE(set->find("rsa-1"), nullptr);
  EXPECT_EQ(set->find("rsa-1")->kind, JwtKeyKind::Rsa);
  EXPECT_EQ(set->find("rsa-1")->algorithms, std::vector<JwtAlg>{JwtAlg::RS256});  // pinned by the JWK
  EXPECT_EQ(set->find("ec-256")->kind, JwtKeyKind::EcP256);
  EXPECT_EQ(set->find("ec-384")->kind, JwtKeyKind::EcP384);
  EXPECT_EQ(set->find("ed-1")->kind, JwtKeyKind::Ed25519);
  EXPECT_EQ(set->find("hmac-1"), nullptr);
  EXPECT_EQ(set->find(""), nullptr);  // several keys: a token needs a kid
  EXPECT_EQ(set->find("../../etc/passwd"), nullptr);

  EXPECT_EQ(KeySet::parse("not json", 1, error), nullptr);
  EXPECT_EQ(KeySet::parse(R"({"keys": 3})", 1, error), nullptr);
  // A point that is not on the curve, a short RSA modulus, an unknown curve: skipped.
  json bad = fx_["initial"];
  bad["keys"][1]["y"] = bad["keys"][1]["x"];
  bad["keys"][0]["n"] = jwt_test::b64url(std::string(128, '\x7f'));
  bad["keys"][3]["crv"] = "Ed448";
  skipped.clear();
  set = KeySet::parse(bad.dump(), 2, error, &skipped);
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(set->size(), 1u);  // ec-384 only
  EXPECT_NE(set->find("ec-384"), nullptr);
  EXPECT_EQ(skipped.size(), 4u);
}

TEST_F(Jwks, JoseTokensVerifyThroughThePolicy) {
  auto p = policy(server_.url(), 30s);
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(wait_fetches(*p, 1));
  EXPECT_EQ(server_.requests(), 1);
  EXPECT_NE(server_.last_request().find("GET /.well-known/jwks.json HTTP/1.1\r\n"), std::string::npos);
  for (const auto& t : fx_["tokens"]) {
    const std::string token = t["token"].get<std::string>();
    jwt_test::Harness h;
    h.bearer(token);
    proxy::Verdict v = h.run(*p);
    ASSERT_TRUE(accepted(v)) << t["alg"] << ": " << p->check("Bearer " + token).detail;
    EXPECT_EQ(h.ctx->principal->subject, t["sub"].get<std::string>());
    EXPECT_EQ(explain(*p, "Bearer " + token), "valid, sub=" + t["sub"].get<std::string>() + ", role=admin, expires in 1h");
  }
  // The algorithm rules hold with a JWKS.
  for (const char* name : {"alg_mismatch", "pinned_alg", "hs256_with_kid", "alg_none"}) {
    JwtCheck c = p->check("Bearer " + fx_[name].get<std::string>());
    EXPECT_EQ(c.status, Status::Invalid) << name;
    EXPECT_FALSE(c.unknown_kid) << name << ": " << c.detail;
    EXPECT_FALSE(accepted(run(*p, fx_[name].get<std::string>()))) << name;
  }
  EXPECT_EQ(server_.requests(), 1);  // none of these is an unknown kid
}

TEST_F(Jwks, TokensAreRefusedUntilKeysArrive) {
  server_.stop();
  auto p = policy(server_.url(), 30s);
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(wait_fetches(*p, 1));
  EXPECT_EQ(p->jwks()->current(), nullptr);
  proxy::Verdict v = run(*p, token_of("rsa-1"));
  ASSERT_TRUE(std::holds_alternative<proxy::LocalReply>(v));
  EXPECT_EQ(std::get<proxy::LocalReply>(v).status, 401);
  EXPECT_EQ(std::get<proxy::LocalReply>(v).message, "Invalid token");
  EXPECT_EQ(p->check("Bearer " + token_of("rsa-1")).detail, "no JWKS keys yet");
}

TEST_F(Jwks, RotatedKeyIsAcceptedAfterTheRefetch) {
  auto p = policy(server_.url(), 200ms);
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(wait_fetches(*p, 1));
  const std::string rotated = fx_["rotated_token"].get<std::string>();
  EXPECT_TRUE(accepted(run(*p, token_of("rsa-1"))));
  EXPECT_EQ(p->check("Bearer " + rotated).detail, "unknown kid");

  server_.set_body(fx_["rotated"].dump());
  clock_.advance(250ms);  // past the refetch window
  {
    // An unknown kid cannot be decided at once: the exchange must await on_request.
    jwt_test::Harness h(0);
    h.bearer(rotated);
    EXPECT_FALSE(p->decide_now(*h.ctx).has_value());
    EXPECT_EQ(p->jwks()->fetches_started(), 1u);  // asking started no fetch
  }
  // The request that sees the new kid triggers the refetch and waits for it.
  proxy::Verdict v = run(*p, rotated);
  ASSERT_TRUE(accepted(v)) << p->check("Bearer " + rotated).detail;
  EXPECT_EQ(server_.requests(), 2);
  EXPECT_EQ(p->jwks()->fetches_started(), 2u);
  // rsa-1 is gone: its token is refused now, even though worker 0 had it cached.
  EXPECT_FALSE(accepted(run(*p, token_of("rsa-1"))));
  EXPECT_TRUE(accepted(run(*p, token_of("ec-256"))));
}

TEST_F(Jwks, AFloodOfMadeUpKidsFetchesAtMostOncePerWindow) {
  // With the real 30s window, a flood right after the first fetch fetches nothing more.
  {
    auto p = policy(server_.url(), 30s);
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(wait_fetches(*p, 1));
    for (int i = 0; i < 200; ++i) EXPECT_FALSE(accepted(run(*p, made_up("kid-" + std::to_string(i)))));
    EXPECT_EQ(server_.requests(), 1);
    EXPECT_EQ(p->jwks()->fetches_started(), 1u);
  }
  // With a 1s window, a burst from four workers at once, after the window opened: one fetch.
  const int before = server_.requests();
  auto p = policy(server_.url(), 1s);
  ASSERT_TRUE(wait_fetches(*p, 1));
  clock_.advance(1100ms);
  std::atomic<int> refused{0};
  std::vector<std::thread> workers;
  for (unsigned w = 0; w < 4; ++w)
    workers.emplace_back([&, w] {
      for (int i = 0; i < 50; ++i)
        if (!accepted(run(*p, made_up("w" + std::to_string(w) + "-" + std::to_string(i)), w))) ++refused;
    });
  for (auto& t : workers) t.join();
  EXPECT_EQ(refused.load(), 200);
  EXPECT_EQ(server_.requests() - before, 2);  // the first fetch and one refetch
  EXPECT_EQ(p->jwks()->fetches_started(), 2u);
  EXPECT_EQ(p->stats().rejected, 200u);
  EXPECT_EQ(p->stats().jwks_fetches, 2u);
}

TEST_F(Jwks, OldKeysKeepWorkingWhenTheEndpointFails) {
  auto p = policy(server_.url(), 100ms);
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(wait_fetches(*p, 1));
  const auto generation = p->jwks()->current()->generation();
  std::uint64_t fetches = 1;
  for (JwksServer::Mode m : {JwksServer::Mode::Junk, JwksServer::Mode::Status500, JwksServer::Mode::Huge,
                             JwksServer::Mode::Hang}) {
    server_.set_mode(m);
    clock_.advance(120ms);
    EXPECT_FALSE(accepted(run(*p, made_up("unknown"))));  // triggers a refetch, which fails
    ASSERT_TRUE(wait_fetches(*p, ++fetches));
    EXPECT_EQ(p->jwks()->current()->generation(), generation);
    EXPECT_EQ(p->check("Bearer " + token_of("ec-384")).status, Status::Valid);
  }
  server_.stop();
  clock_.advance(120ms);
  EXPECT_FALSE(accepted(run(*p, made_up("unknown"))));
  ASSERT_TRUE(wait_fetches(*p, ++fetches));
  for (const auto& t : fx_["tokens"])
    EXPECT_EQ(p->check("Bearer " + t["token"].get<std::string>()).status, Status::Valid) << t["kid"];
  EXPECT_TRUE(accepted(run(*p, token_of("ed-1"))));
}

TEST_F(Jwks, ChunkedAndCloseDelimitedBodiesAndPeriodicRefresh) {
  for (JwksServer::Mode m : {JwksServer::Mode::Chunked, JwksServer::Mode::Close}) {
    server_.set_mode(m);
    auto p = policy(server_.url(), 30s);
    ASSERT_TRUE(wait_fetches(*p, 1));
    ASSERT_NE(p->jwks()->current(), nullptr);
    EXPECT_EQ(p->jwks()->current()->size(), 4u);
    EXPECT_EQ(p->check("Bearer " + token_of("ed-1")).status, Status::Valid);
  }
  // jwks_refresh: the key set follows the document without any unknown kid.
  server_.set_mode(JwksServer::Mode::Length);
  auto p = policy(server_.url(), 30s, ", jwks_refresh: 100ms");
  ASSERT_TRUE(wait_fetches(*p, 1));
  server_.set_body(fx_["rotated"].dump());
  ASSERT_TRUE(wait_fetches(*p, 3));
  EXPECT_EQ(p->check("Bearer " + fx_["rotated_token"].get<std::string>()).status, Status::Valid);
}

TEST_F(Jwks, EveryFetchHasADeadline) {
  server_.set_mode(JwksServer::Mode::Stall);
  JwksSource::Options o;
  o.url = server_.url();
  o.timeout = 200ms;
  // The deadline is a real timer on the control loop: measured on the real clock.
  const auto start = std::chrono::steady_clock::now();
  auto s = source(o);
  while (s->fetches_finished() == 0 && std::chrono::steady_clock::now() - start < 900ms)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(s->fetches_finished(), 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 900ms);
  EXPECT_EQ(s->current(), nullptr);
  EXPECT_EQ(s->fetches_started(), 1u);
  EXPECT_FALSE(s->request_refresh());  // inside the 30s window
  clock_.advance(30s);
  EXPECT_TRUE(s->request_refresh());  // the window has passed on the source's clock
}

TEST_F(Jwks, RefetchWindowIsReadFromTheClock) {
  JwksSource::Options o;
  o.url = server_.url();
  o.refresh = 1h;
  o.min_refetch = 10s;
  auto s = source(o);
  const auto wait = [&](std::uint64_t n) {
    const auto until = std::chrono::steady_clock::now() + 5s;  // bounds a real fetch, not the window
    while (s->fetches_finished() < n && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(2ms);
    return s->fetches_finished() >= n;
  };
  ASSERT_TRUE(wait(1));
  clock_.advance(10s - 1ns);
  EXPECT_FALSE(s->request_refresh());  // one nanosecond short of the window
  clock_.advance(1ns);
  EXPECT_TRUE(s->request_refresh());
  ASSERT_TRUE(wait(2));
  EXPECT_EQ(s->fetches_started(), 2u);
  EXPECT_FALSE(s->request_refresh());  // the window starts again at that fetch
  EXPECT_EQ(server_.requests(), 2);
}

TEST_F(Jwks, KidWithPathCharactersIsJustAnUnknownKid) {
  auto p = policy(server_.url(), 30s);
  ASSERT_TRUE(wait_fetches(*p, 1));
  const std::string token = fx_["path_kid"].get<std::string>();
  JwtCheck c = p->check("Bearer " + token);
  EXPECT_EQ(c.status, Status::Invalid);
  EXPECT_TRUE(c.unknown_kid);
  EXPECT_EQ(c.detail, "unknown kid");
  proxy::Verdict v = run(*p, token);
  ASSERT_TRUE(std::holds_alternative<proxy::LocalReply>(v));
  EXPECT_EQ(std::get<proxy::LocalReply>(v).status, 401);
  EXPECT_EQ(std::get<proxy::LocalReply>(v).message, "Invalid token");
  EXPECT_EQ(server_.requests(), 1);  // inside the window: no refetch, and never a file
}

}  // namespace
}  // namespace gh::policies
