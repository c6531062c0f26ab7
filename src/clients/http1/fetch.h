// fetch: the small strict HTTP/1.1 client of the control plane (JWKS documents, active health
// probes). One GET or HEAD, a deadline over the whole of it (resolve, connect, send, the whole
// response) and a cap on the body. The response is read with http/parser, as strictly as the
// proxy reads one: a malformed head, bad framing (a cut-short or malformed body, bytes after the
// response, an unasked 101), a head or body over its cap are errors. 1xx interim responses are
// skipped. Redirects are not followed: the status is returned, whatever it is.
// Connections: a FetchClient keeps the connection of a response that allows it, for its next
// fetch to the same address; a kept connection the server closed (or wrote to) while idle is
// replaced, and a fetch on a kept connection that fails before any response byte is retried once
// on a new one. The one-shot fetch() asks for `Connection: close` and keeps nothing.
// Thread: a FetchClient belongs to one single-threaded executor (an io_context(1) or a strand):
// its fetches run there, one at a time; fetch() runs on the calling coroutine's executor.
// TLS: an https URL is fetched over TLS verified against the system's CAs (SSL_CERT_FILE or
// SSL_CERT_DIR point OpenSSL elsewhere), chain and host name; a target with `tls` set (a health
// probe of an https instance) uses that instead. A failed handshake or verification is a
// ConnectFailed whose context gives the reason.
// Failure: a Result, never an exception: Timeout, ConnectRefused, ConnectFailed (also a name
// that does not resolve, and a failed TLS handshake), UpstreamClosed, BadResponse;
// InvalidConfig for what cannot be fetched at all (a request target with a space or a control
// character). Error::context says what happened, for a log line.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clients/tls_connect.h"
#include "core/result.h"

namespace gh::clients::http1 {

// Where a fetch goes and what it asks for.
struct FetchTarget {
  std::string host;            // a DNS name or an IP literal to resolve; unused when `address` is set
  std::string port = "80";
  std::optional<boost::asio::ip::tcp::endpoint> address;  // set: connect here, no resolution
  std::string host_header;     // the Host field: host[:port]
  std::string target = "/";    // origin-form request target: path and query
  std::shared_ptr<const TlsTarget> tls;  // set: over TLS to this peer; null: plain

  // `http[s]://host[:port][/path][?query]`, read with core/url.h; https with the system's CAs
  // (TlsClientContext::system()). Refused: other schemes, user information, a fragment.
  static Result<FetchTarget> from_url(std::string_view url);
  // A resolved address (a health probe's endpoint).
  static FetchTarget at(boost::asio::ip::tcp::endpoint address, std::string host_header, std::string target);
};

enum class Method { Get, Head };

struct FetchOptions {
  Method method = Method::Get;
  std::chrono::milliseconds timeout{5000};  // the whole fetch, retry included
  std::size_t max_body_bytes = 1024 * 1024;
  std::size_t max_head_bytes = 16 * 1024;
  // Extra request fields, e.g. {"Accept", "application/json"}. Host, and Connection for a
  // one-shot fetch, are written by fetch itself.
  std::vector<std::pair<std::string, std::string>> fields;
};

struct FetchResponse {
  int status = 0;        // the final status (interim 1xx responses are skipped)
  std::string body;      // decoded (chunked) and whole; empty for HEAD
  bool reused = false;   // answered on a connection kept from an earlier fetch
};

class FetchClient {
 public:
  // keep_connection false: every fetch asks for `Connection: close` and keeps nothing.
  explicit FetchClient(boost::asio::any_io_executor ex, bool keep_connection = true);
  ~FetchClient();
  FetchClient(const FetchClient&) = delete;
  FetchClient& operator=(const FetchClient&) = delete;

  // One request and its whole response. Reuses the kept connection when it goes to the same
  // address (`address`, else host and port) and is still idle.
  // REQUIRES: awaited on the client's executor; no other fetch of this client in flight; the
  // client outlives the call (the caller awaits it at once).
  boost::asio::awaitable<Result<FetchResponse>> fetch(FetchTarget target, FetchOptions options);

  // Closes the kept connection and ends a fetch in flight at once (it returns UpstreamClosed,
  // "the fetch was cancelled"). The client stays usable.
  void close();
  bool has_idle_connection() const noexcept { return idle_ != nullptr; }

 private:
  struct Run;
  boost::asio::awaitable<Result<FetchResponse>> attempts(std::shared_ptr<Run> run, const FetchTarget& t,
                                                         const FetchOptions& o, const std::string& request);
  boost::asio::awaitable<Result<std::shared_ptr<net::Stream>>> connect(std::shared_ptr<Run> run, const FetchTarget& t);

  boost::asio::any_io_executor ex_;
  bool keep_connection_;
  std::shared_ptr<net::Stream> idle_;  // kept for the next fetch to idle_key_
  std::string idle_key_;
  std::shared_ptr<Run> run_;           // the fetch in flight, for close()
};

// One fetch of `url` on a new connection, closed after it (`Connection: close`), on the calling
// coroutine's executor.
boost::asio::awaitable<Result<FetchResponse>> fetch(std::string url, FetchOptions options);

}  // namespace gh::clients::http1
