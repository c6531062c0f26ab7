// ServiceRegistry: the instances registered through the admin API (`POST
// /services/{name}/instances`), each with a TTL: renewed by posting again, dropped when not
// renewed in time. Registrations outlive config generations (the Runtime's, not a snapshot's):
// the gateway applies them to every snapshot's services (upstream::Service::set_registered).
//
// Without `redis` they live in this process. With `redis` they live in Redis, so that every
// gateway on that Redis routes to them and the TTL is Redis's own (a key with PX: a gateway that
// dies keeps nothing alive):
//   gatehouse:registry:instance:SERVICE:URL   the weight, expiring with the TTL
//   gatehouse:registry:urls:SERVICE           the URLs registered for SERVICE (an index)
//   gatehouse:registry:services               the services with registrations
// Each change is made by one script and announced on the channel gatehouse:registry:changes:dbN;
// every gateway subscribes (its own connection), reads the registrations again on each
// announcement, and also every kFullReadEvery as the safety net. Each gateway keeps the TTL Redis
// reported (PTTL) and reads again as soon as one runs out, so an expiry shows within
// ~kExpiryCheck everywhere. While Redis is unreachable the last known registrations stay in use
// (expired or not), every failed read is counted (gatehouse_registry_store_errors_total) and the
// outage is logged once; when Redis is back, the registrations it lost (a restart without
// persistence) are written again with the TTL they had left, so a Redis restart drops nothing.
//
// Thread: control thread only (the control io_context); on_change runs there.
// Failure: a Redis call is bounded (kRedisTimeout); add/remove fail with StoreUnavailable while
// Redis is unreachable, and the admin API answers 503.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/result.h"

namespace gh::admin {

constexpr std::chrono::milliseconds kRedisTimeout{1000};
constexpr std::chrono::milliseconds kFullReadEvery{5000};
constexpr std::chrono::milliseconds kExpiryCheck{250};
// The longest TTL a registration may ask for, and the shortest.
constexpr std::chrono::milliseconds kMaxTtl{24LL * 3600 * 1000};
constexpr std::chrono::milliseconds kMinTtl{1000};

struct Registration {
  std::string service;
  config::InstanceConfig instance;  // url, host, port, weight
  core::Clock::Monotonic expires;   // when its TTL runs out, as this gateway last learnt it
};

class ServiceRegistry {
 public:
  // `redis_url` empty: registrations live in this process. REQUIRES: `io` and `clock` outlive
  // the registry; `metrics` too.
  ServiceRegistry(boost::asio::io_context& io, const core::Clock& clock, std::string redis_url, core::Metrics& metrics);
  ~ServiceRegistry();
  ServiceRegistry(const ServiceRegistry&) = delete;
  ServiceRegistry& operator=(const ServiceRegistry&) = delete;

  // Starts the expiry checks and, with Redis, the subscription and the first read.
  void start();
  // Ends every loop; no on_change after it. Safe to call more than once.
  void stop();
  // Runs after the registered instances of a service changed (added, removed, expired, or read
  // from Redis as changed). One callback; set before start().
  void on_change(std::function<void(const std::string& service)> f);

  // Registers `inst` for `service` for `ttl`, or renews it (a new TTL and weight). true: it
  // was not registered before. Error: StoreUnavailable (Redis unreachable).
  boost::asio::awaitable<Result<bool>> add(std::string service, config::InstanceConfig inst, std::chrono::milliseconds ttl);
  // Removes a registration. false: there was none.
  boost::asio::awaitable<Result<bool>> remove(std::string service, std::string url);

  // The instances registered for `service` now (the local view), in URL order.
  std::vector<config::InstanceConfig> instances(std::string_view service) const;
  // Every registration of the local view, by service then URL.
  std::vector<Registration> all() const;
  bool uses_redis() const noexcept;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace gh::admin
