// gRPC through the gateway (SPEC §7 "gRPC"), with the npm `@grpc/grpc-js` package at both ends:
// the service is tests/fixtures/grpc/server.mjs and the client tests/fixtures/grpc/client.mjs
// (one call per run, its outcome as one JSON line), except where a test needs to see the
// HTTP/2 answer itself (then the harness's H2Client sends the gRPC request by hand). The
// packages are installed by scripts/deps.sh (`npm ci`), never here.
// The gateway listens h2c (prior knowledge) or TLS with ALPN h2; the service is reached with
// `protocol: h2c`, an `h2c://` instance, or `protocol: h2` over TLS.
// Covered: the four call kinds with metadata, -bin metadata and trailers intact, messages
// streamed one by one, and messages larger than the flow-control windows; a service's own status
// passed through; gateway-made errors as gRPC statuses (jwt 16, require_role 7, rate_limit 8, no
// route 12, service down 14, timeouts 4), also while the client's request is still open;
// deadlines from the client and from `timeouts.response`; grpc-timeout honoured by the gateway
// itself; `timeouts.idle` inside a stream; a client's cancel and RST_STREAM reaching the service.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <memory>
#include <tuple>

#include "harness/assertions.h"
#include "harness/child.h"
#include "harness/h2.h"
#include "harness/json.h"
#include "harness/tls.h"

#ifndef GH_FIXTURES_DIR
#error "GH_FIXTURES_DIR must point at tests/fixtures"
#endif

namespace gh::integ {
namespace {

namespace fs = std::filesystem;

const std::string kSecret = "grpc-tests-secret-of-32-bytes-long!";

fs::path fixture_dir() { return fs::path(GH_FIXTURES_DIR) / "grpc"; }

std::string missing_fixture() {
  if (fs::exists(fixture_dir() / "node_modules" / "@grpc" / "grpc-js" / "package.json")) return "";
  return (fixture_dir() / "node_modules").string() + " is missing: run scripts/deps.sh (it runs npm ci there)";
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

// The fixture service (server.mjs), cleartext or TLS. Its stdout lines are kept, so a test can
// wait for one ("cancelled h1") and show them all when it fails.
class GrpcService {
 public:
  struct Options {
    std::optional<CertFiles> tls;
    bool ignore_deadlines = true;  // the gateway's timeouts are what ends a slow call
    int port = 0;
  };
  explicit GrpcService(const Options& o) : node_("server.mjs", args(o)) {
    if (auto l = node_.line(15s); l && l->rfind("listening ", 0) == 0) port_ = std::atoi(l->c_str() + 10);
  }
  bool ok() const { return port_ > 0; }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // A line starting with PREFIX, among those already seen or within TIMEOUT; nullopt otherwise.
  std::optional<std::string> wait_line(const std::string& prefix, Millis timeout = 5s) {
    const auto deadline = Clock::now() + timeout;
    for (std::size_t i = 0;; ++i) {
      while (i >= lines_.size()) {
        const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
        if (left <= Millis(0)) return std::nullopt;
        auto l = node_.line(left);
        if (!l) return std::nullopt;
        lines_.push_back(*l);
      }
      if (lines_[i].rfind(prefix, 0) == 0) return lines_[i];
    }
  }
  // Reads what the service printed within TIMEOUT.
  void drain(Millis timeout = 200ms) {
    while (auto l = node_.line(timeout)) lines_.push_back(*l);
  }
  std::string lines() const {
    std::string out;
    for (const auto& l : lines_) out += "  " + l + "\n";
    return "service output:\n" + out;
  }

 private:
  static std::vector<std::string> args(const Options& o) {
    std::vector<std::string> a = {"--port", std::to_string(o.port)};
    if (o.tls) a.insert(a.end(), {"--tls", o.tls->cert, o.tls->key});
    if (o.ignore_deadlines) a.push_back("--ignore-deadlines");
    return a;
  }
  Node node_;
  int port_ = 0;
  std::vector<std::string> lines_;
};

// What client.mjs printed for one call.
struct CallResult {
  bool ran = false;
  int code = -1;
  std::string details;
  std::vector<Json> messages;
  std::vector<double> times;  // when each message arrived, ms after the call started
  Json metadata, trailers;
  double ms = -1;
  std::string raw;  // the line as printed, for failure messages

  std::string md(std::string_view key) const { return value(metadata, key); }
  std::string trailer(std::string_view key) const { return value(trailers, key); }
  // The gRPC status came from a grpc-status field, not from grpc-js's reading of an HTTP status or
  // of a reset stream.
  bool status_from_grpc_status() const {
    return details.find("Received HTTP status code") == std::string::npos &&
           details.find("Received RST_STREAM") == std::string::npos;
  }

 private:
  static std::string value(const Json& j, std::string_view key) {
    const Json* v = j.get(key);
    if (v == nullptr) return "<absent>";
    if (v->type == Json::Type::String) return v->string;
    std::string out;
    for (const auto& e : v->array) out += (out.empty() ? "" : "|") + e.string;
    return out;
  }
};

// The test.Echo service's message: a JSON object in a gRPC frame (uncompressed, big-endian length).
std::string grpc_frame(const std::string& json) {
  std::string f(5, '\0');
  const auto n = static_cast<std::uint32_t>(json.size());
  f[1] = static_cast<char>(n >> 24);
  f[2] = static_cast<char>(n >> 16);
  f[3] = static_cast<char>(n >> 8);
  f[4] = static_cast<char>(n);
  return f + json;
}

// A grpc-timeout value ("250m", "3S") in milliseconds; -1 when it cannot be read.
double grpc_timeout_ms(const std::string& v) {
  if (v.size() < 2) return -1;
  const char unit = v.back();
  const std::string digits = v.substr(0, v.size() - 1);
  if (digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  const double n = std::stod(digits);
  switch (unit) {
    case 'H': return n * 3'600'000;
    case 'M': return n * 60'000;
    case 'S': return n * 1000;
    case 'm': return n;
    case 'u': return n / 1000;
    case 'n': return n / 1'000'000;
    default: return -1;
  }
}

// R is a gateway-made gRPC error as SPEC §7 says: HTTP 200, content-type application/grpc,
// grpc-status CODE and a grpc-message (in the head of a trailers-only answer, or in trailers).
::testing::AssertionResult IsGrpcError(const H2Response& r, int code) {
  if (r.status != 200) return ::testing::AssertionFailure() << "HTTP status " << r.status << ", not 200\n" << r.describe();
  const std::string ct = r.headers.value_or("content-type", "");
  if (ct.rfind("application/grpc", 0) != 0)
    return ::testing::AssertionFailure() << "content-type \"" << ct << "\", not application/grpc\n" << r.describe();
  auto status = r.headers.get("grpc-status");
  auto message = r.headers.get("grpc-message");
  if (!status) {
    status = r.trailers.get("grpc-status");
    message = r.trailers.get("grpc-message");
  }
  if (!status) return ::testing::AssertionFailure() << "no grpc-status\n" << r.describe();
  if (*status != std::to_string(code))
    return ::testing::AssertionFailure() << "grpc-status " << *status << ", not " << code << "\n" << r.describe();
  if (!message || message->empty()) return ::testing::AssertionFailure() << "no grpc-message\n" << r.describe();
  return ::testing::AssertionSuccess();
}

enum class Listener { H2c, Tls };
enum class Backend { H2c, H2cUrl, H2Tls };

std::string listener_name(Listener l) { return l == Listener::H2c ? "h2c" : "tls"; }
void PrintTo(Listener l, std::ostream* os) { *os << (l == Listener::H2c ? "h2c listener" : "TLS listener (ALPN h2)"); }
std::string backend_name(Backend b) {
  switch (b) {
    case Backend::H2c: return "protocol_h2c";
    case Backend::H2cUrl: return "h2c_url";
    case Backend::H2Tls: return "protocol_h2_tls";
  }
  return "?";
}
void PrintTo(Backend b, std::ostream* os) {
  switch (b) {
    case Backend::H2c: *os << "service with protocol: h2c"; break;
    case Backend::H2cUrl: *os << "service with an h2c:// instance"; break;
    case Backend::H2Tls: *os << "service with protocol: h2 over TLS"; break;
  }
}

// Every test: a private CA with certificates for the gateway (api.test) and the service
// (svc.test, 127.0.0.1); a gateway listening as the test says; the fixture service behind it.
class GrpcBase : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string missing = missing_fixture();
    ASSERT_TRUE(missing.empty()) << missing;
  }

  static CertSpec names(const std::string& dns) {
    CertSpec s;
    s.cn = dns;
    s.dns = {dns};
    s.ips = {"127.0.0.1"};
    return s;
  }

  // Starts the fixture service for BACKEND (TLS for H2Tls).
  void start_service(Backend backend, bool ignore_deadlines = true) {
    backend_ = backend;
    GrpcService::Options o;
    if (backend == Backend::H2Tls) o.tls = svc_cert;
    o.ignore_deadlines = ignore_deadlines;
    svc = std::make_unique<GrpcService>(o);
    ASSERT_TRUE(svc->ok()) << "the gRPC fixture service did not start";
  }

  // The service `grpc` for the running fixture service, with EXTRA keys (4-space indented).
  std::string service_yaml(const std::string& extra = "") const { return service_yaml_for(svc->port(), extra); }
  std::string service_yaml_for(int port, const std::string& extra = "") const {
    const std::string p = std::to_string(port);
    std::string y;
    switch (backend_) {
      case Backend::H2c: y = "  grpc:\n    instances: [\"http://127.0.0.1:" + p + "\"]\n    protocol: h2c\n"; break;
      case Backend::H2cUrl: y = "  grpc:\n    instances: [\"h2c://127.0.0.1:" + p + "\"]\n"; break;
      case Backend::H2Tls:
        y = "  grpc:\n    instances: [\"https://127.0.0.1:" + p + "\"]\n    protocol: h2\n    tls: {ca: \"" +
            pki.ca_file() + "\"}\n";
        break;
    }
    return y + extra;
  }

  // Starts the gateway: SERVICES (under `services:`), ROUTES (under `routes:`), POLICIES (under
  // `policies:`, optional) and TOP (top-level keys).
  void start_gateway(const std::string& services, const std::string& routes, const std::string& policies = "",
                     const std::string& top = "") {
    Gateway::Options o;
    o.add_header = false;
    std::string listen = listener_ == Listener::Tls
                             ? fill("  - address: \"127.0.0.1:{PORT}\"\n    tls: {cert: \"{C}\", key: \"{K}\"}\n",
                                    {{"C", gw_cert.cert}, {"K", gw_cert.key}})
                             : "  - address: \"127.0.0.1:{PORT}\"\n    h2c: true\n";
    gw = std::make_unique<Gateway>("listen:\n" + listen + "workers: 2\naccess_log: off\n" + top + "\nservices:\n" +
                                       services + (policies.empty() ? "" : "policies:\n" + policies) +
                                       "routes:\n" + routes,
                                   o);
    GH_START(*gw);
  }

  // The usual gateway: the service (with SERVICE_EXTRA) on /test.Echo with ROUTE_EXTRA.
  void start_simple(const std::string& service_extra = "", const std::string& route_extra = "",
                    const std::string& policies = "", const std::string& top = "") {
    start_gateway(service_yaml(service_extra), "  - path: /test.Echo\n    service: grpc\n" + route_extra, policies, top);
  }

  // One call through the gateway with client.mjs.
  CallResult call(const std::string& kind, const std::string& json = "{}",
                  const std::vector<std::string>& metadata = {}, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> a = {"--target", "127.0.0.1:" + std::to_string(gw->port()), "--call", kind, "--json", json};
    if (listener_ == Listener::Tls) a.insert(a.end(), {"--tls", pki.ca_file(), "--authority", "api.test"});
    for (const auto& m : metadata) a.insert(a.end(), {"--metadata", m});
    a.insert(a.end(), extra.begin(), extra.end());
    Node client("client.mjs", a);
    CallResult r;
    auto line = client.line(30s);
    if (!line) return r;
    r.raw = *line;
    auto j = Json::parse(*line);
    if (!j || !j->get("code") || j->get("code")->type != Json::Type::Number) return r;
    r.ran = true;
    r.code = static_cast<int>(j->get("code")->number);
    r.details = j->get("details")->string;
    r.messages = j->get("messages")->array;
    for (const auto& t : j->get("times")->array) r.times.push_back(t.number);
    r.metadata = *j->get("metadata");
    r.trailers = *j->get("trailers");
    r.ms = j->get("ms")->number;
    return r;
  }

  // A gRPC request sent by hand over HTTP/2 (no client-side deadline or retry): METHOD of
  // test.Echo with one message JSON and HEADERS beside the usual ones.
  H2Response raw_call(const std::string& path, const std::string& json, const Headers& headers = {},
                      Millis timeout = 10s) {
    H2Options o;
    o.authority = listener_ == Listener::Tls ? "api.test" : "gw.test";
    o.timeout = timeout;
    if (listener_ == Listener::Tls) {
      TlsOptions t;
      t.ca_file = pki.ca_file();
      t.verify_name = "api.test";
      t.sni = "api.test";
      o.tls = t;
    }
    H2Client c(gw->port(), o);
    EXPECT_TRUE(c.ok()) << c.error() << "\n" << gw->diagnostics();
    Headers h{{"content-type", "application/grpc"}, {"te", "trailers"}};
    for (const auto& f : headers.list()) h.add(f.name, f.value);
    const auto id = c.submit("POST", path, h, grpc_frame(json));
    c.run(timeout);
    return c.response(id);
  }

  std::string context() const {
    return (svc ? svc->lines() : std::string()) + (gw ? gw->diagnostics() : std::string());
  }

  // A token for the tests' secret, minted by `gatehouse token`.
  static std::string token(const std::string& role = "") {
    std::vector<std::string> a = {"token", "--secret", kSecret, "--sub", "alice", "--ttl", "1h"};
    if (!role.empty()) a.insert(a.end(), {"--role", role});
    auto r = run_gatehouse(a);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string t = r.out;
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    return t;
  }

  Listener listener_ = Listener::H2c;
  Backend backend_ = Backend::H2c;
  TempDir dir;
  Pki pki{dir.path()};
  CertFiles gw_cert = pki.issue("gateway", names("api.test"));
  CertFiles svc_cert = pki.issue("service", names("svc.test"));
  std::unique_ptr<GrpcService> svc;
  std::unique_ptr<Gateway> gw;
};

#define GH_CALL_RAN(r) ASSERT_TRUE((r).ran) << "client.mjs printed no result: " << (r).raw << "\n" << context()

// ---- the four call kinds, for every listener and every way to reach the service ----------------

class GrpcCalls : public GrpcBase, public ::testing::WithParamInterface<std::tuple<Listener, Backend>> {
 protected:
  void SetUp() override {
    GrpcBase::SetUp();
    if (HasFatalFailure()) return;
    listener_ = std::get<0>(GetParam());
    start_service(std::get<1>(GetParam()));
    if (HasFatalFailure()) return;
    start_simple();
  }
};

INSTANTIATE_TEST_SUITE_P(
    Grpc, GrpcCalls,
    ::testing::Combine(::testing::Values(Listener::H2c, Listener::Tls),
                       ::testing::Values(Backend::H2c, Backend::H2cUrl, Backend::H2Tls)),
    [](const ::testing::TestParamInfo<std::tuple<Listener, Backend>>& info) {
      return listener_name(std::get<0>(info.param)) + "_to_" + backend_name(std::get<1>(info.param));
    });

// Bytes that are no valid text, as base64: 00 01 7f 80 fe ff 0d 0a.
const std::string kBinary = "AAF/gP7/DQo=";

TEST_P(GrpcCalls, UnaryKeepsMetadataBinaryMetadataAndTrailers) {
  CallResult r = call("unary", R"({"greeting":"héllo","n":42})",
                      {"x-echo-plain=one two", "x-echo-data-bin=" + kBinary, "x-not-echoed=z"});
  GH_CALL_RAN(r);
  EXPECT_EQ(r.code, 0) << r.raw << "\n" << context();
  ASSERT_EQ(r.messages.size(), 1u) << r.raw;
  EXPECT_TRUE(r.messages[0].get("greeting") && r.messages[0].get("greeting")->is_string("héllo")) << r.raw;
  EXPECT_TRUE(r.messages[0].get("n") && r.messages[0].get("n")->is_number(42)) << r.raw;
  // The service's response metadata, and its trailers, each with the binary value byte for byte.
  EXPECT_EQ(r.md("x-echo-plain"), "one two") << r.raw;
  EXPECT_EQ(r.md("x-echo-data-bin"), kBinary) << r.raw;
  EXPECT_EQ(r.trailer("x-echo-plain"), "one two") << r.raw;
  EXPECT_EQ(r.trailer("x-echo-data-bin"), kBinary) << r.raw;
  EXPECT_EQ(r.trailer("x-trailer"), "done") << r.raw;
  EXPECT_EQ(r.md("x-not-echoed"), "<absent>") << r.raw;
  // The service saw a gRPC request: te: trailers.
  auto seen = svc->wait_line("call Unary");
  ASSERT_TRUE(seen) << context();
  EXPECT_NE(seen->find(" te=trailers"), std::string::npos) << *seen;
}

TEST_P(GrpcCalls, ClientStreamingDeliversEveryMessage) {
  std::string messages;
  std::string expected;
  for (int i = 0; i < 20; ++i) {
    const std::string t = "m" + std::to_string(i) + ";";
    messages += std::string(messages.empty() ? "" : ",") + "{\"text\":\"" + t + "\"}";
    expected += t;
  }
  CallResult r = call("client_stream", "{\"messages\":[" + messages + "]}", {"x-echo-k=v", "x-echo-b-bin=" + kBinary});
  GH_CALL_RAN(r);
  EXPECT_EQ(r.code, 0) << r.raw << "\n" << context();
  ASSERT_EQ(r.messages.size(), 1u) << r.raw;
  EXPECT_TRUE(r.messages[0].get("count") && r.messages[0].get("count")->is_number(20)) << r.raw;
  EXPECT_TRUE(r.messages[0].get("concat") && r.messages[0].get("concat")->is_string(expected)) << r.raw;
  EXPECT_EQ(r.md("x-echo-k"), "v") << r.raw;
  EXPECT_EQ(r.md("x-echo-b-bin"), kBinary) << r.raw;
  EXPECT_EQ(r.trailer("x-echo-b-bin"), kBinary) << r.raw;
  EXPECT_EQ(r.trailer("x-trailer"), "done") << r.raw;
}

TEST_P(GrpcCalls, ServerStreamingArrivesMessageByMessage) {
  // Five messages 250ms apart: each reaches the client as the service sends it, not at the end.
  CallResult r = call("server_stream", R"({"count":5,"delay_ms":250})", {"x-echo-k=v", "x-echo-b-bin=" + kBinary});
  GH_CALL_RAN(r);
  EXPECT_EQ(r.code, 0) << r.raw << "\n" << context();
  ASSERT_EQ(r.messages.size(), 5u) << r.raw;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(r.messages[i].get("i") && r.messages[i].get("i")->is_number(i)) << r.raw;
  ASSERT_EQ(r.times.size(), 5u);
  EXPECT_GE(r.times[4] - r.times[0], 700) << "the messages arrived together: " << r.raw;
  EXPECT_GE(r.ms - r.times[0], 700) << "the first message waited for the end of the stream: " << r.raw;
  EXPECT_EQ(r.md("x-echo-b-bin"), kBinary) << r.raw;
  EXPECT_EQ(r.trailer("x-echo-k"), "v") << r.raw;
  EXPECT_EQ(r.trailer("x-echo-b-bin"), kBinary) << r.raw;
  EXPECT_EQ(r.trailer("x-trailer"), "done") << r.raw;
}

TEST_P(GrpcCalls, BidirectionalStreamingAnswersEachMessageBeforeTheNextIsSent) {
  // client.mjs sends each message only once the answer to the one before arrived: the call can
  // only complete if single messages travel both ways without waiting for more.
  CallResult r = call("bidi", R"({"messages":[{"text":"a"},{"text":"bb"},{"text":"ccc"},{"text":"dddd"}]})",
                      {"x-echo-k=v", "x-echo-b-bin=" + kBinary});
  GH_CALL_RAN(r);
  EXPECT_EQ(r.code, 0) << r.raw << "\n" << context();
  ASSERT_EQ(r.messages.size(), 4u) << r.raw;
  const char* texts[] = {"a", "bb", "ccc", "dddd"};
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(r.messages[i].get("echo") && r.messages[i].get("echo")->is_string(texts[i])) << r.raw;
    EXPECT_TRUE(r.messages[i].get("n") && r.messages[i].get("n")->is_number(i)) << r.raw;
  }
  EXPECT_EQ(r.md("x-echo-b-bin"), kBinary) << r.raw;
  EXPECT_EQ(r.trailer("x-echo-b-bin"), kBinary) << r.raw;
  EXPECT_EQ(r.trailer("x-trailer"), "done") << r.raw;
}

TEST_P(GrpcCalls, LargeMessagesCrossTheFlowControlWindows) {
  // Messages far beyond the 64KiB stream window, and calls beyond the 1MiB connection window,
  // each way: every byte arrives intact (client.mjs compares each `pad` it gets back).
  CallResult u = call("unary", R"({"n":1})", {}, {"--pad-bytes", "700000"});
  GH_CALL_RAN(u);
  EXPECT_EQ(u.code, 0) << u.raw << "\n" << context();
  ASSERT_EQ(u.messages.size(), 1u) << u.raw;
  EXPECT_TRUE(u.messages[0].get("pad_len") && u.messages[0].get("pad_len")->is_number(700000)) << u.raw;
  EXPECT_TRUE(u.messages[0].get("pad_ok") && u.messages[0].get("pad_ok")->boolean) << u.raw;

  CallResult cs = call("client_stream", R"({"messages":[{"text":"a"},{"text":"b"},{"text":"c"},{"text":"d"},)"
                                        R"({"text":"e"},{"text":"f"},{"text":"g"},{"text":"h"}]})",
                       {}, {"--pad-bytes", "300000"});
  GH_CALL_RAN(cs);
  EXPECT_EQ(cs.code, 0) << cs.raw << "\n" << context();
  ASSERT_EQ(cs.messages.size(), 1u) << cs.raw;
  EXPECT_TRUE(cs.messages[0].get("concat") && cs.messages[0].get("concat")->is_string("abcdefgh")) << cs.raw;
  EXPECT_TRUE(cs.messages[0].get("pad_bytes") && cs.messages[0].get("pad_bytes")->is_number(2'400'000)) << cs.raw;

  CallResult b = call("bidi", R"({"messages":[{"text":"a"},{"text":"b"},{"text":"c"}]})", {}, {"--pad-bytes", "500000"});
  GH_CALL_RAN(b);
  EXPECT_EQ(b.code, 0) << b.raw << "\n" << context();
  ASSERT_EQ(b.messages.size(), 3u) << b.raw;
  for (const auto& m : b.messages) {
    EXPECT_TRUE(m.get("pad_len") && m.get("pad_len")->is_number(500000)) << b.raw;
    EXPECT_TRUE(m.get("pad_ok") && m.get("pad_ok")->boolean) << b.raw;
  }
}

TEST_P(GrpcCalls, TheServicesOwnStatusPassesThrough) {
  CallResult r = call("fail", R"({"code":9,"message":"precondition: the order is closed"})", {"x-echo-k=v"});
  GH_CALL_RAN(r);
  EXPECT_EQ(r.code, 9) << r.raw << "\n" << context();
  EXPECT_EQ(r.details, "precondition: the order is closed") << r.raw;
  EXPECT_EQ(r.trailer("x-trailer"), "done") << r.raw;
  EXPECT_EQ(r.trailer("x-echo-k"), "v") << r.raw;
}

// ---- errors, deadlines and cancels, for both listeners (the service reached with protocol: h2c) --

class Grpc : public GrpcBase, public ::testing::WithParamInterface<Listener> {
 protected:
  void SetUp() override {
    GrpcBase::SetUp();
    if (HasFatalFailure()) return;
    listener_ = GetParam();
    start_service(Backend::H2c);
  }
};

INSTANTIATE_TEST_SUITE_P(Grpc, Grpc, ::testing::Values(Listener::H2c, Listener::Tls),
                         [](const ::testing::TestParamInfo<Listener>& info) { return listener_name(info.param); });

const std::string kAuthPolicies = "  auth: {type: jwt, secret: \"" + kSecret +
                                  "\"}\n  admins: {type: require_role, roles: [admin]}\n";

TEST_P(Grpc, MissingTokenIsUnauthenticated) {
  ASSERT_NO_FATAL_FAILURE(start_simple("", "    policies: [auth]\n", kAuthPolicies));
  CallResult r = call("unary", R"({"x":1})");
  GH_CALL_RAN(r);
  EXPECT_EQ(r.code, 16) << r.raw << "\n" << context();
  EXPECT_TRUE(r.status_from_grpc_status()) << r.raw;
  EXPECT_TRUE(IsGrpcError(raw_call("/test.Echo/Unary", "{}"), 16));
  // A valid token goes through.
  CallResult ok = call("unary", R"({"x":1})", {"authorization=Bearer " + token()});
  GH_CALL_RAN(ok);
  EXPECT_EQ(ok.code, 0) << ok.raw << "\n" << context();
  svc->drain();
  EXPECT_EQ(svc->lines().find("call Unary"), svc->lines().rfind("call Unary")) << "only the authorized call arrives\n"
                                                                               << svc->lines();
}

TEST_P(Grpc, MissingRoleIsPermissionDenied) {
  ASSERT_NO_FATAL_FAILURE(start_simple("", "    policies: [auth, admins]\n", kAuthPolicies));
  CallResult r = call("unary", "{}", {"authorization=Bearer " + token("viewer")});
  GH_CALL_RAN(r);
  EXPECT_EQ(r.code, 7) << r.raw << "\n" << context();
  EXPECT_TRUE(r.status_from_grpc_status()) << r.raw;
  EXPECT_TRUE(IsGrpcError(raw_call("/test.Echo/Unary", "{}", {{"authorization", "Bearer " + token("viewer")}}), 7));
  CallResult ok = call("unary", "{}", {"authorization=Bearer " + token("admin")});
  GH_CALL_RAN(ok);
  EXPECT_EQ(ok.code, 0) << ok.raw << "\n" << context();
}

TEST_P(Grpc, RateLimitExceededIsResourceExhausted) {
  ASSERT_NO_FATAL_FAILURE(start_simple("", "    policies: [limited]\n", "  limited: {type: rate_limit, limit: 2, window: 1m, store: memory}\n"));
  for (int i = 0; i < 2; ++i) {
    CallResult ok = call("unary", "{}");
    GH_CALL_RAN(ok);
    EXPECT_EQ(ok.code, 0) << "call " << i << ": " << ok.raw << "\n" << context();
  }
  CallResult r = call("unary", "{}");
  GH_CALL_RAN(r);
  EXPECT_EQ(r.code, 8) << r.raw << "\n" << context();
  EXPECT_TRUE(r.status_from_grpc_status()) << r.raw;
  EXPECT_TRUE(IsGrpcError(raw_call("/test.Echo/Unary", "{}"), 8));
}

TEST_P(Grpc, NoRouteIsUnimplemented) {
  ASSERT_NO_FATAL_FAILURE(start_gateway(service_yaml(), "  - exact: /test.Echo/Unary\n    service: grpc\n"));
  CallResult r = call("client_stream", R"({"messages":[{"text":"a"}]})");
  GH_CALL_RAN(r);
  EXPECT_EQ(r.code, 12) << r.raw << "\n" << context();
  EXPECT_TRUE(r.status_from_grpc_status()) << r.raw;
  EXPECT_TRUE(IsGrpcError(raw_call("/other.Service/Method", "{}"), 12));
  // The routed method works.
  CallResult ok = call("unary", "{}");
  GH_CALL_RAN(ok);
  EXPECT_EQ(ok.code, 0) << ok.raw << "\n" << context();
}

TEST_P(Grpc, ServiceDownIsUnavailable) {
  const int closed = free_port();
  ASSERT_NO_FATAL_FAILURE(start_gateway(service_yaml_for(closed), "  - path: /test.Echo\n    service: grpc\n"));
  CallResult r = call("unary", "{}");
  GH_CALL_RAN(r);
  EXPECT_EQ(r.code, 14) << r.raw << "\n" << context();
  EXPECT_TRUE(r.status_from_grpc_status()) << r.raw;
  EXPECT_TRUE(IsGrpcError(raw_call("/test.Echo/Unary", "{}"), 14));
}

TEST_P(Grpc, GatewayErrorsReachAClientStillSendingItsRequest) {
  // A gateway-made error may come before the request's body: the client gets the gRPC error (a
  // trailers-only answer) while its side of the stream is still open, whatever the cause.
  const int closed = free_port();
  ASSERT_NO_FATAL_FAILURE(start_gateway(service_yaml_for(closed),
                                        "  - exact: /test.Echo/Unary\n    service: grpc\n"
                                        "  - exact: /test.Echo/Hold\n    service: grpc\n    policies: [auth]\n",
                                        kAuthPolicies));
  H2Options o;
  o.authority = listener_ == Listener::Tls ? "api.test" : "gw.test";
  if (listener_ == Listener::Tls) {
    TlsOptions t;
    t.ca_file = pki.ca_file();
    t.verify_name = "api.test";
    t.sni = "api.test";
    o.tls = t;
  }
  H2Client c(gw->port(), o);
  ASSERT_TRUE(c.ok()) << c.error();
  struct Case {
    const char* path;
    int code;
    const char* why;
  };
  for (const Case& k : {Case{"/other.Service/Method", 12, "no route"}, Case{"/test.Echo/Hold", 16, "no token"},
                        Case{"/test.Echo/Unary", 14, "connect failure"},
                        Case{"/test.Echo/Unary", 14, "instance known to be down"}}) {
    const auto id = c.submit("POST", k.path, {{"content-type", "application/grpc"}, {"te", "trailers"}}, "", false);
    ASSERT_GT(id, 0);
    c.run_until([&] { return c.response(id).closed || c.response(id).headers.has("grpc-status"); }, 5s);
    EXPECT_TRUE(IsGrpcError(c.response(id), k.code)) << k.why << "\n" << gw->diagnostics();
  }
}

TEST_P(Grpc, ClientDeadlineEndsTheCallAndReachesTheService) {
  ASSERT_NO_FATAL_FAILURE(start_simple());
  CallResult r = call("slow", R"({"delay_ms":4000,"id":"d1"})", {}, {"--deadline-ms", "600"});
  GH_CALL_RAN(r);
  EXPECT_EQ(r.code, 4) << r.raw << "\n" << context();
  EXPECT_LT(r.ms, 2500) << r.raw;
  // The deadline went to the service as grpc-timeout (at most what the client gave)...
  auto seen = svc->wait_line("call Slow d1");
  ASSERT_TRUE(seen) << context();
  const auto at = seen->find("timeout=");
  ASSERT_NE(at, std::string::npos) << *seen;
  const std::string value = seen->substr(at + 8, seen->find(' ', at) - at - 8);
  const double ms = grpc_timeout_ms(value);
  EXPECT_GT(ms, 0) << "the service saw no grpc-timeout: " << *seen;
  EXPECT_LE(ms, 600) << *seen;
  // ...and the call's end reset the service's stream long before its 4s.
  EXPECT_TRUE(svc->wait_line("cancelled d1", 2500ms)) << context();
}

TEST_P(Grpc, ResponseTimeoutIsDeadlineExceeded) {
  // The client allows 10s; the service's timeouts.response (300ms) is what ends the call.
  ASSERT_NO_FATAL_FAILURE(start_simple("    timeouts: {response: 300ms}\n"));
  CallResult r = call("slow", R"({"delay_ms":4000,"id":"t1"})", {}, {"--deadline-ms", "10000"});
  GH_CALL_RAN(r);
  EXPECT_EQ(r.code, 4) << r.raw << "\n" << context();
  EXPECT_TRUE(r.status_from_grpc_status()) << r.raw;
  EXPECT_LT(r.ms, 2500) << r.raw;
  EXPECT_TRUE(svc->wait_line("cancelled t1", 2500ms)) << "the service's stream was not reset\n" << context();
  EXPECT_TRUE(IsGrpcError(raw_call("/test.Echo/Slow", R"({"delay_ms":4000,"id":"t2"})"), 4));
}

TEST_P(Grpc, GrpcTimeoutIsHonouredByTheGateway) {
  // A hand-made request (nothing on the client's side enforces its grpc-timeout) to a service
  // that ignores it: only the gateway can end the call at 400ms.
  ASSERT_NO_FATAL_FAILURE(start_simple("    timeouts: {response: 30s}\n"));
  const auto t0 = Clock::now();
  H2Response r = raw_call("/test.Echo/Slow", R"({"delay_ms":5000,"id":"g1"})", {{"grpc-timeout", "400m"}});
  const auto took = std::chrono::duration_cast<Millis>(Clock::now() - t0).count();
  EXPECT_TRUE(IsGrpcError(r, 4)) << context();
  EXPECT_LT(took, 2500) << r.describe();
  EXPECT_TRUE(svc->wait_line("cancelled g1", 2500ms)) << "the service's stream was not reset\n" << context();
}

TEST_P(Grpc, ClientCancelReachesTheService) {
  ASSERT_NO_FATAL_FAILURE(start_simple());
  CallResult r = call("hold", R"({"id":"h1"})", {}, {"--cancel-after-ms", "500"});
  GH_CALL_RAN(r);
  EXPECT_EQ(r.code, 1) << r.raw;  // CANCELLED, on the client's side
  ASSERT_TRUE(svc->wait_line("call Hold h1", 1s)) << "the call never reached the service\n" << context();
  EXPECT_TRUE(svc->wait_line("cancelled h1", 2s)) << context();
}

TEST_P(Grpc, ResetStreamReachesTheServiceAtOnce) {
  ASSERT_NO_FATAL_FAILURE(start_simple());
  H2Options o;
  o.authority = listener_ == Listener::Tls ? "api.test" : "gw.test";
  if (listener_ == Listener::Tls) {
    TlsOptions t;
    t.ca_file = pki.ca_file();
    t.verify_name = "api.test";
    t.sni = "api.test";
    o.tls = t;
  }
  H2Client c(gw->port(), o);
  ASSERT_TRUE(c.ok()) << c.error();
  const auto id = c.submit("POST", "/test.Echo/Hold", {{"content-type", "application/grpc"}, {"te", "trailers"}},
                           grpc_frame(R"({"id":"r1"})"));
  ASSERT_GT(id, 0);
  // The call is held at the service (the connection driven in short turns meanwhile)...
  bool arrived = false;
  for (int i = 0; i < 50 && !arrived; ++i) {
    c.run_until([] { return false; }, 50ms);
    arrived = svc->wait_line("call Hold r1", 50ms).has_value();
  }
  ASSERT_TRUE(arrived) << context();
  // ...until the client resets it: the service's stream is reset at once.
  c.reset(id, h2::CANCEL);
  const auto t0 = Clock::now();
  c.run_until([] { return false; }, 50ms);
  EXPECT_TRUE(svc->wait_line("cancelled r1", 1s)) << context();
  EXPECT_LT(std::chrono::duration_cast<Millis>(Clock::now() - t0).count(), 1000);
  EXPECT_EQ(c.response(id).status, 0) << "the held call was answered: " << c.response(id).describe();
}

TEST_P(Grpc, IdleTimeoutBoundsTheSilenceInsideAStream) {
  // Messages every 200ms: a stream longer than timeouts.response and timeouts.idle goes on, since
  // no silence lasts 600ms...
  ASSERT_NO_FATAL_FAILURE(start_simple("    timeouts: {response: 500ms, idle: 600ms}\n"));
  CallResult lively = call("server_stream", R"({"count":8,"delay_ms":200})");
  GH_CALL_RAN(lively);
  EXPECT_EQ(lively.code, 0) << lively.raw << "\n" << context();
  EXPECT_EQ(lively.messages.size(), 8u) << lively.raw;
  EXPECT_GE(lively.ms, 1400) << lively.raw;
  // ...while 2s between messages ends it after the first.
  CallResult silent = call("server_stream", R"({"count":3,"delay_ms":2000})");
  GH_CALL_RAN(silent);
  EXPECT_NE(silent.code, 0) << silent.raw << "\n" << context();
  EXPECT_EQ(silent.messages.size(), 1u) << silent.raw;
  EXPECT_LT(silent.ms, 1900) << silent.raw;
  // The service's stream is reset too, before its second message was due.
  EXPECT_TRUE(svc->wait_line("cancelled -", 1500ms)) << context();
}

}  // namespace
}  // namespace gh::integ
