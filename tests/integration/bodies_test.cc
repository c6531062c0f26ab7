// Bodies and connections: request and response bodies arrive byte-identical in every framing,
// 100-continue, keep-alive and pipelining (SPEC §3).
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

constexpr std::size_t k5MiB = 5u << 20;

class Bodies : public ::testing::Test {
 protected:
  void SetUp() override {
    up_.set_handler(Upstream::echo_body());
    gw_ = std::make_unique<Gateway>(fill(R"(
services:
  echo: {instances: ["{U}"]}
routes:
  - path: /
    service: echo
)",
                                         {{"U", up_.url()}}));
    GH_START(*gw_);
  }

  Upstream up_{"echo"};
  std::unique_ptr<Gateway> gw_;
};

TEST_F(Bodies, RequestBodiesOfEverySizeArriveIdentical) {
  for (const char* method : {"POST", "PUT"}) {
    for (std::size_t size : {std::size_t{0}, std::size_t{1}, k5MiB}) {
      SCOPED_TRACE(std::string(method) + " " + std::to_string(size) + " bytes");
      up_.clear();
      const std::string body = pattern_body(size, static_cast<unsigned>(size) + 11);
      auto r = roundtrip(gw_->port(), make_request(method, "/echo", {}, body), 30s);
      ASSERT_EQ(r.status, 200) << r.describe();
      ASSERT_EQ(up_.request_count(), 1u);
      const Request got = up_.requests()[0];
      EXPECT_EQ(got.method, method);
      EXPECT_EQ(got.body.size(), size);
      EXPECT_TRUE(got.body == body) << "request body altered on the way";
      EXPECT_EQ(r.body.size(), size);
      EXPECT_TRUE(r.body == body) << "response body altered on the way";
    }
  }
}

TEST_F(Bodies, ChunkedRequestBodyArrivesIdentical) {
  // Chunks of irregular sizes, with an extension, so any re-framing shows.
  const std::string body = pattern_body(700001, 5);
  std::string wire;
  std::size_t at = 0, step = 1;
  while (at < body.size()) {
    std::size_t n = std::min(step, body.size() - at);
    char hex[32];
    std::snprintf(hex, sizeof hex, "%zx", n);
    wire += std::string(hex) + (step % 3 == 0 ? ";ext=1" : "") + "\r\n" + body.substr(at, n) + "\r\n";
    at += n;
    step = step * 7 + 13;
    if (step > 100000) step = step % 100000 + 1;
  }
  wire += "0\r\n\r\n";
  auto r = roundtrip(gw_->port(), make_request("POST", "/chunked", {{"Transfer-Encoding", "chunked"}}, wire), 20s);
  ASSERT_EQ(r.status, 200) << r.describe();
  ASSERT_EQ(up_.request_count(), 1u);
  EXPECT_EQ(up_.requests()[0].body.size(), body.size());
  EXPECT_TRUE(up_.requests()[0].body == body);
  EXPECT_TRUE(r.body == body);
}

TEST_F(Bodies, ChunkedRequestWithTrailersArrivesIdentical) {
  const std::string wire = "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 42\r\n\r\n";
  auto r = roundtrip(gw_->port(), make_request("POST", "/trailers", {{"Transfer-Encoding", "chunked"}}, wire));
  ASSERT_EQ(r.status, 200) << r.describe();
  ASSERT_EQ(up_.request_count(), 1u);
  EXPECT_EQ(up_.requests()[0].body, "hello world");
  EXPECT_EQ(r.body, "hello world");
}

TEST_F(Bodies, TargetIsForwardedAsSent) {
  // Only the path is normalized for matching; what it leaves, and the query, pass untouched.
  up_.set_handler([](const Request& r) { return Reply::text(r.target); });
  for (const char* target : {"/api/a%20b?x=%2F%2e&y=%00&z=../..", "/api/%E2%82%AC?q=a+b&q=%25"}) {
    SCOPED_TRACE(target);
    auto r = roundtrip(gw_->port(), make_request("GET", target));
    EXPECT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(r.body, target);
  }
}

TEST_F(Bodies, LargeResponsesArriveIdenticalInBothFramings) {
  const std::string big = pattern_body(k5MiB, 99);
  for (bool chunked : {false, true}) {
    SCOPED_TRACE(chunked ? "chunked" : "content-length");
    up_.set_handler([&](const Request&) {
      Reply r;
      r.headers.add("Content-Type", "application/octet-stream");
      r.body = big;
      r.chunked = chunked;
      return r;
    });
    auto r = roundtrip(gw_->port(), make_request("GET", "/big"), 30s);
    ASSERT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(r.body.size(), big.size());
    EXPECT_TRUE(r.body == big);
    if (auto cl = r.headers.get("Content-Length")) {
      EXPECT_EQ(*cl, std::to_string(big.size()));
    }
  }
}

// A client that reads nothing for a while: the socket takes part of the body, then nothing;
// the rest waits for room. Then a second response on the same connection: nothing lost or
// reordered on the way.
TEST_F(Bodies, AClientThatReadsLateGetsEveryByte) {
  const std::string big = pattern_body(k5MiB, 41);
  up_.set_handler([&](const Request& req) {
    Reply r;
    r.body = req.target == "/big" ? big : "small";
    return r;
  });
  Conn c(gw_->port());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.send(make_request("GET", "/big") + make_request("GET", "/small")));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the socket buffers fill
  auto first = c.read_response(30s);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body.size(), big.size());
  EXPECT_TRUE(first->body == big);
  auto second = c.read_response(5s);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->body, "small");
}

TEST_F(Bodies, ExpectContinueIsAnswered) {
  Conn c(gw_->port());
  ASSERT_TRUE(c.ok());
  const std::string body = pattern_body(100000, 4);
  ASSERT_TRUE(c.send("POST /expect HTTP/1.1\r\nHost: gw.test\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = c.read_response(3s);
  ASSERT_TRUE(interim) << "no 100 Continue before the body was sent";
  ASSERT_EQ(interim->status, 100) << interim->describe();
  ASSERT_TRUE(c.send(body));
  auto r = c.read_response(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->describe();
  EXPECT_TRUE(r->body == body);
  ASSERT_EQ(up_.request_count(), 1u);
  EXPECT_TRUE(up_.requests()[0].body == body);
}

TEST_F(Bodies, KeepAliveCarriesSeveralRequests) {
  Conn c(gw_->port());
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 10; ++i) {
    const std::string body = "request-" + std::to_string(i);
    ASSERT_TRUE(c.send(make_request(i % 2 ? "POST" : "PUT", "/ka", {}, body)));
    auto r = c.read_response();
    ASSERT_TRUE(r) << "no response to request " << i << " on the kept-alive connection";
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, body);
  }
  EXPECT_EQ(up_.request_count(), 10u);
}

TEST_F(Bodies, PipelinedRequestsAreAnsweredInOrder) {
  up_.set_handler([](const Request& r) {
    Reply reply = Reply::text(r.target + ":" + r.body);
    // The first answer is the slowest: a gateway that answers out of order shows it.
    if (r.target == "/p/0") reply.delay = 200ms;
    return reply;
  });
  std::string wire;
  for (int i = 0; i < 5; ++i) {
    wire += make_request(i % 2 ? "POST" : "GET", "/p/" + std::to_string(i), {}, i % 2 ? "b" + std::to_string(i) : "");
  }
  Conn c(gw_->port());
  ASSERT_TRUE(c.send(wire));
  for (int i = 0; i < 5; ++i) {
    auto r = c.read_response(5s);
    ASSERT_TRUE(r) << "no response " << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "/p/" + std::to_string(i) + ":" + (i % 2 ? "b" + std::to_string(i) : ""));
  }
}

// A long chunked body is read in buffers of its own; a request sent right behind it, in the
// same writes, is still answered, and after it a short one.
TEST_F(Bodies, RequestPipelinedBehindALongChunkedBodyIsAnswered) {
  up_.set_handler([](const Request& r) { return Reply::text(r.target + ":" + std::to_string(r.body.size())); });
  const std::string body = pattern_body(300000, 17);
  std::string wire = "POST /long HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (std::size_t at = 0; at < body.size(); at += 40000) {
    const std::size_t n = std::min<std::size_t>(40000, body.size() - at);
    char hex[16];
    std::snprintf(hex, sizeof hex, "%zx", n);
    wire += std::string(hex) + "\r\n" + body.substr(at, n) + "\r\n";
  }
  wire += "0\r\n\r\n" + make_request("POST", "/next", {}, "abc") + make_request("GET", "/last");
  Conn c(gw_->port());
  ASSERT_TRUE(c.send(wire));
  for (const char* want : {"/long:300000", "/next:3", "/last:0"}) {
    auto r = c.read_response(10s);
    ASSERT_TRUE(r) << "no response for " << want << "; pending: " << c.pending().substr(0, 200);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, want);
  }
  ASSERT_EQ(up_.request_count(), 3u);
  EXPECT_TRUE(up_.requests()[0].body == body);
}

TEST_F(Bodies, HeadResponseHasNoBody) {
  up_.set_handler([](const Request&) { return Reply::text("0123456789"); });
  Conn c(gw_->port());
  ASSERT_TRUE(c.send(make_request("HEAD", "/head") + make_request("GET", "/after")));
  auto head = c.read_response(5s, /*head_request=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  auto next = c.read_response(5s);
  ASSERT_TRUE(next) << "the HEAD response carried a body: " << c.pending();
  EXPECT_EQ(next->body, "0123456789");
}

}  // namespace
}  // namespace gh::integ
