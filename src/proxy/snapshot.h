// Snapshot: one immutable generation of the running configuration: compiled routes, services
// and policy objects. Thread: built on the control thread, then read by every worker without
// locks; a request pins the generation it started on until its log line is written.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/cidr.h"
#include "http/parser.h"
#include "proxy/metrics.h"
#include "proxy/policy.h"
#include "routing/route_table.h"
#include "upstream/service.h"

namespace gh::proxy {

struct CompiledRoute {
  const config::RouteConfig* config = nullptr;
  std::shared_ptr<upstream::Service> service;
  std::vector<std::shared_ptr<Policy>> chain;  // defaults.policies then the route's own
  std::string strip;                           // normalized prefix to strip, empty when none
  const RouteMetrics* metrics = nullptr;       // in Snapshot::metrics; null when metrics are off
};

struct Snapshot {
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<const routing::RouteTable> table;
  std::vector<CompiledRoute> routes;  // same order as config->routes
  std::vector<std::shared_ptr<upstream::Service>> services;
  http::ParseLimits parse_limits;
  CidrSet trusted_proxies;
  std::uint64_t generation = 0;
  // The listeners the workers opened, as labels (listener_label): those of the first
  // generation, since listeners change only with a restart. Index i is the workers' acceptor i.
  std::vector<std::string> listeners;
  // Null unless the config has `admin:`: then the exchange records nothing (one branch).
  std::shared_ptr<const ProxyMetrics> metrics;

  const upstream::Service* find_service(std::string_view name) const;
};

}  // namespace gh::proxy
