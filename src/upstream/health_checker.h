// HealthChecker: active health checks of the services that configure `health_check`.
// Thread: runs on the control io_context only; it is the single writer of
// Endpoint::active_healthy. One checker per config generation; stop() ends its probes
// (a reload starts a new checker on the new generation's endpoints).
#pragma once

#include <boost/asio/io_context.hpp>

#include <memory>
#include <vector>

#include "upstream/service.h"

namespace gh::upstream {

class HealthChecker {
 public:
  HealthChecker(boost::asio::io_context& io, std::vector<std::shared_ptr<Service>> services);
  ~HealthChecker();
  // Starts one probe loop per endpoint of each service with a health_check; the first
  // probe runs at once.
  void start();
  // Ends every probe loop; safe to call more than once.
  void stop();

  struct State;  // shared with the probe coroutines, which may outlive the checker

 private:
  boost::asio::io_context& io_;
  std::vector<std::shared_ptr<Service>> services_;
  std::shared_ptr<State> state_;
};

}  // namespace gh::upstream
