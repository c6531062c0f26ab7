#include "clients/http1/fetch.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>

#include "core/url.h"
#include "http/parser.h"
#include "net/stream.h"

namespace gh::clients::http1 {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr int kMaxInterim = 4;  // 1xx responses skipped before the final one

bool visible_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

bool field_value_ok(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c != '\r' && c != '\n' && c != '\0'; });
}

Error invalid(std::string what) { return Error{ErrorCode::InvalidConfig, Source::Config, false, std::move(what)}; }
Error bad_response(std::string what) { return Error::upstream(ErrorCode::BadResponse, std::move(what)); }
Error closed(std::string what) { return Error::upstream(ErrorCode::UpstreamClosed, std::move(what)); }

std::string endpoint_text(const tcp::endpoint& ep) {
  const std::string a = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(ep.port());
}

Result<std::string> build_request(const FetchTarget& t, const FetchOptions& o, bool keep) {
  if (t.target.empty() || t.target.front() != '/' || !visible_ascii(t.target))
    return invalid("the request target must start with / and hold no space or control character");
  if (t.host_header.empty() || !visible_ascii(t.host_header))
    return invalid("the Host field must be non-empty and hold no space or control character");
  std::string r;
  r.reserve(128 + t.target.size());
  r += o.method == Method::Head ? "HEAD " : "GET ";
  r += t.target;
  r += " HTTP/1.1\r\nHost: ";
  r += t.host_header;
  r += "\r\n";
  for (const auto& [name, value] : o.fields) {
    if (name.empty() || !visible_ascii(name) || name.find(':') != std::string::npos || !field_value_ok(value))
      return invalid("request field \"" + name + "\" is not a valid field");
    r += name;
    r += ": ";
    r += value;
    r += "\r\n";
  }
  if (!keep) r += "Connection: close\r\n";
  r += "\r\n";
  return r;
}

// Appends what one read gives to `buf`.
asio::awaitable<error_code> read_more(net::Stream& s, std::string& buf) {
  const std::size_t old = buf.size();
  buf.resize(old + kReadChunk);
  auto [ec, n] = co_await s.async_read_some(asio::buffer(buf.data() + old, kReadChunk), use_nothrow);
  buf.resize(old + n);
  co_return ec;
}

std::string over_cap(std::size_t cap) { return "response body over the cap of " + std::to_string(cap) + " bytes"; }

std::string closed_in(const char* where, const error_code& ec) {
  return std::string("connection ") + (ec == asio::error::eof ? "closed" : "failed (" + ec.message() + ")") +
         " in the " + where;
}

}  // namespace

// The state of one fetch shared with its deadline's handler, which may run after the fetch.
struct FetchClient::Run {
  explicit Run(const asio::any_io_executor& ex) : timer(ex), resolver(ex) {}
  asio::steady_timer timer;
  tcp::resolver resolver;
  std::shared_ptr<net::Stream> conn;  // the connection in use now
  bool timed_out = false;
  bool cancelled = false;
  bool finished = false;
  void stop_io() {
    resolver.cancel();
    if (conn) conn->close();
  }
};

namespace {

// What one request/response on one connection gave.
struct Exchange {
  Result<FetchResponse> result{closed("no response")};
  bool nothing_received = false;  // failed before the first response byte: safe to send again
  bool reusable = false;          // the response was read whole and allows keep-alive
};

// Sends `request` and reads the whole response strictly.
asio::awaitable<void> exchange(net::Stream& s, const std::string& request, const FetchOptions& o,
                               Exchange& x) {
  auto [wec, wn] = co_await asio::async_write(s, asio::buffer(request), use_nothrow);
  (void)wn;
  if (wec) {
    x.nothing_received = true;
    x.result = closed("cannot send the request: " + wec.message());
    co_return;
  }

  std::string buf;
  bool any_byte = false;
  http::ParseLimits limits;
  limits.max_header_bytes = o.max_head_bytes;
  http::ResponseHead head;
  int interim = 0;
  for (;;) {
    head.reset();
    http::ParseOutcome out = http::parse_response(buf, limits, o.method == Method::Head, head);
    if (out.state == http::ParseState::Invalid) {
      x.result = bad_response(std::string("malformed response head: ") + out.detail);
      co_return;
    }
    if (out.state == http::ParseState::Partial) {
      if (buf.size() > o.max_head_bytes) {
        x.result = bad_response("response head over " + std::to_string(o.max_head_bytes) + " bytes");
        co_return;
      }
      error_code ec = co_await read_more(s, buf);
      if (!buf.empty()) any_byte = true;
      if (ec) {
        x.nothing_received = !any_byte;
        x.result = any_byte ? closed(closed_in("response head", ec))
                            : closed(ec == asio::error::eof ? "connection closed before any response"
                                                            : "no response: " + ec.message());
        co_return;
      }
      continue;
    }
    // A 1xx other than 101 is an interim response: the final one follows.
    if (head.status >= 100 && head.status < 200 && head.status != 101) {
      if (++interim > kMaxInterim) {
        x.result = bad_response("more than " + std::to_string(kMaxInterim) + " interim responses");
        co_return;
      }
      buf.erase(0, head.head_size);
      continue;
    }
    break;
  }
  if (head.status == 101) {
    x.result = bad_response("101 Switching Protocols to a request that asked for no upgrade");
    co_return;
  }

  // Views into buf die with the next read: keep the scalars.
  const http::BodyKind kind = head.body;
  const std::uint64_t length = head.content_length;
  bool keep_alive = head.keep_alive;
  std::size_t pos = head.head_size;
  FetchResponse resp;
  resp.status = head.status;
  switch (kind) {
    case http::BodyKind::None:
      if (buf.size() > pos) {
        x.result = bad_response("bytes after a response without a body");
        co_return;
      }
      break;
    case http::BodyKind::Length: {
      if (length > o.max_body_bytes) {
        x.result = bad_response(over_cap(o.max_body_bytes) + " (Content-Length " + std::to_string(length) + ")");
        co_return;
      }
      while (buf.size() - pos < length) {
        error_code ec = co_await read_more(s, buf);
        if (ec) {
          x.result = closed(closed_in("response body", ec) + " after " + std::to_string(buf.size() - pos) + " of " +
                            std::to_string(length) + " bytes");
          co_return;
        }
      }
      if (buf.size() - pos > length) {
        x.result = bad_response("bytes after the response body");
        co_return;
      }
      resp.body = buf.substr(pos, length);
      break;
    }
    case http::BodyKind::Chunked: {
      http::ChunkedDecoder dec;
      for (;;) {
        while (pos < buf.size() && !dec.done()) {
          http::ChunkedDecoder::Step step = dec.feed(std::string_view(buf).substr(pos));
          if (step.error) {
            x.result = bad_response(std::string("malformed chunked body: ") + step.detail);
            co_return;
          }
          resp.body.append(step.data);
          pos += step.consumed;
          if (resp.body.size() > o.max_body_bytes) {
            x.result = bad_response(over_cap(o.max_body_bytes));
            co_return;
          }
          if (step.consumed == 0) break;
        }
        if (dec.done()) {
          if (pos < buf.size()) {
            x.result = bad_response("bytes after the response body");
            co_return;
          }
          break;
        }
        buf.erase(0, pos);  // decoded: only the undecoded rest stays buffered
        pos = 0;
        error_code ec = co_await read_more(s, buf);
        if (ec) {
          x.result = closed(closed_in("chunked response body", ec));
          co_return;
        }
      }
      break;
    }
    case http::BodyKind::UntilClose: {
      for (;;) {
        if (buf.size() - pos > o.max_body_bytes) {
          x.result = bad_response(over_cap(o.max_body_bytes));
          co_return;
        }
        error_code ec = co_await read_more(s, buf);
        if (ec == asio::error::eof) break;
        if (ec) {
          x.result = closed(closed_in("response body", ec));
          co_return;
        }
      }
      resp.body = buf.substr(pos);
      keep_alive = false;
      break;
    }
  }
  x.reusable = keep_alive;
  x.result = std::move(resp);
}

}  // namespace

Result<FetchTarget> FetchTarget::from_url(std::string_view url) {
  std::string why;
  auto u = Url::parse(url, &why);
  if (!u) return invalid(std::move(why));
  if (u->scheme != "http" && u->scheme != "https") return invalid("expected an http(s)://host[:port]/path URL");
  if (u->has_userinfo) return invalid("the URL has user information");
  if (u->has_fragment) return invalid("the URL has a fragment");
  FetchTarget t;
  t.host = u->host;
  if (u->port) t.port = std::to_string(*u->port);
  else if (u->scheme == "https") t.port = "443";
  if (u->scheme == "https") {
    std::string error;
    auto ctx = net::TlsClientContext::system(error);
    if (!ctx) return invalid(std::move(error));
    t.tls = TlsTarget::make(std::move(ctx), u->host, {}, "system");
  }
  t.host_header = u->authority();
  t.target = u->path.empty() ? "/" : u->path;
  if (u->query) t.target += "?" + *u->query;
  return t;
}

FetchTarget FetchTarget::at(tcp::endpoint address, std::string host_header, std::string target) {
  FetchTarget t;
  t.host = address.address().to_string();
  t.port = std::to_string(address.port());
  t.address = address;
  t.host_header = std::move(host_header);
  t.target = std::move(target);
  return t;
}

FetchClient::FetchClient(asio::any_io_executor ex, bool keep_connection)
    : ex_(std::move(ex)), keep_connection_(keep_connection) {}

FetchClient::~FetchClient() {
  // Only the kept connection: a fetch in flight holds its own state (the client outliving it
  // is the caller's duty), and its frame may be torn down with the io_context right now.
  if (idle_) idle_->close();
}

void FetchClient::close() {
  if (idle_) idle_->close();
  idle_.reset();
  if (run_ && !run_->finished) {
    run_->cancelled = true;
    run_->stop_io();
  }
}

asio::awaitable<Result<FetchResponse>> FetchClient::fetch(FetchTarget target, FetchOptions options) {
  auto request = build_request(target, options, keep_connection_);
  if (!request) co_return request.error();
  auto run = std::make_shared<Run>(ex_);
  run_ = run;
  run->timer.expires_after(options.timeout);
  run->timer.async_wait([run](error_code ec) {
    if (ec || run->finished) return;
    run->timed_out = true;
    run->stop_io();
  });
  Result<FetchResponse> r = co_await attempts(run, target, options, *request);
  run->finished = true;
  run->timer.cancel();
  if (run_ == run) run_.reset();
  if (!r && run->timed_out)
    r = Error::upstream(ErrorCode::Timeout, "no complete response within " + std::to_string(options.timeout.count()) + "ms");
  else if (!r && run->cancelled)
    r = closed("the fetch was cancelled");
  co_return r;
}

asio::awaitable<Result<FetchResponse>> FetchClient::attempts(std::shared_ptr<Run> run, const FetchTarget& t,
                                                             const FetchOptions& o, const std::string& request) {
  std::string key = t.address ? endpoint_text(*t.address) : t.host + ":" + t.port;
  if (t.tls) key += "/" + t.tls->pool_tag;
  std::shared_ptr<net::Stream> conn;
  bool reused = false;
  if (idle_) {
    if (idle_key_ == key && idle_->still_idle()) {
      conn = std::move(idle_);
      reused = true;
    } else {
      idle_->close();
    }
    idle_.reset();
  }
  for (int attempt = 0;; ++attempt) {
    if (!conn) {
      auto c = co_await connect(run, t);
      if (!c) co_return c.error();
      conn = std::move(*c);
    }
    run->conn = conn;
    Exchange x;
    co_await exchange(*conn, request, o, x);
    const bool interrupted = run->timed_out || run->cancelled;
    if (x.result) {
      x.result->reused = reused;
      if (keep_connection_ && x.reusable && !interrupted) {
        idle_ = std::move(conn);
        idle_key_ = key;
      } else {
        conn->close();
      }
      co_return std::move(x.result);
    }
    conn->close();
    // The kept connection died while idle (the service closed it): send once more, on a new one.
    if (!interrupted && reused && x.nothing_received && attempt == 0) {
      conn.reset();
      reused = false;
      continue;
    }
    co_return std::move(x.result);
  }
}

asio::awaitable<Result<std::shared_ptr<net::Stream>>> FetchClient::connect(std::shared_ptr<Run> run,
                                                                           const FetchTarget& t) {
  auto conn = std::make_shared<net::Stream>(ex_);
  run->conn = conn;
  std::vector<tcp::endpoint> endpoints;
  if (t.address) {
    endpoints.push_back(*t.address);
  } else {
    auto [ec, results] = co_await run->resolver.async_resolve(t.host, t.port, use_nothrow);
    if (ec) co_return Error::upstream(ErrorCode::ConnectFailed, "cannot resolve " + t.host + ": " + ec.message(), true);
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }
  error_code last = asio::error::host_not_found;
  tcp::endpoint tried;
  for (const tcp::endpoint& ep : endpoints) {
    if (run->timed_out || run->cancelled) break;
    conn->close();  // a failed attempt leaves the socket unusable
    tried = ep;
    auto [ec] = co_await conn->socket().async_connect(ep, use_nothrow);
    if (!ec && !run->timed_out && !run->cancelled) {
      error_code ignored;
      conn->socket().set_option(tcp::no_delay(true), ignored);
      if (t.tls) {
        // The deadline (or close()) closes the stream, which ends the handshake too.
        Result<void> shaken = co_await tls_handshake(*conn, *t.tls, endpoint_text(ep));
        if (!shaken) {
          conn->close();
          co_return shaken.error();
        }
      }
      co_return conn;
    }
    last = ec ? ec : asio::error::operation_aborted;
  }
  if (last == asio::error::connection_refused)
    co_return Error::upstream(ErrorCode::ConnectRefused, "connection refused by " + endpoint_text(tried), true);
  co_return Error::upstream(ErrorCode::ConnectFailed, "cannot connect to " + endpoint_text(tried) + ": " + last.message(),
                            true);
}

asio::awaitable<Result<FetchResponse>> fetch(std::string url, FetchOptions options) {
  auto target = FetchTarget::from_url(url);
  if (!target) co_return target.error();
  FetchClient client(co_await asio::this_coro::executor, false);
  co_return co_await client.fetch(std::move(*target), std::move(options));
}

}  // namespace gh::clients::http1
