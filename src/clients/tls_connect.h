// TLS to a service, JWKS host or Redis (SPEC §7 "TLS to services"): what a client connection
// needs to speak TLS to one peer, and the handshake that follows a TCP connect. The same code
// for clients/http1's proxy connections and fetches and for clients/redis.
// Thread: a TlsTarget is immutable once made and shared by every worker; handshake() runs on
// the stream's own thread.
// Failure: a handshake or verification failure is a connect failure (ConnectFailed, retryable:
// nothing of a request has been sent), whose context says why, with the verification reason
// (e.g. "certificate verify failed (hostname mismatch)").
#pragma once

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <string>

#include "core/result.h"
#include "net/stream.h"
#include "net/tls.h"

namespace gh::clients {

struct TlsTarget {
  std::shared_ptr<const net::TlsClientContext> context;
  std::string host;         // as the URL gives it: SNI when a DNS name; the name or IP checked
  std::string server_name;  // when set: the SNI and the name checked instead of host
  // Distinguishes one TLS setting from another in connection pool keys: a connection made
  // with other settings (another CA, client certificate, name) is never reused for this one.
  std::string pool_tag;

  // A target with its pool_tag made from `settings` (whatever identifies the context's
  // configuration), the host and the server name.
  static std::shared_ptr<const TlsTarget> make(std::shared_ptr<const net::TlsClientContext> context, std::string host,
                                               std::string server_name, std::string_view settings);
  // The name the certificate is checked against: server_name, else host.
  const std::string& checked_name() const noexcept { return server_name.empty() ? host : server_name; }
};

// Starts TLS on `stream` (open and connected) to `target` and runs the handshake to its end;
// the caller's deadline cancels it (closing or cancelling the socket). Error: ConnectFailed,
// retryable, naming `peer` (e.g. "127.0.0.1:8443") and the reason.
boost::asio::awaitable<Result<void>> tls_handshake(net::Stream& stream, const TlsTarget& target, std::string_view peer);

}  // namespace gh::clients
