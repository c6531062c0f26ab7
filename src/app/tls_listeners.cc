#include "app/tls_listeners.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/log.h"

namespace gh::app {

net::TlsServerOptions tls_server_options(const config::TlsConfig& t) {
  net::TlsServerOptions o;
  for (const auto& c : t.certificates) o.certificates.push_back({c.cert, c.key});
  o.min_version = t.min_version;
  o.alpn.clear();
  for (const auto& p : t.alpn)
    if (std::find(std::begin(kTlsProtocols), std::end(kTlsProtocols), p) != std::end(kTlsProtocols)) o.alpn.push_back(p);
  o.sni_strict = t.sni_strict;
  o.client_ca = t.client_ca;
  o.client_auth = t.client_auth == config::ClientAuth::Required   ? net::TlsClientAuth::Required
                  : t.client_auth == config::ClientAuth::Optional ? net::TlsClientAuth::Optional
                                                                   : net::TlsClientAuth::None;
  o.session_tickets = t.session_tickets;
  return o;
}

std::vector<std::shared_ptr<const net::TlsServerContext>> load_tls_contexts(const config::Config& c,
                                                                           std::vector<std::string>& errors) {
  std::vector<std::shared_ptr<const net::TlsServerContext>> out;
  const std::size_t before = errors.size();
  for (std::size_t i = 0; i < c.listeners.size(); ++i) {
    const auto& l = c.listeners[i];
    if (!l.tls) {
      out.push_back(nullptr);
      continue;
    }
    const std::string path = (c.listeners.size() == 1 ? std::string("listen") : fmt::format("listen[{}]", i)) + ".tls";
    auto opts = tls_server_options(*l.tls);
    if (opts.alpn.empty()) {
      errors.push_back(config::Diagnostic{c.file, l.tls->mark, path + ".alpn",
                                          "offers no protocol this gateway speaks over TLS yet (http/1.1)"}
                           .to_string());
      out.push_back(nullptr);
      continue;
    }
    std::string error;
    auto ctx = net::TlsServerContext::load(opts, error);
    if (!ctx) errors.push_back(config::Diagnostic{c.file, l.tls->mark, path, error}.to_string());
    out.push_back(std::move(ctx));
  }
  if (errors.size() != before) out.clear();
  return out;
}

struct TlsWatch::Poll : std::enable_shared_from_this<Poll> {
  Poll(boost::asio::any_io_executor ex, std::shared_ptr<net::TlsCertificates> c, std::string l, config::Duration p)
      : timer(ex), certs(std::move(c)), label(std::move(l)), period(p) {}
  void arm() {
    timer.expires_after(period);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped) return;
      self->check();
      self->arm();
    });
  }
  void check() {
    if (!certs->changed()) return;
    std::string error;
    if (certs->reload(certs->options(), error))
      log::info("listener {}: certificate files changed; new handshakes use them", label);
    else
      log::error("listener {}: certificate files changed but cannot be used ({}); the previous certificates keep serving",
                 label, error);
  }
  boost::asio::steady_timer timer;
  std::shared_ptr<net::TlsCertificates> certs;
  std::string label;
  config::Duration period;
  bool stopped = false;
};

TlsWatch::TlsWatch(boost::asio::any_io_executor ex, std::vector<std::shared_ptr<net::TlsCertificates>> certs,
                   std::vector<std::string> labels)
    : ex_(std::move(ex)), certs_(std::move(certs)), labels_(std::move(labels)) {}

TlsWatch::~TlsWatch() { stop(); }

void TlsWatch::start(const config::Config& c) {
  stop();
  for (std::size_t i = 0; i < certs_.size() && i < c.listeners.size(); ++i) {
    if (!certs_[i] || !c.listeners[i].tls || c.listeners[i].tls->reload_check.count() <= 0) continue;
    auto p = std::make_shared<Poll>(ex_, certs_[i], i < labels_.size() ? labels_[i] : std::to_string(i),
                                    c.listeners[i].tls->reload_check);
    p->arm();
    polls_.push_back(std::move(p));
  }
}

void TlsWatch::stop() {
  for (auto& p : polls_) {
    p->stopped = true;
    p->timer.cancel();
  }
  polls_.clear();
}

}  // namespace gh::app
