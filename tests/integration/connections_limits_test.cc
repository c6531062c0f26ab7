// Connection-level limits (SPEC §2 limits): max_connections leaves connections beyond it waiting
// unaccepted until one closes; min_body_rate cuts off a body that trickles in, with 408, before
// the service sees it complete.
#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

std::string one_service(const Upstream& up, const std::string& limits) {
  return fill(R"(
limits: {LIMITS}
services:
  svc: {instances: ["{U}"]}
routes:
  - path: /
    service: svc
)",
              {{"LIMITS", limits}, {"U", up.url()}});
}

TEST(ConnectionLimits, MaxConnectionsLeavesTheNextOneWaitingUntilOneCloses) {
  Upstream up("svc");
  Gateway::Options one_worker;
  one_worker.workers = 1;  // the basic behaviour; MaxConnectionsHoldsAcrossWorkers covers several
  Gateway gw(one_service(up, "{max_connections: 2}"), one_worker);
  GH_START(gw);
  // Two kept-alive connections, each after one request, then idle.
  auto c1 = std::make_unique<Conn>(gw.port());
  auto c2 = std::make_unique<Conn>(gw.port());
  ASSERT_TRUE(c1->send(make_request("GET", "/one")));
  auto r1 = c1->read_response();
  ASSERT_TRUE(r1) << "first connection got no response";
  EXPECT_EQ(r1->status, 200);
  ASSERT_TRUE(c2->send(make_request("GET", "/two")));
  auto r2 = c2->read_response();
  ASSERT_TRUE(r2) << "second connection got no response";
  EXPECT_EQ(r2->status, 200);
  ASSERT_EQ(up.request_count(), 2u);

  // The third connects (the kernel completes the handshake) but is not served while both are held.
  Conn c3(gw.port());
  ASSERT_TRUE(c3.ok());
  ASSERT_TRUE(c3.send(make_request("GET", "/three")));
  auto early = c3.read_response(500ms);
  EXPECT_FALSE(early) << "a third connection was served past max_connections 2:\n" << early->describe();
  EXPECT_FALSE(c3.eof()) << "the waiting connection was closed rather than left waiting";
  EXPECT_TRUE(c3.pending().empty()) << "bytes arrived on the waiting connection: " << c3.pending();
  EXPECT_EQ(up.request_count(), 2u);

  // Once one of the two closes, the waiting one is accepted and answered.
  c1.reset();
  auto late = c3.read_response(5s);
  ASSERT_TRUE(late) << "the waiting connection was not answered after a slot freed";
  EXPECT_EQ(late->status, 200);
  ASSERT_EQ(up.request_count(), 3u);
  EXPECT_EQ(up.requests()[2].target, "/three");

  // The connection still held keeps working.
  ASSERT_TRUE(c2->send(make_request("GET", "/two-again")));
  auto again = c2->read_response();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

// The limit is the whole gateway's: with several workers, each accepting on its own, connections
// past it still wait. Several connections wait at once, so that the kernel spreads them over the
// workers' listeners.
TEST(ConnectionLimits, MaxConnectionsHoldsAcrossWorkers) {
  Upstream up("svc");
  Gateway::Options workers;
  workers.workers = 4;
  Gateway gw(one_service(up, "{max_connections: 2}"), workers);
  GH_START(gw);
  Conn c1(gw.port()), c2(gw.port());
  for (Conn* c : {&c1, &c2}) {
    ASSERT_TRUE(c->send(make_request("GET", "/held")));
    auto r = c->read_response();
    ASSERT_TRUE(r) << "a connection within the limit got no response";
    EXPECT_EQ(r->status, 200);
  }
  ASSERT_EQ(up.request_count(), 2u);

  std::vector<std::unique_ptr<Conn>> waiting;
  for (int i = 0; i < 6; ++i) {
    waiting.push_back(std::make_unique<Conn>(gw.port()));
    ASSERT_TRUE(waiting.back()->ok());
    ASSERT_TRUE(waiting.back()->send(make_request("GET", "/waiting-" + std::to_string(i))));
  }
  std::this_thread::sleep_for(500ms);
  int answered = 0;
  for (auto& c : waiting) {
    if (c->read_response(10ms)) ++answered;
  }
  EXPECT_EQ(answered, 0) << "connections served past max_connections 2 while two were held";
  EXPECT_EQ(up.request_count(), 2u) << "the service saw requests from connections past the limit";
}

TEST(ConnectionLimits, BodyBelowMinBodyRateIsCutOffWith408) {
  Upstream up("svc");
  Gateway gw(one_service(up, "{body_timeout: 300ms, min_body_rate: 1KiB}"));
  GH_START(gw);
  Conn c(gw.port());
  ASSERT_TRUE(c.send("POST /trickle HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 100\r\n\r\n"));
  const auto t0 = Clock::now();
  // A byte every ~100 ms: never a gap as long as body_timeout, but far below 1 KiB/s. The whole
  // body would take 10 s; the loop gives up after 60 bytes.
  std::optional<Response> r;
  int sent = 0;
  for (; sent < 60 && !r; ++sent) {
    if (!c.send("b")) break;
    r = c.read_response(100ms);
    if (c.eof()) break;
  }
  if (!r) r = c.read_response(2s);
  const auto elapsed = Clock::now() - t0;
  ASSERT_TRUE(r) << "no response to a body trickling in below min_body_rate (" << sent << " bytes sent)";
  EXPECT_TRUE(IsJsonError(*r, 408, "Request timeout"));
  EXPECT_GE(elapsed, 300ms) << "cut off before body_timeout had passed";
  EXPECT_LT(elapsed, 3s);
  EXPECT_TRUE(c.wait_closed(2s));
  // Whatever part reached the service, it never saw the request complete.
  EXPECT_TRUE(eventually([&] { return up.heads_seen() == up.bodies_aborted(); }, 3s))
      << up.heads_seen() << " head(s), " << up.bodies_aborted() << " aborted";
  EXPECT_EQ(up.request_count(), 0u);

  // A body sent at once passes.
  auto ok = http_request(gw.port(), "POST", "/fast", {}, std::string(2048, 'f'));
  EXPECT_EQ(ok.status, 200) << ok.describe();
  ASSERT_EQ(up.request_count(), 1u);
  EXPECT_EQ(up.requests()[0].body.size(), 2048u);
}

}  // namespace
}  // namespace gh::integ
