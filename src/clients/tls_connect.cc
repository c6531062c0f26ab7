#include "clients/tls_connect.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

namespace gh::clients {

namespace asio = boost::asio;

namespace {

// 64-bit FNV-1a: a short, stable tag for a pool key.
std::uint64_t fnv1a(std::string_view s) noexcept {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

}  // namespace

std::shared_ptr<const TlsTarget> TlsTarget::make(std::shared_ptr<const net::TlsClientContext> context,
                                                 std::string host, std::string server_name,
                                                 std::string_view settings) {
  auto t = std::make_shared<TlsTarget>();
  t->context = std::move(context);
  t->host = std::move(host);
  t->server_name = std::move(server_name);
  std::string id(settings);
  id += '\0';
  id += t->host;
  id += '\0';
  id += t->server_name;
  t->pool_tag = fmt::format("tls-{:016x}", fnv1a(id));
  return t;
}

asio::awaitable<Result<void>> tls_handshake(net::Stream& stream, const TlsTarget& target, std::string_view peer) {
  auto session = target.context->new_session(stream.socket().native_handle(), target.host, target.server_name);
  if (!session)
    co_return Error::upstream(ErrorCode::ConnectFailed, fmt::format("TLS to {}: cannot set up the session", peer), true);
  stream.start_tls(std::move(session));
  auto [ec] = co_await stream.async_handshake(asio::as_tuple(asio::use_awaitable));
  if (!ec) co_return Result<void>{};
  std::string why = ec.message();
  if (const net::TlsSession* s = stream.tls())
    if (std::string v = s->verify_error(); !v.empty()) why += " (" + v + ")";
  co_return Error::upstream(ErrorCode::ConnectFailed,
                            fmt::format("TLS handshake with {} ({}) failed: {}", peer, target.checked_name(), why), true);
}

}  // namespace gh::clients
