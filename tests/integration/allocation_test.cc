// Allocations per request (issue: no allocation on the request path). The real gatehouse binary
// runs with libgh_count_malloc.so preloaded, which counts every call into glibc's allocator
// (malloc, calloc, realloc, aligned forms) into a shared file; the test reads the count before
// and after thousands of keep-alive requests on connections that are already open, and the
// difference must be nothing the requests caused. What the process does on its own meanwhile
// (timers that run each second) is measured first over an idle period of the same length and
// allowed for.
//
// Built only without sanitizers: AddressSanitizer's runtime must be the first library loaded,
// and replaces the allocator the count is about.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "harness/gateway.h"
#include "harness/h2.h"
#include "harness/http.h"
#include "harness/net.h"
#include "harness/tls.h"
#include "harness/upstream.h"

namespace gh::integ {
namespace {

constexpr int kConnections = 8;
constexpr int kWarmupRounds = 300;    // requests on each connection before counting
constexpr int kMeasuredRounds = 1000;  // then this many on each, counted

// The shared counter file and its mapping.
class MallocCounter {
 public:
  explicit MallocCounter(const TempDir& dir) : path_(dir.write("malloc-count", std::string(8, '\0'))) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return;
    void* p = ::mmap(nullptr, sizeof(std::uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p != MAP_FAILED) value_ = static_cast<std::uint64_t*>(p);
  }
  ~MallocCounter() {
    if (value_) ::munmap(value_, sizeof(std::uint64_t));
  }
  bool ok() const { return value_ != nullptr; }
  const std::string& path() const { return path_; }
  std::uint64_t read() const { return __atomic_load_n(value_, __ATOMIC_RELAXED); }

 private:
  std::string path_;
  std::uint64_t* value_ = nullptr;
};

struct Count {
  std::uint64_t mallocs = 0;
  std::uint64_t idle_mallocs = 0;  // over an idle period as long as the measured one
  int requests = 0;
  int expected_requests = 0;
  std::uint64_t allowance = 16;  // calls over the idle count that are not the requests'
  std::string failure;
};

// How a run goes: rounds that warm up, then rounds counted.
struct Plan {
  int warmup_rounds = kWarmupRounds;
  int measured_rounds = kMeasuredRounds;
  int requests_per_round = kConnections;
  // Allocator calls a counted round may make that are not its requests': a timer that fires in
  // one period and not the other (16); the connections a round opens (their sessions).
  std::uint64_t allowance = 16;
};

// One round of a counted run: one request on each of the kConnections connections at once;
// "" when every answer was a 200, else what went wrong.
using Round = std::function<std::string()>;

// HTTP/1.1 keep-alive connections of type CONN (Conn, TlsClient): a round for GET TARGET.
template <class Connect>
Round http1_round(Connect connect, const std::string& target, const Headers& headers) {
  auto conns = std::make_shared<std::vector<decltype(connect())>>();
  for (int i = 0; i < kConnections; ++i) conns->push_back(connect());
  return [conns, request = make_request("GET", target, headers)]() -> std::string {
    for (auto& c : *conns) {
      if (!c->send(request)) return "could not send";
    }
    for (auto& c : *conns) {
      auto r = c->read_response();
      if (!r || r->status != 200) return r ? "status " + std::to_string(r->status) + ": " + r->body : "no response";
    }
    return "";
  };
}

// Runs the gateway on YAML (routes to {UPSTREAM}; {CERT} and {KEY} name a certificate for
// 127.0.0.1) with the counter preloaded, warms the connections MAKE_ROUND opens up, then counts
// kMeasuredRounds rounds. With `whole_yaml`, YAML has its own listen, workers and access_log.
Count count_allocations(const std::string& yaml_template, const std::function<Round(int port)>& make_round,
                        bool whole_yaml = false, const Plan& plan = {}) {
  Count result;
  result.expected_requests = plan.measured_rounds * plan.requests_per_round;
  result.allowance = plan.allowance;
  Upstream upstream("counted");
  TempDir dir;
  Pki pki(dir.path());
  CertSpec spec;
  spec.ips = {"127.0.0.1"};
  const CertFiles cert = pki.issue("gateway", spec);
  MallocCounter counter(dir);
  if (!counter.ok()) {
    result.failure = "could not map the counter file";
    return result;
  }
  Gateway::Options options;
  options.workers = 1;
  options.add_header = !whole_yaml;
  options.env = {{"LD_PRELOAD", GH_COUNT_MALLOC_LIB}, {"GH_COUNT_MALLOC_FILE", counter.path()}};
  Gateway gw(fill(yaml_template, {{"UPSTREAM", upstream.url()}, {"CERT", cert.cert}, {"KEY", cert.key}}), options);
  if (!gw.start()) {
    result.failure = "gateway did not start: " + gw.diagnostics();
    return result;
  }
  if (counter.read() == 0) {
    result.failure = "the preloaded counter saw no allocation at start: it is not in the process";
    return result;
  }

  const Round round_once = make_round(gw.port());
  auto round = [&]() -> bool {
    result.failure = round_once();
    return result.failure.empty();
  };
  for (int i = 0; i < plan.warmup_rounds; ++i) {
    if (!round()) return result;
  }

  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t before = counter.read();
  for (int i = 0; i < plan.measured_rounds; ++i) {
    if (!round()) return result;
    result.requests += plan.requests_per_round;
  }
  result.mallocs = counter.read() - before;
  const auto elapsed = std::chrono::steady_clock::now() - t0;

  const std::uint64_t idle_before = counter.read();
  std::this_thread::sleep_for(elapsed);
  result.idle_mallocs = counter.read() - idle_before;
  return result;
}

void expect_no_allocation(const Count& c) {
  ASSERT_EQ(c.failure, "");
  ASSERT_EQ(c.requests, c.expected_requests);
  // The idle period allows for the process's own timers (about one call a second), and the
  // plan's allowance for the rest; with the default plan, one allocation per request would
  // show as 8000, one per 500 requests as 16 over the idle count.
  EXPECT_LE(c.mallocs, c.idle_mallocs + c.allowance)
      << c.mallocs << " allocator calls over " << c.requests << " requests (idle: " << c.idle_mallocs << ")";
  std::printf("allocator calls: %llu over %d requests (%.4f per request); idle over as long: %llu\n",
              static_cast<unsigned long long>(c.mallocs), c.requests,
              static_cast<double>(c.mallocs) / c.requests, static_cast<unsigned long long>(c.idle_mallocs));
}

// One service, one route: plain proxying.
constexpr const char* kProxy = R"(
services:
  svc:
    instances: ["{UPSTREAM}"]
routes:
  - path: /
    service: svc
)";

TEST(Allocation, PlainProxyingAllocatesNothingPerRequest) {
  const Count c = count_allocations(kProxy,
                                    [](int port) {
                                      return http1_round([port] { return std::make_unique<Conn>(port); }, "/items/1", {});
                                    });
  expect_no_allocation(c);
}

// Over TLS: OpenSSL's record buffers, allocated for each read and write and freed after
// (SSL_MODE_RELEASE_BUFFERS), come from the binary's cache too.
const std::string kTlsProxy = std::string(R"(listen:
  - address: "127.0.0.1:{PORT}"
    tls: {cert: "{CERT}", key: "{KEY}"}
workers: 1
access_log: off)") + kProxy;

TEST(Allocation, ProxyingOverTlsAllocatesNothingPerRequest) {
  const Count c = count_allocations(
      kTlsProxy,
      [](int port) {
        return http1_round([port] { return std::make_unique<TlsClient>(port, TlsOptions{}); }, "/items/1", {});
      },
      /*whole_yaml=*/true);
  expect_no_allocation(c);
}

TEST(Allocation, Http2OverTlsAllocatesNothingPerRequest) {
  const Count c = count_allocations(
      kTlsProxy,
      [](int port) -> Round {
        auto clients = std::make_shared<std::vector<std::unique_ptr<H2Client>>>();
        for (int i = 0; i < kConnections; ++i) {
          H2Options options;
          options.tls = TlsOptions{};
          clients->push_back(std::make_unique<H2Client>(port, options));
        }
        return [clients]() -> std::string {
          std::vector<std::int32_t> ids;
          for (auto& client : *clients) {
            if (!client->ok()) return "no HTTP/2 connection: " + client->error();
            ids.push_back(client->submit("GET", "/items/1"));
          }
          for (std::size_t i = 0; i < clients->size(); ++i) {
            H2Client& client = *(*clients)[i];
            if (ids[i] < 0 || !client.run()) return "stream not finished";
            const H2Response& r = client.response(ids[i]);
            if (r.status != 200) return "status " + std::to_string(r.status) + ": " + r.describe();
          }
          return "";
        };
      },
      /*whole_yaml=*/true);
  expect_no_allocation(c);
}

TEST(Allocation, TheSeedChainAllocatesNothingPerRequest) {
  // The seed's chain: security headers and a per-IP rate limit (memory store) on every route,
  // a JWT (HS256) on this one.
  auto minted = run_gatehouse({"token", "--secret", "allocation-secret", "--sub", "alice", "--ttl", "1h"});
  ASSERT_EQ(minted.exit_code, 0) << minted.err;
  std::string token = minted.out;
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  Headers headers;
  headers.add("Authorization", "Bearer " + token);
  const Count c = count_allocations(R"(
services:
  user:
    instances: ["{UPSTREAM}"]
policies:
  jwt:
    type: jwt
    secret: allocation-secret
  per-ip:
    type: rate_limit
    key: client_ip
    limit: 1000000000
    window: 15m
defaults:
  policies: [security_headers, per-ip]
routes:
  - path: /api/users
    service: user
    policies: [jwt]
)",
                                    [&headers](int port) {
                                      return http1_round([port] { return std::make_unique<Conn>(port); },
                                                         "/api/users/1", headers);
                                    });
  expect_no_allocation(c);
}

// Under a real load generator: h2load keeps a request in flight on each of 50 connections, as
// the benchmarks do, after an earlier run's 50 connections have come and gone. Everything a
// request frees at once across those connections, and what closed connections gave back, must
// fit the binary's cache: with a cache of 1 MiB per thread this made 3 to 8 allocator calls per
// request.
constexpr int kLoadConnections = 50;
constexpr int kLoadRequests = 20000;

// A round: one h2load run over new connections (HTTP/2, or HTTP/1.1 keep-alive with H1).
Round h2load_round(int port, bool h1) {
  return [port, h1]() -> std::string {
    const std::string command = std::string(h1 ? "h2load --h1" : "h2load") + " -n " + std::to_string(kLoadRequests) +
                                " -c " + std::to_string(kLoadConnections) + " -m 1 https://127.0.0.1:" +
                                std::to_string(port) + "/items/1 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) return "could not run h2load";
    std::string out;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
    const int status = ::pclose(pipe);
    if (status != 0) return "h2load (Debian's nghttp2-client; scripts/deps.sh installs it) failed: " + out;
    const std::string done = std::to_string(kLoadRequests) + " succeeded";
    if (out.find(done) == std::string::npos) return "not every request succeeded: " + out;
    return "";
  };
}

// One h2load run to warm up, one counted.
Count count_under_h2load(bool h1) {
  Plan plan;
  plan.warmup_rounds = 1;
  plan.measured_rounds = 1;
  plan.requests_per_round = kLoadRequests;
  // Each new connection's TLS (and HTTP/2) session: nghttp2's buffers of 21 KiB are larger
  // than the cache takes. 8 calls per connection at most, besides the 16.
  plan.allowance = 16 + 8 * kLoadConnections;
  return count_allocations(
      kTlsProxy, [h1](int port) { return h2load_round(port, h1); }, /*whole_yaml=*/true, plan);
}

TEST(Allocation, Http2UnderALoadGeneratorAllocatesNothingPerRequest) {
  expect_no_allocation(count_under_h2load(/*h1=*/false));
}

TEST(Allocation, Http1OverTlsUnderALoadGeneratorAllocatesNothingPerRequest) {
  expect_no_allocation(count_under_h2load(/*h1=*/true));
}

}  // namespace
}  // namespace gh::integ
