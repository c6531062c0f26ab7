// AdminServer: the admin API (SPEC §6) on its own listener, served by the control thread. Every
// call needs `Authorization: Bearer <token>` (compared in constant time; 401 JSON otherwise),
// except the dashboard's own files (the page holds no data) and GET /livez (a container's
// liveness probe: 200 while the process serves, nothing revealed).
//
//   GET  /config                     the file as loaded, secrets masked
//   GET  /routes                     the compiled routes in match order
//   GET  /services                   services and their instances: source, health, in-flight,
//                                    requests, recent errors, passive ejections, TTL left
//   POST /services/{name}/instances  {"url", "ttl", "weight"?}: register or renew
//   DELETE /services/{name}/instances?url=URL
//   POST /reload                     what changed, or 400 with the errors
//   GET  /metrics                    Prometheus text format 0.0.4
//   GET  /events                     Server-Sent Events: one JSON summary a second
//   GET  /livez, GET /               liveness; the dashboard
//
// HTTP/1.1 with keep-alive; bodies up to kMaxAdminBody with Content-Length only. At most
// kMaxAdminConnections at once (more are closed at accept); a head must arrive within
// kAdminHeadTimeout, and an idle connection is closed after kAdminIdleTimeout.
// Thread: control thread only. Failure: a malformed request gets a JSON 4xx and a close.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "admin/service_registry.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "proxy/snapshot.h"

namespace gh::admin {

constexpr std::size_t kMaxAdminBody = 64 * 1024;
constexpr std::size_t kMaxAdminConnections = 64;
constexpr std::chrono::seconds kAdminHeadTimeout{10};
constexpr std::chrono::seconds kAdminIdleTimeout{60};

// What the admin API asks of the running gateway (app/ implements it).
class Control {
 public:
  virtual ~Control() = default;
  // The generation serving new requests now.
  virtual std::shared_ptr<const proxy::Snapshot> snapshot() const = 0;
  struct ReloadOutcome {
    bool ok = false;
    std::vector<std::string> errors;  // when !ok: one line each, as `check` prints them
    std::string changes_json;         // when ok: the "changes" object
  };
  // Reads the config file again and applies it (SIGHUP does the same).
  virtual ReloadOutcome reload() = 0;
};

class AdminServer {
 public:
  // REQUIRES: everything given outlives the server.
  AdminServer(boost::asio::io_context& io, std::string token, Control& control, ServiceRegistry& registry,
              core::Metrics& metrics, const core::Clock& clock);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds `address`; false and `error` when it cannot.
  bool listen(const boost::asio::ip::tcp::endpoint& address, std::string& error);
  // Starts accepting and the once-a-second summary.
  void start();
  // Closes the listener and every admin connection (event streams included).
  void stop();
  // A reload's new token: it takes effect for the next request.
  void set_token(const std::string& token);
  // The address bound (its port, when the config said 0).
  boost::asio::ip::tcp::endpoint local_endpoint() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace gh::admin
