// Service: a named set of endpoints and the balancer that picks among the available ones.
// An instance written with an IP address is one endpoint; one written with a host name is one
// endpoint per address the name resolves to (each with the URL's port, the Host of the name).
// Thread: built once per config generation on the control thread, then shared by every worker.
// Picking touches only atomics (the current endpoint set, rotation counter, endpoint state).
// Only the control thread refreshes the names; a refresh publishes a new endpoint set, and an
// endpoint it drops stays alive (retired) until the Service is destroyed, so a worker holding
// one from pick() never sees it freed. Memory: one Endpoint per distinct address a name has had
// during this config generation.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/result.h"
#include "net/tls.h"
#include "upstream/dns.h"
#include "upstream/endpoint.h"

namespace gh::upstream {

struct PickInput {
  std::uint64_t hash = 0;                    // with Balance::Hash: the hashed key
  bool has_hash = false;                     // false: the hash key was absent; fall back to round robin
  const Endpoint* const* avoid = nullptr;    // endpoints already tried by this request
  std::size_t avoid_count = 0;
};

class Service : public std::enable_shared_from_this<Service> {
 public:
  // Resolves instance host names (blocking DNS: control thread only) and builds the balancer.
  // `tls`: the context of its https:// instances already loaded (load_tls); null: loaded here
  // when an instance needs it.
  static Result<std::shared_ptr<Service>> build(const config::ServiceConfig& cfg,
                                                std::shared_ptr<const net::TlsClientContext> tls = nullptr);
  // The same with the names answered by `resolver` (answers must come before it returns).
  static Result<std::shared_ptr<Service>> build(const config::ServiceConfig& cfg, Resolver& resolver);
  // The same with the TLS context given.
  static Result<std::shared_ptr<Service>> build(const config::ServiceConfig& cfg, Resolver& resolver,
                                                std::shared_ptr<const net::TlsClientContext> tls);
  // The TLS context for a service's https:// instances, from its `tls:` (SPEC §2): the
  // system's CAs or `ca`, verification on unless `verify: false`, the client certificate.
  // Null when a file cannot be loaded, with `error` naming it and why.
  static std::shared_ptr<const net::TlsClientContext> load_tls(const config::ServiceConfig& cfg, std::string& error);
  // Whether any instance in the file is https:// (a TLS context is needed at start).
  static bool uses_tls(const config::ServiceConfig& cfg) noexcept;

  const std::string& name() const noexcept { return config_.name; }
  const config::ServiceConfig& config() const noexcept { return config_; }
  // The current endpoints (a copy of the list: a refresh may replace it at any time).
  std::vector<std::shared_ptr<Endpoint>> endpoints() const;
  // Whether any instance is written with a host name (the DnsRefresher has work).
  bool has_names() const noexcept;

  // Asks `resolver` again for every instance host name and applies each answer: a changed one
  // swaps that instance's endpoints (endpoints of addresses still present keep their state), an
  // empty or failed one keeps the last addresses with a warning. `done(changed)` runs once all
  // answered. Control thread only.
  void refresh(Resolver& resolver, std::function<void(bool changed)> done);

  // The instances registered through the admin API: replaces those set before (an endpoint
  // whose url, address and weight stay keeps its state; one dropped is retired like a DNS
  // change), resolving host names now (blocking: control thread only). A name that does not
  // resolve is skipped with a warning. Returns whether the endpoint set changed.
  bool set_registered(const std::vector<config::InstanceConfig>& instances);

  // Picks an available endpoint, preferring one not in `in.avoid`; nullptr when none is available.
  Endpoint* pick(const PickInput& in) const;
  // Number of endpoints available now.
  std::size_t available_count() const noexcept;

  // Service-wide concurrency (max_in_flight): try_acquire fails when the limit is reached.
  bool try_acquire() const noexcept;
  void release() const noexcept;
  std::uint32_t in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }

  // Copies health state from a previous generation's endpoints with the same url.
  void inherit_health(const Service& previous);

 private:
  // One published generation of endpoints with its balancing tables; immutable.
  struct Set {
    std::vector<std::shared_ptr<Endpoint>> endpoints;
    std::vector<std::uint32_t> weighted_sequence;              // smooth weighted round robin order
    std::vector<std::pair<std::uint64_t, std::uint32_t>> ring; // hash ring: point -> endpoint index
  };

  explicit Service(config::ServiceConfig cfg) : config_(std::move(cfg)) {}
  Endpoint* pick_hash(const Set& set, const PickInput& in, std::int64_t now) const;
  std::shared_ptr<Endpoint> make_endpoint(std::size_t instance, const boost::asio::ip::address& a) const;
  std::shared_ptr<Endpoint> make_endpoint(const config::InstanceConfig& inst, const boost::asio::ip::address& a,
                                          Origin source) const;
  // Applies an answer for instance `i`; true when its endpoints changed. Control thread only.
  bool apply(std::size_t i, const Answer& answer);
  void publish();  // builds a Set from per_instance_ and makes it current

  // Pins the current Set while a worker reads it (pick, available_count, endpoints).
  class Reading;

  // Frees the Sets replaced by a refresh once no reader is inside one. Control thread only.
  void reclaim();

  config::ServiceConfig config_;
  // The context of the https:// instances; null until one needs it (a registered https
  // instance of a service with none in the file loads it then, on the control thread).
  std::shared_ptr<const net::TlsClientContext> tls_;
  bool names_ = false;  // some instance is written with a host name; set by build()
  // The current Set. Replaced Sets are kept in sets_ until no worker reads (pickers_ is 0 after
  // the swap): a read costs one counter and one load, with no reference count to contend on.
  std::atomic<const Set*> set_{nullptr};
  mutable std::atomic<std::uint32_t> pickers_{0};
  std::vector<std::unique_ptr<const Set>> sets_;  // control thread only; back() is current
  // Control thread only: each instance's endpoints, and the endpoints a refresh dropped.
  std::vector<std::vector<std::shared_ptr<Endpoint>>> per_instance_;
  std::vector<std::shared_ptr<Endpoint>> registered_;  // set_registered's, in its order
  std::vector<std::shared_ptr<Endpoint>> retired_;
  mutable std::atomic<std::uint64_t> rotation_{0};
  mutable std::atomic<std::uint32_t> in_flight_{0};
};

// 64-bit FNV-1a, for hash_on keys and the ring.
std::uint64_t hash_key(std::string_view key) noexcept;

}  // namespace gh::upstream
