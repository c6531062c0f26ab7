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
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "harness/gateway.h"
#include "harness/http.h"
#include "harness/net.h"
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
  std::string failure;
};

// Runs the gateway on YAML (routes to {UPSTREAM}) with the counter preloaded, warms
// kConnections keep-alive connections up, then counts kMeasuredRounds rounds of one request on
// each connection at once.
Count count_allocations(const std::string& yaml_template, const std::string& target, const Headers& headers) {
  Count result;
  Upstream upstream("counted");
  TempDir dir;
  MallocCounter counter(dir);
  if (!counter.ok()) {
    result.failure = "could not map the counter file";
    return result;
  }
  Gateway::Options options;
  options.workers = 1;
  options.env = {{"LD_PRELOAD", GH_COUNT_MALLOC_LIB}, {"GH_COUNT_MALLOC_FILE", counter.path()}};
  Gateway gw(fill(yaml_template, {{"UPSTREAM", upstream.url()}}), options);
  if (!gw.start()) {
    result.failure = "gateway did not start: " + gw.diagnostics();
    return result;
  }
  if (counter.read() == 0) {
    result.failure = "the preloaded counter saw no allocation at start: it is not in the process";
    return result;
  }

  std::vector<std::unique_ptr<Conn>> conns;
  for (int i = 0; i < kConnections; ++i) conns.push_back(std::make_unique<Conn>(gw.port()));
  const std::string request = make_request("GET", target, headers);
  auto round = [&]() -> bool {
    for (auto& c : conns) {
      if (!c->send(request)) return false;
    }
    for (auto& c : conns) {
      auto r = c->read_response();
      if (!r || r->status != 200) {
        result.failure = r ? "status " + std::to_string(r->status) + ": " + r->body : "no response";
        return false;
      }
    }
    return true;
  };
  for (int i = 0; i < kWarmupRounds; ++i) {
    if (!round()) return result;
  }

  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t before = counter.read();
  for (int i = 0; i < kMeasuredRounds; ++i) {
    if (!round()) return result;
    result.requests += kConnections;
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
  ASSERT_EQ(c.requests, kConnections * kMeasuredRounds);
  // The idle period allows for the process's own timers (about one call a second), and 16 more
  // for a timer that fires in one period and not the other; one allocation per request would
  // show as 8000, one per 500 requests as 16 over the idle count.
  EXPECT_LE(c.mallocs, c.idle_mallocs + 16)
      << c.mallocs << " allocator calls over " << c.requests << " requests (idle: " << c.idle_mallocs << ")";
  std::printf("allocator calls: %llu over %d requests (%.4f per request); idle over as long: %llu\n",
              static_cast<unsigned long long>(c.mallocs), c.requests,
              static_cast<double>(c.mallocs) / c.requests, static_cast<unsigned long long>(c.idle_mallocs));
}

TEST(Allocation, PlainProxyingAllocatesNothingPerRequest) {
  const Count c = count_allocations(R"(
services:
  svc:
    instances: ["{UPSTREAM}"]
routes:
  - path: /
    service: svc
)",
                                    "/items/1", {});
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
                                    "/api/users/1", headers);
  expect_no_allocation(c);
}

}  // namespace
}  // namespace gh::integ
