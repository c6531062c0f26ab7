#include "policies/rate_limit/rate_limit_config.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>

#include "config/reader.h"
#include "core/strings.h"

namespace gh::policies {

namespace {

constexpr std::uint64_t kMaxLimit = 1'000'000'000;
constexpr std::chrono::hours kMaxWindow{24 * 365};

// The config dialect's own describing and did-you-mean (config/reader.h).
using config::quote;

std::string describe(const YAML::Node& n) { return config::describe_value(n); }

std::string join(const std::vector<std::string>& items) { return config::join(items, ", "); }

// `unknown WHAT "x"; did you mean "y"?` (a near miss or a unique prefix: "sliding" for
// sliding_window), or `...; expected one of: ` the `shown` choices.
std::string unknown(std::string_view what, std::string_view got, const std::vector<std::string>& choices,
                    const std::vector<std::string>& shown) {
  std::string hint = config::closest(got, choices);
  if (!hint.empty()) return "unknown " + std::string(what) + " " + quote(got) + "; did you mean " + quote(hint) + "?";
  return "unknown " + std::string(what) + " " + quote(got) + "; expected one of: " + join(shown);
}

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// A scalar's text, or nullopt (and a diagnostic) when the node is not a scalar.
std::optional<std::string> scalar(const YAML::Node& n, const std::string& path, std::string_view what,
                                  config::Diagnostics& diag) {
  if (n.IsScalar()) return n.Scalar();
  diag.error(n, path, "expected " + std::string(what) + ", got " + describe(n));
  return std::nullopt;
}

std::optional<KeyPart> parse_key_part(const YAML::Node& n, const std::string& path, config::Diagnostics& diag) {
  static const std::vector<std::string> kShown = {"client_ip", "header:NAME", "claim:NAME", "route", "global"};
  auto s = scalar(n, path, "a key: " + join(kShown), diag);
  if (!s) return std::nullopt;
  std::string_view v = *s;
  if (v == "client_ip") return KeyPart{KeyPart::Kind::ClientIp, {}};
  if (v == "route") return KeyPart{KeyPart::Kind::Route, {}};
  if (v == "global") return KeyPart{KeyPart::Kind::Global, {}};
  auto colon = v.find(':');
  std::string_view prefix = v.substr(0, colon), name = colon == v.npos ? "" : v.substr(colon + 1);
  if (colon != v.npos && (prefix == "header" || prefix == "claim")) {
    if (name.empty()) {
      diag.error(n, path, "expected a " + std::string(prefix) + " name after \"" + std::string(prefix) + ":\"");
      return std::nullopt;
    }
    if (prefix == "header") {
      if (!std::all_of(name.begin(), name.end(), is_tchar)) {
        diag.error(n, path, "expected a header field name after \"header:\", got " + quote(name));
        return std::nullopt;
      }
      return KeyPart{KeyPart::Kind::Header, std::string(name)};
    }
    return KeyPart{KeyPart::Kind::Claim, std::string(name)};
  }
  std::vector<std::string> choices = {"client_ip", "route", "global"};
  if (colon != v.npos) {
    choices.push_back("header:" + std::string(name));
    choices.push_back("claim:" + std::string(name));
  }
  diag.error(n, path, unknown("key", v, choices, kShown));
  return std::nullopt;
}

template <class E>
std::optional<E> parse_enum(const YAML::Node& n, const std::string& path, std::string_view what,
                            const std::vector<std::pair<std::string, E>>& values, config::Diagnostics& diag) {
  std::vector<std::string> names;
  for (const auto& [name, value] : values) names.push_back(name);
  auto s = scalar(n, path, "one of: " + join(names), diag);
  if (!s) return std::nullopt;
  for (const auto& [name, value] : values)
    if (name == *s) return value;
  diag.error(n, path, unknown(what, *s, names, names));
  return std::nullopt;
}

}  // namespace

std::string_view to_string(Algorithm a) noexcept {
  switch (a) {
    case Algorithm::FixedWindow: return "fixed_window";
    case Algorithm::SlidingWindow: return "sliding_window";
    case Algorithm::TokenBucket: return "token_bucket";
  }
  return "fixed_window";
}

std::string KeyPart::to_string() const {
  switch (kind) {
    case Kind::ClientIp: return "client_ip";
    case Kind::Header: return "header:" + name;
    case Kind::Claim: return "claim:" + name;
    case Kind::Route: return "route";
    case Kind::Global: return "global";
  }
  return "client_ip";
}

std::string format_window(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  const std::int64_t ns = d.count();
  struct Unit {
    std::int64_t ns;
    const char* suffix;
  };
  static constexpr Unit kUnits[] = {{86'400'000'000'000, "d"}, {3'600'000'000'000, "h"}, {60'000'000'000, "m"},
                                    {1'000'000'000, "s"},       {1'000'000, "ms"}};
  for (const auto& u : kUnits)
    if (ns > 0 && ns % u.ns == 0) return std::to_string(ns / u.ns) + u.suffix;
  return std::to_string(ns) + "ns";
}

namespace {

constexpr const char* kRedisNeedsUrl = "store \"redis\" needs the top-level redis: redis://host:port";

// `top_level_redis`: whether the file sets `redis:`, or nullopt when the caller cannot tell
// (check_rate_limit_stores then checks `store: redis` against the whole file).
RateLimitConfig parse_entry(const config::PolicyConfig& entry, config::Diagnostics& diag,
                            std::optional<bool> top_level_redis) {
  RateLimitConfig out;
  const YAML::Node& n = entry.options;
  if (!n || !n.IsMap()) return out;
  static const std::vector<std::string> kKeys = {"type",  "limit",          "window", "key", "algorithm",
                                                 "store", "on_store_error", "message"};
  bool has_limit = false, has_window = false;
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    const std::string path = entry.path + "." + key;
    const YAML::Node& v = kv.second;
    if (key == "type") continue;
    if (key == "limit") {
      has_limit = true;
      const std::string bad = "expected a positive integer, got " + describe(v);
      if (!v.IsScalar()) {
        diag.error(v, path, bad);
        continue;
      }
      const std::string& s = v.Scalar();
      std::uint64_t value = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
      if (s.empty() || ec == std::errc::result_out_of_range) {
        diag.error(v, path, s.empty() ? bad : "expected a positive integer up to " + std::to_string(kMaxLimit) +
                                                  ", got " + describe(v));
      } else if (ec != std::errc() || end != s.data() + s.size() || value == 0) {
        diag.error(v, path, bad);
      } else if (value > kMaxLimit) {
        diag.error(v, path, "expected a positive integer up to " + std::to_string(kMaxLimit) + ", got " + s);
      } else {
        out.rule.limit = value;
      }
    } else if (key == "window") {
      has_window = true;
      auto s = scalar(v, path, "a duration like 15m, 30s or 1h", diag);
      if (!s) continue;
      auto d = parse_duration(*s);
      if (!d) {
        diag.error(v, path, "expected a duration like 15m, 30s or 1h, got " + describe(v));
      } else if (d->count() <= 0) {
        diag.error(v, path, "expected a duration greater than 0, got " + describe(v));
      } else if (*d > kMaxWindow) {
        diag.error(v, path, "expected a duration of at most 365d, got " + describe(v));
      } else {
        out.rule.window = std::chrono::duration_cast<std::chrono::nanoseconds>(*d);
      }
    } else if (key == "key") {
      std::vector<KeyPart> parts;
      bool ok = true;
      if (v.IsSequence()) {
        if (v.size() == 0) {
          diag.error(v, path, "expected a key or a non-empty list of keys, got an empty list");
          continue;
        }
        std::size_t i = 0;
        for (const auto& item : v) {
          std::string ipath = path + "[" + std::to_string(i++) + "]";
          auto part = parse_key_part(item, ipath, diag);
          if (!part) {
            ok = false;
            continue;
          }
          bool dup = std::any_of(parts.begin(), parts.end(), [&](const KeyPart& p) {
            return p.kind == part->kind && (p.kind == KeyPart::Kind::Header ? iequals(p.name, part->name)
                                                                             : p.name == part->name);
          });
          if (dup) {
            diag.error(item, ipath, "key " + quote(part->to_string()) + " is listed twice");
            ok = false;
            continue;
          }
          parts.push_back(std::move(*part));
        }
      } else if (auto part = parse_key_part(v, path, diag)) {
        parts.push_back(std::move(*part));
      } else {
        ok = false;
      }
      if (ok) out.key = std::move(parts);
    } else if (key == "algorithm") {
      auto a = parse_enum<Algorithm>(v, path, "algorithm",
                                     {{"fixed_window", Algorithm::FixedWindow},
                                      {"sliding_window", Algorithm::SlidingWindow},
                                      {"token_bucket", Algorithm::TokenBucket}},
                                     diag);
      if (a) out.rule.algorithm = *a;
    } else if (key == "store") {
      auto s = parse_enum<StoreKind>(v, path, "store", {{"memory", StoreKind::Memory}, {"redis", StoreKind::Redis}},
                                     diag);
      if (!s) continue;
      out.store_given = true;
      out.store = *s;
      if (*s == StoreKind::Redis && top_level_redis && !*top_level_redis)
        diag.error(v, path, kRedisNeedsUrl);
    } else if (key == "on_store_error") {
      auto e = parse_enum<OnStoreError>(v, path, "on_store_error",
                                        {{"allow", OnStoreError::Allow}, {"deny", OnStoreError::Deny}}, diag);
      if (e) out.on_store_error = *e;
    } else if (key == "message") {
      auto s = scalar(v, path, "a message text", diag);
      if (!s) continue;
      if (s->empty()) diag.error(v, path, "expected a non-empty message text");
      else out.message = *s;
    } else {
      diag.error(kv.first, path, unknown("option", key, kKeys, kKeys));
    }
  }
  const config::Mark at = entry.mark.line ? entry.mark : config::mark_of(n);
  if (!has_limit) diag.error(at, entry.path + ".limit", "missing; expected a positive integer");
  if (!has_window) diag.error(at, entry.path + ".window", "missing; expected a duration like 15m, 30s or 1h");
  if (top_level_redis && *top_level_redis && !out.store_given) out.store = StoreKind::Redis;
  return out;
}

}  // namespace

RateLimitConfig parse_rate_limit(const config::PolicyConfig& entry, config::Diagnostics& diag, bool top_level_redis) {
  return parse_entry(entry, diag, top_level_redis);
}

RateLimitConfig parse_rate_limit(const config::PolicyConfig& entry, config::Diagnostics& diag) {
  return parse_entry(entry, diag, std::nullopt);
}

void check_rate_limit_stores(const config::Config& cfg, config::Diagnostics& diag) {
  if (!cfg.redis.empty()) return;
  for (const auto& p : cfg.policies) {
    if (p.type != "rate_limit" || !p.options.IsMap()) continue;
    const YAML::Node store = p.options["store"];
    if (store && store.IsScalar() && store.Scalar() == "redis") diag.error(store, p.path + ".store", kRedisNeedsUrl);
  }
}

}  // namespace gh::policies
