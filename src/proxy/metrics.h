// The gateway's metric families (SPEC §6) and what the request path records into them: the
// names and help texts, a route's counters and histograms resolved once per snapshot
// (RouteMetrics), and what a snapshot records beyond its routes (ProxyMetrics).
// Thread: the structs here are built on the control thread with a snapshot and immutable
// after; the metrics they point to belong to the registry (app::Runtime), which outlives every
// snapshot, and each worker writes only its own slot (core/metrics.h).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/metrics.h"

namespace gh::proxy {

// Family names, as a scrape prints them (STYLE §8: stable, an API).
inline constexpr std::string_view kRequestsTotal = "gatehouse_requests_total";
inline constexpr std::string_view kRequestDuration = "gatehouse_request_duration_seconds";
inline constexpr std::string_view kUpstreamDuration = "gatehouse_upstream_duration_seconds";
inline constexpr std::string_view kConnectionsOpen = "gatehouse_connections_open";
inline constexpr std::string_view kWebsocketTunnelsOpen = "gatehouse_websocket_tunnels_open";
inline constexpr std::string_view kTlsHandshakeFailures = "gatehouse_tls_handshake_failures_total";
inline constexpr std::string_view kRateLimitRejections = "gatehouse_rate_limit_rejections_total";
inline constexpr std::string_view kRateLimitStoreErrors = "gatehouse_rate_limit_store_errors_total";
inline constexpr std::string_view kAuthFailures = "gatehouse_auth_failures_total";
inline constexpr std::string_view kConfigReloads = "gatehouse_config_reloads_total";
// Not in the registry: computed from the snapshot's services at each scrape (admin/).
inline constexpr std::string_view kInstanceHealthy = "gatehouse_instance_healthy";

// Describes every family above that the registry holds, so that a scrape prints each one's
// HELP and TYPE even before its first series (a gateway without TLS listeners still shows
// tls_handshake_failures_total).
void describe_metrics(core::Metrics& m);

// The status class a request counts under: 0 for 1xx ... 4 for 5xx. A request that ended
// without a status (a bug) counts as 5xx.
constexpr std::size_t status_class(int status) noexcept {
  return status >= 100 && status < 600 ? static_cast<std::size_t>(status / 100 - 1) : 4;
}
inline constexpr std::array<std::string_view, 5> kStatusClasses = {"1xx", "2xx", "3xx", "4xx", "5xx"};

// One route's series: requests_total{route,service,code} for each status class, and the two
// duration histograms by route. Requests that matched no route use route="" service="".
struct RouteMetrics {
  std::array<core::Counter*, 5> requests{};  // by status_class()
  core::Histogram* duration = nullptr;       // the whole request, from its head to its log line
  core::Histogram* upstream = nullptr;       // the instance's answer (ctx.upstream_ms)

  // The series of `route` to `service`, from `m` (made on first use, kept across reloads).
  static RouteMetrics make(core::Metrics& m, std::string_view route, std::string_view service);

  // REQUIRES: on worker `worker`. upstream_ms < 0: no instance was asked.
  void record(unsigned worker, int status, double seconds, double upstream_ms) const noexcept {
    requests[status_class(status)]->inc(worker);
    duration->observe(worker, seconds);
    if (upstream_ms >= 0) upstream->observe(worker, upstream_ms / 1000);
  }
};

// What a snapshot records when the config has `admin:` (nobody could read it otherwise).
struct ProxyMetrics {
  std::vector<RouteMetrics> routes;              // same order as Snapshot::routes
  RouteMetrics unmatched;                        // route="" service=""
  core::Gauge* websocket_tunnels = nullptr;
  std::vector<core::Gauge*> connections_open;    // by listener, same order as Snapshot::listeners
  std::vector<core::Counter*> tls_handshake_failures;  // by listener; null for a plain one
};

// A listener as a label: "host:port" as configured (":port" for every interface, "[v6]:port").
std::string listener_label(std::string_view host, std::uint16_t port);

// gatehouse_auth_failures_total{policy,reason} of one authenticating policy: one counter per
// refusal reason it may answer with, resolved when the policy is built.
class AuthFailureCounters {
 public:
  AuthFailureCounters() = default;  // counts nothing (a policy built without a registry)
  // REQUIRES: each reason has static storage duration (a string literal).
  AuthFailureCounters(core::Metrics& m, std::string_view policy, std::initializer_list<std::string_view> reasons) {
    for (std::string_view r : reasons)
      counters_.emplace_back(r, &m.counter(kAuthFailures, {{"policy", std::string(policy)}, {"reason", std::string(r)}}));
  }
  // REQUIRES: on worker `worker`. A reason not given at construction is not counted.
  void count(unsigned worker, std::string_view reason) const noexcept {
    for (const auto& [r, c] : counters_)
      if (r == reason) return c->inc(worker);
  }

 private:
  std::vector<std::pair<std::string_view, core::Counter*>> counters_;
};

}  // namespace gh::proxy
