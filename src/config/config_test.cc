#include "config/config.h"
#include "config/reader.h"
#include "config/test_files.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

namespace gh::config {
namespace {

using namespace std::chrono_literals;

PolicyCatalog test_catalog() {
  PolicyCatalog c;
  c.supported["jwt"] = [](const PolicyConfig&, Diagnostics&) { return std::any(); };
  c.supported["require_role"] = [](const PolicyConfig&, Diagnostics&) { return std::any(); };
  c.supported["rate_limit"] = [](const PolicyConfig&, Diagnostics&) { return std::any(); };
  c.planned = {"api_key", "cors", "ip_filter"};
  return c;
}

std::vector<std::string> errors_of(const std::string& yaml, const PolicyCatalog& catalog = test_catalog()) {
  LoadResult r = load_string(yaml, "gw.yaml", catalog);
  std::vector<std::string> out;
  for (const auto& d : r.errors) out.push_back(d.to_string());
  EXPECT_EQ(r.config.has_value(), r.errors.empty());
  return out;
}

std::string only_error(const std::string& yaml) {
  auto errors = errors_of(yaml);
  EXPECT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  return errors.empty() ? std::string() : errors.front();
}

Config load_ok(const std::string& yaml, const PolicyCatalog& catalog = test_catalog()) {
  LoadResult r = load_string(yaml, "gw.yaml", catalog);
  std::vector<std::string> errors;
  for (const auto& d : r.errors) errors.push_back(d.to_string());
  EXPECT_TRUE(r.config.has_value()) << ::testing::PrintToString(errors);
  return r.config.value_or(Config{});
}

// One service and one route; tests append to it or write their own.
constexpr const char* kMinimal = R"(services:
  user:
    instances: ["http://127.0.0.1:3001"]
routes:
  - path: /api/users
    service: user
)";

using test::with_files;

// ---- the seed --------------------------------------------------------------------------------

TEST(ConfigLoader, LoadsTheSeedFile) {
  ::setenv("JWT_SECRET", "seed-secret", 1);
  ::unsetenv("USER_SERVICE_URL");
  ::setenv("PRODUCT_SERVICE_URL", "http://10.1.2.3:4000", 1);
  ::unsetenv("ORDER_SERVICE_URL");
  PolicyCatalog catalog = test_catalog();
  int validated = 0;
  std::string secret_seen;
  catalog.supported["jwt"] = [&](const PolicyConfig& p, Diagnostics&) {
    ++validated;
    secret_seen = p.options["secret"].as<std::string>();
    EXPECT_EQ(p.path, "policies.jwt");
    return std::any(std::string("built from ") + secret_seen);
  };
  catalog.supported["rate_limit"] = [&](const PolicyConfig&, Diagnostics&) {
    ++validated;
    return std::any();
  };
  catalog.supported["require_role"] = [&](const PolicyConfig&, Diagnostics&) {
    ++validated;
    return std::any();
  };

  LoadResult r = load_file(GH_EXAMPLES_DIR "/seed.yaml", catalog);
  ::unsetenv("PRODUCT_SERVICE_URL");
  for (const auto& d : r.errors) ADD_FAILURE() << d.to_string();
  ASSERT_TRUE(r.config);
  const Config& c = *r.config;

  EXPECT_EQ(validated, 5);
  EXPECT_EQ(secret_seen, "seed-secret");
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].host, "");
  EXPECT_EQ(c.listeners[0].port, 3000);

  ASSERT_EQ(c.services.size(), 3u);
  EXPECT_EQ(c.services[0].name, "user");
  ASSERT_EQ(c.services[0].instances.size(), 1u);
  EXPECT_EQ(c.services[0].instances[0].url, "http://127.0.0.1:3001");
  EXPECT_EQ(c.services[0].instances[0].host, "127.0.0.1");
  EXPECT_EQ(c.services[0].instances[0].port, 3001);
  ASSERT_TRUE(c.services[0].health_check);
  EXPECT_EQ(c.services[0].health_check->path, "/health");
  EXPECT_EQ(c.services[0].health_check->interval, 30s);
  EXPECT_EQ(c.services[1].instances[0].host, "10.1.2.3");
  EXPECT_EQ(c.services[1].instances[0].port, 4000);
  EXPECT_EQ(c.find_service("order")->instances[0].port, 3003);

  // Five entries from the file, then the built-in security_headers that defaults names.
  ASSERT_EQ(c.policies.size(), 6u);
  EXPECT_EQ(c.policies[0].name, "jwt");
  // What the validator built is kept with the entry: it is parsed once.
  const auto* built = std::any_cast<std::string>(&c.policies[0].built);
  ASSERT_NE(built, nullptr);
  EXPECT_EQ(*built, "built from seed-secret");
  EXPECT_EQ(c.policies[1].type, "require_role");
  const PolicyConfig* sh = c.find_policy("security_headers");
  ASSERT_NE(sh, nullptr);
  EXPECT_EQ(sh->type, "security_headers");
  EXPECT_TRUE(sh->options.IsMap());
  EXPECT_EQ(sh->options.size(), 0u);
  EXPECT_EQ(c.default_policies, (std::vector<std::string>{"security_headers", "per-ip"}));

  ASSERT_EQ(c.routes.size(), 4u);
  EXPECT_EQ(c.routes[0].name, "/api/admin");
  EXPECT_EQ(c.routes[0].kind, MatchKind::Prefix);
  EXPECT_EQ(c.routes[0].pattern, "/api/admin");
  EXPECT_EQ(c.routes[0].service, "user");
  EXPECT_EQ(c.routes[0].policies, (std::vector<std::string>{"jwt", "admins-only", "admin-per-ip"}));
  EXPECT_EQ(c.routes[2].policies, std::vector<std::string>{});
  EXPECT_EQ(c.routes[3].service, "order");
  EXPECT_EQ(c.routes[3].mark.line, 52);
}

TEST(ConfigLoader, SeedWithoutJwtSecretIsRefused) {
  ::unsetenv("JWT_SECRET");
  LoadResult r = load_file(GH_EXAMPLES_DIR "/seed.yaml", test_catalog());
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].mark.line, 20);
  EXPECT_EQ(r.errors[0].mark.col, 14);
  EXPECT_EQ(r.errors[0].message,
            "environment variable JWT_SECRET is not set; set it, or write ${JWT_SECRET:-default} to give a default");
}

// ---- defaults and a full config -------------------------------------------------------------

TEST(ConfigLoader, FillsDefaults) {
  Config c = load_ok(kMinimal);
  EXPECT_EQ(c.file, "gw.yaml");
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].host, "");
  EXPECT_EQ(c.listeners[0].port, 3000);
  EXPECT_FALSE(c.listeners[0].tls);
  EXPECT_FALSE(c.admin);
  EXPECT_EQ(c.workers, 0u);
  EXPECT_EQ(c.redis, "");
  EXPECT_TRUE(c.trusted_proxies.empty());
  EXPECT_EQ(c.limits.max_uri_bytes, 8u * 1024);
  EXPECT_EQ(c.limits.max_header_bytes, 16u * 1024);
  EXPECT_EQ(c.limits.max_headers, 100u);
  EXPECT_EQ(c.limits.max_body_bytes, 10u * 1024 * 1024);
  EXPECT_EQ(c.limits.header_timeout, 10s);
  EXPECT_EQ(c.limits.body_timeout, 10s);
  EXPECT_EQ(c.limits.min_body_rate, 1024u);
  EXPECT_EQ(c.limits.idle_timeout, 60s);
  EXPECT_EQ(c.limits.drain_timeout, 30s);
  EXPECT_EQ(c.limits.max_connections, 0u);
  EXPECT_EQ(c.health_endpoint, "/health");
  EXPECT_EQ(c.access_log, "stdout");
  EXPECT_TRUE(c.policies.empty());
  EXPECT_TRUE(c.default_policies.empty());

  ASSERT_EQ(c.services.size(), 1u);
  const ServiceConfig& s = c.services[0];
  EXPECT_EQ(s.load_balancing, Balance::RoundRobin);
  EXPECT_FALSE(s.hash_on);
  EXPECT_FALSE(s.health_check);
  EXPECT_EQ(s.connect_timeout, 2s);
  EXPECT_EQ(s.response_timeout, 30s);
  EXPECT_EQ(s.retries.attempts, 1);
  EXPECT_TRUE(s.retries.on_connect_failure);
  EXPECT_TRUE(s.retries.on_status.empty());
  EXPECT_FALSE(s.preserve_host);
  EXPECT_EQ(s.max_in_flight, 0u);
  EXPECT_EQ(s.instances[0].weight, 1u);

  ASSERT_EQ(c.routes.size(), 1u);
  const RouteConfig& r = c.routes[0];
  EXPECT_EQ(r.name, "/api/users");
  EXPECT_EQ(r.kind, MatchKind::Prefix);
  EXPECT_TRUE(r.methods.empty());
  EXPECT_EQ(r.host, "");
  EXPECT_FALSE(r.strip_prefix);
  EXPECT_EQ(r.mark.line, 5);
  EXPECT_EQ(r.mark.col, 5);
}

TEST(ConfigLoader, ReadsEveryField) {
  Config c = load_ok(with_files(R"(
listen:
  - "0.0.0.0:8080"
  - address: "[::1]:8443"
    tls: {cert: {D}/cert.pem, key: {D}/key.pem}
  - 9090
admin: {address: "127.0.0.1:9901", token: s3cret}
workers: 4
redis: redis://user:pw@redis.internal:6379/2
trusted_proxies: [10.0.0.0/8, 192.168.1.7, "fd00::/8"]
limits:
  max_uri_bytes: 4KiB
  max_header_bytes: 32768
  max_headers: 50
  max_body_bytes: 1MiB
  header_timeout: 5s
  body_timeout: 250ms
  min_body_rate: 2KiB/s
  idle_timeout: 2m
  drain_timeout: 0s
  max_connections: 10000
health_endpoint: false
access_log: /var/log/gatehouse.json
services:
  user:
    instances:
      - http://10.0.0.5:3001/
      - {url: "http://user-2.internal", weight: 3}
    load_balancing: hash
    hash_on: header:X-User-Id
    health_check: {path: /ready, interval: 10s, timeout: 1s, healthy_after: 1, unhealthy_after: 5}
    timeouts: {connect: 500ms, response: 1m}
    retries: {attempts: 0, retry_on: [502, 503, 503]}
    preserve_host: true
    max_in_flight: 64
  search:
    instances: ["http://search:80"]
    load_balancing: least_request
policies:
  limited: {type: rate_limit, limit: 10, window: 1m}
  security_headers: {type: security_headers, override: true}
defaults:
  policies: [security_headers]
routes:
  - name: user-by-id
    regex: "^/api/users/[0-9]+$"
    methods: [get, Head]
    host: API.example.com
    headers: {X-Version: "2", X-Tenant: {regex: "^t-[a-z]+$"}}
    service: user
    policies: [limited]
  - exact: /search
    host: "*.example.com:8080"
    service: search
  - path: /s
    strip_prefix: true
    service: search
)"));
  ASSERT_EQ(c.listeners.size(), 3u);
  EXPECT_EQ(c.listeners[0].host, "0.0.0.0");
  EXPECT_EQ(c.listeners[0].port, 8080);
  EXPECT_EQ(c.listeners[1].host, "::1");
  EXPECT_EQ(c.listeners[1].port, 8443);
  ASSERT_TRUE(c.listeners[1].tls);
  ASSERT_EQ(c.listeners[1].tls->certificates.size(), 1u);
  EXPECT_EQ(c.listeners[1].tls->certificates[0].cert, test::TestFiles::get()("cert.pem"));
  EXPECT_EQ(c.listeners[1].tls->certificates[0].key, test::TestFiles::get()("key.pem"));
  EXPECT_EQ(c.listeners[2].port, 9090);
  ASSERT_TRUE(c.admin);
  EXPECT_EQ(c.admin->host, "127.0.0.1");
  EXPECT_EQ(c.admin->port, 9901);
  EXPECT_EQ(c.admin->token, "s3cret");
  EXPECT_EQ(c.workers, 4u);
  EXPECT_EQ(c.redis, "redis://user:pw@redis.internal:6379/2");
  EXPECT_EQ(c.trusted_proxies, (std::vector<std::string>{"10.0.0.0/8", "192.168.1.7", "fd00::/8"}));
  EXPECT_EQ(c.limits.max_uri_bytes, 4096u);
  EXPECT_EQ(c.limits.max_header_bytes, 32768u);
  EXPECT_EQ(c.limits.max_headers, 50u);
  EXPECT_EQ(c.limits.max_body_bytes, 1024u * 1024);
  EXPECT_EQ(c.limits.header_timeout, 5s);
  EXPECT_EQ(c.limits.body_timeout, 250ms);
  EXPECT_EQ(c.limits.min_body_rate, 2048u);
  EXPECT_EQ(c.limits.idle_timeout, 2min);
  EXPECT_EQ(c.limits.drain_timeout, 0s);
  EXPECT_EQ(c.limits.max_connections, 10000u);
  EXPECT_FALSE(c.health_endpoint);
  EXPECT_EQ(c.access_log, "/var/log/gatehouse.json");

  const ServiceConfig& u = c.services[0];
  ASSERT_EQ(u.instances.size(), 2u);
  EXPECT_EQ(u.instances[0].url, "http://10.0.0.5:3001/");
  EXPECT_EQ(u.instances[0].port, 3001);
  EXPECT_EQ(u.instances[1].host, "user-2.internal");
  EXPECT_EQ(u.instances[1].port, 80);
  EXPECT_EQ(u.instances[1].weight, 3u);
  EXPECT_EQ(u.load_balancing, Balance::Hash);
  ASSERT_TRUE(u.hash_on);
  EXPECT_EQ(u.hash_on->kind, HashOn::Kind::Header);
  EXPECT_EQ(u.hash_on->name, "X-User-Id");
  ASSERT_TRUE(u.health_check);
  EXPECT_EQ(u.health_check->path, "/ready");
  EXPECT_EQ(u.health_check->interval, 10s);
  EXPECT_EQ(u.health_check->timeout, 1s);
  EXPECT_EQ(u.health_check->healthy_after, 1);
  EXPECT_EQ(u.health_check->unhealthy_after, 5);
  EXPECT_EQ(u.connect_timeout, 500ms);
  EXPECT_EQ(u.response_timeout, 1min);
  EXPECT_EQ(u.retries.attempts, 0);
  EXPECT_FALSE(u.retries.on_connect_failure);
  EXPECT_EQ(u.retries.on_status, (std::vector<int>{502, 503}));
  EXPECT_TRUE(u.preserve_host);
  EXPECT_EQ(u.max_in_flight, 64u);
  EXPECT_EQ(c.services[1].load_balancing, Balance::LeastRequest);

  // The user's own security_headers entry is used, not a synthesized one.
  ASSERT_EQ(c.policies.size(), 2u);
  EXPECT_EQ(c.find_policy("security_headers")->options["override"].as<bool>(), true);

  const RouteConfig& r0 = c.routes[0];
  EXPECT_EQ(r0.name, "user-by-id");
  EXPECT_EQ(r0.kind, MatchKind::Regex);
  EXPECT_EQ(r0.pattern, "^/api/users/[0-9]+$");
  EXPECT_EQ(r0.methods, (std::vector<std::string>{"GET", "HEAD"}));
  EXPECT_EQ(r0.host, "api.example.com");
  ASSERT_EQ(r0.headers.size(), 2u);
  EXPECT_EQ(r0.headers[0].name, "X-Version");
  EXPECT_EQ(r0.headers[0].value, "2");
  EXPECT_FALSE(r0.headers[0].regex);
  EXPECT_EQ(r0.headers[1].value, "^t-[a-z]+$");
  EXPECT_TRUE(r0.headers[1].regex);
  EXPECT_EQ(r0.policies, std::vector<std::string>{"limited"});
  EXPECT_EQ(c.routes[1].name, "/search");
  EXPECT_EQ(c.routes[1].kind, MatchKind::Exact);
  EXPECT_EQ(c.routes[1].host, "*.example.com:8080");
  EXPECT_TRUE(c.routes[2].strip_prefix);
}

TEST(ConfigLoader, ExpectedStatusForms) {
  auto ranges = [](const std::string& value) {
    Config c = load_ok("services:\n  user:\n    instances: [\"http://a:1\"]\n    health_check: {expected_status: " +
                       value + "}\nroutes: [{path: /, service: user}]\n");
    return c.services.at(0).health_check->expected_status;
  };
  EXPECT_EQ(ranges("200"), (std::vector<StatusRange>{{200, 200}}));
  EXPECT_EQ(ranges("\"200-299\""), (std::vector<StatusRange>{{200, 299}}));
  EXPECT_EQ(ranges("[404, \"200-204\", 301]"), (std::vector<StatusRange>{{404, 404}, {200, 204}, {301, 301}}));
  Config c = load_ok("services:\n  user:\n    instances: [\"http://a:1\"]\n    health_check: {path: /h}\n"
                     "routes: [{path: /, service: user}]\n");
  EXPECT_EQ(c.services[0].health_check->expected_status, (std::vector<StatusRange>{{200, 399}}));
  EXPECT_EQ(c.services[0].dns_refresh, 30s);
  c = load_ok("services:\n  user:\n    instances: [\"http://a:1\"]\n    dns_refresh: 5m\n"
              "routes: [{path: /, service: user}]\n");
  EXPECT_EQ(c.services[0].dns_refresh, 5min);
}

TEST(ConfigLoader, InstanceAndRedisUrls) {
  Config c = load_ok("redis: \"redis://:p%2Fss@cache:6379/1\"\nservices:\n  user:\n"
                     "    instances: [\"http://[::1]:8080\", \"HTTP://Api.Internal\", \"http://10.0.0.5:3001/\"]\n"
                     "routes: [{path: /, service: user}]\n");
  EXPECT_EQ(c.redis, "redis://:p%2Fss@cache:6379/1");
  const auto& in = c.services.at(0).instances;
  ASSERT_EQ(in.size(), 3u);
  EXPECT_EQ(in[0].host, "::1");
  EXPECT_EQ(in[0].port, 8080);
  EXPECT_EQ(in[1].host, "Api.Internal");
  EXPECT_EQ(in[1].port, 80);
  EXPECT_EQ(in[2].host, "10.0.0.5");
  EXPECT_EQ(in[2].port, 3001);
}

TEST(ConfigLoader, AcceptsOtherHashKeys) {
  for (auto [text, kind, name] : {std::tuple{"client_ip", HashOn::Kind::ClientIp, ""},
                                  std::tuple{"cookie:sid", HashOn::Kind::Cookie, "sid"},
                                  std::tuple{"claim:sub", HashOn::Kind::Claim, "sub"}}) {
    Config c = load_ok(std::string(R"(services:
  user: {instances: ["http://a:1"], load_balancing: hash, hash_on: ")") + text + R"("}
routes: [{path: /, service: user}])");
    ASSERT_EQ(c.services.size(), 1u);
    EXPECT_EQ(c.services[0].hash_on->kind, kind);
    EXPECT_EQ(c.services[0].hash_on->name, name);
  }
}

// ---- one error each, checked in full --------------------------------------------------------

struct Case {
  const char* yaml;
  const char* error;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.error; }

class ConfigError : public ::testing::TestWithParam<Case> {};

TEST_P(ConfigError, IsReportedWithPlacePathAndMessage) {
  EXPECT_EQ(only_error(GetParam().yaml), GetParam().error) << GetParam().yaml;
}

constexpr const char* kRoutes = "routes: [{path: /, service: user}]\n";

INSTANTIATE_TEST_SUITE_P(
    Top, ConfigError,
    ::testing::Values(
        Case{"listen: \"localhost\"\nservices: {user: {instances: [\"http://a:1\"]}}\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:1:9: listen: expected an address like \":3000\" or \"0.0.0.0:3000\", got \"localhost\""},
        Case{"listen: [\":80\", \":80\"]\nservices: {user: {instances: [\"http://a:1\"]}}\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:1:17: listen[1]: duplicate listener on :80"},
        Case{"workers: 0\nservices: {user: {instances: [\"http://a:1\"]}}\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:1:10: workers: expected auto or a number of threads from 1 to 1024, got 0"},
        Case{"redis: localhost:6379\nservices: {user: {instances: [\"http://a:1\"]}}\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:1:8: redis: expected a URL like redis://127.0.0.1:6379 or redis://user:pass@host:6379/0 "
             "(rediss:// for TLS), got \"localhost:6379\""},
        Case{"trusted_proxies: [10.0.0.0/33]\nservices: {user: {instances: [\"http://a:1\"]}}\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:1:19: trusted_proxies[0]: expected a CIDR like 10.0.0.0/8, 192.168.1.7 or fd00::/8, "
             "got \"10.0.0.0/33\": the prefix length is over 32"},
        Case{"trusted_proxies: [\"::ffff:10.0.0.1/80\"]\nservices: {user: {instances: [\"http://a:1\"]}}\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:1:19: trusted_proxies[0]: expected a CIDR like 10.0.0.0/8, 192.168.1.7 or fd00::/8, "
             "got \"::ffff:10.0.0.1/80\": an IPv4-mapped network (::ffff:a.b.c.d) needs a prefix length of 96 or more"},
        Case{"limits:\n  max_body_bytes: lots\nservices: {user: {instances: [\"http://a:1\"]}}\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:2:19: limits.max_body_bytes: expected a positive size like 8KiB, 10MiB or 1024, got \"lots\""},
        Case{"limits:\n  idle_timeout: abc\nservices: {user: {instances: [\"http://a:1\"]}}\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:2:17: limits.idle_timeout: expected a positive duration like 250ms, 30s, 15m or 1h, got \"abc\""},
        Case{"limits:\n  max_body: 1MiB\nservices: {user: {instances: [\"http://a:1\"]}}\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:2:3: limits.max_body: unknown key \"max_body\"; did you mean \"max_body_bytes\"?"},
        Case{"health_endpoint: health\nservices: {user: {instances: [\"http://a:1\"]}}\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:1:18: health_endpoint: expected a path starting with / or false, got \"health\""},
        Case{"admin: {address: \"127.0.0.1:9901\"}\nservices: {user: {instances: [\"http://a:1\"]}}\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:1:8: admin.token: missing; expected the admin API's bearer token, e.g. \"${ADMIN_TOKEN}\""}));

INSTANTIATE_TEST_SUITE_P(
    Services, ConfigError,
    ::testing::Values(
        Case{"services:\n  user:\n    instances: [\"http://a:1\", \"10.0.0.5:3001\"]\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:3:31: services.user.instances[1]: expected a URL like http://10.0.0.5:3001 or "
             "https://api.internal, got \"10.0.0.5:3001\""},
        Case{"services:\n  user:\n    instances: [\"http://u:p@a:1\"]\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:3:17: services.user.instances[0]: expected a URL like http://10.0.0.5:3001 or "
             "https://api.internal, got \"http://u:p@a:1\": an instance URL has no user or password"},
        Case{"services:\n  user:\n    instances: [\"http://a:70000\"]\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:3:17: services.user.instances[0]: expected a URL like http://10.0.0.5:3001 or "
             "https://api.internal, got \"http://a:70000\": the port must be a number from 1 to 65535"},
        Case{"services:\n  user:\n    instances: [\"http://a%2Fb:1\"]\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:3:17: services.user.instances[0]: expected a URL like http://10.0.0.5:3001 or "
             "https://api.internal, got \"http://a%2Fb:1\": the host is not a name or an IP address"},
        Case{"services:\n  user:\n    instances: [\"http://a:1?x=1\"]\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:3:17: services.user.instances[0]: expected a URL like http://10.0.0.5:3001 or "
             "https://api.internal with no path, got \"http://a:1?x=1\""},
        Case{"redis: \"redis://:p/ss@cache:6379\"\nservices: {user: {instances: [\"http://a:1\"]}}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:1:8: redis: expected a URL like redis://127.0.0.1:6379 or redis://user:pass@host:6379/0 "
             "(rediss:// for TLS), got \"redis://:p/ss@cache:6379\": a \"/\" in the user name or password is written %2F"},
        Case{"services:\n  user:\n    instances: [\"http://a:1/api\"]\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:3:17: services.user.instances[0]: expected a URL like http://10.0.0.5:3001 or "
             "https://api.internal with no path, got \"http://a:1/api\""},
        Case{"services:\n  user:\n    instances: [{url: \"http://a:1\", weight: 0}]\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:3:45: services.user.instances[0].weight: expected a positive integer weight, got 0"},
        Case{"services:\n  user:\n    instances: []\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:3:16: services.user.instances: expected at least one instance, got an empty list"},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    load_balancing: least_requests\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:21: services.user.load_balancing: unknown load_balancing \"least_requests\"; "
             "did you mean \"least_request\"?"},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    load_balancing: fastest\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:21: services.user.load_balancing: expected one of round_robin, weighted, least_request, "
             "random or hash, got \"fastest\""},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    load_balancing: hash\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:3:5: services.user.hash_on: missing; expected client_ip, header:NAME, cookie:NAME or "
             "claim:NAME (load_balancing: hash needs it)"},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    hash_on: client_ip\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:14: services.user.hash_on: hash_on applies only with load_balancing: hash"},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    load_balancing: hash\n    hash_on: ip\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:5:14: services.user.hash_on: expected client_ip, header:NAME, cookie:NAME or claim:NAME, "
             "got \"ip\""},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    health_check: {interval: 0s}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:30: services.user.health_check.interval: expected a positive duration like 250ms, 30s, 15m "
             "or 1h, got \"0s\""},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    health_check: {expected_status: 2xx}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:37: services.user.health_check.expected_status: expected a status like 200, a range like "
             "\"200-299\", or a list of them (statuses from 100 to 599), got \"2xx\""},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    health_check: {expected_status: [200, 700]}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:43: services.user.health_check.expected_status[1]: expected a status like 200, a range like "
             "\"200-299\", or a list of them (statuses from 100 to 599), got 700"},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    health_check: {expected_status: \"399-200\"}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:37: services.user.health_check.expected_status: expected a range from low to high like "
             "\"200-299\", got \"399-200\""},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    health_check: {expected_status: []}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:37: services.user.health_check.expected_status: expected a status like 200, a range like "
             "\"200-299\", or a list of them, got an empty list"},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    health_check: {expected_status: {ok: 200}}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:37: services.user.health_check.expected_status: expected a status like 200, a range like "
             "\"200-299\", or a list of them, got a mapping"},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    dns_refresh: 100ms\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:18: services.user.dns_refresh: expected a duration of 1s or more, like 30s or 5m, got \"100ms\""},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    dns_refresh: often\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:18: services.user.dns_refresh: expected a positive duration like 250ms, 30s, 15m or 1h, "
             "got \"often\""},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    retries: {attempts: -1}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:25: services.user.retries.attempts: expected a number of retries (0 or more), got -1"},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    retries: {retry_on: [timeout]}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:26: services.user.retries.retry_on[0]: expected connect_failure or a 5xx status code like "
             "502, got \"timeout\""},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    retries: {retry_on: [connect_failures]}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:26: services.user.retries.retry_on[0]: unknown retry condition \"connect_failures\"; did "
             "you mean \"connect_failure\"?"},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    preserve_host: yes\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:20: services.user.preserve_host: expected true or false, got \"yes\" (YAML 1.2 reads "
             "\"yes\" as a string; write true)"},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    max_in_flight: 0\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:20: services.user.max_in_flight: expected a positive integer, got 0"}));

INSTANTIATE_TEST_SUITE_P(
    Routes, ConfigError,
    ::testing::Values(
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - path: /api\n    service: usr\n",
             "gw.yaml:5:14: routes[0].service: unknown service \"usr\"; did you mean \"user\"?"},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - path: /api\n    service: billing\n",
             "gw.yaml:5:14: routes[0].service: unknown service \"billing\"; expected one of: user"},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - path: /api\n",
             "gw.yaml:4:5: routes[0].service: missing; expected the name of a service"},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - service: user\n",
             "gw.yaml:4:5: routes[0]: expected one of path, exact or regex"},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - path: /a\n    exact: /a/b\n    service: user\n",
             "gw.yaml:5:12: routes[0].exact: only one of path, exact or regex may be given; this route already has "
             "path"},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - path: api\n    service: user\n",
             "gw.yaml:4:11: routes[0].path: expected a path starting with /, like /api/users, got \"api\""},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - regex: \"^/a/(\"\n    service: user\n",
             "gw.yaml:4:12: routes[0].regex: invalid regular expression \"^/a/(\": missing ): ^/a/("},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - path: /a\n    methods: [GET, PSOT]\n"
             "    service: user\n",
             "gw.yaml:5:20: routes[0].methods[1]: unknown method \"PSOT\"; did you mean \"POST\"?"},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - path: /a\n    methods: [\"GE T\"]\n"
             "    service: user\n",
             "gw.yaml:5:15: routes[0].methods[0]: expected an HTTP method like GET, got \"GE T\""},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - exact: /a\n    strip_prefix: true\n"
             "    service: user\n",
             "gw.yaml:5:19: routes[0].strip_prefix: strip_prefix applies only to path routes"},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - path: /a\n    host: \"api.*.com\"\n"
             "    service: user\n",
             "gw.yaml:5:11: routes[0].host: expected a host name like api.example.com or *.example.com, "
             "got \"api.*.com\""},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - path: /a\n"
             "    headers: {X-A: {regex: \"[a-\"}}\n    service: user\n",
             "gw.yaml:5:28: routes[0].headers.X-A.regex: invalid regular expression \"[a-\": missing ]: [a-"},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - path: /a\n    service: user\n"
             "    polices: [x]\n",
             "gw.yaml:6:5: routes[0].polices: unknown key \"polices\"; did you mean \"policies\"?"},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\npolicies:\n  per-ip: {type: rate_limit}\n"
             "routes:\n  - path: /a\n    service: user\n    policies: [per_ip]\n",
             "gw.yaml:8:16: routes[0].policies[0]: unknown policy \"per_ip\"; did you mean \"per-ip\"?"},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\npolicies:\n  per-ip: {type: rate_limit}\n"
             "defaults: {policies: [per-ip]}\nroutes:\n  - path: /a\n    service: user\n    policies: [per-ip]\n",
             "gw.yaml:9:16: routes[0].policies[0]: policy \"per-ip\" already runs on every route (from "
             "defaults.policies)"},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - {name: users, path: /a, service: user}\n"
             "  - {name: users, path: /b, service: user}\n",
             "gw.yaml:5:12: routes[1].name: duplicate route name \"users\" (also routes[0])"},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\nroutes: []\n",
             "gw.yaml:3:9: routes: expected at least one route, got an empty list"}));

INSTANTIATE_TEST_SUITE_P(
    Policies, ConfigError,
    ::testing::Values(
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\npolicies:\n  limit:\n    type: rate_limt\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:5:11: policies.limit.type: unknown policy type \"rate_limt\"; did you mean \"rate_limit\"?"},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\npolicies:\n  keys:\n    type: api_key\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:5:11: policies.keys.type: policy type \"api_key\" is not yet supported"},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\npolicies:\n  limit:\n    limit: 5\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:5:5: policies.limit.type: missing; expected a policy type: jwt, rate_limit, require_role, "
             "api_key, cors, ip_filter or security_headers"},
        Case{"services:\n  user: {instances: [\"http://a:1\"]}\npolicies:\n  limit: rate_limit\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:10: policies.limit: expected a mapping with a type, got \"rate_limit\""}));

// ---- TLS: listeners, services, instances -----------------------------------------------------

// A TLS listener whose `tls:` mapping is `body` (lines indented by six spaces, from line 4).
std::string tls_listener(const std::string& body) {
  return with_files("listen:\n  - address: \":8443\"\n    tls:\n" + body) + kMinimal;
}

TEST(ConfigTls, ShorthandAndItsDefaults) {
  const auto& f = test::TestFiles::get();
  Config c = load_ok(tls_listener("      cert: {D}/cert.pem\n      key: {D}/key.pem\n"));
  ASSERT_EQ(c.listeners.size(), 1u);
  const ListenerConfig& l = c.listeners[0];
  EXPECT_EQ(l.port, 8443);
  EXPECT_FALSE(l.h2c);
  ASSERT_TRUE(l.tls);
  const TlsConfig& t = *l.tls;
  ASSERT_EQ(t.certificates.size(), 1u);
  EXPECT_EQ(t.certificates[0].cert, f("cert.pem"));
  EXPECT_EQ(t.certificates[0].key, f("key.pem"));
  EXPECT_EQ(t.certificates[0].mark.line, 4);  // the shorthand's certificate is the tls mapping
  EXPECT_EQ(t.certificates[0].mark.col, 7);
  EXPECT_EQ(t.mark.line, 4);
  EXPECT_EQ(t.mark.col, 7);
  EXPECT_EQ(t.min_version, 12);
  EXPECT_EQ(t.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_FALSE(t.sni_strict);
  EXPECT_EQ(t.client_ca, "");
  EXPECT_EQ(t.client_auth, ClientAuth::None);
  EXPECT_TRUE(t.session_tickets);
  EXPECT_EQ(t.handshake_timeout, 10s);
  EXPECT_EQ(t.reload_check, 30s);
}

TEST(ConfigTls, ShorthandTakesEveryOtherKeyBesideIt) {
  const auto& f = test::TestFiles::get();
  Config c = load_ok(tls_listener(R"(      cert: {D}/cert.pem
      key: {D}/key.pem
      min_version: "1.3"
      alpn: [http/1.1]
      sni_strict: true
      client_ca: {D}/ca.pem
      client_auth: required
      session_tickets: false
      handshake_timeout: 5s
      reload_check: 0
)"));
  ASSERT_TRUE(c.listeners.at(0).tls);
  const TlsConfig& t = *c.listeners[0].tls;
  ASSERT_EQ(t.certificates.size(), 1u);
  EXPECT_EQ(t.certificates[0].cert, f("cert.pem"));
  EXPECT_EQ(t.min_version, 13);
  EXPECT_EQ(t.alpn, std::vector<std::string>{"http/1.1"});
  EXPECT_TRUE(t.sni_strict);
  EXPECT_EQ(t.client_ca, f("ca.pem"));
  EXPECT_EQ(t.client_auth, ClientAuth::Required);
  EXPECT_FALSE(t.session_tickets);
  EXPECT_EQ(t.handshake_timeout, 5s);
  EXPECT_EQ(t.reload_check, 0s);
}

TEST(ConfigTls, FullFormKeepsEachCertificateAndItsPlace) {
  const auto& f = test::TestFiles::get();
  Config c = load_ok(tls_listener(R"(      certificates:
        - {cert: {D}/cert.pem, key: {D}/key.pem}
        - cert: {D}/link.pem
          key: {D}/key2.pem
      min_version: 1.2
      alpn: [http/1.1, h2]
      client_ca: {D}/ca.pem
      client_auth: optional
      reload_check: 250ms
)"));
  ASSERT_TRUE(c.listeners.at(0).tls);
  const TlsConfig& t = *c.listeners[0].tls;
  ASSERT_EQ(t.certificates.size(), 2u);
  EXPECT_EQ(t.certificates[0].cert, f("cert.pem"));
  EXPECT_EQ(t.certificates[0].key, f("key.pem"));
  EXPECT_EQ(t.certificates[0].mark.line, 5);
  EXPECT_EQ(t.certificates[0].mark.col, 11);
  EXPECT_EQ(t.certificates[1].cert, f("link.pem"));  // a symlink to a file, as Kubernetes mounts
  EXPECT_EQ(t.certificates[1].key, f("key2.pem"));
  EXPECT_EQ(t.certificates[1].mark.line, 6);
  EXPECT_EQ(t.certificates[1].mark.col, 11);
  EXPECT_EQ(t.min_version, 12);
  EXPECT_EQ(t.alpn, (std::vector<std::string>{"http/1.1", "h2"}));
  EXPECT_EQ(t.client_auth, ClientAuth::Optional);
  EXPECT_EQ(t.reload_check, 250ms);
  // Defaults of the keys not written.
  EXPECT_FALSE(t.sni_strict);
  EXPECT_TRUE(t.session_tickets);
  EXPECT_EQ(t.handshake_timeout, 10s);
}

TEST(ConfigTls, MinVersionAsStringOrNumber) {
  for (auto [text, version] : {std::pair{"\"1.2\"", 12}, std::pair{"1.2", 12}, std::pair{"'1.3'", 13},
                               std::pair{"1.3", 13}}) {
    Config c = load_ok(tls_listener(std::string("      cert: {D}/cert.pem\n      key: {D}/key.pem\n      min_version: ") +
                                     text + "\n"));
    ASSERT_TRUE(c.listeners.at(0).tls) << text;
    EXPECT_EQ(c.listeners[0].tls->min_version, version) << text;
  }
}

TEST(ConfigTls, ListenerMapWithoutTlsAndH2cOff) {
  Config c = load_ok(std::string("listen:\n  - {address: \":8080\", h2c: false}\n  - \":8081\"\n") + kMinimal);
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_FALSE(c.listeners[0].tls);
  EXPECT_FALSE(c.listeners[0].h2c);
  EXPECT_FALSE(c.listeners[1].tls);
}

TEST(ConfigHttp2, H2cListener) {
  Config c = load_ok(std::string("listen:\n  - {address: \":8080\", h2c: true}\n") + kMinimal);
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_TRUE(c.listeners[0].h2c);
}

TEST(ConfigHttp2, LimitsDefaultsAndValues) {
  Config d = load_ok(kMinimal);
  EXPECT_EQ(d.limits.http2.max_concurrent_streams, 100u);
  EXPECT_EQ(d.limits.http2.stream_window, 64u * 1024);
  EXPECT_EQ(d.limits.http2.connection_window, 1024u * 1024);
  EXPECT_EQ(d.limits.http2.idle_timeout, std::chrono::seconds(60));
  Config c = load_ok(std::string(kMinimal) +
                     "limits:\n  http2: {max_concurrent_streams: 8, stream_window: 16KiB, connection_window: 2MiB, "
                     "idle_timeout: 5s}\n");
  EXPECT_EQ(c.limits.http2.max_concurrent_streams, 8u);
  EXPECT_EQ(c.limits.http2.stream_window, 16u * 1024);
  EXPECT_EQ(c.limits.http2.connection_window, 2u * 1024 * 1024);
  EXPECT_EQ(c.limits.http2.idle_timeout, std::chrono::seconds(5));
}

TEST(ConfigHttp2, BadLimitsAreReported) {
  EXPECT_EQ(only_error(std::string(kMinimal) + "limits:\n  http2: {max_concurrent_streams: 0}\n"),
            "gw.yaml:8:35: limits.http2.max_concurrent_streams: expected a positive integer, got 0");
  EXPECT_EQ(only_error(std::string(kMinimal) + "limits:\n  http2: {connection_window: 1KiB}\n"),
            "gw.yaml:8:30: limits.http2.connection_window: expected a window of 64KiB-1 to 2GiB-1 bytes, got 1024");
  EXPECT_EQ(only_error(std::string(kMinimal) + "limits:\n  http2: {stream_window: 4GiB}\n"),
            "gw.yaml:8:26: limits.http2.stream_window: expected a window of 1 to 2GiB-1 bytes, got 4294967296");
  EXPECT_EQ(only_error(std::string(kMinimal) + "limits:\n  http2: {max_streams: 10}\n"),
            "gw.yaml:8:11: limits.http2.max_streams: unknown key \"max_streams\"; expected one of: "
            "max_concurrent_streams, stream_window, connection_window, idle_timeout");
}

class TlsError : public ::testing::TestWithParam<Case> {};

TEST_P(TlsError, IsReportedWithPlacePathAndMessage) {
  const std::string text = GetParam().yaml;
  const std::string yaml = text.starts_with("listen:")                                ? with_files(text) + kMinimal
                           : text.starts_with("services:") || text.starts_with("redis:") ? with_files(text)
                                                                                      : tls_listener(text);
  EXPECT_EQ(only_error(yaml), with_files(GetParam().error)) << yaml;
}

// Lines 1-3 are `listen:`, `- address: ":8443"` and `tls:`; the cases' lines start at 4.
INSTANTIATE_TEST_SUITE_P(
    Listener, TlsError,
    ::testing::Values(
        // certificates: the two forms and their files
        Case{"      cert: {D}/cert.pem\n",
             "gw.yaml:4:7: listen[0].tls.key: missing; expected a PEM private key file"},
        Case{"      key: {D}/key.pem\n",
             "gw.yaml:4:7: listen[0].tls.cert: missing; expected a PEM certificate file (the chain may follow it)"},
        Case{"      sni_strict: true\n",
             "gw.yaml:4:7: listen[0].tls: missing cert and key; expected {cert, key} file paths or certificates: "
             "[{cert, key}, ...]"},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      certificates: [{cert: {D}/cert2.pem, key: {D}/key2.pem}]\n",
             "gw.yaml:4:13: listen[0].tls.cert: cert and key beside certificates: give either the shorthand {cert, "
             "key} or certificates, not both"},
        Case{"      certificates: [{cert: {D}/cert2.pem, key: {D}/key2.pem}]\n      key: {D}/key.pem\n",
             "gw.yaml:5:12: listen[0].tls.key: key beside certificates: give either the shorthand {cert, key} or "
             "certificates, not both"},
        Case{"      certificates: []\n",
             "gw.yaml:4:21: listen[0].tls.certificates: expected at least one certificate, got an empty list"},
        Case{"      certificates: {D}/cert.pem\n",
             "gw.yaml:4:21: listen[0].tls.certificates: expected a list of {cert, key}, got \"{D}/cert.pem\""},
        Case{"      certificates:\n        - {cert: {D}/cert.pem, key: {D}/key.pem}\n        - cert: {D}/cert2.pem\n",
             "gw.yaml:6:11: listen[0].tls.certificates[1].key: missing; expected a PEM private key file"},
        Case{"      certificates:\n        - {D}/cert.pem\n",
             "gw.yaml:5:11: listen[0].tls.certificates[0]: expected a certificate {cert, key}, got \"{D}/cert.pem\""},
        Case{"      certificates:\n        - key: {D}/key.pem\n          cert: {D}/missing.pem\n",
             "gw.yaml:6:17: listen[0].tls.certificates[0].cert: cannot read \"{D}/missing.pem\": No such file or "
             "directory"},
        Case{"      certificates:\n        - cert: {D}/cert.pem\n          key: {D}/keys.pem\n"
             "        - {cert: {D}/cert2.pem, key: {D}/key2.pem}\n",
             "gw.yaml:6:16: listen[0].tls.certificates[0].key: cannot read \"{D}/keys.pem\": No such file or directory"},
        Case{"      cert: {D}/dir\n      key: {D}/key.pem\n",
             "gw.yaml:4:13: listen[0].tls.cert: cannot read \"{D}/dir\": it is a directory"},
        Case{"      cert: {D}/dangling.pem\n      key: {D}/key.pem\n",
             "gw.yaml:4:13: listen[0].tls.cert: cannot read \"{D}/dangling.pem\": No such file or directory"},
        Case{"      cert: {D}/cert.pem\n      key: {D}/fifo.pem\n",
             "gw.yaml:5:12: listen[0].tls.key: cannot read \"{D}/fifo.pem\": it is not a regular file"},
        Case{"      cert: \"\"\n      key: {D}/key.pem\n",
             "gw.yaml:4:13: listen[0].tls.cert: expected a PEM certificate file (the chain may follow it), got \"\""},
        Case{"      cert: [{D}/cert.pem]\n      key: {D}/key.pem\n",
             "gw.yaml:4:13: listen[0].tls.cert: expected a PEM certificate file (the chain may follow it), got a "
             "list"},
        // the other keys
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      min_version: \"1.1\"\n",
             "gw.yaml:6:20: listen[0].tls.min_version: TLS 1.1 is never offered; expected \"1.2\" or \"1.3\""},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      min_version: 1.0\n",
             "gw.yaml:6:20: listen[0].tls.min_version: TLS 1.0 is never offered; expected \"1.2\" or \"1.3\""},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      min_version: TLSv1.3\n",
             "gw.yaml:6:20: listen[0].tls.min_version: expected \"1.2\" or \"1.3\", got \"TLSv1.3\""},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      min_version: 1.4\n",
             "gw.yaml:6:20: listen[0].tls.min_version: expected \"1.2\" or \"1.3\", got \"1.4\""},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      alpn: []\n",
             "gw.yaml:6:13: listen[0].tls.alpn: expected at least one of h2 and http/1.1, got an empty list"},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      alpn: h2\n",
             "gw.yaml:6:13: listen[0].tls.alpn: expected a list of h2 and http/1.1, like [h2, http/1.1], got \"h2\""},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      alpn: [http/1.1, http/1.0]\n",
             "gw.yaml:6:24: listen[0].tls.alpn[1]: unknown ALPN protocol \"http/1.0\"; did you mean \"http/1.1\"?"},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      alpn: [http/1.1, spdy/3]\n",
             "gw.yaml:6:24: listen[0].tls.alpn[1]: unknown ALPN protocol \"spdy/3\"; expected one of: h2, http/1.1"},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      alpn: [h2, http/1.1, h2]\n",
             "gw.yaml:6:28: listen[0].tls.alpn[2]: \"h2\" is listed twice"},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      sni_strict: yes\n",
             "gw.yaml:6:19: listen[0].tls.sni_strict: expected true or false, got \"yes\" (YAML 1.2 reads \"yes\" as "
             "a string; write true)"},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      session_tickets: 0\n",
             "gw.yaml:6:24: listen[0].tls.session_tickets: expected true or false, got 0"},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      client_auth: required\n",
             "gw.yaml:4:7: listen[0].tls.client_ca: missing; expected a PEM file of the CAs that sign client "
             "certificates (client_auth: required needs it)"},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      client_auth: optinal\n      client_ca: {D}/ca.pem\n",
             "gw.yaml:6:20: listen[0].tls.client_auth: unknown client_auth \"optinal\"; did you mean \"optional\"?"},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      client_ca: {D}/ca.pem\n",
             "gw.yaml:6:18: listen[0].tls.client_ca: client_ca is only used with client_auth optional or required"},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      client_auth: none\n      client_ca: {D}/ca.pem\n",
             "gw.yaml:7:18: listen[0].tls.client_ca: client_ca is only used with client_auth optional or required"},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      client_auth: required\n      client_ca: {D}/cas.pem\n",
             "gw.yaml:7:18: listen[0].tls.client_ca: cannot read \"{D}/cas.pem\": No such file or directory"},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      handshake_timeout: 0s\n",
             "gw.yaml:6:26: listen[0].tls.handshake_timeout: expected a positive duration like 250ms, 30s, 15m or 1h, "
             "got \"0s\""},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      reload_check: often\n",
             "gw.yaml:6:21: listen[0].tls.reload_check: expected a duration like 250ms, 30s, 15m or 1h, got "
             "\"often\""},
        Case{"      cert: {D}/cert.pem\n      key: {D}/key.pem\n      sni_stric: true\n",
             "gw.yaml:6:7: listen[0].tls.sni_stric: unknown key \"sni_stric\"; did you mean \"sni_strict\"?"},
        // the listener around it
        Case{"listen:\n  - address: \":8443\"\n    tls: {D}/cert.pem\n",
             "gw.yaml:3:10: listen[0].tls: expected a mapping like {cert: server.pem, key: server.key} or "
             "{certificates: [{cert, key}, ...]}, got \"{D}/cert.pem\""},
        Case{"listen:\n  - {address: \":8080\", h2c: yes}\n",
             "gw.yaml:2:29: listen[0].h2c: expected true or false, got \"yes\" (YAML 1.2 reads \"yes\" as a string; "
             "write true)"},
        Case{"listen:\n  - address: \":8443\"\n    h2c: true\n    tls: {cert: {D}/cert.pem, key: {D}/key.pem}\n",
             "gw.yaml:3:10: listen[0].h2c: h2c applies only to plain listeners; a TLS listener offers HTTP/2 "
             "through alpn"},
        Case{"listen:\n  - {address: \":8080\", tsl: {}}\n",
             "gw.yaml:2:24: listen[0].tsl: unknown key \"tsl\"; did you mean \"tls\"?"}));

TEST(ConfigTls, EveryBadFileIsReported) {
  // One error per value, in file order: nothing stops at the first.
  auto errors = errors_of(tls_listener(R"(      certificates:
        - cert: {D}/missing.pem
          key: {D}/key.pem
        - cert: {D}/cert.pem
          key: {D}/dir
      client_auth: required
      client_ca: {D}/fifo.pem
)"));
  EXPECT_EQ(errors, (std::vector<std::string>{
                        with_files("gw.yaml:5:17: listen[0].tls.certificates[0].cert: cannot read "
                                   "\"{D}/missing.pem\": No such file or directory"),
                        with_files("gw.yaml:8:16: listen[0].tls.certificates[1].key: cannot read \"{D}/dir\": it is a "
                                   "directory"),
                        with_files("gw.yaml:10:18: listen[0].tls.client_ca: cannot read \"{D}/fifo.pem\": it is not a "
                                   "regular file"),
                    }));
}

constexpr const char* kTlsService = R"(services:
  user:
    instances: ["https://api.internal", "https://10.0.0.7:8443", {url: "http://10.0.0.8:3001", weight: 2}]
)";

TEST(ConfigTls, HttpsInstancesAndServiceTls) {
  const auto& f = test::TestFiles::get();
  Config c = load_ok(with_files(std::string(kTlsService) + R"(    protocol: http1
    timeouts: {connect: 1s, response: 10s, idle: 30s}
    tls:
      ca: {D}/ca.pem
      verify: false
      server_name: api.internal
      client_cert: {D}/client.pem
      client_key: {D}/client.key
routes: [{path: /, service: user}]
)"));
  const ServiceConfig& s = c.services.at(0);
  ASSERT_EQ(s.instances.size(), 3u);
  EXPECT_EQ(s.instances[0].host, "api.internal");
  EXPECT_EQ(s.instances[0].port, 443);
  EXPECT_TRUE(s.instances[0].tls);
  EXPECT_FALSE(s.instances[0].h2c);
  EXPECT_EQ(s.instances[1].host, "10.0.0.7");
  EXPECT_EQ(s.instances[1].port, 8443);
  EXPECT_TRUE(s.instances[1].tls);
  EXPECT_EQ(s.instances[2].port, 3001);
  EXPECT_FALSE(s.instances[2].tls);
  EXPECT_EQ(s.instances[2].weight, 2u);
  EXPECT_EQ(s.protocol, UpstreamProtocol::Http1);
  EXPECT_EQ(s.connect_timeout, 1s);
  EXPECT_EQ(s.response_timeout, 10s);
  EXPECT_EQ(s.idle_timeout, 30s);
  EXPECT_EQ(s.tls.ca, f("ca.pem"));
  EXPECT_FALSE(s.tls.verify);
  EXPECT_EQ(s.tls.server_name, "api.internal");
  EXPECT_EQ(s.tls.client_cert, f("client.pem"));
  EXPECT_EQ(s.tls.client_key, f("client.key"));
  EXPECT_EQ(s.tls.mark.line, 7);
  EXPECT_EQ(s.tls.mark.col, 7);
}

TEST(ConfigTls, ServiceDefaults) {
  Config c = load_ok(std::string(kTlsService) + "routes: [{path: /, service: user}]\n");
  const ServiceConfig& s = c.services.at(0);
  EXPECT_EQ(s.protocol, UpstreamProtocol::Http1);
  EXPECT_EQ(s.idle_timeout, 5min);
  EXPECT_EQ(s.tls.ca, "");  // the system's CAs
  EXPECT_TRUE(s.tls.verify);
  EXPECT_EQ(s.tls.server_name, "");
  EXPECT_EQ(s.tls.client_cert, "");
  EXPECT_EQ(s.tls.client_key, "");
  // `tls:` on a service with no https instance yet (one may register through the admin API).
  c = load_ok(with_files("services:\n  user:\n    instances: [\"http://a:1\"]\n    tls: {ca: {D}/ca.pem}\n"
                         "routes: [{path: /, service: user}]\n"));
  EXPECT_EQ(c.services.at(0).tls.ca, test::TestFiles::get()("ca.pem"));
  EXPECT_TRUE(c.services[0].tls.verify);
}

TEST(ConfigTls, ParseInstance) {
  InstanceConfig inst;
  std::string why;
  EXPECT_EQ(parse_instance("HTTPS://Api.Internal", inst, why), InstanceUrl::Ok);
  EXPECT_EQ(inst.host, "Api.Internal");
  EXPECT_EQ(inst.port, 443);
  EXPECT_TRUE(inst.tls);
  EXPECT_FALSE(inst.h2c);
  EXPECT_EQ(parse_instance("https://[::1]:9443/", inst, why), InstanceUrl::Ok);
  EXPECT_EQ(inst.host, "::1");
  EXPECT_EQ(inst.port, 9443);
  EXPECT_TRUE(inst.tls);
  InstanceConfig plain;
  EXPECT_EQ(parse_instance("http://a", plain, why), InstanceUrl::Ok);
  EXPECT_EQ(plain.port, 80);
  EXPECT_FALSE(plain.tls);
  EXPECT_FALSE(plain.h2c);
  InstanceConfig h2c;
  EXPECT_EQ(parse_instance("h2c://grpc.internal:50051", h2c, why), InstanceUrl::Ok);
  EXPECT_EQ(h2c.url, "h2c://grpc.internal:50051");
  EXPECT_EQ(h2c.host, "grpc.internal");
  EXPECT_TRUE(h2c.h2c);
  EXPECT_FALSE(h2c.tls);
  EXPECT_EQ(h2c.port, 50051);
  InstanceConfig h2c_default;
  EXPECT_EQ(parse_instance("H2C://grpc.internal", h2c_default, why), InstanceUrl::Ok);
  EXPECT_TRUE(h2c_default.h2c);
  EXPECT_EQ(h2c_default.port, 80);
  EXPECT_EQ(parse_instance("h2c://grpc.internal/svc", inst, why), InstanceUrl::HasPath);
  EXPECT_EQ(parse_instance("h2://a:1", inst, why), InstanceUrl::Invalid);
  EXPECT_EQ(why, "the scheme is not http://, https:// or h2c://");
  EXPECT_EQ(parse_instance("https://user:pw@a", inst, why), InstanceUrl::Invalid);
  EXPECT_EQ(why, "an instance URL has no user or password");
  EXPECT_EQ(parse_instance("https://a/api", inst, why), InstanceUrl::HasPath);
  EXPECT_EQ(parse_instance("ws://a:1", inst, why), InstanceUrl::Invalid);
  EXPECT_EQ(why, "the scheme is not http://, https:// or h2c://");
}

// HTTP/2 to services: protocol h2 (TLS, ALPN h2), h2c, and h2c:// instances (SPEC §2, §7).
TEST(ConfigHttp2, ProtocolH2TakesHttpsInstancesWithTheirTls) {
  Config c = load_ok(with_files(R"(services:
  api:
    instances: ["https://api.internal", {url: "https://10.0.0.7:8443", weight: 3}]
    protocol: h2
    tls: {ca: {D}/ca.pem, verify: false, server_name: api.internal}
routes: [{path: /, service: api}]
)"));
  const ServiceConfig& s = c.services.at(0);
  EXPECT_EQ(s.protocol, UpstreamProtocol::H2);
  ASSERT_EQ(s.instances.size(), 2u);
  EXPECT_TRUE(s.instances[0].tls);
  EXPECT_EQ(s.instances[1].port, 8443);
  EXPECT_EQ(s.instances[1].weight, 3u);
  EXPECT_EQ(s.tls.ca, test::TestFiles::get()("ca.pem"));
  EXPECT_FALSE(s.tls.verify);
  EXPECT_EQ(s.tls.server_name, "api.internal");
  for (const auto& i : s.instances) EXPECT_TRUE(speaks_http2(s, i)) << i.url;
  EXPECT_FALSE(c.routes.at(0).websocket);  // WebSocket needs HTTP/1.1 to the service
}

TEST(ConfigHttp2, ProtocolH2cTakesHttpAndH2cInstances) {
  Config c = load_ok(R"(services:
  grpc:
    instances: ["http://10.0.0.5:50051", "h2c://10.0.0.6:50051", "h2c://grpc.internal"]
    protocol: h2c
routes: [{path: /, service: grpc, websocket: false}]
)");
  const ServiceConfig& s = c.services.at(0);
  EXPECT_EQ(s.protocol, UpstreamProtocol::H2c);
  ASSERT_EQ(s.instances.size(), 3u);
  EXPECT_FALSE(s.instances[0].h2c);
  EXPECT_TRUE(s.instances[1].h2c);
  EXPECT_EQ(s.instances[2].port, 80);
  for (const auto& i : s.instances) {
    EXPECT_FALSE(i.tls) << i.url;
    EXPECT_TRUE(speaks_http2(s, i)) << i.url;
  }
  EXPECT_FALSE(c.routes.at(0).websocket);
}

TEST(ConfigHttp2, H2cInstancesBesideOthersUnderHttp1KeepTheirOwnProtocol) {
  Config c = load_ok(R"(services:
  mixed:
    instances: ["h2c://10.0.0.5:50051", "https://api.internal", "http://10.0.0.8:3001"]
  plain:
    instances: ["http://10.0.0.9:3001"]
routes:
  - {path: /mixed, service: mixed}
  - {path: /plain, service: plain}
)");
  const ServiceConfig& s = c.services.at(0);
  EXPECT_EQ(s.protocol, UpstreamProtocol::Http1);
  ASSERT_EQ(s.instances.size(), 3u);
  EXPECT_TRUE(speaks_http2(s, s.instances[0]));
  EXPECT_FALSE(speaks_http2(s, s.instances[1]));
  EXPECT_FALSE(speaks_http2(s, s.instances[2]));
  EXPECT_FALSE(speaks_http2(c.services.at(1), c.services.at(1).instances.at(0)));
  // One HTTP/2 instance is enough to keep WebSocket off the route; other routes keep the default.
  EXPECT_FALSE(c.routes.at(0).websocket);
  EXPECT_TRUE(c.routes.at(1).websocket);
}

TEST(ConfigHttp2, InstanceProtocolError) {
  ServiceConfig s;
  InstanceConfig http, https, h2c;
  std::string why;
  ASSERT_EQ(parse_instance("http://a:1", http, why), InstanceUrl::Ok);
  ASSERT_EQ(parse_instance("https://a", https, why), InstanceUrl::Ok);
  ASSERT_EQ(parse_instance("h2c://a:2", h2c, why), InstanceUrl::Ok);
  for (const InstanceConfig* i : {&http, &https, &h2c}) EXPECT_EQ(instance_protocol_error(s, *i), "") << i->url;
  s.protocol = UpstreamProtocol::H2;
  EXPECT_EQ(instance_protocol_error(s, https), "");
  EXPECT_NE(instance_protocol_error(s, http), "");
  EXPECT_NE(instance_protocol_error(s, h2c), "");
  s.protocol = UpstreamProtocol::H2c;
  EXPECT_EQ(instance_protocol_error(s, http), "");
  EXPECT_EQ(instance_protocol_error(s, h2c), "");
  EXPECT_NE(instance_protocol_error(s, https), "");
}

TEST(ConfigHttp2, RegistrationError) {
  Config c = load_ok(R"(services:
  user: {instances: ["http://10.0.0.5:3001"]}
  quiet: {instances: ["http://10.0.0.6:3001"]}
  secure: {instances: ["https://10.0.0.7"], protocol: h2}
routes:
  - {path: /users, service: user}
  - {path: /quiet, service: quiet, websocket: false}
  - {name: secure, path: /secure, service: secure}
)");
  InstanceConfig http, https, h2c;
  std::string why;
  ASSERT_EQ(parse_instance("http://10.0.0.8:1", http, why), InstanceUrl::Ok);
  ASSERT_EQ(parse_instance("https://10.0.0.8:2", https, why), InstanceUrl::Ok);
  ASSERT_EQ(parse_instance("h2c://10.0.0.8:3", h2c, why), InstanceUrl::Ok);
  const ServiceConfig& user = *c.find_service("user");
  const ServiceConfig& quiet = *c.find_service("quiet");
  const ServiceConfig& secure = *c.find_service("secure");
  EXPECT_EQ(registration_error(c, user, http), "");
  EXPECT_EQ(registration_error(c, user, https), "");
  EXPECT_EQ(registration_error(c, user, h2c),
            "h2c://10.0.0.8:3 speaks HTTP/2, and route \"/users\" lets WebSocket upgrades through to \"user\" (they "
            "need HTTP/1.1); set websocket: false on the route first");
  EXPECT_EQ(registration_error(c, quiet, h2c), "");
  EXPECT_EQ(registration_error(c, secure, https), "");  // its route has WebSocket off by default
  EXPECT_EQ(registration_error(c, secure, http), instance_protocol_error(secure, http));
  EXPECT_NE(registration_error(c, secure, http), "");
}

TEST(ConfigHttp2, EveryMismatchedInstanceIsReported) {
  EXPECT_EQ(errors_of(R"(services:
  api:
    instances: ["https://a", "http://b:1", {url: "h2c://c:2", weight: 2}]
    protocol: h2
  grpc:
    protocol: h2c
    instances: ["http://d:1", "https://e"]
routes:
  - {path: /api, service: api}
  - {path: /grpc, service: grpc}
)"),
            (std::vector<std::string>{
                "gw.yaml:3:30: services.api.instances[1]: \"http://b:1\" is a cleartext http:// instance, but "
                "protocol h2 is HTTP/2 over TLS (ALPN h2) and needs https:// instances; for cleartext HTTP/2 write "
                "protocol: h2c",
                "gw.yaml:3:50: services.api.instances[2].url: \"h2c://c:2\" is cleartext HTTP/2, but protocol h2 is "
                "HTTP/2 over TLS (ALPN h2) and needs https:// instances; for cleartext HTTP/2 write protocol: h2c",
                "gw.yaml:7:31: services.grpc.instances[1]: \"https://e\" is an https:// instance, but protocol h2c "
                "is cleartext HTTP/2 and needs http:// or h2c:// instances; for HTTP/2 over TLS write protocol: h2"}));
}

INSTANTIATE_TEST_SUITE_P(
    Http2, ConfigError,
    ::testing::Values(
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    protocol: h2\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:3:17: services.user.instances[0]: \"http://a:1\" is a cleartext http:// instance, but protocol "
             "h2 is HTTP/2 over TLS (ALPN h2) and needs https:// instances; for cleartext HTTP/2 write protocol: h2c"},
        Case{"services:\n  user:\n    instances: [\"https://a\"]\n    protocol: h2c\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:3:17: services.user.instances[0]: \"https://a\" is an https:// instance, but protocol h2c is "
             "cleartext HTTP/2 and needs http:// or h2c:// instances; for HTTP/2 over TLS write protocol: h2"},
        Case{"services:\n  user:\n    instances: [\"h2c://a\", \"http://a:80\"]\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:3:28: services.user.instances[1]: duplicate instance \"http://a:80\"; use weight to send it a "
             "larger share"},
        Case{"services:\n  user:\n    instances: [\"h2c://a:1/v1\"]\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:3:17: services.user.instances[0]: expected a URL like http://10.0.0.5:3001 or "
             "https://api.internal with no path, got \"h2c://a:1/v1\""},
        Case{"services:\n  user:\n    instances: [\"https://a\"]\n    protocol: h2\n"
             "routes: [{path: /, service: user, websocket: true}]\n",
             "gw.yaml:5:46: routes[0].websocket: WebSocket needs HTTP/1.1 to the service, and service \"user\" "
             "speaks HTTP/2 (protocol h2); write websocket: false or leave it out"},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    protocol: h2c\n"
             "routes: [{path: /, service: user, websocket: true}]\n",
             "gw.yaml:5:46: routes[0].websocket: WebSocket needs HTTP/1.1 to the service, and service \"user\" "
             "speaks HTTP/2 (protocol h2c); write websocket: false or leave it out"},
        Case{"services:\n  user:\n    instances: [\"http://a:1\", \"h2c://b:2\"]\n"
             "routes: [{path: /, service: user, websocket: true}]\n",
             "gw.yaml:4:46: routes[0].websocket: WebSocket needs HTTP/1.1 to the service, and service \"user\" "
             "speaks HTTP/2 (instance \"h2c://b:2\"); write websocket: false or leave it out"}));

TEST(ConfigTls, RedissIsAccepted) {
  Config c = load_ok(std::string("redis: \"rediss://:pw@cache.internal:6380/1\"\n") + kMinimal);
  EXPECT_EQ(c.redis, "rediss://:pw@cache.internal:6380/1");
}

// Lines 1-3: `services:`, `user:`, one https instance; the cases' lines start at 4.
INSTANTIATE_TEST_SUITE_P(
    Service, TlsError,
    ::testing::Values(
        Case{"services:\n  user:\n    instances: [\"https://a\"]\n    tls:\n      client_cert: {D}/client.pem\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:5:7: services.user.tls.client_key: missing; expected a PEM private key file (client_cert needs "
             "its key)"},
        Case{"services:\n  user:\n    instances: [\"https://a\"]\n    tls:\n      client_key: {D}/client.key\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:5:7: services.user.tls.client_cert: missing; expected a PEM certificate file (client_key needs "
             "its certificate)"},
        Case{"services:\n  user:\n    instances: [\"https://a\"]\n    tls:\n      client_cert: {D}/client.pem\n"
             "      client_key: {D}/dir\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:6:19: services.user.tls.client_key: cannot read \"{D}/dir\": it is a directory"},
        Case{"services:\n  user:\n    instances: [\"https://a\"]\n    tls: {ca: {D}/nope.pem}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:15: services.user.tls.ca: cannot read \"{D}/nope.pem\": No such file or directory"},
        Case{"services:\n  user:\n    instances: [\"https://a\"]\n    tls: {ca: \"\"}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:15: services.user.tls.ca: expected a PEM file of the CAs that sign the service's "
             "certificates, got \"\""},
        Case{"services:\n  user:\n    instances: [\"https://a\"]\n    tls: {server_name: 10.0.0.5}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:24: services.user.tls.server_name: expected a DNS name like billing.internal, got \"10.0.0.5\""},
        Case{"services:\n  user:\n    instances: [\"https://a\"]\n    tls: {server_name: \"*.internal\"}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:24: services.user.tls.server_name: expected a DNS name like billing.internal, got "
             "\"*.internal\""},
        Case{"services:\n  user:\n    instances: [\"https://a\"]\n    tls: {verify: no}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:19: services.user.tls.verify: expected true or false, got \"no\" (YAML 1.2 reads \"no\" as a "
             "string; write false)"},
        Case{"services:\n  user:\n    instances: [\"https://a\"]\n    tls: {server: a.internal}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:11: services.user.tls.server: unknown key \"server\"; did you mean \"server_name\"?"},
        Case{"services:\n  user:\n    instances: [\"https://a\"]\n    tls: true\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:4:10: services.user.tls: expected a mapping like {ca, verify, server_name, client_cert, "
             "client_key}, got true"},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    protocol: grpc\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:4:15: services.user.protocol: expected one of http1, h2 or h2c, got \"grpc\""},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    timeouts: {idle: 0s}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:22: services.user.timeouts.idle: expected a positive duration like 250ms, 30s, 15m or 1h, "
             "got \"0s\""},
        Case{"services:\n  user:\n    instances: [\"http://a:1\"]\n    timeouts: {idel: 1m}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:4:16: services.user.timeouts.idel: unknown key \"idel\"; did you mean \"idle\"?"},
        Case{"services:\n  user:\n    instances: [\"https://a:0\"]\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:3:17: services.user.instances[0]: expected a URL like http://10.0.0.5:3001 or "
             "https://api.internal, got \"https://a:0\": the port must be a number from 1 to 65535"},
        Case{"services:\n  user:\n    instances: [\"https://a\", \"http://a:443\"]\nroutes: [{path: /, service: user}]\n",
             "gw.yaml:3:30: services.user.instances[1]: duplicate instance \"http://a:443\"; use weight to send it a "
             "larger share"},
        Case{"redis: \"rediss://cache:6380/x\"\nservices: {user: {instances: [\"http://a:1\"]}}\n"
             "routes: [{path: /, service: user}]\n",
             "gw.yaml:1:8: redis: expected a URL like redis://127.0.0.1:6379 or redis://user:pass@host:6379/0 "
             "(rediss:// for TLS), got \"rediss://cache:6380/x\": the database after the / must be a number"}));

TEST(ConfigLoader, MisspeltTopLevelKey) {
  EXPECT_EQ(errors_of("servces: {}\nroutes: [{path: /, service: user}]\n"),
            (std::vector<std::string>{
                "gw.yaml:1:1: servces: unknown key \"servces\"; did you mean \"services\"?",
                "gw.yaml:1:1: services: missing; expected a mapping of service name to {instances: [...]}",
                "gw.yaml:2:29: routes[0].service: unknown service \"user\"",
            }));
}

// Found by fuzz/config_fuzz: an empty key at the top level was reported with an empty path
// ("gw.yaml:8:1: : unknown key ...").
TEST(ConfigLoader, EmptyKeyHasAPath) {
  const std::string expected = "one of: listen, admin, workers, redis, trusted_proxies, limits, health_endpoint, "
                               "access_log, log, services, policies, defaults, routes";
  EXPECT_EQ(errors_of(std::string(kMinimal) + "\"\": 1\n"),
            std::vector<std::string>{"gw.yaml:7:1: \"\": unknown key \"\"; expected " + expected});
  EXPECT_EQ(errors_of("services:\n  user:\n    instances: [\"http://a:1\"]\n    \"\": x\nroutes: [{path: /, service: user}]\n"),
            std::vector<std::string>{"gw.yaml:4:5: services.user.\"\": unknown key \"\"; expected one of: instances, "
                                     "load_balancing, hash_on, health_check, timeouts, retries, protocol, tls, "
                                     "preserve_host, max_in_flight, dns_refresh"});
}

TEST(ConfigLoader, EmptyServices) {
  EXPECT_EQ(errors_of("services: {}\nroutes: [{path: /, service: user}]\n"),
            (std::vector<std::string>{
                "gw.yaml:1:11: services: expected at least one service, got an empty mapping",
                "gw.yaml:2:29: routes[0].service: unknown service \"user\"",
            }));
}

TEST(ConfigLoader, MisspeltServiceKey) {
  EXPECT_EQ(errors_of("services:\n  user:\n    instance: [\"http://a:1\"]\nroutes: [{path: /, service: user}]\n"),
            (std::vector<std::string>{
                "gw.yaml:3:5: services.user.instance: unknown key \"instance\"; did you mean \"instances\"?",
                "gw.yaml:3:5: services.user.instances: missing; expected a list of URLs like http://10.0.0.5:3001 or "
                "https://api.internal",
            }));
}

TEST(ConfigLoader, DuplicateKey) {
  EXPECT_EQ(errors_of(std::string(kMinimal) + "workers: 2\nworkers: 3\n"),
            std::vector<std::string>{"gw.yaml:8:1: workers: duplicate key \"workers\""});
}

TEST(ConfigLoader, AutoWorkersAndAnyPort) {
  Config c = load_ok(std::string(kMinimal) + "workers: auto\nlisten: \"127.0.0.1:0\"\nhealth_endpoint: /healthz\n");
  EXPECT_EQ(c.workers, 0u);
  EXPECT_EQ(c.listeners[0].host, "127.0.0.1");
  EXPECT_EQ(c.listeners[0].port, 0);
  EXPECT_EQ(c.health_endpoint, "/healthz");
}

TEST(ConfigLoader, BareNumberDurationIsSeconds) {
  Config c = load_ok("services:\n  user:\n    instances: [\"http://a:1\"]\n    timeouts: {connect: 2}\n" +
                     std::string(kRoutes));
  EXPECT_EQ(c.services[0].connect_timeout, 2s);
}

// ---- booleans -------------------------------------------------------------------------------

// YAML 1.1's booleans are text in YAML 1.2: every boolean key refuses them the same way, with
// the word to write instead (policies' booleans are tested with the same words and message).
TEST(ConfigLoader, EveryBooleanRefusesYaml11Words) {
  const std::vector<std::pair<std::string, std::string>> words = {
      {"yes", "true"}, {"No", "false"}, {"on", "true"},   {"OFF", "false"},
      {"True", "true"}, {"FALSE", "false"}, {"y", "true"}, {"N", "false"}};
  // {config with the word at WORD, the key's path}
  const std::vector<std::pair<std::string, std::string>> keys = {
      {"services:\n  user:\n    instances: [\"http://a:1\"]\n    preserve_host: WORD\n"
       "routes:\n  - path: /a\n    service: user\n",
       "services.user.preserve_host"},
      {"services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - path: /a\n    service: user\n"
       "    strip_prefix: WORD\n",
       "routes[0].strip_prefix"},
      {"services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - path: /a\n    service: user\n"
       "    websocket: WORD\n",
       "routes[0].websocket"},
  };
  for (const auto& [yaml, path] : keys) {
    for (const auto& [word, write] : words) {
      std::string text = yaml;
      text.replace(text.find("WORD"), 4, word);
      LoadResult r = load_string(text, "gw.yaml", test_catalog());
      ASSERT_EQ(r.errors.size(), 1u) << text;
      EXPECT_EQ(r.errors[0].path, path);
      EXPECT_EQ(r.errors[0].message, "expected true or false, got \"" + word + "\" (YAML 1.2 reads \"" + word +
                                         "\" as a string; write " + write + ")");
    }
    // Other text gets no suggestion; true and false are read.
    std::string maybe = yaml;
    maybe.replace(maybe.find("WORD"), 4, "maybe");
    auto errors = errors_of(maybe);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].find(path + ": expected true or false, got \"maybe\""), std::string::npos) << errors[0];
    EXPECT_EQ(errors[0].find("YAML 1.2"), std::string::npos) << errors[0];
    for (const char* ok : {"true", "false"}) {
      std::string good = yaml;
      good.replace(good.find("WORD"), 4, ok);
      EXPECT_EQ(errors_of(good), std::vector<std::string>{}) << good;
    }
  }
}

TEST(ConfigReader, BooleanHint) {
  EXPECT_EQ(boolean_hint("yes"), "(YAML 1.2 reads \"yes\" as a string; write true)");
  EXPECT_EQ(boolean_hint("Off"), "(YAML 1.2 reads \"Off\" as a string; write false)");
  EXPECT_EQ(boolean_hint("TRUE"), "(YAML 1.2 reads \"TRUE\" as a string; write true)");
  EXPECT_EQ(boolean_hint("maybe"), "");
  EXPECT_EQ(boolean_hint(""), "");
}

// ---- several at once -------------------------------------------------------------------------

TEST(ConfigLoader, ReportsEveryErrorInFileOrder) {
  PolicyCatalog catalog = test_catalog();
  catalog.supported["rate_limit"] = [](const PolicyConfig& p, Diagnostics& d) {
    const YAML::Node limit = p.options["limit"];
    if (limit && limit.as<int>() <= 0)
      d.error(limit, p.path + ".limit", "expected a positive integer, got " + limit.Scalar());
    return std::any();
  };
  auto errors = errors_of(R"(listen: ":3000"
workers: many
services:
  user:
    instances: ["http://10.0.0.5:3001", "ftp://10.0.0.6"]
policies:
  per-ip: {type: rate_limit, limit: 0, window: 1m}
  sso: {type: jtw}
routes:
  - path: /api/users
    service: usr
    policies: [per-ip, sso, auth]
  - path: /api/orders
    service: orders
)",
                          catalog);
  EXPECT_EQ(errors, (std::vector<std::string>{
                        "gw.yaml:2:10: workers: expected auto or a number of threads from 1 to 1024, got \"many\"",
                        "gw.yaml:5:41: services.user.instances[1]: expected a URL like http://10.0.0.5:3001 or "
                        "https://api.internal, got \"ftp://10.0.0.6\": the scheme is not http://, https:// or h2c://",
                        "gw.yaml:7:37: policies.per-ip.limit: expected a positive integer, got 0",
                        "gw.yaml:8:15: policies.sso.type: unknown policy type \"jtw\"; did you mean \"jwt\"?",
                        "gw.yaml:11:14: routes[0].service: unknown service \"usr\"; did you mean \"user\"?",
                        "gw.yaml:12:29: routes[0].policies[2]: unknown policy \"auth\"; expected one of: per-ip, "
                        "sso, security_headers",
                        "gw.yaml:14:14: routes[1].service: unknown service \"orders\"; expected one of: user",
                    }));
}

TEST(ConfigLoader, ValidatorExceptionsBecomeDiagnostics) {
  PolicyCatalog catalog = test_catalog();
  catalog.supported["rate_limit"] = [](const PolicyConfig& p, Diagnostics&) { return std::any(p.options["limit"].as<int>()); };
  auto errors = errors_of(std::string(kMinimal) + "policies:\n  per-ip: {type: rate_limit, limit: lots}\n", catalog);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("gw.yaml:8:37: policies.per-ip: invalid options: ", 0), 0u) << errors[0];
}

TEST(ConfigLoader, PlannedTypeIsRefused) {
  PolicyCatalog catalog;
  catalog.supported["rate_limit"] = nullptr;
  catalog.planned = {"jwt"};
  auto errors = errors_of(std::string(kMinimal) + "policies:\n  auth: {type: jwt, secret: x}\n", catalog);
  EXPECT_EQ(errors, std::vector<std::string>{"gw.yaml:8:16: policies.auth.type: policy type \"jwt\" is not yet supported"});
}

TEST(ConfigLoader, BuiltinSecurityHeadersNeedsNoEntry) {
  Config c = load_ok(R"(services:
  user: {instances: ["http://a:1"]}
routes:
  - {path: /, service: user, policies: [security_headers]}
)");
  ASSERT_EQ(c.policies.size(), 1u);
  EXPECT_EQ(c.policies[0].name, "security_headers");
  EXPECT_EQ(c.policies[0].type, "security_headers");
  EXPECT_EQ(c.routes[0].policies, std::vector<std::string>{"security_headers"});
  // Not named anywhere: not synthesized.
  EXPECT_TRUE(load_ok(kMinimal).policies.empty());
}

TEST(ConfigLoader, PolicyEntryMayUseBuiltinTypeUnderAnotherName) {
  Config c = load_ok(std::string(kMinimal) + "policies:\n  strict-headers: {type: security_headers, override: true}\n");
  ASSERT_EQ(c.policies.size(), 1u);
  EXPECT_EQ(c.policies[0].name, "strict-headers");
  EXPECT_EQ(c.policies[0].path, "policies.strict-headers");
  EXPECT_EQ(c.policies[0].mark.line, 8);
}

// ---- environment -----------------------------------------------------------------------------

TEST(ConfigEnv, UnsetVariableIsAnErrorAtItsPlace) {
  ::unsetenv("GH_TEST_UNSET");
  auto errors = errors_of(R"(services:
  user:
    instances: ["${GH_TEST_UNSET}"]
routes: [{path: /, service: user}]
)");
  EXPECT_EQ(errors, std::vector<std::string>{
                        "gw.yaml:3:18: services.user.instances[0]: environment variable GH_TEST_UNSET is not set; set it, or write "
                        "${GH_TEST_UNSET:-default} to give a default"});
}

TEST(ConfigEnv, UnsetPlainValueIsReportedOnce) {
  ::unsetenv("GH_TEST_UNSET");
  auto errors = errors_of(std::string(kMinimal) + "admin:\n  address: ${GH_TEST_UNSET}\n  token: t\n");
  EXPECT_EQ(errors, std::vector<std::string>{
                        "gw.yaml:8:12: admin.address: environment variable GH_TEST_UNSET is not set; set it, or write "
                        "${GH_TEST_UNSET:-default} to give a default"});
}

// SPEC §1: the line names the field the variable stands in.
TEST(ConfigEnv, UnsetVariableNamesItsField) {
  ::unsetenv("PRODUCT_HOST");
  auto errors = errors_of(R"(services:
  user: {instances: ["http://127.0.0.1:3001"]}
  product:
    instances: ["http://10.0.0.17:3002", "http://${PRODUCT_HOST}:3002"]
routes: [{path: /, service: user}]
)");
  EXPECT_EQ(errors, std::vector<std::string>{"gw.yaml:4:50: services.product.instances[1]: environment variable "
                                             "PRODUCT_HOST is not set; set it, or write ${PRODUCT_HOST:-default} "
                                             "to give a default"});
}

TEST(ConfigEnv, UnsetVariableInAPolicyAndInNestedLists) {
  ::unsetenv("GH_TEST_SECRET");
  ::unsetenv("GH_TEST_ORIGIN");
  ::unsetenv("GH_TEST_HOST");
  auto errors = errors_of(R"(services:
  user:
    instances:
      - "http://127.0.0.1:3001"
      - {url: "http://${GH_TEST_HOST}:3002", weight: 2}
policies:
  auth: {type: jwt, secret: "${GH_TEST_SECRET}", audiences: [[a, b], [c, "x${GH_TEST_ORIGIN}"]]}
routes: [{path: /, service: user}]
)");
  auto line = [](std::string where, std::string var) {
    return where + ": environment variable " + var + " is not set; set it, or write ${" + var +
           ":-default} to give a default";
  };
  EXPECT_EQ(errors, (std::vector<std::string>{line("gw.yaml:5:23: services.user.instances[1].url", "GH_TEST_HOST"),
                                              line("gw.yaml:7:30: policies.auth.secret", "GH_TEST_SECRET"),
                                              line("gw.yaml:7:76: policies.auth.audiences[1][1]", "GH_TEST_ORIGIN")}));
}

TEST(ConfigEnv, DefaultsAndValues) {
  ::unsetenv("GH_TEST_UNSET");
  ::setenv("GH_TEST_EMPTY", "", 1);
  ::setenv("GH_TEST_PORT", "4100", 1);
  ::setenv("GH_TEST_TOKEN", "a \"quoted\" \\ token", 1);
  Config c = load_ok(R"(listen: ":${GH_TEST_PORT}"
admin: {address: "127.0.0.1:${GH_TEST_UNSET:-9901}", token: "${GH_TEST_TOKEN}"}
access_log: ${GH_TEST_EMPTY:-stderr}
services:
  user: {instances: ["${GH_TEST_UNSET:-http://127.0.0.1:3001}"]}
routes: [{path: /, service: user}]
)");
  EXPECT_EQ(c.listeners[0].port, 4100);
  EXPECT_EQ(c.admin->port, 9901);
  EXPECT_EQ(c.admin->token, "a \"quoted\" \\ token");
  EXPECT_EQ(c.access_log, "stderr");  // `:-` also replaces an empty value, as in the shell
  EXPECT_EQ(c.services[0].instances[0].port, 3001);
  ::unsetenv("GH_TEST_EMPTY");
  ::unsetenv("GH_TEST_PORT");
  ::unsetenv("GH_TEST_TOKEN");
}

TEST(ConfigEnv, SetButEmptyWithoutDefaultIsEmpty) {
  ::setenv("GH_TEST_EMPTY", "", 1);
  Config c = load_ok(std::string(kMinimal) + "access_log: \"x${GH_TEST_EMPTY}\"\n");
  EXPECT_EQ(c.access_log, "x");
  ::unsetenv("GH_TEST_EMPTY");
}

TEST(ConfigEnv, CommentsAndEscapesAreLeftAlone) {
  ::unsetenv("GH_TEST_UNSET");
  Config c = load_ok(std::string("# run with ${GH_TEST_UNSET} set\n") + kMinimal +
                     "access_log: \"/var/log/$${HOME}.log\"  # ${GH_TEST_UNSET}\n");
  EXPECT_EQ(c.access_log, "/var/log/${HOME}.log");
}

TEST(ConfigEnv, ColumnsPointIntoTheFileAsWritten) {
  ::setenv("GH_TEST_LONG", "http://a-rather-long-host-name.internal:3001", 1);
  auto errors = errors_of(R"(services:
  user: {instances: ["${GH_TEST_LONG}"], max_in_flight: 0}
routes:
  - path: /api
    service: user
)");
  EXPECT_EQ(errors, std::vector<std::string>{"gw.yaml:2:57: services.user.max_in_flight: expected a positive "
                                             "integer, got 0"});
  ::unsetenv("GH_TEST_LONG");
}

TEST(ConfigEnv, MalformedReference) {
  auto errors = errors_of(std::string(kMinimal) + "access_log: \"${1BAD}\"\n");
  EXPECT_EQ(errors, std::vector<std::string>{
                        "gw.yaml:7:14: access_log: malformed variable reference; expected ${NAME} or ${NAME:-default}"});
}

// ---- syntax and files ------------------------------------------------------------------------

TEST(ConfigLoader, YamlSyntaxErrorHasItsPlace) {
  auto errors = errors_of("services:\n  user: {instances: [\"http://a:1\"]\nroutes: []\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("gw.yaml:3:", 0), 0u) << errors[0];
  EXPECT_NE(errors[0].find("(yaml): "), std::string::npos) << errors[0];
}

TEST(ConfigLoader, EmptyDocument) {
  EXPECT_EQ(errors_of(""), std::vector<std::string>{"gw.yaml:1:1: (root): expected a mapping with services and "
                                                    "routes at the top level, got an empty document"});
}

TEST(ConfigLoader, UnreadableFile) {
  LoadResult r = load_file("no-such-dir/gatehouse.yaml", test_catalog());
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(), "no-such-dir/gatehouse.yaml: (file): cannot read the file: No such file or directory");
}

TEST(ConfigLoader, LoadsFromFile) {
  const std::string path = ::testing::TempDir() + "gh_config_test.yaml";
  {
    std::ofstream out(path);
    out << kMinimal << "workers: 2\n";
  }
  LoadResult r = load_file(path, test_catalog());
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->file, path);
  EXPECT_EQ(r.config->workers, 2u);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace gh::config

TEST(Config, DefaultRouteNamesMayRepeat) {
  gh::config::PolicyCatalog catalog;
  auto r = gh::config::load_string(
      "services:\n  user: {instances: [\"http://a:1\"]}\nroutes:\n  - path: /a\n    methods: [GET]\n"
      "    service: user\n  - path: /a\n    methods: [POST]\n    service: user\n",
      "gw.yaml", catalog);
  ASSERT_TRUE(r.config.has_value()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  EXPECT_EQ(r.config->routes.size(), 2u);
  EXPECT_EQ(r.config->routes[1].name, "/a");
}
