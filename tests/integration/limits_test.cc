// Limits (SPEC §2 limits): 414, 431, 413 and 408, each answered by the gateway itself with
// nothing reaching the service.
#include <gtest/gtest.h>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

class Limits : public ::testing::Test {
 protected:
  void start(const std::string& limits) {
    gw_ = std::make_unique<Gateway>(fill(R"(
limits: {LIMITS}
services:
  svc: {instances: ["{U}"]}
routes:
  - path: /
    service: svc
)",
                                         {{"LIMITS", limits}, {"U", up_.url()}}));
    GH_START(*gw_);
  }

  Upstream up_{"svc"};
  std::unique_ptr<Gateway> gw_;
};

TEST_F(Limits, LongUriIs414) {
  start("{}");
  const std::string uri = "/" + std::string(9000, 'u');  // default max_uri_bytes: 8 KiB
  EXPECT_TRUE(IsJsonError(http_get(gw_->port(), uri), 414, "URI too long"));
  const std::string fits = "/" + std::string(4000, 'u');
  EXPECT_EQ(http_get(gw_->port(), fits).status, 200);
  ASSERT_EQ(up_.request_count(), 1u);
  EXPECT_EQ(up_.requests()[0].target, fits);
}

TEST_F(Limits, ConfiguredUriLimit) {
  start("{max_uri_bytes: 100}");
  EXPECT_TRUE(IsJsonError(http_get(gw_->port(), "/" + std::string(150, 'u')), 414, "URI too long"));
  EXPECT_EQ(http_get(gw_->port(), "/" + std::string(50, 'u')).status, 200);
  EXPECT_EQ(up_.request_count(), 1u);
}

TEST_F(Limits, TooManyHeadersIs431) {
  start("{max_headers: 20}");
  Headers many;
  for (int i = 0; i < 30; ++i) many.add("X-H" + std::to_string(i), "v");
  EXPECT_TRUE(IsJsonError(http_get(gw_->port(), "/many", many), 431, "Request header fields too large"));
  EXPECT_TRUE(ReachedNothing(up_));
  Headers few;
  for (int i = 0; i < 5; ++i) few.add("X-H" + std::to_string(i), "v");
  EXPECT_EQ(http_get(gw_->port(), "/few", few).status, 200);
}

TEST_F(Limits, TooManyHeadersByDefaultIs431) {
  start("{}");
  Headers many;
  for (int i = 0; i < 150; ++i) many.add("X-H" + std::to_string(i), "v");
  EXPECT_TRUE(IsJsonError(http_get(gw_->port(), "/many", many), 431, "Request header fields too large"));
  EXPECT_TRUE(ReachedNothing(up_));
}

TEST_F(Limits, TooLargeHeadersIs431) {
  start("{}");  // default max_header_bytes: 16 KiB
  EXPECT_TRUE(IsJsonError(http_get(gw_->port(), "/big", {{"X-Big", std::string(17 * 1024, 'h')}}), 431,
                          "Request header fields too large"));
  Headers spread;  // many fields adding up past the limit
  for (int i = 0; i < 10; ++i) spread.add("X-Part" + std::to_string(i), std::string(2000, 'p'));
  EXPECT_TRUE(IsJsonError(http_get(gw_->port(), "/spread", spread), 431, "Request header fields too large"));
  EXPECT_TRUE(ReachedNothing(up_));
  EXPECT_EQ(http_get(gw_->port(), "/ok", {{"X-Fine", std::string(4000, 'h')}}).status, 200);
}

TEST_F(Limits, BodyOverMaxIs413) {
  start("{max_body_bytes: 1024}");
  EXPECT_TRUE(IsJsonError(http_request(gw_->port(), "POST", "/b", {}, std::string(2048, 'b')), 413, "Payload too large"));
  EXPECT_TRUE(ReachedNothing(up_));
  // A chunked body is counted as it arrives: the service must never see it complete.
  auto r = roundtrip(gw_->port(),
                     make_request("POST", "/c", {{"Transfer-Encoding", "chunked"}}, chunk_encode(std::string(4096, 'c'), 512)));
  EXPECT_TRUE(IsJsonError(r, 413, "Payload too large"));
  EXPECT_TRUE(eventually([&] { return up_.heads_seen() == up_.bodies_aborted(); }, 3s));
  EXPECT_EQ(up_.request_count(), 0u);
  // At the limit, it passes.
  EXPECT_EQ(http_request(gw_->port(), "POST", "/ok", {}, std::string(1024, 'b')).status, 200);
  EXPECT_EQ(up_.request_count(), 1u);
}

TEST_F(Limits, HeadSentHalfwayTimesOutWith408) {
  start("{header_timeout: 500ms}");
  Conn c(gw_->port());
  const auto t0 = Clock::now();
  ASSERT_TRUE(c.send("GET /slow HTTP/1.1\r\nHost: gw.test\r\nX-Half: "));
  auto r = c.read_response(5s);
  const auto elapsed = Clock::now() - t0;
  ASSERT_TRUE(r) << "no 408 after the header timeout";
  EXPECT_TRUE(IsJsonError(*r, 408, "Request timeout"));
  EXPECT_GE(elapsed, 400ms);
  EXPECT_LT(elapsed, 3s);
  EXPECT_TRUE(c.wait_closed(2s));
  EXPECT_TRUE(ReachedNothing(up_));
}

TEST_F(Limits, HeaderTimeoutCoversTheWholeHeadNotEachRead) {
  start("{header_timeout: 500ms}");
  Conn c(gw_->port());
  const auto t0 = Clock::now();
  ASSERT_TRUE(c.send("GET /drip HTTP/1.1\r\nHost: gw.test\r\n"));
  // A slowloris client keeps sending a byte at a time, never finishing the head.
  std::optional<Response> r;
  for (int i = 0; i < 40 && !r; ++i) {
    if (!c.send("X")) break;
    r = c.read_response(100ms);
    if (c.eof()) break;
  }
  if (!r) r = c.read_response(2s);
  ASSERT_TRUE(r) << "no 408 while the head dripped in";
  EXPECT_EQ(r->status, 408);
  EXPECT_LT(Clock::now() - t0, 3s);
  EXPECT_TRUE(ReachedNothing(up_));
}

TEST_F(Limits, BodyStallingTimesOutWith408) {
  start("{body_timeout: 500ms}");
  Conn c(gw_->port());
  ASSERT_TRUE(c.send("POST /stall HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 100\r\n\r\n0123456789"));
  auto r = c.read_response(5s);
  ASSERT_TRUE(r) << "no response to a stalled body";
  EXPECT_TRUE(IsJsonError(*r, 408, "Request timeout"));
  EXPECT_TRUE(c.wait_closed(2s));
  EXPECT_EQ(up_.request_count(), 0u);
}

}  // namespace
}  // namespace gh::integ
