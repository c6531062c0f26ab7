#include "proxy/metrics.h"

namespace gh::proxy {

void describe_metrics(core::Metrics& m) {
  using core::MetricType;
  m.describe(kRequestsTotal, MetricType::Counter, "Requests answered, by route, service and status class.");
  m.describe(kRequestDuration, MetricType::Histogram,
             "Time from a request's head to its log line (for a WebSocket, the tunnel's life), by route.");
  m.describe(kUpstreamDuration, MetricType::Histogram, "Time an instance took to answer with its head, by route.");
  m.describe(kConnectionsOpen, MetricType::Gauge, "Client connections open, by listener.");
  m.describe(kWebsocketTunnelsOpen, MetricType::Gauge, "WebSocket tunnels open.");
  m.describe(kTlsHandshakeFailures, MetricType::Counter, "TLS handshakes that failed, by listener.");
  m.describe(kRateLimitRejections, MetricType::Counter, "Requests refused with 429 by a rate_limit policy.");
  m.describe(kRateLimitStoreErrors, MetricType::Counter,
             "Decisions a rate_limit policy took without its store (on_store_error).");
  m.describe(kAuthFailures, MetricType::Counter, "Requests refused by jwt, api_key or require_role, by reason.");
  m.describe(kConfigReloads, MetricType::Counter, "Configuration reloads, by result.");
}

RouteMetrics RouteMetrics::make(core::Metrics& m, std::string_view route, std::string_view service) {
  RouteMetrics r;
  for (std::size_t i = 0; i < kStatusClasses.size(); ++i)
    r.requests[i] = &m.counter(
        kRequestsTotal, {{"route", std::string(route)}, {"service", std::string(service)}, {"code", std::string(kStatusClasses[i])}});
  r.duration = &m.histogram(kRequestDuration, {{"route", std::string(route)}});
  r.upstream = &m.histogram(kUpstreamDuration, {{"route", std::string(route)}});
  return r;
}

std::string listener_label(std::string_view host, std::uint16_t port) {
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out += '[';
    out += host;
    out += ']';
  } else {
    out += host;
  }
  out += ':';
  out += std::to_string(port);
  return out;
}

}  // namespace gh::proxy
