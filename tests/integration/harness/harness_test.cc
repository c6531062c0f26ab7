// The harness tested on its own: the raw client against the loopback upstream, no gateway.
#include <gtest/gtest.h>

#include <signal.h>

#include <memory>

#include "harness/assertions.h"
#include "harness/child.h"

namespace gh::integ {
namespace {

TEST(Harness, DefaultHandlerNamesInstanceOverKeepAlive) {
  Upstream up("instance-1");
  Conn c(up.port());
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.send(make_request("GET", "/x/" + std::to_string(i))));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "instance-1");
  }
  ASSERT_EQ(up.request_count(), 3u);
  EXPECT_EQ(up.requests()[2].target, "/x/2");
  EXPECT_EQ(up.connections_accepted(), 1);
}

TEST(Harness, PipelinedRequestsAnsweredInOrder) {
  Upstream up("u");
  up.set_handler([](const Request& r) { return Reply::text(r.target); });
  Conn c(up.port());
  ASSERT_TRUE(c.send(make_request("GET", "/a") + make_request("GET", "/b") + make_request("GET", "/c")));
  for (const char* t : {"/a", "/b", "/c"}) {
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, t);
  }
}

TEST(Harness, ChunkedRequestBodyIsDecoded) {
  Upstream up("u");
  up.set_handler(Upstream::echo_body());
  const std::string body = pattern_body(300000, 7);
  auto r = roundtrip(up.port(), make_request("POST", "/e", {{"Transfer-Encoding", "chunked"}}, chunk_encode(body, 4000)));
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == body);
  ASSERT_EQ(up.request_count(), 1u);
  EXPECT_TRUE(up.requests()[0].chunked);
  EXPECT_TRUE(up.requests()[0].body == body);
}

TEST(Harness, LargeBodiesBothWaysAndBothFramings) {
  Upstream up("u");
  const std::string big = pattern_body(5 << 20, 3);
  for (bool chunked : {false, true}) {
    up.set_handler([&](const Request&) {
      Reply r;
      r.body = big;
      r.chunked = chunked;
      return r;
    });
    auto r = roundtrip(up.port(), make_request("POST", "/big", {}, big), 20s);
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.chunked, chunked);
    EXPECT_TRUE(r.body == big);
  }
  EXPECT_TRUE(up.requests().back().body == big);
}

TEST(Harness, RawReplyReachesClientAsGarbage) {
  Upstream up("u");
  up.set_handler([](const Request&) {
    Reply r;
    r.raw = "NOT HTTP AT ALL\r\n\r\n";
    return r;
  });
  Conn c(up.port());
  ASSERT_TRUE(c.send(make_request("GET", "/")));
  EXPECT_FALSE(c.read_response(2s));
  EXPECT_TRUE(c.garbage());
}

TEST(Harness, StopRefusesAndStartReusesPort) {
  Upstream up("u");
  const int port = up.port();
  Conn idle(port);
  ASSERT_TRUE(idle.ok());
  ASSERT_TRUE(idle.send(make_request("GET", "/1")));
  ASSERT_TRUE(idle.read_response());
  up.stop();
  EXPECT_TRUE(idle.wait_closed(2s));
  EXPECT_EQ(connect_to(port, 500ms), -1);
  up.start();
  EXPECT_EQ(up.port(), port);
  EXPECT_EQ(http_get(port, "/2").status, 200);
}

TEST(Harness, HealthToggleAndProbeCounting) {
  Upstream up("u");
  EXPECT_EQ(http_get(up.port(), "/health").status, 200);
  up.set_healthy(false);
  EXPECT_EQ(http_get(up.port(), "/health").status, 500);
  EXPECT_EQ(up.health_probes(), 2);
  EXPECT_EQ(up.request_count(), 0u);
  EXPECT_EQ(up.heads_seen(), 0);
}

TEST(Harness, DelayIsInterruptedByStop) {
  Upstream up("u");
  up.set_handler([](const Request&) {
    Reply r = Reply::text("late");
    r.delay = 30s;
    return r;
  });
  Conn c(up.port());
  ASSERT_TRUE(c.send(make_request("GET", "/slow")));
  ASSERT_TRUE(up.wait_requests(1));
  const auto t0 = Clock::now();
  up.stop();
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_FALSE(c.read_response(1s));
}

TEST(Harness, ExpectContinueGetsInterimResponse) {
  Upstream up("u");
  up.set_handler(Upstream::echo_body());
  Conn c(up.port());
  ASSERT_TRUE(c.send("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = c.read_response(2s);
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(c.send("hello"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "hello");
}

TEST(Harness, CutBodyIsCountedAndNotRecorded) {
  Upstream up("u");
  {
    Conn c(up.port());
    ASSERT_TRUE(c.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"));
    EXPECT_TRUE(c.wait_closed(2s));
  }
  EXPECT_TRUE(eventually([&] { return up.bodies_aborted() == 1; }));
  EXPECT_EQ(up.heads_seen(), 1);
  EXPECT_EQ(up.request_count(), 0u);
}

TEST(Harness, ChildProcessOutputByLine) {
  ChildProcess p({"/bin/sh", "-c", "echo one; echo two; sleep 0.2; printf 'three'"});
  EXPECT_EQ(p.line(5s).value_or("<none>"), "one");
  EXPECT_EQ(p.line(5s).value_or("<none>"), "two");
  EXPECT_FALSE(p.line(50ms)) << "nothing within 50 ms";
  EXPECT_FALSE(p.ended());
  EXPECT_FALSE(p.line(5s)) << "an unended last line is not a line";
  EXPECT_TRUE(p.ended());
  ChildProcess missing({"/nonexistent/program"});
  EXPECT_FALSE(missing.line(5s));
  EXPECT_TRUE(missing.ended());
  // Destroyed while it runs: SIGTERM ends it at once.
  auto forever = std::make_unique<ChildProcess>(std::vector<std::string>{"/bin/sh", "-c", "echo up; exec sleep 60"});
  EXPECT_EQ(forever->line(5s).value_or("<none>"), "up");
  const auto t0 = std::chrono::steady_clock::now();
  forever.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST(Harness, JsonParser) {
  auto j = Json::parse(R"({"status": "ok", "services": {"user": {"healthy": 1, "total": 2}}, "a": [true, null, "x\"y"]})");
  ASSERT_TRUE(j);
  EXPECT_TRUE(j->get("status")->is_string("ok"));
  EXPECT_TRUE(j->get("services")->get("user")->get("total")->is_number(2));
  EXPECT_TRUE(j->get("a")->array[2].is_string("x\"y"));
  EXPECT_FALSE(Json::parse("{\"a\": 1,}"));
  EXPECT_FALSE(Json::parse("{\"a\": 1} x"));
}

TEST(Harness, ResponseParserFramings) {
  Response r;
  std::size_t used = 0;
  EXPECT_EQ(parse_response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab", false, false, r, used), Parse::NeedMore);
  EXPECT_EQ(parse_response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP", false, false, r, used), Parse::Done);
  EXPECT_EQ(used, 41u);
  EXPECT_EQ(r.body, "abc");
  EXPECT_EQ(parse_response("HTTP/1.1 200 OK\r\n\r\nuntil close", true, false, r, used), Parse::Done);
  EXPECT_EQ(r.body, "until close");
  EXPECT_EQ(parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
                           false, false, r, used),
            Parse::Done);
  EXPECT_EQ(r.body, "abc");
  EXPECT_EQ(parse_response("garbage\r\n\r\n", false, false, r, used), Parse::Invalid);
}

}  // namespace
}  // namespace gh::integ
