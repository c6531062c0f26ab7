// The TLS listeners of a config (SPEC §7 "TLS on listeners"): their settings as the TLS layer
// takes them, their certificates loaded and checked (at start, by `check`, and on each reload),
// and the watch that serves renewed certificate files within `reload_check`.
// Thread: the control thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "net/tls_certificates.h"

namespace gh::app {

// What the gateway speaks over TLS today: ALPN offers only these of a listener's `alpn`.
inline constexpr std::string_view kTlsProtocols[] = {"h2", "http/1.1"};

net::TlsServerOptions tls_server_options(const config::TlsConfig& t);

// One context per listener (null for a plain one), or empty with every failure in `errors`
// as `FILE:LINE:COL: listen[i].tls: message`.
std::vector<std::shared_ptr<const net::TlsServerContext>> load_tls_contexts(const config::Config& c,
                                                                           std::vector<std::string>& errors);

// Polls each TLS listener's files every `reload_check` and loads them when they change; a
// broken new pair keeps the old one serving, and the log says so.
class TlsWatch {
 public:
  // `certs`: by listener, null for a plain one; `config` gives each one's reload_check.
  TlsWatch(boost::asio::any_io_executor ex, std::vector<std::shared_ptr<net::TlsCertificates>> certs,
           std::vector<std::string> labels);
  ~TlsWatch();
  // (Re)starts the polls with the periods of `c` (called at start and after each reload).
  void start(const config::Config& c);
  void stop();

 private:
  struct Poll;
  boost::asio::any_io_executor ex_;
  std::vector<std::shared_ptr<net::TlsCertificates>> certs_;
  std::vector<std::string> labels_;
  std::vector<std::shared_ptr<Poll>> polls_;
};

}  // namespace gh::app
