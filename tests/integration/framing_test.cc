// Request framing (SPEC §3, RFC 9112): every request that could be read two ways is refused
// with 400 (501 for an unimplemented transfer coding), the connection is closed, and nothing of
// it reaches a service.
#include <gtest/gtest.h>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

using namespace std::string_literals;

struct Attack {
  const char* name;
  std::string wire;
  int status = 400;
};

std::vector<Attack> attacks() {
  const std::string h = "Host: gw.test\r\n";
  return {
      {"content-length and transfer-encoding",
       "POST /x HTTP/1.1\r\n" + h + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"transfer-encoding and content-length",
       "POST /x HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"},
      {"two differing content-lengths",
       "POST /x HTTP/1.1\r\n" + h + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
      {"content-length list that differs", "POST /x HTTP/1.1\r\n" + h + "Content-Length: 5, 6\r\n\r\nhello!"},
      {"non-numeric content-length", "POST /x HTTP/1.1\r\n" + h + "Content-Length: 5x\r\n\r\nhello"},
      {"signed content-length", "POST /x HTTP/1.1\r\n" + h + "Content-Length: +5\r\n\r\nhello"},
      {"chunked not final", "POST /x HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"},
      {"chunked twice", "POST /x HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"unimplemented coding before chunked",
       "POST /x HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
      {"whitespace before colon", "POST /x HTTP/1.1\r\n" + h + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
      {"obs-fold", "GET /x HTTP/1.1\r\n" + h + "X-Folded: a\r\n b\r\n\r\n"},
      {"obs-fold with tab", "GET /x HTTP/1.1\r\n" + h + "X-Folded: a\r\n\tb\r\n\r\n"},
      {"bare CR in a value", "GET /x HTTP/1.1\r\n" + h + "X-Bad: a\rb\r\n\r\n"},
      {"bare CR as line end", "GET /x HTTP/1.1\r" + h + "\r\n"},
      {"NUL in a value", "GET /x HTTP/1.1\r\n" + h + "X-Bad: a\0b\r\n\r\n"s},
      {"control byte in a value", "GET /x HTTP/1.1\r\n" + h + "X-Bad: a\x01" "b\r\n\r\n"},
      {"NUL in a name", "GET /x HTTP/1.1\r\n" + h + "X-B\0d: a\r\n\r\n"s},
      {"space in a name", "GET /x HTTP/1.1\r\n" + h + "X Bad: a\r\n\r\n"},
      {"no host", "GET /x HTTP/1.1\r\nX-Other: 1\r\n\r\n"},
      {"two hosts", "GET /x HTTP/1.1\r\nHost: gw.test\r\nHost: evil.test\r\n\r\n"},
      {"two identical hosts", "GET /x HTTP/1.1\r\nHost: gw.test\r\nHost: gw.test\r\n\r\n"},
      {"request line without version", "GET /x\r\n" + h + "\r\n"},
      {"request line with two spaces", "GET  /x HTTP/1.1\r\n" + h + "\r\n"},
      {"request line with trailing junk", "GET /x HTTP/1.1 junk\r\n" + h + "\r\n"},
      {"invalid method token", "G(T /x HTTP/1.1\r\n" + h + "\r\n"},
      {"bad version", "GET /x HTTX/1.1\r\n" + h + "\r\n"},
      {"invalid chunk size", "POST /x HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
      {"negative chunk size", "POST /x HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"},
      {"overflowing chunk size",
       "POST /x HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n"},
      {"chunk size with space junk", "POST /x HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n"},
      {"chunk data longer than its size",
       "POST /x HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n"},
  };
}

class Framing : public ::testing::Test {
 protected:
  void SetUp() override {
    gw_ = std::make_unique<Gateway>(fill(R"(
services:
  svc: {instances: ["{U}"]}
routes:
  - path: /
    service: svc
)",
                                         {{"U", up_.url()}}));
    GH_START(*gw_);
  }

  // After an attack: a valid request still passes, and it is the only thing the service saw.
  ::testing::AssertionResult OnlySentinelArrives() {
    auto r = http_get(gw_->port(), "/sentinel");
    if (r.status != 200) return ::testing::AssertionFailure() << "sentinel failed:\n" << r.describe();
    if (!up_.wait_requests(1)) return ::testing::AssertionFailure() << "sentinel not recorded";
    auto reqs = up_.requests();
    if (reqs.size() != 1 || reqs[0].target != "/sentinel" || up_.heads_seen() != 1) {
      auto f = ::testing::AssertionFailure();
      f << "the service saw " << up_.heads_seen() << " heads, " << reqs.size() << " requests";
      if (!reqs.empty()) f << "; first: " << reqs[0].method << " " << reqs[0].target << "\n" << reqs[0].headers.to_string();
      return f;
    }
    return ::testing::AssertionSuccess();
  }

  Upstream up_{"svc"};
  std::unique_ptr<Gateway> gw_;
};

TEST_F(Framing, EveryAmbiguousRequestIsRefusedAndNeverForwarded) {
  for (const Attack& a : attacks()) {
    SCOPED_TRACE(a.name);
    up_.clear();
    Conn c(gw_->port());
    ASSERT_TRUE(c.ok());
    c.send(a.wire);
    auto r = c.read_response(5s);
    ASSERT_TRUE(r) << "no response; got bytes: " << c.pending();
    EXPECT_TRUE(IsJsonError(*r, a.status, a.status == 400 ? "Bad request" : "Not implemented"));
    EXPECT_TRUE(c.wait_closed(3s)) << "connection left open after a framing error";
    EXPECT_TRUE(OnlySentinelArrives());
  }
}

TEST_F(Framing, NothingAfterARefusedRequestIsServedOnItsConnection) {
  // A smuggled second request behind an ambiguous one must not be answered either.
  Conn c(gw_->port());
  ASSERT_TRUE(c.send("POST /x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: gw.test\r\n\r\n"));
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_FALSE(c.read_response(1s)) << "a second response followed the 400";
  EXPECT_TRUE(OnlySentinelArrives());
}

TEST_F(Framing, ChunkedBodyGoingBadMidwayNeverCompletesUpstream) {
  std::string good;
  for (int i = 0; i < 16; ++i) good += "1000\r\n" + std::string(4096, static_cast<char>('a' + i)) + "\r\n";
  Conn c(gw_->port());
  ASSERT_TRUE(c.send("POST /midway HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n" + good));
  // Let the gateway stream what it has, then break the framing.
  eventually([&] { return up_.heads_seen() > 0; }, 500ms);
  c.send("xyz\r\nhello\r\n0\r\n\r\n");
  auto r = c.read_response(5s);
  if (r) {
    EXPECT_TRUE(IsJsonError(*r, 400, "Bad request"));
  }
  EXPECT_TRUE(c.wait_closed(3s));
  // Either the head never went upstream, or the upstream request was cut off.
  EXPECT_TRUE(eventually([&] { return up_.heads_seen() == 0 || up_.bodies_aborted() > 0 || up_.request_count() > 0; },
                         5s));
  EXPECT_EQ(up_.request_count(), 0u) << "the service received a complete request from a broken chunked body";
  EXPECT_EQ(up_.bodies_aborted(), up_.heads_seen());
}

TEST_F(Framing, ContentLengthBodyCutShortNeverCompletesUpstream) {
  {
    Conn c(gw_->port());
    ASSERT_TRUE(c.send("POST /short HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 100000\r\n\r\n" + std::string(50000, 'x')));
    eventually([&] { return up_.heads_seen() > 0; }, 500ms);
  }  // the client goes away mid-body
  EXPECT_TRUE(eventually([&] { return up_.heads_seen() == 0 || up_.bodies_aborted() > 0 || up_.request_count() > 0; },
                         5s));
  EXPECT_EQ(up_.request_count(), 0u);
}

}  // namespace
}  // namespace gh::integ
