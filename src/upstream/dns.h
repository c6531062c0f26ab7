// DNS for instance URLs written with a host name (SPEC §2 services): a Resolver interface (the
// system's, asynchronous on an io_context; a fake in unit tests), the start-up check that every
// name resolves, and the DnsRefresher that re-resolves names on the control loop.
// Thread: everything here runs on the control thread (its io_context); workers never resolve.
// Failure: a name that does not resolve at start is a config error with its place; a name that
// stops resolving later keeps its last addresses, with a warning on stderr.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace gh::upstream {

class Service;

// What a host name resolved to: the distinct addresses in a stable order, or an error.
struct Answer {
  std::vector<boost::asio::ip::address> addresses;  // empty when the name did not resolve
  std::string error;                                // why, when empty
};

class Resolver {
 public:
  virtual ~Resolver() = default;
  // Resolves `host`; calls `done` exactly once (possibly before returning, for a fake).
  virtual void resolve(const std::string& host, std::function<void(Answer)> done) = 0;
};

// The system resolver (getaddrinfo on Asio's resolver thread), answering on `io`.
std::shared_ptr<Resolver> system_resolver(boost::asio::io_context& io);

// Blocking lookup through the system resolver: start-up, check and reload only.
Answer resolve_now(const std::string& host);

// Whether `host` is an IP literal (needs no resolution).
bool is_ip_literal(const std::string& host);

// `gatehouse check` / run / reload: every instance host name resolves now; each one that does
// not is an error at its place, `services.NAME.instances[I]: cannot resolve host "HOST"`.
void check_instance_hosts(const config::Config& c, config::Diagnostics& d);

// Re-resolves, every `dns_refresh` of each service, the names of its instances; a changed answer
// swaps the service's endpoints, then `on_change` runs (the health checker probes new ones).
// One refresher per config generation, like the HealthChecker.
class DnsRefresher {
 public:
  DnsRefresher(boost::asio::io_context& io, std::vector<std::shared_ptr<Service>> services,
               std::shared_ptr<Resolver> resolver, std::function<void()> on_change);
  ~DnsRefresher();
  void start();
  // Ends every refresh loop; no on_change after it. Safe to call more than once.
  void stop();

  struct State;

 private:
  boost::asio::io_context& io_;
  std::vector<std::shared_ptr<Service>> services_;
  std::shared_ptr<State> state_;
};

}  // namespace gh::upstream
