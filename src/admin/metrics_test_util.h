// For the scrape and /events tests: a Runtime (its registry) and snapshots built from YAML by
// the gateway's own builder, with `admin:` set so that the snapshot records metrics.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <memory>
#include <string>

#include "app/registry.h"
#include "app/runtime.h"
#include "app/snapshot_builder.h"
#include "config/config.h"
#include "core/clock.h"
#include "proxy/snapshot.h"

namespace gh::admin::testing {

inline constexpr const char* kConfig = R"(
listen: 127.0.0.1:0
access_log: off
services:
  user:
    instances: [http://127.0.0.1:3001, http://127.0.0.1:3002]
  order:
    instances: [http://127.0.0.1:3003]
policies:
  auth:
    type: jwt
    secret: "a-secret-of-at-least-32-bytes-length!"
  keys:
    type: api_key
    header: X-API-Key
    keys: {k1: mobile}
  admins:
    type: require_role
    roles: [admin]
  per-ip:
    type: rate_limit
    key: client_ip
    limit: 100
    window: 1m
  headers:
    type: security_headers
routes:
  - name: users
    path: /api/users
    service: user
    policies: [per-ip, auth]
  - name: orders
    path: /api/orders
    service: order
    policies: [keys, admins]
)";

struct Gateway {
  core::FakeClock clock;
  boost::asio::io_context control;
  app::Runtime runtime{control.get_executor(), 2, clock};
  std::shared_ptr<const proxy::Snapshot> snapshot;

  // Builds a generation from `yaml` (replacing the current one, as a reload does).
  void build(const std::string& yaml = kConfig, bool admin = true) {
    auto loaded = config::load_string(yaml, "metrics_test.yaml", app::policy_catalog());
    ASSERT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors[0].to_string());
    if (admin) loaded.config->admin = config::AdminConfig{"127.0.0.1", 0, "token", {}};
    auto built = app::build_snapshot(std::make_shared<const config::Config>(std::move(*loaded.config)),
                                     snapshot.get(), runtime);
    ASSERT_TRUE(built) << built.error().context;
    snapshot = *built;
  }
  core::Metrics& metrics() { return runtime.metrics(); }
  const proxy::RouteMetrics& route(std::size_t i) const { return *snapshot->routes.at(i).metrics; }
};

}  // namespace gh::admin::testing
