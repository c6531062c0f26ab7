// RateLimitConfig: the options of one `type: rate_limit` entry, parsed and validated.
// Thread: plain data.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "config/config.h"
#include "policies/rate_limit/store.h"

namespace gh::policies {

// One part of a rate-limit key: what the budget is counted per.
struct KeyPart {
  enum class Kind { ClientIp, Header, Claim, Route, Global };
  Kind kind = Kind::ClientIp;
  std::string name;  // the header or claim name
  // As written in the config: client_ip, header:NAME, claim:NAME, route, global.
  std::string to_string() const;
};

enum class StoreKind { Memory, Redis };
enum class OnStoreError { Allow, Deny };

struct RateLimitConfig {
  Rule rule;                                            // limit, window, algorithm
  std::vector<KeyPart> key{KeyPart{}};                  // default: client_ip
  StoreKind store = StoreKind::Memory;
  bool store_given = false;                             // `store` was written explicitly
  OnStoreError on_store_error = OnStoreError::Allow;
  std::string message = "Too many requests";           // the 429 body's "error"
};

// Parses one entry; problems go to `diag` with field paths such as
// `policies.per-ip.limit: expected a positive integer, got 0`. `top_level_redis`: the file
// sets `redis:`, which makes `store: redis` the default; without it `store: redis` is refused
// (`store "redis" needs the top-level redis: redis://host:port`).
RateLimitConfig parse_rate_limit(const config::PolicyConfig& entry, config::Diagnostics& diag,
                                 bool top_level_redis);
// The same, for a validator that sees only the entry: `store: redis` is accepted here and
// checked against the whole file by check_rate_limit_stores; the store stays as written.
RateLimitConfig parse_rate_limit(const config::PolicyConfig& entry, config::Diagnostics& diag);

// Whole-file check for what a single entry cannot see: a rate_limit entry with `store: redis`
// in a file without a top-level `redis:`. Adds one diagnostic per such entry.
void check_rate_limit_stores(const config::Config& cfg, config::Diagnostics& diag);

// A window as a config would write it, in its largest exact unit: "15m", "90s", "250ms".
std::string format_window(std::chrono::nanoseconds d);

}  // namespace gh::policies
