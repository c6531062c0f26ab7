#include "policies/rate_limit/rate_limit_config.h"

#include <gtest/gtest.h>

namespace gh::policies {
namespace {

using namespace std::chrono_literals;

config::PolicyConfig entry(const std::string& yaml, const std::string& name = "per-ip") {
  config::PolicyConfig p;
  p.name = name;
  p.type = "rate_limit";
  p.path = "policies." + name;
  p.options = YAML::Load(yaml);
  return p;
}

struct Parsed {
  RateLimitConfig cfg;
  std::vector<config::Diagnostic> errors;
};

Parsed parse(const std::string& yaml, bool top_level_redis = false) {
  config::Diagnostics diag("t.yaml");
  Parsed out;
  out.cfg = parse_rate_limit(entry(yaml), diag, top_level_redis);
  out.errors = diag.list();
  return out;
}

// The single diagnostic of `yaml`, as "PATH: message".
std::string only_error(const std::string& yaml, bool top_level_redis = false) {
  Parsed p = parse(yaml, top_level_redis);
  if (p.errors.size() != 1) {
    std::string all;
    for (const auto& e : p.errors) all += "\n  " + e.path + ": " + e.message;
    return "expected one error, got " + std::to_string(p.errors.size()) + all;
  }
  return p.errors[0].path + ": " + p.errors[0].message;
}

TEST(RateLimitConfig, SeedEntryParsesWithDefaults) {
  Parsed p = parse("{type: rate_limit, key: client_ip, limit: 100, window: 15m}");
  ASSERT_TRUE(p.errors.empty());
  EXPECT_EQ(p.cfg.rule.limit, 100u);
  EXPECT_EQ(p.cfg.rule.window, 15min);
  EXPECT_EQ(p.cfg.rule.algorithm, Algorithm::FixedWindow);
  ASSERT_EQ(p.cfg.key.size(), 1u);
  EXPECT_EQ(p.cfg.key[0].kind, KeyPart::Kind::ClientIp);
  EXPECT_EQ(p.cfg.store, StoreKind::Memory);
  EXPECT_EQ(p.cfg.on_store_error, OnStoreError::Allow);
  EXPECT_EQ(p.cfg.message, "Too many requests");
}

TEST(RateLimitConfig, KeyDefaultsToClientIp) {
  Parsed p = parse("{type: rate_limit, limit: 5, window: 1s}");
  ASSERT_TRUE(p.errors.empty());
  ASSERT_EQ(p.cfg.key.size(), 1u);
  EXPECT_EQ(p.cfg.key[0].to_string(), "client_ip");
}

TEST(RateLimitConfig, AllOptions) {
  Parsed p = parse(R"({type: rate_limit, limit: 7, window: 250ms, key: [client_ip, "header:X-Api-Key", "claim:sub",
      route, global], algorithm: token_bucket, store: memory, on_store_error: deny, message: "Slow down"})");
  ASSERT_TRUE(p.errors.empty()) << p.errors[0].message;
  EXPECT_EQ(p.cfg.rule.window, 250ms);
  EXPECT_EQ(p.cfg.rule.algorithm, Algorithm::TokenBucket);
  ASSERT_EQ(p.cfg.key.size(), 5u);
  EXPECT_EQ(p.cfg.key[1].kind, KeyPart::Kind::Header);
  EXPECT_EQ(p.cfg.key[1].name, "X-Api-Key");
  EXPECT_EQ(p.cfg.key[2].kind, KeyPart::Kind::Claim);
  EXPECT_EQ(p.cfg.key[2].name, "sub");
  EXPECT_EQ(p.cfg.key[3].kind, KeyPart::Kind::Route);
  EXPECT_EQ(p.cfg.key[4].kind, KeyPart::Kind::Global);
  EXPECT_TRUE(p.cfg.store_given);
  EXPECT_EQ(p.cfg.on_store_error, OnStoreError::Deny);
  EXPECT_EQ(p.cfg.message, "Slow down");
  EXPECT_EQ(parse("{type: rate_limit, limit: 1, window: 1s, algorithm: sliding_window}").cfg.rule.algorithm,
            Algorithm::SlidingWindow);
}

TEST(RateLimitConfig, LimitMessages) {
  EXPECT_EQ(only_error("{type: rate_limit, limit: 0, window: 15m}"),
            "policies.per-ip.limit: expected a positive integer, got 0");
  EXPECT_EQ(only_error("{type: rate_limit, limit: -5, window: 15m}"),
            "policies.per-ip.limit: expected a positive integer, got -5");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1.5, window: 15m}"),
            "policies.per-ip.limit: expected a positive integer, got \"1.5\"");
  EXPECT_EQ(only_error("{type: rate_limit, limit: lots, window: 15m}"),
            "policies.per-ip.limit: expected a positive integer, got \"lots\"");
  EXPECT_EQ(only_error("{type: rate_limit, limit: [1], window: 15m}"),
            "policies.per-ip.limit: expected a positive integer, got a list");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 5000000000, window: 15m}"),
            "policies.per-ip.limit: expected a positive integer up to 1000000000, got 5000000000");
  EXPECT_EQ(only_error("{type: rate_limit, window: 15m}"), "policies.per-ip.limit: missing; expected a positive integer");
}

TEST(RateLimitConfig, WindowMessages) {
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 0s}"),
            "policies.per-ip.window: expected a duration greater than 0, got \"0s\"");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: soon}"),
            "policies.per-ip.window: expected a duration like 15m, 30s or 1h, got \"soon\"");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: {m: 15}}"),
            "policies.per-ip.window: expected a duration like 15m, 30s or 1h, got a mapping");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 400d}"),
            "policies.per-ip.window: expected a duration of at most 365d, got \"400d\"");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1}"),
            "policies.per-ip.window: missing; expected a duration like 15m, 30s or 1h");
}

TEST(RateLimitConfig, KeyMessages) {
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, key: client-ip}"),
            "policies.per-ip.key: unknown key \"client-ip\"; did you mean \"client_ip\"?");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, key: \"headers:X-Api-Key\"}"),
            "policies.per-ip.key: unknown key \"headers:X-Api-Key\"; did you mean \"header:X-Api-Key\"?");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, key: [client_ip, rout]}"),
            "policies.per-ip.key[1]: unknown key \"rout\"; did you mean \"route\"?");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, key: everything}"),
            "policies.per-ip.key: unknown key \"everything\"; expected one of: client_ip, header:NAME, claim:NAME, "
            "route, global");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, key: \"header:\"}"),
            "policies.per-ip.key: expected a header name after \"header:\"");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, key: \"claim:\"}"),
            "policies.per-ip.key: expected a claim name after \"claim:\"");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, key: \"header:X Api\"}"),
            "policies.per-ip.key: expected a header field name after \"header:\", got \"X Api\"");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, key: [route, \"header:a\", \"header:A\"]}"),
            "policies.per-ip.key[2]: key \"header:A\" is listed twice");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, key: []}"),
            "policies.per-ip.key: expected a key or a non-empty list of keys, got an empty list");
}

TEST(RateLimitConfig, EnumMessages) {
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, algorithm: sliding}"),
            "policies.per-ip.algorithm: unknown algorithm \"sliding\"; did you mean \"sliding_window\"?");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, algorithm: token}"),
            "policies.per-ip.algorithm: unknown algorithm \"token\"; did you mean \"token_bucket\"?");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, algorithm: leaky}"),
            "policies.per-ip.algorithm: unknown algorithm \"leaky\"; expected one of: fixed_window, sliding_window, "
            "token_bucket");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, store: memroy}"),
            "policies.per-ip.store: unknown store \"memroy\"; did you mean \"memory\"?");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, on_store_error: dney}"),
            "policies.per-ip.on_store_error: unknown on_store_error \"dney\"; did you mean \"deny\"?");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, limt: 2}"),
            "policies.per-ip.limt: unknown option \"limt\"; did you mean \"limit\"?");
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, message: \"\"}"),
            "policies.per-ip.message: expected a non-empty message text");
}

TEST(RateLimitConfig, RedisStoreNeedsTopLevelRedis) {
  EXPECT_EQ(only_error("{type: rate_limit, limit: 1, window: 1s, store: redis}"),
            "policies.per-ip.store: store \"redis\" needs the top-level redis: redis://host:port");
  Parsed given = parse("{type: rate_limit, limit: 1, window: 1s, store: redis}", true);
  EXPECT_TRUE(given.errors.empty());
  EXPECT_EQ(given.cfg.store, StoreKind::Redis);
  // A top-level redis makes redis the default store.
  Parsed dflt = parse("{type: rate_limit, limit: 1, window: 1s}", true);
  EXPECT_TRUE(dflt.errors.empty());
  EXPECT_EQ(dflt.cfg.store, StoreKind::Redis);
  EXPECT_FALSE(dflt.cfg.store_given);
  // Explicit memory is kept with a top-level redis.
  Parsed mem = parse("{type: rate_limit, limit: 1, window: 1s, store: memory}", true);
  EXPECT_TRUE(mem.errors.empty());
  EXPECT_EQ(mem.cfg.store, StoreKind::Memory);
  // The entry-only validator cannot tell, and leaves it to the whole-file check.
  config::Diagnostics diag("t.yaml");
  parse_rate_limit(entry("{type: rate_limit, limit: 1, window: 1s, store: redis}"), diag);
  EXPECT_TRUE(diag.empty());
}

TEST(RateLimitConfig, WholeFileStoreCheck) {
  config::Config cfg;
  cfg.policies.push_back(entry("{type: rate_limit, limit: 1, window: 1s}", "a"));
  cfg.policies.push_back(entry("{type: rate_limit, limit: 1, window: 1s, store: memory}", "b"));
  cfg.policies.push_back(entry("{type: rate_limit, limit: 1, window: 1s, store: redis}", "c"));
  config::Diagnostics diag("t.yaml");
  check_rate_limit_stores(cfg, diag);
  ASSERT_EQ(diag.list().size(), 1u);
  EXPECT_EQ(diag.list()[0].path, "policies.c.store");
  EXPECT_EQ(diag.list()[0].message, "store \"redis\" needs the top-level redis: redis://host:port");
  cfg.redis = "redis://127.0.0.1:6379";
  config::Diagnostics none("t.yaml");
  check_rate_limit_stores(cfg, none);
  EXPECT_TRUE(none.empty());
}

TEST(RateLimitConfig, FormatWindow) {
  EXPECT_EQ(format_window(15min), "15m");
  EXPECT_EQ(format_window(90s), "90s");
  EXPECT_EQ(format_window(1h), "1h");
  EXPECT_EQ(format_window(std::chrono::hours(48)), "2d");
  EXPECT_EQ(format_window(250ms), "250ms");
}

}  // namespace
}  // namespace gh::policies
