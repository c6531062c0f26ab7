// Endpoint: one instance of a service, with the health state every worker reads.
// Thread: immutable after construction except the atomics. `active_healthy` has a single
// writer (the health checker on the control thread); the passive-ejection and in-flight
// atomics are updated by any worker with relaxed ordering; readers tolerate staleness.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <memory>
#include <cstdint>
#include <string>

#include "clients/tls_connect.h"

namespace gh::upstream {

// Passive ejection: after this many consecutive connect failures (or twice as many 5xx
// responses) an endpoint is skipped for kEjectMillis, then tried again.
constexpr std::uint32_t kEjectAfterConnectFailures = 3;
constexpr std::uint32_t kEjectAfter5xx = 5;
constexpr std::int64_t kEjectMillis = 10'000;

// core::Clock::real().coarse_now_ms() (ejections last seconds), for callers that have no Clock
// at hand yet. Code that can take a `const core::Clock&` reads that instead, so that tests can
// fake it.
std::int64_t steady_now_ms() noexcept;

// Where an endpoint comes from: an IP address in the config file, a host name in the file (one
// endpoint per address it resolves to), or a registration through the admin API.
enum class Origin : std::uint8_t { Static, Dns, Registered };
constexpr const char* origin_name(Origin s) noexcept {
  return s == Origin::Static ? "static" : s == Origin::Dns ? "dns" : "registered";
}

struct Endpoint {
  std::string url;          // as configured, e.g. http://127.0.0.1:3001
  std::string host;         // host part of the url
  std::uint16_t port = 80;
  std::uint32_t weight = 1;
  std::string host_header;  // Host value when preserve_host is false: "host" or "host:port"
  // "ip:port": connection pools are keyed by address, not by snapshot; an https instance's
  // adds its TLS settings' tag ("ip:port/tls-…"), so that plain and TLS connections, and those
  // of other TLS settings (a reload that changes `tls:`), are never mixed up.
  std::string pool_key;
  // https://: how to speak TLS to it (the service's context, the host for SNI and the name
  // check, server_name); null for http://.
  std::shared_ptr<const clients::TlsTarget> tls;
  boost::asio::ip::tcp::endpoint address;
  // Spoken to over HTTP/2 (the service's `protocol: h2 | h2c`, or an h2c:// instance).
  bool http2 = false;
  bool has_health_check = false;
  Origin source = Origin::Static;
  // Set by the control thread when a DNS refresh drops this address (cleared if it comes back):
  // the endpoint is no longer picked; requests already holding it finish normally.
  std::atomic<bool> retired{false};

  std::atomic<bool> active_healthy{true};
  std::atomic<std::uint32_t> connect_failures{0};
  std::atomic<std::uint32_t> server_errors{0};
  std::atomic<std::int64_t> ejected_until_ms{0};
  std::atomic<std::uint32_t> ejections{0};  // passive ejections so far (the admin API shows them)
  std::atomic<std::uint32_t> in_flight{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> errors{0};

  // Healthy for the active checker and not passively ejected.
  bool available(std::int64_t now_ms) const noexcept {
    return active_healthy.load(std::memory_order_relaxed) &&
           ejected_until_ms.load(std::memory_order_relaxed) <= now_ms;
  }
  // Passive health: called by a worker after each attempt.
  void report_connect_failure(std::int64_t now_ms) noexcept;
  void report_status(int status, std::int64_t now_ms) noexcept;
  void report_success() noexcept;
};

}  // namespace gh::upstream
