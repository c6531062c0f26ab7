// HealthChecker: active health checks of the services that configure `health_check`.
// A probe is `GET path` over HTTP/1.1 (over TLS for an https:// instance, with the service's
// TLS settings) through clients/http1's fetch: the response is read with
// the proxy's strict parser, the head up to kMaxProbeHeadBytes and the body up to
// kMaxProbeBodyBytes, within `timeout`. Healthy: a well-formed response whose status is in
// `expected_status` (default 200-399); redirects are not followed. Each endpoint keeps one idle
// probe connection for its next probe when the response allowed keep-alive.
// Layering: this is the decision (thresholds, schedule, the single writer of active_healthy);
// the I/O is clients/http1, which knows nothing of services, so upstream links clients.
// Thread: runs on the control io_context only; it is the single writer of
// Endpoint::active_healthy. One checker per config generation; stop() ends its probes
// (a reload starts a new checker on the new generation's endpoints).
#pragma once

#include <boost/asio/io_context.hpp>

#include <memory>
#include <vector>

#include "upstream/service.h"

namespace gh::upstream {

constexpr std::size_t kMaxProbeHeadBytes = 16 * 1024;
constexpr std::size_t kMaxProbeBodyBytes = 64 * 1024;

class HealthChecker {
 public:
  HealthChecker(boost::asio::io_context& io, std::vector<std::shared_ptr<Service>> services);
  ~HealthChecker();
  // Starts one probe loop per endpoint of each service with a health_check; the first
  // probe runs at once.
  void start();
  // Starts probe loops for endpoints added since (a DNS refresh); the loop of an endpoint the
  // service retired ends at its next round.
  void sync();
  // Ends every probe loop; safe to call more than once.
  void stop();

  struct State;  // shared with the probe coroutines, which may outlive the checker

 private:
  boost::asio::io_context& io_;
  std::vector<std::shared_ptr<Service>> services_;
  std::shared_ptr<State> state_;
};

}  // namespace gh::upstream
