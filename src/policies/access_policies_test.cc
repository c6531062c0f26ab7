// Unit tests for require_role, api_key, ip_filter and cors: options with their field paths,
// verdicts, and the response headers they add.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>

#include "policies/api_key/api_key.h"
#include "policies/common/credentials.h"
#include "policies/cors/cors.h"
#include "policies/ip_filter/ip_filter.h"
#include "policies/jwt/jwt_config.h"
#include "policies/require_role/require_role.h"
#include "policies/security_headers/security_headers_config.h"
#include "proxy/request_context.h"
#include "proxy/worker.h"

namespace gh::policies {
namespace {

config::PolicyConfig entry(const std::string& type, const std::string& yaml) {
  config::PolicyConfig p;
  p.name = "p";
  p.type = type;
  p.path = "policies.p";
  p.options = YAML::Load(yaml);
  return p;
}

// A request head over an owned buffer, and a context to run policies on.
struct Harness {
  proxy::GatewayShared shared;
  proxy::Worker worker{0, shared, nullptr};
  std::string raw;
  http::RequestHead req;
  std::unique_ptr<proxy::RequestContext> ctx;

  explicit Harness(std::string head, std::string client_ip = "203.0.113.7") : raw(std::move(head)) {
    auto out = http::parse_request(raw, http::ParseLimits{}, req);
    EXPECT_EQ(out.state, http::ParseState::Complete) << out.detail;
    ctx = std::make_unique<proxy::RequestContext>(worker, nullptr, req);
    ctx->client_ip_ = std::move(client_ip);
  }
  proxy::Verdict run(proxy::Policy& p) {
    boost::asio::io_context io;
    std::optional<proxy::Verdict> v;
    boost::asio::co_spawn(io, p.on_request(*ctx), [&](std::exception_ptr e, proxy::Verdict r) {
      if (e) std::rethrow_exception(e);
      v = std::move(r);
    });
    io.run();
    return std::move(*v);
  }
};

const proxy::LocalReply* reply(const proxy::Verdict& v) { return std::get_if<proxy::LocalReply>(&v); }

std::shared_ptr<proxy::Principal> principal_with_role(std::string role, bool as_array = false) {
  auto p = std::make_shared<proxy::Principal>();
  p->subject = "42";
  proxy::Principal::Claim c;
  c.name = "role";
  if (as_array) {
    c.text = "[\"" + role + "\"]";
    c.strings = {role};
  } else {
    c.text = role;
    c.is_string = true;
  }
  p->claims.push_back(c);
  return p;
}

TEST(RequireRole, AllowsMatchingRoleStringOrArray) {
  config::Diagnostics d("t.yaml");
  RequireRolePolicy p("p", parse_require_role(entry("require_role", "{type: require_role, roles: [admin]}"), d));
  ASSERT_TRUE(d.empty());
  Harness h("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  h.ctx->principal = principal_with_role("admin");
  EXPECT_FALSE(reply(h.run(p)));
  h.ctx->principal = principal_with_role("admin", true);
  EXPECT_FALSE(reply(h.run(p)));
}

// Refusals counted by reason, for the policy's name, on the request's worker.
std::uint64_t failures(core::Metrics& m, const std::string& policy, const std::string& reason) {
  return m.counter("gatehouse_auth_failures_total", {{"policy", policy}, {"reason", reason}}).value();
}

TEST(RequireRole, RefusesOtherRolesAndMissingPrincipal) {
  config::Diagnostics d("t.yaml");
  core::Metrics metrics(1);
  RequireRolePolicy p("admins", parse_require_role(entry("require_role", "{type: require_role, roles: admin}"), d),
                      &metrics);
  Harness h("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  h.ctx->principal = principal_with_role("user");
  auto v = h.run(p);
  ASSERT_TRUE(reply(v));
  EXPECT_EQ(reply(v)->status, 403);
  EXPECT_EQ(reply(v)->message, "Insufficient permissions");
  EXPECT_EQ(failures(metrics, "admins", "insufficient_role"), 1u);
  h.ctx->principal = nullptr;
  v = h.run(p);
  ASSERT_TRUE(reply(v));
  EXPECT_EQ(reply(v)->status, 401);
  EXPECT_EQ(failures(metrics, "admins", "no_principal"), 1u);
  h.ctx->principal = principal_with_role("admin");
  EXPECT_FALSE(reply(h.run(p)));  // an admission counts nothing
  EXPECT_EQ(failures(metrics, "admins", "insufficient_role") + failures(metrics, "admins", "no_principal"), 2u);
}

TEST(RequireRole, ReportsBadOptions) {
  config::Diagnostics d("t.yaml");
  parse_require_role(entry("require_role", "{type: require_role, role: [admin]}"), d);
  ASSERT_EQ(d.list().size(), 2u);
  EXPECT_EQ(d.list()[0].path, "policies.p.role");
  EXPECT_NE(d.list()[0].message.find("did you mean \"roles\""), std::string::npos);
  EXPECT_NE(d.list()[1].message.find("missing `roles`"), std::string::npos);
}

TEST(ApiKey, KeysCompareWholeAndExact) {
  EXPECT_TRUE(constant_time_equal("k1-secret", "k1-secret"));
  EXPECT_FALSE(constant_time_equal("k1-secret", "k1-secreT"));
  EXPECT_FALSE(constant_time_equal("k1-secret", "k1-secre"));
  EXPECT_FALSE(constant_time_equal("k1", "k1-secret"));
  EXPECT_FALSE(constant_time_equal("", "k"));
  EXPECT_TRUE(constant_time_equal(std::string_view("a\0b", 3), std::string_view("a\0b", 3)));
  EXPECT_FALSE(constant_time_equal(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
}

TEST(ApiKey, HeaderKeys) {
  config::Diagnostics d("t.yaml");
  core::Metrics metrics(1);
  ApiKeyPolicy p("keys", parse_api_key(entry("api_key", "{type: api_key, header: X-API-Key, keys: {k1: mobile}}"), d),
                 &metrics);
  ASSERT_TRUE(d.empty());
  Harness none("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  auto v = none.run(p);
  ASSERT_TRUE(reply(v));
  EXPECT_EQ(reply(v)->status, 401);
  EXPECT_EQ(reply(v)->message, "API key required");
  Harness bad("GET / HTTP/1.1\r\nHost: x\r\nX-API-Key: k2\r\n\r\n");
  v = bad.run(p);
  ASSERT_TRUE(reply(v));
  EXPECT_EQ(reply(v)->message, "Invalid API key");
  v = bad.run(p);
  EXPECT_EQ(failures(metrics, "keys", "no_api_key"), 1u);
  EXPECT_EQ(failures(metrics, "keys", "invalid_api_key"), 2u);
  Harness good("GET / HTTP/1.1\r\nHost: x\r\nX-API-Key: k1\r\nX-Consumer-Name: spoofed\r\n\r\n");
  EXPECT_FALSE(reply(good.run(p)));
  EXPECT_EQ(failures(metrics, "keys", "invalid_api_key"), 2u);
  ASSERT_TRUE(good.ctx->principal);
  EXPECT_EQ(good.ctx->principal->subject, "mobile");
  std::vector<http::Field> fields(good.req.fields.begin(), good.req.fields.end());
  p.on_upstream_request(*good.ctx, fields);
  int consumers = 0;
  for (const auto& f : fields)
    if (f.name == ApiKeyPolicy::kConsumerHeader) {
      ++consumers;
      EXPECT_EQ(f.value, "mobile");
    }
  EXPECT_EQ(consumers, 1);
}

TEST(ApiKey, QueryKeysAreDecoded) {
  config::Diagnostics d("t.yaml");
  ApiKeyPolicy p("p", parse_api_key(entry("api_key", "{type: api_key, query: api_key, keys: {\"a b\": web}}"), d));
  ASSERT_TRUE(d.empty());
  Harness h("GET /x?foo=1&api_key=a%20b HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_FALSE(reply(h.run(p)));
  Harness miss("GET /x?foo=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(reply(miss.run(p)));
}

TEST(ApiKey, NeedsExactlyOneSource) {
  config::Diagnostics d("t.yaml");
  parse_api_key(entry("api_key", "{type: api_key, header: X, query: y, keys: {k: c}}"), d);
  ASSERT_EQ(d.list().size(), 1u);
  EXPECT_NE(d.list()[0].message.find("exactly one of `header`"), std::string::npos);
}

TEST(IpFilter, AllowAndDenyLists) {
  config::Diagnostics d("t.yaml");
  IpFilterPolicy allow("p", parse_ip_filter(entry("ip_filter", "{type: ip_filter, allow: [10.0.0.0/8]}"), d));
  IpFilterPolicy deny("p", parse_ip_filter(entry("ip_filter", "{type: ip_filter, deny: [203.0.113.0/24]}"), d));
  ASSERT_TRUE(d.empty());
  Harness outside("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "203.0.113.7");
  auto v = outside.run(allow);
  ASSERT_TRUE(reply(v));
  EXPECT_EQ(reply(v)->status, 403);
  EXPECT_EQ(reply(v)->message, "Forbidden");
  ASSERT_TRUE(reply(outside.run(deny)));
  Harness inside("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "10.1.2.3");
  EXPECT_FALSE(reply(inside.run(allow)));
  EXPECT_FALSE(reply(inside.run(deny)));
}

TEST(IpFilter, ReportsBadCidrsWithIndex) {
  config::Diagnostics d("t.yaml");
  parse_ip_filter(entry("ip_filter", "{type: ip_filter, allow: [10.0.0.0/8, 10.0.0.0/40]}"), d);
  ASSERT_EQ(d.list().size(), 1u);
  EXPECT_EQ(d.list()[0].path, "policies.p.allow[1]");
  config::Diagnostics both("t.yaml");
  parse_ip_filter(entry("ip_filter", "{type: ip_filter, allow: [1.2.3.4], deny: [1.2.3.4]}"), both);
  ASSERT_EQ(both.list().size(), 1u);
}

TEST(Cors, AnswersPreflightWithoutForwarding) {
  config::Diagnostics d("t.yaml");
  CorsPolicy p("p", parse_cors(entry("cors", "{type: cors, origins: [\"https://app.example.com\"], credentials: true,"
                                             " max_age: 10m}"),
                               d));
  ASSERT_TRUE(d.empty());
  Harness h("OPTIONS /api HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\n"
            "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: content-type\r\n\r\n");
  auto v = h.run(p);
  ASSERT_TRUE(reply(v));
  EXPECT_EQ(reply(v)->status, 204);
  EXPECT_TRUE(reply(v)->empty_body);
  http::ResponseHead head;
  for (const auto& [n, val] : reply(v)->headers) head.fields.add(n, val);
  p.on_response(*h.ctx, head);
  EXPECT_EQ(head.fields.get("Access-Control-Allow-Origin"), "https://app.example.com");
  EXPECT_EQ(head.fields.get("Access-Control-Allow-Credentials"), "true");
  EXPECT_EQ(head.fields.get("Access-Control-Allow-Headers"), "content-type");
  EXPECT_EQ(head.fields.get("Access-Control-Max-Age"), "600");
  EXPECT_EQ(head.fields.get("Vary"), "Origin");
}

TEST(Cors, OtherOriginsGetNoCorsHeaders) {
  config::Diagnostics d("t.yaml");
  CorsPolicy p("p", parse_cors(entry("cors", "{type: cors, origins: [\"https://app.example.com\"]}"), d));
  Harness h("GET /api HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n");
  EXPECT_FALSE(reply(h.run(p)));
  http::ResponseHead head;
  head.fields.add("Vary", "Accept-Encoding");
  p.on_response(*h.ctx, head);
  EXPECT_FALSE(head.fields.has("Access-Control-Allow-Origin"));
  EXPECT_EQ(head.fields.get("Vary"), "Accept-Encoding, Origin");
}

TEST(Cors, WildcardWithoutCredentials) {
  config::Diagnostics d("t.yaml");
  CorsPolicy p("p", parse_cors(entry("cors", "{type: cors, origins: \"*\"}"), d));
  ASSERT_TRUE(d.empty());
  Harness h("GET /api HTTP/1.1\r\nHost: x\r\nOrigin: https://any.example\r\n\r\n");
  http::ResponseHead head;
  p.on_response(*h.ctx, head);
  EXPECT_EQ(head.fields.get("Access-Control-Allow-Origin"), "*");
  config::Diagnostics bad("t.yaml");
  parse_cors(entry("cors", "{type: cors, origins: \"*\", credentials: true}"), bad);
  EXPECT_EQ(bad.list().size(), 1u);
}


// Every boolean option of every policy reads booleans as the loader does (config/reader.h):
// YAML 1.1's words are refused with the same message as `preserve_host: yes` in a route file.
TEST(PolicyOptions, EveryBooleanRefusesYaml11Words) {
  using Parse = std::function<void(const config::PolicyConfig&, config::Diagnostics&)>;
  struct Option {
    std::string type;
    std::string yaml;  // WORD stands for the value
    std::string path;
    Parse parse;
  };
  const std::vector<Option> options = {
      {"cors", "{type: cors, origins: [\"https://a.example\"], credentials: WORD}", "policies.p.credentials",
       [](const config::PolicyConfig& e, config::Diagnostics& d) { parse_cors(e, d); }},
      {"jwt", "{type: jwt, secret: s, require_exp: WORD}", "policies.p.require_exp",
       [](const config::PolicyConfig& e, config::Diagnostics& d) { parse_jwt(e, d); }},
      {"security_headers", "{type: security_headers, override: WORD}", "policies.p.override",
       [](const config::PolicyConfig& e, config::Diagnostics& d) { parse_security_headers(e, d); }},
  };
  const std::vector<std::pair<std::string, std::string>> words = {
      {"yes", "true"}, {"No", "false"}, {"on", "true"},   {"OFF", "false"},
      {"True", "true"}, {"FALSE", "false"}, {"y", "true"}, {"N", "false"}};
  for (const auto& o : options) {
    for (const auto& [word, write] : words) {
      std::string yaml = o.yaml;
      yaml.replace(yaml.find("WORD"), 4, word);
      config::Diagnostics d("gw.yaml");
      o.parse(entry(o.type, yaml), d);
      ASSERT_EQ(d.list().size(), 1u) << yaml;
      EXPECT_EQ(d.list()[0].path, o.path);
      EXPECT_EQ(d.list()[0].message, "expected true or false, got \"" + word + "\" (YAML 1.2 reads \"" + word +
                                         "\" as a string; write " + write + ")");
    }
    for (const char* ok : {"true", "false"}) {
      std::string yaml = o.yaml;
      yaml.replace(yaml.find("WORD"), 4, ok);
      config::Diagnostics d("gw.yaml");
      o.parse(entry(o.type, yaml), d);
      EXPECT_TRUE(d.empty()) << yaml << ": " << d.list()[0].to_string();
    }
  }
}

}  // namespace
}  // namespace gh::policies
