#include "config/diff.h"
#include "config/test_files.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gh::config {
namespace {

using Strings = std::vector<std::string>;

PolicyCatalog diff_catalog() {
  PolicyCatalog c;
  for (const char* type : {"jwt", "api_key", "rate_limit", "cors", "require_role"})
    c.supported[type] = [](const PolicyConfig&, Diagnostics&) { return std::any(); };
  return c;
}

Config load(const std::string& yaml) {
  LoadResult r = load_string(yaml, "gw.yaml", diff_catalog());
  std::string errors;
  for (const auto& d : r.errors) errors += d.to_string() + "\n";
  EXPECT_TRUE(r.config.has_value()) << errors;
  return r.config.value_or(Config{});
}

// `{D}` stands for the directory of real certificate and key files (test_files.h).
ConfigDiff diff(const std::string& before, const std::string& after) {
  return diff_configs(load(test::with_files(before)), load(test::with_files(after)));
}

constexpr const char* kBase = R"(listen: ["127.0.0.1:8080"]
services:
  user:
    instances: ["http://127.0.0.1:3001", "http://127.0.0.1:3002"]
    health_check: {path: /health, interval: 5s}
    timeouts: {connect: 2s, response: 30s}
  order:
    instances: ["http://127.0.0.1:3003"]
policies:
  auth: {type: jwt, secret: first-secret-value}
  per-ip: {type: rate_limit, limit: 10, window: 1m}
routes:
  - name: users
    path: /api/users
    service: user
    policies: [auth]
  - path: /api/orders
    service: order
)";

std::string replace(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(ConfigDiff, SameFileIsNoChange) {
  ConfigDiff d = diff(kBase, kBase);
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(diff_json(d),
            R"({"routes":{"added":[],"removed":[],"changed":[]},"services":{"added":[],"removed":[],"changed":[]},)"
            R"("policies":{"added":[],"removed":[],"changed":[]},"listeners":{"added":[],"removed":[],"changed":[]},)"
            R"("settings":{"changed":[]}})");
  EXPECT_EQ(diff_summary(d), "no changes");
}

// Values are compared as loaded, not as spelled: the same settings written differently are no change.
TEST(ConfigDiff, SameValuesWrittenDifferentlyAreNoChange) {
  const std::string after = R"(listen: "127.0.0.1:8080"
limits: {max_body_bytes: 10MiB}
services:
  order:
    instances: ["http://127.0.0.1:3003"]
  user:
    timeouts: {response: 30000ms}
    health_check: {interval: 5000ms, path: /health}
    instances: ["http://127.0.0.1:3001", {url: "http://127.0.0.1:3002", weight: 1}]
policies:
  per-ip: {window: 1m, limit: 10, type: rate_limit}
  auth: {secret: first-secret-value, type: jwt}
routes:
  - name: users
    path: /api/users
    service: user
    policies: [auth]
  - path: /api/orders
    service: order
)";
  ConfigDiff d = diff(kBase, after);
  EXPECT_TRUE(d.empty()) << diff_json(d);
}

TEST(ConfigDiff, RoutesAddedRemovedAndChanged) {
  std::string after = replace(kBase, R"(  - name: users
    path: /api/users
    service: user
    policies: [auth])",
                              R"(  - name: users
    path: /api/v2/users
    methods: [GET]
    service: order
    strip_prefix: true
    policies: [auth, per-ip])");
  after = replace(after, "  - path: /api/orders\n", "  - path: /api/orders/new\n");
  ConfigDiff d = diff(kBase, after);
  EXPECT_EQ(d.routes.added, Strings{"/api/orders/new"});
  EXPECT_EQ(d.routes.removed, Strings{"/api/orders"});
  ASSERT_EQ(d.routes.changed.size(), 1u);
  EXPECT_EQ(d.routes.changed[0].name, "users");
  EXPECT_EQ(d.routes.changed[0].fields, (Strings{"path", "methods", "strip_prefix", "service", "policies"}));
  EXPECT_TRUE(d.services.empty());
  EXPECT_TRUE(d.policies.empty());
  EXPECT_TRUE(d.settings.empty());
}

TEST(ConfigDiff, RouteRenameIsRemovedAndAdded) {
  ConfigDiff d = diff(kBase, replace(kBase, "name: users", "name: people"));
  EXPECT_EQ(d.routes.added, Strings{"people"});
  EXPECT_EQ(d.routes.removed, Strings{"users"});
  EXPECT_TRUE(d.routes.changed.empty());
}

TEST(ConfigDiff, RouteMatchKindChangeNamesBothKeys) {
  ConfigDiff d = diff(kBase, replace(kBase, "    path: /api/users\n", "    exact: /api/users\n"));
  ASSERT_EQ(d.routes.changed.size(), 1u);
  EXPECT_EQ(d.routes.changed[0].fields, (Strings{"path", "exact"}));
}

TEST(ConfigDiff, RouteOtherFields) {
  const std::string after = replace(kBase, "  - path: /api/orders\n    service: order\n",
                                    "  - path: /api/orders\n    service: order\n    host: api.example.com\n"
                                    "    headers: {X-Tenant: a}\n    websocket: false\n"
                                    "    websocket_idle_timeout: 1m\n");
  ConfigDiff d = diff(kBase, after);
  ASSERT_EQ(d.routes.changed.size(), 1u);
  EXPECT_EQ(d.routes.changed[0].name, "/api/orders");
  EXPECT_EQ(d.routes.changed[0].fields, (Strings{"host", "headers", "websocket", "websocket_idle_timeout"}));
}

// Routes are tried in file order among equals, so a route that moved is reported; the others,
// which kept their order relative to each other, are not.
TEST(ConfigDiff, MovedRouteIsReportedAsOrder) {
  const std::string three = std::string(kBase) + "  - path: /api/products\n    service: order\n";
  const std::string moved = replace(replace(three, "  - path: /api/products\n    service: order\n", ""), "routes:\n",
                                    "routes:\n  - path: /api/products\n    service: order\n");
  ConfigDiff d = diff(three, moved);
  ASSERT_EQ(d.routes.changed.size(), 1u) << diff_json(d);
  EXPECT_EQ(d.routes.changed[0].name, "/api/products");
  EXPECT_EQ(d.routes.changed[0].fields, Strings{"order"});

  // An item added in front moves nothing.
  ConfigDiff added = diff(kBase, replace(kBase, "routes:\n", "routes:\n  - path: /new\n    service: order\n"));
  EXPECT_EQ(added.routes.added, Strings{"/new"});
  EXPECT_TRUE(added.routes.changed.empty()) << diff_json(added);
}

// One path split by methods: both routes carry the default name; each pairs with its twin.
TEST(ConfigDiff, RoutesSharingADefaultNamePairByContent) {
  const std::string before = R"(services:
  user: {instances: ["http://127.0.0.1:3001"]}
routes:
  - {path: /api, methods: [GET], service: user}
  - {path: /api, methods: [POST], service: user}
)";
  const std::string dropped_get = R"(services:
  user: {instances: ["http://127.0.0.1:3001"]}
routes:
  - {path: /api, methods: [POST], service: user}
)";
  ConfigDiff d = diff(before, dropped_get);
  EXPECT_TRUE(d.routes.added.empty());
  EXPECT_EQ(d.routes.removed, Strings{"/api"});
  EXPECT_TRUE(d.routes.changed.empty()) << diff_json(d);

  const std::string post_changed =
      replace(before, "[POST], service: user}", "[POST], service: user, strip_prefix: true}");
  ConfigDiff c = diff(before, post_changed);
  ASSERT_EQ(c.routes.changed.size(), 1u) << diff_json(c);
  EXPECT_EQ(c.routes.changed[0].fields, Strings{"strip_prefix"});
  EXPECT_TRUE(c.routes.added.empty());
  EXPECT_TRUE(c.routes.removed.empty());
}

TEST(ConfigDiff, ServicesAddedRemovedAndChanged) {
  std::string after = replace(kBase, R"(    instances: ["http://127.0.0.1:3001", "http://127.0.0.1:3002"]
    health_check: {path: /health, interval: 5s}
    timeouts: {connect: 2s, response: 30s})",
                              R"(    instances: ["http://127.0.0.1:3001", {url: "http://127.0.0.1:3002", weight: 3}]
    load_balancing: hash
    hash_on: header:X-User
    health_check: {path: /health, interval: 10s, expected_status: 200}
    timeouts: {connect: 2s, response: 5s}
    retries: {attempts: 2, retry_on: [connect_failure, 503]}
    preserve_host: true
    max_in_flight: 100
    dns_refresh: 1m)");
  after = replace(after, "  order:\n    instances: [\"http://127.0.0.1:3003\"]\n",
                  "  order:\n    instances: [\"http://127.0.0.1:3003\"]\n"
                  "  billing:\n    instances: [\"http://127.0.0.1:3004\"]\n");
  ConfigDiff d = diff(kBase, after);
  EXPECT_EQ(d.services.added, Strings{"billing"});
  EXPECT_TRUE(d.services.removed.empty());
  ASSERT_EQ(d.services.changed.size(), 1u);
  EXPECT_EQ(d.services.changed[0].name, "user");
  EXPECT_EQ(d.services.changed[0].fields,
            (Strings{"instances", "load_balancing", "hash_on", "health_check.expected_status", "health_check.interval",
                     "timeouts.response", "retries.attempts", "retries.retry_on", "preserve_host", "max_in_flight",
                     "dns_refresh"}));

  // A service removed (and its route with it).
  const std::string no_order = R"(listen: ["127.0.0.1:8080"]
services:
  user:
    instances: ["http://127.0.0.1:3001", "http://127.0.0.1:3002"]
    health_check: {path: /health, interval: 5s}
    timeouts: {connect: 2s, response: 30s}
policies:
  auth: {type: jwt, secret: first-secret-value}
  per-ip: {type: rate_limit, limit: 10, window: 1m}
routes:
  - name: users
    path: /api/users
    service: user
    policies: [auth]
)";
  ConfigDiff r = diff(kBase, no_order);
  EXPECT_EQ(r.services.removed, Strings{"order"});
  EXPECT_EQ(r.routes.removed, Strings{"/api/orders"});
  EXPECT_TRUE(r.services.changed.empty());
}

TEST(ConfigDiff, HealthCheckTurnedOnOrOffIsOneField) {
  ConfigDiff d = diff(kBase, replace(kBase, "    health_check: {path: /health, interval: 5s}\n", ""));
  ASSERT_EQ(d.services.changed.size(), 1u);
  EXPECT_EQ(d.services.changed[0].fields, Strings{"health_check"});
  ConfigDiff on = diff(replace(kBase, "    health_check: {path: /health, interval: 5s}\n", ""), kBase);
  ASSERT_EQ(on.services.changed.size(), 1u);
  EXPECT_EQ(on.services.changed[0].fields, Strings{"health_check"});
}

TEST(ConfigDiff, PolicyOptionsByName) {
  std::string after = replace(kBase, "per-ip: {type: rate_limit, limit: 10, window: 1m}",
                              "per-ip: {type: rate_limit, limit: 20, window: 1m, key: {header: X-Api-Key}}\n"
                              "  web: {type: cors, origins: [\"https://a.example\"]}");
  ConfigDiff d = diff(kBase, after);
  EXPECT_EQ(d.policies.added, Strings{"web"});
  ASSERT_EQ(d.policies.changed.size(), 1u);
  EXPECT_EQ(d.policies.changed[0].name, "per-ip");
  EXPECT_EQ(d.policies.changed[0].fields, (Strings{"limit", "key"}));

  // A nested value is one option; an option removed is named; `10` and `"10"` differ as written.
  const std::string nested_before = replace(after, "key: {header: X-Api-Key}", "key: {header: X-Api-Key}, burst: 5");
  const std::string nested_after = replace(after, "key: {header: X-Api-Key}", "key: {header: X-Key}");
  ConfigDiff n = diff(nested_before, nested_after);
  ASSERT_EQ(n.policies.changed.size(), 1u) << diff_json(n);
  EXPECT_EQ(n.policies.changed[0].fields, (Strings{"key", "burst"}));
  ConfigDiff quoted = diff(kBase, replace(kBase, "limit: 10,", "limit: \"10\","));
  ASSERT_EQ(quoted.policies.changed.size(), 1u);
  EXPECT_EQ(quoted.policies.changed[0].fields, Strings{"limit"});

  // A type changed, its options with it; a policy removed.
  ConfigDiff t = diff(kBase, replace(kBase, "per-ip: {type: rate_limit, limit: 10, window: 1m}",
                                     "per-ip: {type: api_key, keys: {k1: alice}}"));
  ASSERT_EQ(t.policies.changed.size(), 1u);
  EXPECT_EQ(t.policies.changed[0].fields, (Strings{"type", "keys", "limit", "window"}));
  ConfigDiff removed = diff(kBase, replace(kBase, "  per-ip: {type: rate_limit, limit: 10, window: 1m}\n", ""));
  EXPECT_EQ(removed.policies.removed, Strings{"per-ip"});
}

// Only names are reported: a secret, an api key, a Redis password or the admin token never
// appears, in the JSON or the summary.
TEST(ConfigDiff, SecretsNeverAppear) {
  const std::string before = std::string(kBase) + R"(redis: redis://:old-redis-password@127.0.0.1:6379
admin: {address: "127.0.0.1:9901", token: old-admin-token}
)";
  std::string after = replace(before, "first-secret-value", "second-secret-value");
  after = replace(after, "old-redis-password", "new-redis-password");
  after = replace(after, "old-admin-token", "new-admin-token");
  after = replace(after, "  per-ip:", "  keys: {type: api_key, keys: {key-one-value: alice}}\n  per-ip:");
  const std::string before_keys =
      replace(before, "  per-ip:", "  keys: {type: api_key, keys: {key-zero-value: alice}}\n  per-ip:");
  ConfigDiff d = diff(before_keys, after);
  ASSERT_EQ(d.policies.changed.size(), 2u) << diff_json(d);
  EXPECT_EQ(d.policies.changed[0], (ItemChange{"auth", {"secret"}}));
  EXPECT_EQ(d.policies.changed[1], (ItemChange{"keys", {"keys"}}));
  EXPECT_EQ(d.settings, (Strings{"admin.token", "redis"}));
  const std::string json = diff_json(d), summary = diff_summary(d);
  for (const char* secret : {"first-secret-value", "second-secret-value", "old-redis-password", "new-redis-password",
                             "old-admin-token", "new-admin-token", "key-zero-value", "key-one-value"}) {
    EXPECT_EQ(json.find(secret), std::string::npos) << secret << " in " << json;
    EXPECT_EQ(summary.find(secret), std::string::npos) << secret << " in " << summary;
  }
}

TEST(ConfigDiff, Listeners) {
  const std::string before = replace(kBase, R"(listen: ["127.0.0.1:8080"])", R"(listen:
  - "127.0.0.1:8080"
  - ":9090"
  - "[::1]:7070"
  - {address: ":8443", tls: {cert: {D}/cert.pem, key: {D}/key.pem}})");
  const std::string after = replace(kBase, R"(listen: ["127.0.0.1:8080"])", R"(listen:
  - ":9090"
  - "127.0.0.1:8081"
  - {address: "[::1]:7070", tls: {cert: {D}/cert2.pem, key: {D}/key2.pem}}
  - {address: ":8443", tls: {cert: {D}/cert2.pem, key: {D}/key.pem}})");
  ConfigDiff d = diff(before, after);
  EXPECT_EQ(d.listeners.added, Strings{"127.0.0.1:8081"});
  EXPECT_EQ(d.listeners.removed, Strings{"127.0.0.1:8080"});
  EXPECT_EQ(d.listeners.changed, (std::vector<ItemChange>{{"[::1]:7070", {"tls"}}, {":8443", {"tls.certificates"}}}));
}

TEST(ConfigDiff, ListenerTlsFields) {
  const std::string before = replace(kBase, R"(listen: ["127.0.0.1:8080"])", R"(listen:
  - address: "127.0.0.1:8443"
    tls:
      cert: {D}/cert.pem
      key: {D}/key.pem)");
  // The same certificate written in the full form is no change.
  EXPECT_TRUE(diff(before, replace(before, "      cert: {D}/cert.pem\n      key: {D}/key.pem",
                                   "      certificates: [{cert: {D}/cert.pem, key: {D}/key.pem}]\n"
                                   "      alpn: [h2, http/1.1]"))
                  .empty());
  const std::string after = replace(before, "      cert: {D}/cert.pem\n      key: {D}/key.pem", R"(      certificates:
        - {cert: {D}/cert.pem, key: {D}/key.pem}
        - {cert: {D}/cert2.pem, key: {D}/key2.pem}
      min_version: "1.3"
      alpn: [http/1.1]
      sni_strict: true
      client_ca: {D}/ca.pem
      client_auth: required
      session_tickets: false
      handshake_timeout: 5s
      reload_check: 0)");
  ConfigDiff d = diff(before, after);
  EXPECT_EQ(d.listeners.changed,
            (std::vector<ItemChange>{{"127.0.0.1:8443",
                                      {"tls.certificates", "tls.min_version", "tls.alpn", "tls.sni_strict",
                                       "tls.client_ca", "tls.client_auth", "tls.session_tickets",
                                       "tls.handshake_timeout", "tls.reload_check"}}}));
}

TEST(ConfigDiff, ServiceTlsAndIdleTimeout) {
  const std::string before = replace(kBase, "  order:\n    instances: [\"http://127.0.0.1:3003\"]\n",
                                     "  order:\n    instances: [\"https://127.0.0.1:3003\"]\n");
  const std::string after = replace(before, "  order:\n    instances: [\"https://127.0.0.1:3003\"]\n",
                                    R"(  order:
    instances: ["https://127.0.0.1:3003", "https://127.0.0.1:3004"]
    timeouts: {idle: 1m}
    tls:
      ca: {D}/ca.pem
      verify: false
      server_name: orders.internal
      client_cert: {D}/client.pem
      client_key: {D}/client.key
)");
  ConfigDiff d = diff(before, after);
  ASSERT_EQ(d.services.changed.size(), 1u);
  EXPECT_EQ(d.services.changed[0].name, "order");
  EXPECT_EQ(d.services.changed[0].fields,
            (Strings{"instances", "timeouts.idle", "tls.ca", "tls.verify", "tls.server_name", "tls.client_cert",
                     "tls.client_key"}));
  // http:// to https:// on the same address is an instance change.
  ConfigDiff scheme = diff(kBase, before);
  ASSERT_EQ(scheme.services.changed.size(), 1u);
  EXPECT_EQ(scheme.services.changed[0].fields, Strings{"instances"});
}

TEST(ConfigDiff, Http2ToAService) {
  const std::string order = "  order:\n    instances: [\"http://127.0.0.1:3003\"]\n";
  // http:// to h2c:// on the same address is an instance change; the route to it loses
  // WebSocket, which needs HTTP/1.1 to the service.
  ConfigDiff scheme = diff(kBase, replace(kBase, order, "  order:\n    instances: [\"h2c://127.0.0.1:3003\"]\n"));
  ASSERT_EQ(scheme.services.changed.size(), 1u);
  EXPECT_EQ(scheme.services.changed[0].name, "order");
  EXPECT_EQ(scheme.services.changed[0].fields, Strings{"instances"});
  ASSERT_EQ(scheme.routes.changed.size(), 1u);
  EXPECT_EQ(scheme.routes.changed[0].name, "/api/orders");
  EXPECT_EQ(scheme.routes.changed[0].fields, Strings{"websocket"});
  // Same instance, protocol h2c: a protocol change.
  ConfigDiff protocol = diff(kBase, replace(kBase, order, order + "    protocol: h2c\n"));
  ASSERT_EQ(protocol.services.changed.size(), 1u);
  EXPECT_EQ(protocol.services.changed[0].fields, Strings{"protocol"});
  ASSERT_EQ(protocol.routes.changed.size(), 1u);
  EXPECT_EQ(protocol.routes.changed[0].fields, Strings{"websocket"});
  // h2c:// to protocol h2c with the same h2c:// instance: the route stays as it was.
  const std::string h2c = replace(kBase, order, "  order:\n    instances: [\"h2c://127.0.0.1:3003\"]\n");
  ConfigDiff same = diff(h2c, replace(h2c, "[\"h2c://127.0.0.1:3003\"]\n", "[\"h2c://127.0.0.1:3003\"]\n    protocol: h2c\n"));
  ASSERT_EQ(same.services.changed.size(), 1u);
  EXPECT_EQ(same.services.changed[0].fields, Strings{"protocol"});
  EXPECT_TRUE(same.routes.changed.empty());
}

TEST(ConfigDiff, TopLevelSettings) {
  const std::string after = std::string(kBase) + R"(workers: 2
redis: redis://127.0.0.1:6379
trusted_proxies: [10.0.0.0/8]
limits: {max_body_bytes: 1MiB, header_timeout: 5s, underscores_in_headers: reject}
health_endpoint: false
access_log: stderr
log: {level: debug}
admin: {address: "127.0.0.1:9901", token: t}
defaults: {policies: [per-ip]}
)";
  ConfigDiff d = diff(kBase, after);
  EXPECT_EQ(d.settings, (Strings{"admin", "workers", "redis", "trusted_proxies", "limits.max_body_bytes",
                                 "limits.header_timeout", "limits.underscores_in_headers", "health_endpoint",
                                 "access_log", "log.level", "defaults.policies"}));
  EXPECT_TRUE(d.routes.empty());
  EXPECT_TRUE(d.services.empty());
  EXPECT_TRUE(d.policies.empty());
  EXPECT_TRUE(d.listeners.empty());

  const std::string admin_moved = replace(after, "127.0.0.1:9901", "127.0.0.1:9902");
  EXPECT_EQ(diff(after, admin_moved).settings, Strings{"admin.address"});
}

TEST(ConfigDiff, JsonAndSummary) {
  std::string after = replace(kBase, "name: users", "name: people");
  after = replace(after, "response: 30s", "response: 5s");
  after = replace(after, "limit: 10,", "limit: 11,");
  after += "limits: {max_body_bytes: 1MiB}\n";
  ConfigDiff d = diff(kBase, after);
  EXPECT_EQ(diff_json(d),
            R"({"routes":{"added":["people"],"removed":["users"],"changed":[]},)"
            R"("services":{"added":[],"removed":[],"changed":[{"name":"user","fields":["timeouts.response"]}]},)"
            R"("policies":{"added":[],"removed":[],"changed":[{"name":"per-ip","fields":["limit"]}]},)"
            R"("listeners":{"added":[],"removed":[],"changed":[]},)"
            R"("settings":{"changed":["limits.max_body_bytes"]}})");
  EXPECT_EQ(diff_summary(d),
            "routes: +people -users; services: ~user(timeouts.response); policies: ~per-ip(limit); "
            "settings: limits.max_body_bytes");
}

// Names are JSON strings: a regex route's name with quotes and backslashes stays valid JSON.
TEST(ConfigDiff, NamesAreEscapedInJson) {
  const std::string after = std::string(kBase) + "  - regex: '^/a\\\\d+\"'\n    service: order\n";
  ConfigDiff d = diff(kBase, after);
  ASSERT_EQ(d.routes.added.size(), 1u);
  EXPECT_EQ(d.routes.added[0], "^/a\\\\d+\"");
  EXPECT_NE(diff_json(d).find(R"("added":["^/a\\\\d+\""])"), std::string::npos) << diff_json(d);
}

}  // namespace
}  // namespace gh::config
