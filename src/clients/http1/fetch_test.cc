// fetch against real loopback services (the integration harness's Upstream): every framing, the
// caps, the deadline, strictness, redirects, refusal, and the kept connection's reuse and retry.
#include "clients/http1/fetch.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "harness/gateway.h"
#include "harness/tls.h"
#include "harness/upstream.h"

namespace gh::clients::http1 {
namespace {

namespace asio = boost::asio;
using integ::Reply;
using integ::Upstream;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Runs one fetch to completion on a local io_context.
struct Loop {
  asio::io_context io{1};

  Result<FetchResponse> run(asio::awaitable<Result<FetchResponse>> op) {
    std::optional<Result<FetchResponse>> out;
    asio::co_spawn(io, std::move(op), [&](std::exception_ptr e, Result<FetchResponse> r) {
      if (e) std::rethrow_exception(e);
      out.emplace(std::move(r));
    });
    io.restart();
    io.run();
    return std::move(*out);
  }
};

Reply raw(std::string bytes) {
  Reply r;
  r.raw = std::move(bytes);
  return r;
}

std::string url_of(const Upstream& up, const std::string& path = "/doc") { return up.url() + path; }

FetchTarget target_of(const Upstream& up, const std::string& path = "/doc") {
  return FetchTarget::at({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(up.port())},
                         "127.0.0.1:" + std::to_string(up.port()), path);
}

::testing::AssertionResult FailsWith(const Result<FetchResponse>& r, ErrorCode code, const std::string& words) {
  if (r) return ::testing::AssertionFailure() << "succeeded with status " << r->status;
  if (r.error().code != code)
    return ::testing::AssertionFailure() << "error " << to_string(r.error().code) << ": " << r.error().context;
  if (r.error().context.find(words) == std::string::npos)
    return ::testing::AssertionFailure() << "context \"" << r.error().context << "\" lacks \"" << words << "\"";
  return ::testing::AssertionSuccess();
}

TEST(Fetch, ContentLengthBody) {
  Upstream up;
  up.set_handler([](const integ::Request&) { return Reply::text("hello keys"); });
  Loop l;
  auto r = l.run(fetch(url_of(up), {}));
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello keys");
  EXPECT_FALSE(r->reused);
  // The one-shot fetch asks the service to close, and names the host.
  ASSERT_EQ(up.request_count(), 1u);
  const integ::Request req = up.requests().front();
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/doc");
  EXPECT_EQ(req.headers.value_or("Connection", ""), "close");
  EXPECT_EQ(req.headers.value_or("Host", ""), "127.0.0.1:" + std::to_string(up.port()));
}

TEST(Fetch, ExtraFieldsAndQueryAreSent) {
  Upstream up;
  Loop l;
  FetchOptions o;
  o.fields = {{"Accept", "application/json"}, {"User-Agent", "gatehouse"}};
  auto r = l.run(fetch(url_of(up, "/a/b?x=%2F&y=1"), o));
  ASSERT_TRUE(r) << r.error().context;
  const integ::Request req = up.requests().front();
  EXPECT_EQ(req.target, "/a/b?x=%2F&y=1");
  EXPECT_EQ(req.headers.value_or("Accept", ""), "application/json");
  EXPECT_EQ(req.headers.value_or("User-Agent", ""), "gatehouse");
}

TEST(Fetch, ResolvesAName) {
  Upstream up;
  Loop l;
  auto r = l.run(fetch("http://localhost:" + std::to_string(up.port()) + "/doc", {}));
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(up.requests().front().headers.value_or("Host", ""), "localhost:" + std::to_string(up.port()));
}

TEST(Fetch, ChunkedBody) {
  Upstream up;
  Reply chunked = Reply::text(std::string(40000, 'c') + "end");
  chunked.chunked = true;
  up.set_handler([&](const integ::Request&) { return chunked; });
  Loop l;
  auto r = l.run(fetch(url_of(up), {}));
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_EQ(r->body, std::string(40000, 'c') + "end");
}

TEST(Fetch, CloseDelimitedBody) {
  Upstream up;
  up.set_handler([](const integ::Request&) { return raw("HTTP/1.1 200 OK\r\n\r\n" + std::string(50000, 'b')); });
  Loop l;
  FetchClient client(l.io.get_executor());
  auto r = l.run(client.fetch(target_of(up), {}));
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_EQ(r->body, std::string(50000, 'b'));
  EXPECT_FALSE(client.has_idle_connection()) << "a close-delimited response ends its connection";
}

TEST(Fetch, InterimResponsesAreSkipped) {
  Upstream up;
  up.set_handler([](const integ::Request&) {
    return raw("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
               "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  Loop l;
  auto r = l.run(fetch(url_of(up), {}));
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
}

TEST(Fetch, HeadReadsNoBodyAndKeepsTheConnection) {
  Upstream up;
  up.set_handler([](const integ::Request&) { return Reply::text("a body HEAD does not get"); });
  Loop l;
  FetchClient client(l.io.get_executor());
  FetchOptions o;
  o.method = Method::Head;
  auto r = l.run(client.fetch(target_of(up), o));
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "");
  EXPECT_EQ(up.requests().front().method, "HEAD");
  EXPECT_TRUE(client.has_idle_connection());
  r = l.run(client.fetch(target_of(up), {}));
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_TRUE(r->reused);
  EXPECT_EQ(r->body, "a body HEAD does not get");
}

TEST(Fetch, BodyOverTheCapIsAnError) {
  Upstream up;
  Loop l;
  FetchOptions o;
  o.max_body_bytes = 1000;
  up.set_handler([](const integ::Request&) { return Reply::text(std::string(1001, 'x')); });
  EXPECT_TRUE(FailsWith(l.run(fetch(url_of(up), o)), ErrorCode::BadResponse, "over the cap of 1000 bytes"));
  up.set_handler([](const integ::Request&) {
    Reply r = Reply::text(std::string(5000, 'x'));
    r.chunked = true;
    return r;
  });
  EXPECT_TRUE(FailsWith(l.run(fetch(url_of(up), o)), ErrorCode::BadResponse, "over the cap of 1000 bytes"));
  up.set_handler([](const integ::Request&) { return raw("HTTP/1.1 200 OK\r\n\r\n" + std::string(5000, 'x')); });
  EXPECT_TRUE(FailsWith(l.run(fetch(url_of(up), o)), ErrorCode::BadResponse, "over the cap of 1000 bytes"));
  // Exactly the cap is fine.
  up.set_handler([](const integ::Request&) { return Reply::text(std::string(1000, 'x')); });
  auto r = l.run(fetch(url_of(up), o));
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_EQ(r->body.size(), 1000u);
}

TEST(Fetch, HeadOverTheCapIsAnError) {
  Upstream up;
  up.set_handler([](const integ::Request&) {
    Reply r = Reply::text("ok");
    r.headers.add("X-Big", std::string(3000, 'h'));
    return r;
  });
  Loop l;
  FetchOptions o;
  o.max_head_bytes = 1024;
  EXPECT_TRUE(FailsWith(l.run(fetch(url_of(up), o)), ErrorCode::BadResponse, "response head"));
}

TEST(Fetch, DeadlinePassesOnAServiceThatNeverAnswers) {
  Upstream up;
  up.set_handler([](const integ::Request&) {
    Reply r = Reply::text("late");
    r.delay = 60s;  // interrupted when the Upstream stops
    return r;
  });
  Loop l;
  FetchOptions o;
  o.timeout = 300ms;
  const auto start = Clock::now();
  auto r = l.run(fetch(url_of(up), o));
  const auto took = Clock::now() - start;
  EXPECT_TRUE(FailsWith(r, ErrorCode::Timeout, "within 300ms"));
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 3s);
}

TEST(Fetch, DeadlineCoversASlowBody) {
  // The head arrives at once, the body never completes: the deadline is over the whole fetch.
  Upstream up;
  up.set_handler([](const integ::Request&) {
    Reply r = raw("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome");
    return r;
  });
  Loop l;
  FetchOptions o;
  o.timeout = 300ms;
  // The raw reply closes after its bytes: a cut-short body, not a timeout.
  EXPECT_TRUE(FailsWith(l.run(fetch(url_of(up), o)), ErrorCode::UpstreamClosed, "after 4 of 100 bytes"));
}

struct Malformed {
  const char* name;
  std::string bytes;
  ErrorCode code;
  const char* words;
};

class MalformedResponse : public ::testing::TestWithParam<Malformed> {};

TEST_P(MalformedResponse, IsAnErrorNotAGuess) {
  Upstream up;
  const std::string bytes = GetParam().bytes;
  up.set_handler([&](const integ::Request&) { return raw(bytes); });
  Loop l;
  FetchClient client(l.io.get_executor());
  auto r = l.run(client.fetch(target_of(up), {}));
  EXPECT_TRUE(FailsWith(r, GetParam().code, GetParam().words)) << GetParam().name;
  EXPECT_FALSE(client.has_idle_connection());
}

INSTANTIATE_TEST_SUITE_P(
    Fetch, MalformedResponse,
    ::testing::Values(
        Malformed{"status_letters", "HTTP/1.1 2xx OK\r\nContent-Length: 2\r\n\r\nok", ErrorCode::BadResponse,
                  "malformed response head"},
        Malformed{"not_http", "SSH-2.0-OpenSSH_9.2\r\n\r\n", ErrorCode::BadResponse, "malformed response head"},
        Malformed{"obs_fold", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\r\n  folded\r\n\r\nok",
                  ErrorCode::BadResponse, "malformed response head"},
        Malformed{"conflicting_length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
                  ErrorCode::BadResponse, "malformed response head"},
        Malformed{"head_cut_short", "HTTP/1.1 200", ErrorCode::UpstreamClosed, "closed in the response head"},
        Malformed{"nothing", "", ErrorCode::UpstreamClosed, "closed before any response"},
        Malformed{"body_cut_short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok", ErrorCode::UpstreamClosed,
                  "after 2 of 10 bytes"},
        Malformed{"bad_chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
                  ErrorCode::BadResponse, "malformed chunked body"},
        Malformed{"chunked_cut_short", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nok",
                  ErrorCode::UpstreamClosed, "chunked response body"},
        Malformed{"bytes_after_the_body", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
                  ErrorCode::BadResponse, "bytes after the response body"},
        Malformed{"bytes_after_a_bodiless_response", "HTTP/1.1 204 No Content\r\n\r\nextra", ErrorCode::BadResponse,
                  "bytes after a response without a body"},
        Malformed{"bytes_after_the_last_chunk",
                  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nextra",
                  ErrorCode::BadResponse, "bytes after the response body"},
        Malformed{"unasked_upgrade", "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n",
                  ErrorCode::BadResponse, "101"},
        Malformed{"endless_interim",
                  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
                  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                  ErrorCode::BadResponse, "interim responses"}),
    [](const ::testing::TestParamInfo<Malformed>& i) { return std::string(i.param.name); });

TEST(Fetch, RedirectIsReturnedNotFollowed) {
  Upstream up;
  up.set_handler([&](const integ::Request& req) {
    if (req.target != "/doc") return Reply::text("followed");
    Reply r = Reply::text("moved", 301);
    r.reason = "Moved Permanently";
    r.headers.add("Location", url_of(up, "/elsewhere"));
    return r;
  });
  Loop l;
  auto r = l.run(fetch(url_of(up), {}));
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_EQ(r->status, 301);
  EXPECT_EQ(r->body, "moved");
  EXPECT_EQ(up.heads_seen(), 1);
}

TEST(Fetch, ConnectionRefused) {
  Upstream up;
  const std::string url = url_of(up);
  up.stop();
  Loop l;
  auto r = l.run(fetch(url, {}));
  EXPECT_TRUE(FailsWith(r, ErrorCode::ConnectRefused, "connection refused by 127.0.0.1:" + std::to_string(up.port())));
  EXPECT_TRUE(r.error().retryable);
}

TEST(Fetch, UrlsItCannotFetch) {
  Loop l;
  EXPECT_TRUE(FailsWith(l.run(fetch("ftp://idp.example/keys", {})), ErrorCode::InvalidConfig, "http(s)://"));
  EXPECT_TRUE(FailsWith(l.run(fetch("http://u:p@idp.example/keys", {})), ErrorCode::InvalidConfig, "user information"));
  EXPECT_TRUE(FailsWith(l.run(fetch("http://idp.example/keys#x", {})), ErrorCode::InvalidConfig, "fragment"));
  EXPECT_TRUE(FailsWith(l.run(fetch("not a url", {})), ErrorCode::InvalidConfig, "space"));
}

TEST(Fetch, RequestThatCannotBeWrittenIsRefusedBeforeConnecting) {
  Upstream up;
  Loop l;
  FetchClient client(l.io.get_executor());
  EXPECT_TRUE(FailsWith(l.run(client.fetch(target_of(up, "/a b"), {})), ErrorCode::InvalidConfig, "request target"));
  EXPECT_TRUE(FailsWith(l.run(client.fetch(target_of(up, "no-slash"), {})), ErrorCode::InvalidConfig, "request target"));
  FetchOptions o;
  o.fields = {{"X-Evil", "a\r\nInjected: 1"}};
  EXPECT_TRUE(FailsWith(l.run(client.fetch(target_of(up), o)), ErrorCode::InvalidConfig, "X-Evil"));
  EXPECT_EQ(up.connections_accepted(), 0);
}

TEST(Fetch, KeptConnectionIsReusedForTheNextFetch) {
  Upstream up;
  Loop l;
  FetchClient client(l.io.get_executor());
  for (int i = 0; i < 3; ++i) {
    auto r = l.run(client.fetch(target_of(up), {}));
    ASSERT_TRUE(r) << i << ": " << r.error().context;
    EXPECT_EQ(r->reused, i > 0) << i;
    EXPECT_TRUE(client.has_idle_connection());
  }
  EXPECT_EQ(up.connections_accepted(), 1);
  EXPECT_EQ(up.heads_seen(), 3);
  EXPECT_FALSE(up.requests().front().headers.has("Connection"));
}

TEST(Fetch, ConnectionCloseAnswerIsNotKept) {
  Upstream up;
  up.set_handler([](const integ::Request&) {
    Reply r = Reply::text("bye");
    r.headers.add("Connection", "close");
    r.close = true;
    return r;
  });
  Loop l;
  FetchClient client(l.io.get_executor());
  ASSERT_TRUE(l.run(client.fetch(target_of(up), {})));
  EXPECT_FALSE(client.has_idle_connection());
  ASSERT_TRUE(l.run(client.fetch(target_of(up), {})));
  EXPECT_EQ(up.connections_accepted(), 2);
}

TEST(Fetch, KeptConnectionClosedByTheServiceIsReplaced) {
  Upstream up;
  up.set_handler([](const integ::Request&) {
    Reply r = Reply::text("up");
    r.close = true;  // closes after answering, without saying so: the kept connection dies
    return r;
  });
  Loop l;
  FetchClient client(l.io.get_executor());
  for (int i = 0; i < 3; ++i) {
    auto r = l.run(client.fetch(target_of(up), {}));
    ASSERT_TRUE(r) << i << ": " << r.error().context;
    EXPECT_FALSE(r->reused);
    EXPECT_EQ(r->body, "up");
  }
  EXPECT_EQ(up.connections_accepted(), 3);
  EXPECT_EQ(up.heads_seen(), 3) << "a dead kept connection is noticed before sending on it";
}

TEST(Fetch, KeptConnectionFailingBeforeAnyByteIsRetriedOnceOnANewOne) {
  Upstream up;
  std::atomic<int> calls{0};
  up.set_handler([&](const integ::Request&) {
    Reply r = Reply::text("answer " + std::to_string(++calls));
    if (calls == 2) r.reset = true;  // the second request, on the kept connection: reset, nothing sent
    return r;
  });
  Loop l;
  FetchClient client(l.io.get_executor());
  ASSERT_TRUE(l.run(client.fetch(target_of(up), {})));
  auto r = l.run(client.fetch(target_of(up), {}));
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_EQ(r->body, "answer 3");
  EXPECT_FALSE(r->reused);
  EXPECT_EQ(up.connections_accepted(), 2);
  EXPECT_EQ(up.heads_seen(), 3);
}

TEST(Fetch, NoRetryOnceResponseBytesArrived) {
  Upstream up;
  std::atomic<int> calls{0};
  up.set_handler([&](const integ::Request&) {
    if (++calls == 2) return raw("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart");
    return Reply::text("whole");
  });
  Loop l;
  FetchClient client(l.io.get_executor());
  ASSERT_TRUE(l.run(client.fetch(target_of(up), {})));
  EXPECT_TRUE(FailsWith(l.run(client.fetch(target_of(up), {})), ErrorCode::UpstreamClosed, "after 4 of 10 bytes"));
  EXPECT_EQ(up.connections_accepted(), 1);
  EXPECT_EQ(up.heads_seen(), 2);
  // A new fetch opens a new connection.
  auto r = l.run(client.fetch(target_of(up), {}));
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_EQ(r->body, "whole");
  EXPECT_EQ(up.connections_accepted(), 2);
}

TEST(Fetch, NoRetryOnAFreshConnection) {
  Upstream up;
  up.set_handler([](const integ::Request&) {
    Reply r = Reply::text("never");
    r.reset = true;
    return r;
  });
  Loop l;
  FetchClient client(l.io.get_executor());
  auto r = l.run(client.fetch(target_of(up), {}));
  EXPECT_TRUE(FailsWith(r, ErrorCode::UpstreamClosed, "no response"));
  EXPECT_EQ(up.connections_accepted(), 1);
  EXPECT_EQ(up.heads_seen(), 1);
}

TEST(Fetch, AnotherAddressDoesNotReuseTheKeptConnection) {
  Upstream a("a"), b("b");
  Loop l;
  FetchClient client(l.io.get_executor());
  ASSERT_TRUE(l.run(client.fetch(target_of(a), {})));
  auto r = l.run(client.fetch(target_of(b), {}));
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_EQ(r->body, "b");
  EXPECT_FALSE(r->reused);
  EXPECT_EQ(a.heads_seen(), 1);
  EXPECT_EQ(b.connections_accepted(), 1);
}

TEST(Fetch, CloseEndsAFetchInFlightAtOnce) {
  Upstream up;
  up.set_handler([](const integ::Request&) {
    Reply r = Reply::text("late");
    r.delay = 60s;
    return r;
  });
  Loop l;
  FetchClient client(l.io.get_executor());
  asio::steady_timer later(l.io, 100ms);
  later.async_wait([&](boost::system::error_code) { client.close(); });
  FetchOptions o;
  o.timeout = 10s;
  const auto start = Clock::now();
  auto r = l.run(client.fetch(target_of(up), o));
  EXPECT_TRUE(FailsWith(r, ErrorCode::UpstreamClosed, "cancelled"));
  EXPECT_LT(Clock::now() - start, 3s);
}

// Over TLS (a target with `tls`, as a health probe of an https instance): verified against the
// given CA, one handshake for several fetches on the kept connection; a certificate for
// another name is a connect failure that says why, and nothing reaches the service.
struct TlsFixture {
  integ::TempDir dir;
  integ::Pki pki{dir.path()};
  std::shared_ptr<const TlsTarget> target(const std::string& host = "127.0.0.1") const {
    net::TlsClientOptions o;
    o.ca = pki.ca_file();
    std::string error;
    auto ctx = net::TlsClientContext::load(o, error);
    EXPECT_TRUE(ctx) << error;
    return TlsTarget::make(ctx, host, {}, "test");
  }
};

integ::CertSpec cert_for(std::vector<std::string> dns, std::vector<std::string> ips) {
  integ::CertSpec s;
  s.dns = std::move(dns);
  s.ips = std::move(ips);
  return s;
}

TEST(FetchTls, VerifiedFetchesShareOneHandshake) {
  TlsFixture f;
  Upstream up;
  integ::TlsUpstream front(up.port(), f.pki.issue("svc", cert_for({}, {"127.0.0.1"})));
  Loop l;
  FetchClient client(l.io.get_executor());
  for (int i = 0; i < 3; ++i) {
    FetchTarget t = FetchTarget::at({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(front.port())},
                                    "svc", "/doc");
    t.tls = f.target();
    auto r = l.run(client.fetch(t, {}));
    ASSERT_TRUE(r) << r.error().context;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->reused, i > 0);
  }
  EXPECT_EQ(front.handshakes(), 1);
  EXPECT_EQ(up.request_count(), 3u);
}

TEST(FetchTls, AnotherNamesCertificateIsAConnectFailure) {
  TlsFixture f;
  Upstream up;
  integ::TlsUpstream front(up.port(), f.pki.issue("svc", cert_for({"other.test"}, {})));
  Loop l;
  FetchClient client(l.io.get_executor());
  FetchTarget t = FetchTarget::at({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(front.port())},
                                  "svc", "/doc");
  t.tls = f.target();
  auto r = l.run(client.fetch(t, {}));
  EXPECT_TRUE(FailsWith(r, ErrorCode::ConnectFailed, "certificate verify failed (IP address mismatch)"));
  EXPECT_TRUE(r.error().retryable);
  // The name the certificate holds passes.
  t.tls = f.target("other.test");
  r = l.run(client.fetch(t, {}));
  ASSERT_TRUE(r) << r.error().context;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(front.last_sni(), "other.test");
  EXPECT_EQ(up.request_count(), 1u);
}

TEST(FetchTls, AServerThatSpeaksNoTlsFailsWithinTheDeadline) {
  TlsFixture f;
  Upstream up;  // plain HTTP: the ClientHello gets an HTTP 400 or nothing TLS
  Loop l;
  FetchClient client(l.io.get_executor());
  FetchTarget t = target_of(up);
  t.tls = f.target();
  FetchOptions o;
  o.timeout = 2s;
  const auto start = Clock::now();
  auto r = l.run(client.fetch(t, o));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().code == ErrorCode::ConnectFailed || r.error().code == ErrorCode::Timeout)
      << r.error().context;
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_EQ(up.request_count(), 0u);
}

}  // namespace
}  // namespace gh::clients::http1
