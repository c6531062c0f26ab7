#include "http/parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace gh::http {
namespace {

using namespace std::string_literals;

// Parses `s` as a request: 0 when Complete, -1 when Partial, else the Invalid status.
int request_status(std::string_view s, const ParseLimits& limits = {}) {
  RequestHead h;
  ParseOutcome r = parse_request(s, limits, h);
  if (r.state == ParseState::Complete) return 0;
  if (r.state == ParseState::Partial) return -1;
  return r.status;
}

int response_status(std::string_view s, bool head = false, const ParseLimits& limits = {}) {
  ResponseHead h;
  ParseOutcome r = parse_response(s, limits, head, h);
  if (r.state == ParseState::Complete) return 0;
  if (r.state == ParseState::Partial) return -1;
  return r.status;
}

// A minimal valid HTTP/1.1 request carrying `fields` (each line ending in CRLF).
std::string get_with(std::string_view fields) {
  return "GET / HTTP/1.1\r\nHost: a.test\r\n"s + std::string(fields) + "\r\n";
}

std::string post_with(std::string_view fields) {
  return "POST /up HTTP/1.1\r\nHost: a.test\r\n"s + std::string(fields) + "\r\n";
}

bool inside(std::string_view outer, std::string_view v) {
  return v.empty() || (v.data() >= outer.data() && v.data() + v.size() <= outer.data() + outer.size());
}

// ---------------------------------------------------------------------------------------------
// Valid requests

TEST(ParseRequest, SimpleGet) {
  const std::string s = "GET /users/42?x=1&y=2 HTTP/1.1\r\nHost: api.test\r\nAccept: */*\r\n\r\n";
  RequestHead h;
  ParseOutcome r = parse_request(s, {}, h);
  ASSERT_EQ(r.state, ParseState::Complete);
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/users/42?x=1&y=2");
  EXPECT_EQ(h.path, "/users/42");
  EXPECT_EQ(h.query, "x=1&y=2");
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.host, "api.test");
  EXPECT_EQ(h.body, BodyKind::None);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.expect_continue);
  EXPECT_FALSE(h.upgrade);
  EXPECT_EQ(h.head_size, s.size());
  ASSERT_EQ(h.fields.size(), 2u);
  EXPECT_EQ(h.fields[1].name, "Accept");
  EXPECT_EQ(h.fields[1].value, "*/*");
}

TEST(ParseRequest, ViewsPointIntoTheBuffer) {
  const std::string s = "GET /a?b HTTP/1.1\r\nHost: h\r\nX-A:  v  \r\n\r\n";
  RequestHead h;
  ASSERT_EQ(parse_request(s, {}, h).state, ParseState::Complete);
  for (std::string_view v : {h.method, h.target, h.path, h.query, h.host}) EXPECT_TRUE(inside(s, v));
  for (const Field& f : h.fields) {
    EXPECT_TRUE(inside(s, f.name));
    EXPECT_TRUE(inside(s, f.value));
  }
}

TEST(ParseRequest, PostWithContentLength) {
  const std::string s = post_with("Content-Length: 11\r\nContent-Type: text/plain\r\n") + "hello world";
  RequestHead h;
  ASSERT_EQ(parse_request(s, {}, h).state, ParseState::Complete);
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.body, BodyKind::Length);
  EXPECT_EQ(h.content_length, 11u);
  EXPECT_EQ(s.substr(h.head_size), "hello world");
}

TEST(ParseRequest, PostChunked) {
  RequestHead h;
  const std::string s = post_with("Transfer-Encoding: chunked\r\n");
  ASSERT_EQ(parse_request(s, {}, h).state, ParseState::Complete);
  EXPECT_EQ(h.body, BodyKind::Chunked);
}

TEST(ParseRequest, ChunkedIsCaseInsensitiveWithOws) {
  RequestHead h;
  ASSERT_EQ(parse_request(post_with("Transfer-Encoding:  ChunKed \t\r\n"), {}, h).state, ParseState::Complete);
  EXPECT_EQ(h.body, BodyKind::Chunked);
}

TEST(ParseRequest, ContentLengthZero) {
  RequestHead h;
  ASSERT_EQ(parse_request(post_with("Content-Length: 0\r\n"), {}, h).state, ParseState::Complete);
  EXPECT_EQ(h.body, BodyKind::Length);
  EXPECT_EQ(h.content_length, 0u);
}

TEST(ParseRequest, IdenticalContentLengthsAreAccepted) {
  RequestHead h;
  ASSERT_EQ(parse_request(post_with("Content-Length: 5\r\nContent-Length: 5\r\n"), {}, h).state,
            ParseState::Complete);
  EXPECT_EQ(h.content_length, 5u);
  ASSERT_EQ(parse_request(post_with("Content-Length: 5, 5\r\n"), {}, h).state, ParseState::Complete);
  EXPECT_EQ(h.content_length, 5u);
}

TEST(ParseRequest, AbsoluteForm) {
  RequestHead h;
  const std::string s = "GET http://backend.test:8080/p/q?z=1 HTTP/1.1\r\nHost: backend.test:8080\r\n\r\n";
  ASSERT_EQ(parse_request(s, {}, h).state, ParseState::Complete);
  EXPECT_EQ(h.target, "http://backend.test:8080/p/q?z=1");
  EXPECT_EQ(h.host, "backend.test:8080");
  EXPECT_EQ(h.path, "/p/q");
  EXPECT_EQ(h.query, "z=1");
}

TEST(ParseRequest, AbsoluteFormWithoutPath) {
  RequestHead h;
  ASSERT_EQ(parse_request("GET HTTP://x.test HTTP/1.1\r\nHost: x.test\r\n\r\n", {}, h).state, ParseState::Complete);
  EXPECT_EQ(h.host, "x.test");
  EXPECT_EQ(h.path, "/");
  EXPECT_EQ(h.query, "");
  ASSERT_EQ(parse_request("GET https://x.test?a HTTP/1.1\r\nHost: x.test\r\n\r\n", {}, h).state,
            ParseState::Complete);
  EXPECT_EQ(h.path, "/");
  EXPECT_EQ(h.query, "a");
}

TEST(ParseRequest, AbsoluteFormHostComesFromTarget) {
  RequestHead h;
  ASSERT_EQ(parse_request("GET http://a.test/ HTTP/1.1\r\nHost: b.test\r\n\r\n", {}, h).state, ParseState::Complete);
  EXPECT_EQ(h.host, "a.test");
}

TEST(ParseRequest, AbsoluteFormStillNeedsHost) {
  EXPECT_EQ(request_status("GET http://a.test/ HTTP/1.1\r\n\r\n"), 400);
}

TEST(ParseRequest, AbsoluteFormRejectsUserinfoAndOtherSchemes) {
  EXPECT_EQ(request_status("GET http://u@a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET ftp://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET http:///p HTTP/1.1\r\nHost: a.test\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET a.test:80 HTTP/1.1\r\nHost: a.test\r\n\r\n"), 400);
}

TEST(ParseRequest, AsteriskFormOnlyWithOptions) {
  RequestHead h;
  ASSERT_EQ(parse_request("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", {}, h).state, ParseState::Complete);
  EXPECT_EQ(h.target, "*");
  EXPECT_EQ(request_status("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

TEST(ParseRequest, Http10) {
  RequestHead h;
  ASSERT_EQ(parse_request("GET /old HTTP/1.0\r\n\r\n", {}, h).state, ParseState::Complete);
  EXPECT_EQ(h.version_minor, 0);
  EXPECT_FALSE(h.keep_alive);
  EXPECT_EQ(h.host, "");
}

TEST(ParseRequest, Http10KeepAlive) {
  RequestHead h;
  ASSERT_EQ(parse_request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: a\r\n\r\n", {}, h).state,
            ParseState::Complete);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_EQ(h.host, "a");
}

TEST(ParseRequest, ConnectionClose) {
  RequestHead h;
  ASSERT_EQ(parse_request(get_with("Connection: foo, CLOSE\r\n"), {}, h).state, ParseState::Complete);
  EXPECT_FALSE(h.keep_alive);
}

TEST(ParseRequest, ExpectContinue) {
  RequestHead h;
  ASSERT_EQ(parse_request(post_with("Content-Length: 3\r\nExpect: 100-Continue\r\n"), {}, h).state,
            ParseState::Complete);
  EXPECT_TRUE(h.expect_continue);
  ASSERT_EQ(parse_request(post_with("Content-Length: 3\r\nExpect: something\r\n"), {}, h).state,
            ParseState::Complete);
  EXPECT_FALSE(h.expect_continue);
}

TEST(ParseRequest, Upgrade) {
  RequestHead h;
  ASSERT_EQ(parse_request(get_with("Connection: Upgrade\r\nUpgrade: websocket\r\n"), {}, h).state,
            ParseState::Complete);
  EXPECT_TRUE(h.upgrade);
  ASSERT_EQ(parse_request(get_with("Upgrade: websocket\r\n"), {}, h).state, ParseState::Complete);
  EXPECT_FALSE(h.upgrade);
  ASSERT_EQ(parse_request(get_with("Connection: upgrade\r\n"), {}, h).state, ParseState::Complete);
  EXPECT_FALSE(h.upgrade);
}

TEST(ParseRequest, SkipsLeadingEmptyLines) {
  RequestHead h;
  const std::string s = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
  ASSERT_EQ(parse_request(s, {}, h).state, ParseState::Complete);
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.head_size, s.size());
  EXPECT_EQ(request_status("\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

TEST(ParseRequest, ValueIsTrimmedAndMayBeEmpty) {
  RequestHead h;
  const std::string s = get_with("X-Empty:\r\nX-Ws: \t \r\nX-In: a  b\t\r\n");
  ASSERT_EQ(parse_request(s, {}, h).state, ParseState::Complete);
  EXPECT_EQ(h.fields.get("x-empty"), "");
  EXPECT_TRUE(h.fields.has("X-EMPTY"));
  EXPECT_EQ(h.fields.get("x-ws"), "");
  EXPECT_EQ(h.fields.get("x-in"), "a  b");
}

TEST(ParseRequest, ObsTextInValueIsAllowed) {
  EXPECT_EQ(request_status(get_with("X-Name: caf\xc3\xa9\r\n")), 0);
}

TEST(ParseRequest, TrailingBytesAreNotPartOfTheHead) {
  RequestHead h;
  const std::string head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  ASSERT_EQ(parse_request(head + "GET /next HTTP/1.1\r\n", {}, h).state, ParseState::Complete);
  EXPECT_EQ(h.head_size, head.size());
}

TEST(ParseRequest, ResetBetweenRequests) {
  RequestHead h;
  ASSERT_EQ(parse_request(post_with("Content-Length: 4\r\nConnection: close\r\n"), {}, h).state, ParseState::Complete);
  ASSERT_EQ(parse_request("GET /b HTTP/1.1\r\nHost: b\r\n\r\n", {}, h).state, ParseState::Complete);
  EXPECT_EQ(h.body, BodyKind::None);
  EXPECT_EQ(h.content_length, 0u);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_EQ(h.fields.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Incremental feeding

TEST(ParseRequest, ByteByByteIsPartialUntilComplete) {
  const std::string s = "\r\nPOST http://a.test/x?y HTTP/1.1\r\nHost: a.test\r\nContent-Length: 2\r\n"
                        "X-Long: some value here\r\n\r\n";
  for (std::size_t n = 0; n < s.size(); ++n) {
    RequestHead h;
    EXPECT_EQ(parse_request(std::string_view(s).substr(0, n), {}, h).state, ParseState::Partial) << n;
  }
  RequestHead h;
  ASSERT_EQ(parse_request(s, {}, h).state, ParseState::Complete);
  EXPECT_EQ(h.head_size, s.size());
  EXPECT_EQ(h.content_length, 2u);
}

TEST(ParseRequest, ErrorsAppearAsSoonAsTheyAreVisible) {
  EXPECT_EQ(request_status("G@"), 400);
  EXPECT_EQ(request_status("GET /a HTTP/2"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\r\nBad Name"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb"), 400);
}

// ---------------------------------------------------------------------------------------------
// Request line

TEST(ParseRequest, RejectsBadVersions) {
  EXPECT_EQ(request_status("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1x\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / http/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/0.9\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET /\r\n\r\n"), 400);
}

TEST(ParseRequest, RejectsIllegalMethod) {
  EXPECT_EQ(request_status("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

TEST(ParseRequest, RejectsDoubleSpace) {
  EXPECT_EQ(request_status("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

TEST(ParseRequest, RejectsBadTarget) {
  EXPECT_EQ(request_status("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET a HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

TEST(ParseRequest, RejectsBareLineEndsInRequestLine) {
  EXPECT_EQ(request_status("GET / HTTP/1.1\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1\rHost: a\r\n\r\n"), 400);
}

TEST(ParseRequest, UriTooLong) {
  ParseLimits lim;
  lim.max_uri_bytes = 16;
  EXPECT_EQ(request_status("GET /0123456789abcde HTTP/1.1\r\nHost: a\r\n\r\n", lim), 0);  // exactly 16
  EXPECT_EQ(request_status("GET /0123456789abcdef HTTP/1.1\r\nHost: a\r\n\r\n", lim), 414);
}

TEST(ParseRequest, UriTooLongWhilePartial) {
  ParseLimits lim;
  lim.max_uri_bytes = 16;
  EXPECT_EQ(request_status("GET /0123456789abcde", lim), -1);
  EXPECT_EQ(request_status("GET /0123456789abcdef", lim), 414);
  EXPECT_EQ(request_status("GET /" + std::string(20000, 'a')), 414);
}

// ---------------------------------------------------------------------------------------------
// Field syntax

TEST(ParseRequest, RejectsObsFold) {
  EXPECT_EQ(request_status(get_with("X-A: one\r\n two\r\n")), 400);
  EXPECT_EQ(request_status(get_with("X-A: one\r\n\ttwo\r\n")), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400);
}

TEST(ParseRequest, RejectsBareCr) {
  EXPECT_EQ(request_status(get_with("X-A: a\rb\r\n")), 400);
  EXPECT_EQ(request_status(get_with("X-A: a\r\r\n")), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\r\n\rX"), 400);
}

TEST(ParseRequest, RejectsBareLf) {
  EXPECT_EQ(request_status(get_with("X-A: a\n")), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\r\n\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"), 400);
}

TEST(ParseRequest, RejectsNulAndControlBytesInValue) {
  EXPECT_EQ(request_status(get_with("X-A: a\0b\r\n"s)), 400);
  EXPECT_EQ(request_status(get_with("X-A: a\x01\r\n")), 400);
  EXPECT_EQ(request_status(get_with("X-A: \x7f\r\n")), 400);
  EXPECT_EQ(request_status(get_with("X-A: \x1b[31m\r\n")), 400);
}

TEST(ParseRequest, BadByteAnywhereInALongValue) {
  // Long values are scanned a word at a time; a bad byte must be found at every offset.
  for (std::size_t at = 0; at < 40; ++at) {
    for (char bad : {'\0', '\x01', '\x1f', '\x7f', '\r', '\n'}) {
      std::string v(40, 'v');
      v[at] = bad;
      EXPECT_EQ(request_status(get_with("X-Long: " + v + "z\r\n")), 400) << at << " " << int(bad);
    }
    std::string ok(40, 'v');
    ok[at] = at % 2 ? '\t' : '\xff';
    RequestHead h;
    const std::string msg = get_with("X-Long: " + ok + "z\r\n");
    ASSERT_EQ(parse_request(msg, {}, h).state, ParseState::Complete) << at;
    EXPECT_EQ(h.fields.get("x-long"), ok + "z");
  }
}

TEST(ParseRequest, BadByteAnywhereInALongTarget) {
  for (std::size_t at = 1; at < 40; ++at) {
    for (char bad : {' ', '#', '\x01', '\x7f', '\t'}) {
      std::string t = "/" + std::string(40, 'p');
      t[at] = bad;
      EXPECT_EQ(request_status("GET " + t + " HTTP/1.1\r\nHost: a\r\n\r\n"), 400) << at << " " << int(bad);
    }
  }
}

TEST(ParseRequest, RejectsBadFieldNames) {
  EXPECT_EQ(request_status(get_with("X\x01A: a\r\n")), 400);
  EXPECT_EQ(request_status(get_with("X-A : a\r\n")), 400);
  EXPECT_EQ(request_status(get_with("X-A\t: a\r\n")), 400);
  EXPECT_EQ(request_status(get_with(": a\r\n")), 400);
  EXPECT_EQ(request_status(get_with("X(A): a\r\n")), 400);
  EXPECT_EQ(request_status(get_with("NoColon\r\n")), 400);
  EXPECT_EQ(request_status(get_with("X\x80: a\r\n")), 400);
}

TEST(ParseRequest, HeaderSectionTooLarge) {
  ParseLimits lim;
  lim.max_header_bytes = 64;
  const std::string fits = "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(64 - 32, 'v') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), 64u);
  EXPECT_EQ(request_status(fits, lim), 0);
  const std::string over = "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(64 - 31, 'v') + "\r\n\r\n";
  EXPECT_EQ(request_status(over, lim), 431);
}

TEST(ParseRequest, HeaderSectionTooLargeWhilePartial) {
  ParseLimits lim;
  lim.max_header_bytes = 64;
  std::string s = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
  s.resize(64, 'v');
  EXPECT_EQ(request_status(s, lim), -1);
  s.push_back('v');
  EXPECT_EQ(request_status(s, lim), 431);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(17000, 'v')), 431);
}

TEST(ParseRequest, TooManyFields) {
  ParseLimits lim;
  lim.max_headers = 3;
  EXPECT_EQ(request_status(get_with("A: 1\r\nB: 2\r\n"), lim), 0);
  EXPECT_EQ(request_status(get_with("A: 1\r\nB: 2\r\nC: 3\r\n"), lim), 431);
}

// ---------------------------------------------------------------------------------------------
// Framing

TEST(ParseRequest, RejectsContentLengthWithTransferEncoding) {
  EXPECT_EQ(request_status(post_with("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")), 400);
  EXPECT_EQ(request_status(post_with("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")), 400);
}

TEST(ParseRequest, RejectsDifferingContentLengths) {
  EXPECT_EQ(request_status(post_with("Content-Length: 5\r\nContent-Length: 6\r\n")), 400);
  EXPECT_EQ(request_status(post_with("Content-Length: 5, 6\r\n")), 400);
  EXPECT_EQ(request_status(post_with("Content-Length: 5,\r\n")), 400);
}

TEST(ParseRequest, RejectsMalformedContentLength) {
  EXPECT_EQ(request_status(post_with("Content-Length: -1\r\n")), 400);
  EXPECT_EQ(request_status(post_with("Content-Length: +5\r\n")), 400);
  EXPECT_EQ(request_status(post_with("Content-Length: 0x10\r\n")), 400);
  EXPECT_EQ(request_status(post_with("Content-Length: 1 2\r\n")), 400);
  EXPECT_EQ(request_status(post_with("Content-Length:\r\n")), 400);
  EXPECT_EQ(request_status(post_with("Content-Length: 99999999999999999999\r\n")), 400);
  EXPECT_EQ(request_status(post_with("Content-Length: 9223372036854775808\r\n")), 400);
  EXPECT_EQ(request_status(post_with("Content-Length: 9223372036854775807\r\n")), 0);
}

TEST(ParseRequest, RejectsChunkedNotFinal) {
  EXPECT_EQ(request_status(post_with("Transfer-Encoding: chunked, gzip\r\n")), 400);
  EXPECT_EQ(request_status(post_with("Transfer-Encoding: gzip\r\n")), 400);
  EXPECT_EQ(request_status(post_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n")), 400);
}

TEST(ParseRequest, UnknownNonFinalCodingIsNotImplemented) {
  EXPECT_EQ(request_status(post_with("Transfer-Encoding: gzip, chunked\r\n")), 501);
  EXPECT_EQ(request_status(post_with("Transfer-Encoding: identity, chunked\r\n")), 501);
  EXPECT_EQ(request_status(post_with("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n")), 501);
}

TEST(ParseRequest, RejectsLookalikeChunked) {
  EXPECT_EQ(request_status(post_with("Transfer-Encoding: xchunked\r\n")), 400);
  EXPECT_EQ(request_status(post_with("Transfer-Encoding: chunked;x=1\r\n")), 400);
  EXPECT_EQ(request_status(post_with("Transfer-Encoding: \"chunked\"\r\n")), 400);
}

TEST(ParseRequest, RejectsChunkedTwice) {
  EXPECT_EQ(request_status(post_with("Transfer-Encoding: chunked, chunked\r\n")), 400);
  EXPECT_EQ(request_status(post_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")), 400);
}

TEST(ParseRequest, RejectsEmptyTransferCoding) {
  EXPECT_EQ(request_status(post_with("Transfer-Encoding:\r\n")), 400);
  EXPECT_EQ(request_status(post_with("Transfer-Encoding: , chunked\r\n")), 400);
}

TEST(ParseRequest, RejectsTransferEncodingInHttp10) {
  EXPECT_EQ(request_status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
}

TEST(ParseRequest, RejectsMissingOrRepeatedHost) {
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
}

TEST(ParseRequest, ValidatesHost) {
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a.test:8080\r\n\r\n"), 0);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n"), 0);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: [::1]:3000\r\n\r\n"), 0);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 0);  // RFC 9112 §3.2: empty allowed
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a:\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), 400);
  EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a,b\r\n\r\n"), 400);
}

// ---------------------------------------------------------------------------------------------
// Responses

TEST(ParseResponse, OkWithLength) {
  const std::string s = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: s\r\n\r\nhello";
  ResponseHead h;
  ASSERT_EQ(parse_response(s, {}, false, h).state, ParseState::Complete);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.reason, "OK");
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.body, BodyKind::Length);
  EXPECT_EQ(h.content_length, 5u);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_EQ(s.substr(h.head_size), "hello");
  EXPECT_EQ(h.fields.get("server"), "s");
}

TEST(ParseResponse, ReasonMayBeEmptyOrMissing) {
  ResponseHead h;
  ASSERT_EQ(parse_response("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", {}, false, h).state, ParseState::Complete);
  EXPECT_EQ(h.reason, "");
  ASSERT_EQ(parse_response("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", {}, false, h).state, ParseState::Complete);
  EXPECT_EQ(h.status, 404);
  ASSERT_EQ(parse_response("HTTP/1.1 500 Internal  Server\tError\r\n\r\n", {}, false, h).state,
            ParseState::Complete);
  EXPECT_EQ(h.reason, "Internal  Server\tError");
}

TEST(ParseResponse, Chunked) {
  ResponseHead h;
  ASSERT_EQ(parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", {}, false, h).state,
            ParseState::Complete);
  EXPECT_EQ(h.body, BodyKind::Chunked);
  EXPECT_TRUE(h.keep_alive);
  ASSERT_EQ(parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", {}, false, h).state,
            ParseState::Complete);
  EXPECT_EQ(h.body, BodyKind::Chunked);
}

TEST(ParseResponse, NonChunkedTransferEncodingReadsUntilClose) {
  ResponseHead h;
  ASSERT_EQ(parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", {}, false, h).state,
            ParseState::Complete);
  EXPECT_EQ(h.body, BodyKind::UntilClose);
  EXPECT_FALSE(h.keep_alive);
}

TEST(ParseResponse, NoFramingReadsUntilClose) {
  ResponseHead h;
  ASSERT_EQ(parse_response("HTTP/1.1 200 OK\r\n\r\n", {}, false, h).state, ParseState::Complete);
  EXPECT_EQ(h.body, BodyKind::UntilClose);
  EXPECT_FALSE(h.keep_alive);
}

TEST(ParseResponse, NoBodyStatuses) {
  for (int status : {100, 101, 103, 204, 304}) {
    ResponseHead h;
    const std::string s = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: 10\r\n\r\n";
    ASSERT_EQ(parse_response(s, {}, false, h).state, ParseState::Complete) << status;
    EXPECT_EQ(h.body, BodyKind::None) << status;
    EXPECT_TRUE(h.keep_alive) << status;
  }
}

TEST(ParseResponse, HeadRequestHasNoBody) {
  ResponseHead h;
  ASSERT_EQ(parse_response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", {}, true, h).state, ParseState::Complete);
  EXPECT_EQ(h.body, BodyKind::None);
  ASSERT_EQ(parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", {}, true, h).state,
            ParseState::Complete);
  EXPECT_EQ(h.body, BodyKind::None);
}

TEST(ParseResponse, KeepAlive) {
  ResponseHead h;
  ASSERT_EQ(parse_response("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", {}, false, h).state,
            ParseState::Complete);
  EXPECT_FALSE(h.keep_alive);
  ASSERT_EQ(parse_response("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", {}, false, h).state, ParseState::Complete);
  EXPECT_FALSE(h.keep_alive);
  EXPECT_EQ(h.version_minor, 0);
  ASSERT_EQ(parse_response("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", {}, false, h)
                .state,
            ParseState::Complete);
  EXPECT_TRUE(h.keep_alive);
}

TEST(ParseResponse, ByteByByteIsPartialUntilComplete) {
  const std::string s = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\n";
  for (std::size_t n = 0; n < s.size(); ++n) EXPECT_EQ(response_status(std::string_view(s).substr(0, n)), -1) << n;
  EXPECT_EQ(response_status(s), 0);
}

TEST(ParseResponse, NotHttpIsInvalidAtOnce) {
  EXPECT_EQ(response_status("SSH-2.0-OpenSSH"), 502);
  EXPECT_EQ(response_status("<html>"), 502);
  EXPECT_EQ(response_status("HTTP/2 200\r\n\r\n"), 502);
  EXPECT_EQ(response_status("http/1.1 200 OK\r\n\r\n"), 502);
}

TEST(ParseResponse, RejectsBadStatusLine) {
  EXPECT_EQ(response_status("HTTP/1.1 20 OK\r\n\r\n"), 502);
  EXPECT_EQ(response_status("HTTP/1.1 2000 OK\r\n\r\n"), 502);
  EXPECT_EQ(response_status("HTTP/1.1  200 OK\r\n\r\n"), 502);
  EXPECT_EQ(response_status("HTTP/1.1 099 OK\r\n\r\n"), 502);
  EXPECT_EQ(response_status("HTTP/1.1 200 O\x01K\r\n\r\n"), 502);
  EXPECT_EQ(response_status("HTTP/1.1 200 OK\n\r\n"), 502);
  EXPECT_EQ(response_status("HTTP/1.2 200 OK\r\n\r\n"), 502);
}

TEST(ParseResponse, StrictFraming) {
  EXPECT_EQ(response_status("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), 502);
  EXPECT_EQ(response_status("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"), 502);
  EXPECT_EQ(response_status("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), 502);
  EXPECT_EQ(response_status("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n"), 502);
  EXPECT_EQ(response_status("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), 502);
  EXPECT_EQ(response_status("HTTP/1.1 204 No\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"), 502);
}

TEST(ParseResponse, StrictFieldSyntax) {
  EXPECT_EQ(response_status("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"), 502);
  EXPECT_EQ(response_status("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), 502);
  EXPECT_EQ(response_status("HTTP/1.1 200 OK\r\nX: a\n\r\n"), 502);
  EXPECT_EQ(response_status("HTTP/1.1 200 OK\r\nX : a\r\n\r\n"), 502);
  EXPECT_EQ(response_status("HTTP/1.1 200 OK\r\nX: a\0\r\n\r\n"s), 502);
}

TEST(ParseResponse, HeaderLimits) {
  ParseLimits lim;
  lim.max_header_bytes = 40;
  EXPECT_EQ(response_status("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'a'), false, lim), 502);
  EXPECT_EQ(response_status("HTTP/1.1 200 OK\r\nX: " + std::string(10, 'a'), false, lim), -1);
  lim = {};
  lim.max_headers = 1;
  EXPECT_EQ(response_status("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n", false, lim), 502);
}

// ---------------------------------------------------------------------------------------------
// Chunked decoder

struct Decoded {
  std::string data;
  bool done = false;
  bool error = false;
  std::size_t consumed = 0;  // total bytes consumed
};

// Feeds `in` in pieces of at most `piece` bytes, calling feed until each piece is used up.
Decoded decode(std::string_view in, std::size_t piece = std::string_view::npos) {
  ChunkedDecoder d;
  Decoded out;
  std::size_t pos = 0;
  while (pos < in.size() && !out.done && !out.error) {
    std::string_view part = in.substr(pos, piece);
    while (!part.empty()) {
      ChunkedDecoder::Step s = d.feed(part);
      out.data.append(s.data);
      out.consumed += s.consumed;
      pos += s.consumed;
      part.remove_prefix(s.consumed);
      if (s.error) out.error = true;
      if (s.done) out.done = true;
      if (s.done || s.error) break;
      EXPECT_TRUE(s.consumed > 0 || part.empty());
    }
  }
  EXPECT_EQ(out.done, d.done());
  if (!out.error) {
    EXPECT_EQ(d.payload_bytes(), out.data.size());
  }
  return out;
}

TEST(ChunkedDecoder, Simple) {
  const std::string body = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  Decoded d = decode(body + "NEXT");
  EXPECT_TRUE(d.done);
  EXPECT_FALSE(d.error);
  EXPECT_EQ(d.data, "hello world");
  EXPECT_EQ(d.consumed, body.size());
}

TEST(ChunkedDecoder, OneDataSpanPerFeed) {
  ChunkedDecoder d;
  const std::string body = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  std::string_view in = body;
  ChunkedDecoder::Step s = d.feed(in);
  EXPECT_EQ(s.data, "abc");
  EXPECT_EQ(s.consumed, 6u);
  in.remove_prefix(s.consumed);
  s = d.feed(in);
  EXPECT_EQ(s.data, "de");
  in.remove_prefix(s.consumed);
  s = d.feed(in);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.data, "");
  EXPECT_EQ(s.consumed, in.size());
  EXPECT_EQ(d.payload_bytes(), 5u);
}

TEST(ChunkedDecoder, SplitAtEveryByteBoundary) {
  const std::string body = "a;ext=1\r\n0123456789\r\n1F\r\n" + std::string(31, 'x') +
                           "\r\n0\r\nX-Trailer: yes\r\nOther:\r\n\r\n";
  const std::string want = "0123456789" + std::string(31, 'x');
  for (std::size_t piece = 1; piece <= body.size(); ++piece) {
    Decoded d = decode(body, piece);
    EXPECT_TRUE(d.done) << piece;
    EXPECT_FALSE(d.error) << piece;
    EXPECT_EQ(d.data, want) << piece;
    EXPECT_EQ(d.consumed, body.size()) << piece;
  }
  // Two pieces split at every point.
  for (std::size_t cut = 0; cut <= body.size(); ++cut) {
    ChunkedDecoder dec;
    std::string got;
    bool done = false;
    for (std::string_view part : {std::string_view(body).substr(0, cut), std::string_view(body).substr(cut)}) {
      while (!part.empty()) {
        ChunkedDecoder::Step s = dec.feed(part);
        ASSERT_FALSE(s.error) << cut;
        got.append(s.data);
        part.remove_prefix(s.consumed);
        done = s.done;
      }
    }
    EXPECT_TRUE(done) << cut;
    EXPECT_EQ(got, want) << cut;
  }
}

TEST(ChunkedDecoder, UppercaseHexAndLeadingZeros) {
  Decoded d = decode("000A\r\n0123456789\r\n00\r\n\r\n");
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.data, "0123456789");
}

TEST(ChunkedDecoder, Extensions) {
  EXPECT_TRUE(decode("3;a=b;c\r\nabc\r\n0;last\r\n\r\n").done);
  EXPECT_TRUE(decode("3 ;a=\"q v\"\r\nabc\r\n0\r\n\r\n").done);
  EXPECT_TRUE(decode("3\t; a = b\r\nabc\r\n0\r\n\r\n").done);
  EXPECT_TRUE(decode("3 x\r\nabc\r\n0\r\n\r\n").error);
  EXPECT_TRUE(decode("3 \r\nabc\r\n0\r\n\r\n").error);
  EXPECT_TRUE(decode("3;a\x01\r\nabc\r\n0\r\n\r\n").error);
  EXPECT_TRUE(decode("3;a\nabc\r\n0\r\n\r\n").error);
  EXPECT_TRUE(decode("3;" + std::string(5000, 'e') + "\r\nabc\r\n0\r\n\r\n").error);
}

TEST(ChunkedDecoder, Trailers) {
  EXPECT_TRUE(decode("0\r\nA: 1\r\nB-2: x y\r\n\r\n").done);
  EXPECT_TRUE(decode("0\r\nA: 1\r\n b\r\n\r\n").error);       // obs-fold
  EXPECT_TRUE(decode("0\r\nA : 1\r\n\r\n").error);
  EXPECT_TRUE(decode("0\r\nA\r\n\r\n").error);                // no colon
  EXPECT_TRUE(decode("0\r\nA: \x01\r\n\r\n").error);
  EXPECT_TRUE(decode("0\r\nA: 1\n\r\n").error);
  EXPECT_TRUE(decode("0\r\nA: 1\r\n\n").error);
  EXPECT_TRUE(decode("0\r\nA: 1\rB\r\n\r\n").error);
  EXPECT_TRUE(decode("0\r\nA: " + std::string(20000, 'v') + "\r\n\r\n").error);
}

TEST(ChunkedDecoder, InvalidSizes) {
  EXPECT_TRUE(decode("-1\r\n").error);
  EXPECT_TRUE(decode("0x10\r\n").error);
  EXPECT_TRUE(decode("\r\n").error);
  EXPECT_TRUE(decode(";ext\r\n").error);
  EXPECT_TRUE(decode("g\r\n").error);
  EXPECT_TRUE(decode("+5\r\nhello\r\n").error);
  EXPECT_TRUE(decode("12345678901234567\r\n").error);  // 17 hex digits
  Decoded ok = decode("0000000000000003\r\nabc\r\n0\r\n\r\n");  // 16 digits are fine
  EXPECT_TRUE(ok.done);
  EXPECT_EQ(ok.data, "abc");
}

TEST(ChunkedDecoder, HugeSizeDoesNotOverflow) {
  ChunkedDecoder d;
  ChunkedDecoder::Step s = d.feed("ffffffffffffffff\r\nabc");
  EXPECT_FALSE(s.error);
  EXPECT_EQ(s.data, "abc");
}

TEST(ChunkedDecoder, StrictLineEnds) {
  EXPECT_TRUE(decode("3\nabc\r\n0\r\n\r\n").error);
  EXPECT_TRUE(decode("3\rabc\r\n0\r\n\r\n").error);
  EXPECT_TRUE(decode("3\r\nabc\n0\r\n\r\n").error);
  EXPECT_TRUE(decode("3\r\nabcX\r\n0\r\n\r\n").error);  // missing CRLF after data
  EXPECT_TRUE(decode("3\r\nabc\rX0\r\n\r\n").error);
  EXPECT_TRUE(decode("3\r\nabc\r\n0\r\n\n").error);
  EXPECT_TRUE(decode("3\r\nabc\r\n0\n\r\n").error);
}

TEST(ChunkedDecoder, StopsAtDoneAndStaysFailed) {
  ChunkedDecoder d;
  ChunkedDecoder::Step s = d.feed("0\r\n\r\nGET /");
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.consumed, 5u);
  EXPECT_TRUE(d.feed("GET /").done);

  ChunkedDecoder bad;
  EXPECT_TRUE(bad.feed("z").error);
  EXPECT_TRUE(bad.feed("0\r\n\r\n").error);
}

TEST(ChunkedDecoder, PartialInputIsNotDone) {
  Decoded d = decode("5\r\nhel");
  EXPECT_FALSE(d.done);
  EXPECT_FALSE(d.error);
  EXPECT_EQ(d.data, "hel");
}

// ---------------------------------------------------------------------------------------------
// Helpers

TEST(ChunkHeader, Appends) {
  std::string out = "x";
  append_chunk_header(out, 0);
  append_chunk_header(out, 255);
  append_chunk_header(out, 0x1234abcdULL);
  append_chunk_header(out, ~0ULL);
  EXPECT_EQ(out, "x0\r\nff\r\n1234abcd\r\nffffffffffffffff\r\n");
}

TEST(HopByHop, KnownNames) {
  for (std::string_view n : {"Connection", "keep-alive", "PROXY-CONNECTION", "te", "Trailer", "Transfer-Encoding",
                             "upgrade"})
    EXPECT_TRUE(is_hop_by_hop(n)) << n;
  for (std::string_view n : {"Content-Length", "Host", "Trailers", "T", "X-Connection", ""})
    EXPECT_FALSE(is_hop_by_hop(n)) << n;
}

TEST(HasToken, CommaListCaseInsensitive) {
  EXPECT_TRUE(has_token("close", "close"));
  EXPECT_TRUE(has_token("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(has_token(" a ,\tB\t, c ", "b"));
  EXPECT_FALSE(has_token("closed", "close"));
  EXPECT_FALSE(has_token("", "close"));
  EXPECT_FALSE(has_token("x-close", "close"));
}

TEST(Fields, LookupsAreCaseInsensitive) {
  Fields f;
  f.add("Set-Cookie", "a=1");
  f.add("X-A", "x");
  f.add("set-cookie", "b=2");
  EXPECT_EQ(f.get("SET-COOKIE"), "a=1");
  EXPECT_EQ(f.get("x-a"), "x");
  EXPECT_EQ(f.get("missing"), "");
  EXPECT_TRUE(f.has("X-a"));
  EXPECT_FALSE(f.has("X-B"));
  EXPECT_EQ(f.count("Set-Cookie"), 2u);
  EXPECT_EQ(f.count("nope"), 0u);
  f.clear();
  EXPECT_TRUE(f.empty());
}

// A value from an HTTP/2 field is clean when HTTP/1.1 can carry it as it is: every control
// byte but tab and DEL refused at every position of values up to 40 bytes (the check goes
// eight bytes at a time), and space or tab at either end.
TEST(FieldValue, CleanUnlessAControlByteDelOrOuterSpace) {
  EXPECT_TRUE(is_clean_field_value(""));
  EXPECT_TRUE(is_clean_field_value("a\tb"));
  EXPECT_TRUE(is_clean_field_value("caf\xc3\xa9 \x80\xff"));
  for (const char* edge : {" a", "a ", "\ta", "a\t", " "}) EXPECT_FALSE(is_clean_field_value(edge)) << edge;
  for (std::size_t len = 1; len <= 40; ++len) {
    for (std::size_t at = 0; at < len; ++at) {
      for (int bad : {0x00, 0x01, 0x0a, 0x0d, 0x1f, 0x7f}) {
        std::string v(len, 'v');
        v[at] = static_cast<char>(bad);
        ASSERT_FALSE(is_clean_field_value(v)) << "len " << len << " at " << at << " byte " << bad;
      }
      std::string tab(len, 'v');
      if (at > 0 && at + 1 < len) {
        tab[at] = '\t';
        ASSERT_TRUE(is_clean_field_value(tab)) << "len " << len << " at " << at;
      }
    }
    ASSERT_TRUE(is_clean_field_value(std::string(len, '~')));
  }
}

}  // namespace
}  // namespace gh::http
