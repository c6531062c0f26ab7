// RequestContext: what one request carries through the policy chain and the proxy loop.
// Thread: owned by the exchange of one request, on its worker; never shared.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/parser.h"
#include "proxy/snapshot.h"

namespace gh::proxy {

class Worker;

// A verified caller, written by an authenticating policy (jwt, api_key) and read by later ones
// (require_role, rate_limit keys, hash_on claim:NAME). Immutable once published.
struct Principal {
  struct Claim {
    std::string name;
    std::string text;                  // a string claim's value; otherwise the claim's JSON text
    bool is_string = false;
    std::vector<std::string> strings;  // the string elements, when the claim is an array
  };
  std::string subject;                 // `sub`, or the api_key consumer name
  std::string source;                  // the policy that verified it, e.g. "jwt"
  std::vector<Claim> claims;
  const Claim* claim(std::string_view name) const noexcept {
    for (const auto& c : claims)
      if (c.name == name) return &c;
    return nullptr;
  }
};

// The outcome of one rate limit for this request; the most restrictive one is kept and
// reported in RateLimit-* headers on the response.
struct RateLimitState {
  std::uint64_t limit = 0;
  std::uint64_t remaining = 0;
  std::uint64_t reset_seconds = 0;   // until the budget refills
  std::uint64_t window_seconds = 0;
};

class RequestContext {
 public:
  RequestContext(Worker& w, std::shared_ptr<const Snapshot> snap, const http::RequestHead& req)
      : worker_(w), snapshot_(std::move(snap)), request_(req) {}

  Worker& worker() const noexcept { return worker_; }
  const Snapshot& snapshot() const noexcept { return *snapshot_; }
  const http::RequestHead& request() const noexcept { return request_; }
  // The matched route, or nullptr before matching / when none matched.
  const CompiledRoute* route() const noexcept { return route_; }
  void set_route(const CompiledRoute* r) noexcept { route_ = r; }

  std::string_view client_ip() const noexcept { return client_ip_; }
  std::string_view request_id() const noexcept { return request_id_; }
  std::string_view normalized_path() const noexcept { return path_; }

  // Keeps a copy of `s` for the rest of the request and returns a view of it. Small strings go
  // in the context's own buffer, so a request usually allocates nothing for them.
  std::string_view keep(std::string_view s) {
    if (s.empty()) return {};
    if (s.size() <= inline_.size() - inline_used_) {
      char* at = inline_.data() + inline_used_;
      std::memcpy(at, s.data(), s.size());
      inline_used_ += s.size();
      return {at, s.size()};
    }
    return arena_.emplace_back(s);
  }

  std::chrono::steady_clock::time_point start;
  std::chrono::system_clock::time_point start_wall;

  // Filled in by the exchange as the request progresses; read by on_log and the access log.
  std::string client_ip_;
  std::string request_id_;
  std::string path_;                   // normalized
  const upstream::Endpoint* endpoint = nullptr;
  int status = 0;
  std::uint64_t bytes_in = 0;          // decoded request body bytes
  std::uint64_t bytes_out = 0;         // decoded response body bytes
  double upstream_ms = -1;             // < 0: no upstream was involved
  std::string_view reply_reason;       // local replies: the stable reason id
  bool logged = false;                 // the access-log line is written (exactly once)

  // The query the service receives (without '?') when a policy's on_upstream_request changed
  // it, e.g. to remove a credential; a view kept alive with keep(). nullopt: the request's own.
  // The exchange resets it before each attempt's on_upstream_request calls.
  std::optional<std::string_view> upstream_query;
  // The target the access log shows when a policy hid a credential in it (a token in the
  // query); empty: the request's own.
  std::string_view logged_target;

  // Typed slots shared between policies (no string-keyed bag).
  std::shared_ptr<const Principal> principal;
  std::optional<RateLimitState> rate_limit;

 private:
  Worker& worker_;
  std::shared_ptr<const Snapshot> snapshot_;
  const http::RequestHead& request_;
  const CompiledRoute* route_ = nullptr;
  std::array<char, 192> inline_;  // keep(): first the strings that fit here,
  std::size_t inline_used_ = 0;
  std::list<std::string> arena_;  // then a list: stable addresses, and no allocation while unused
};

}  // namespace gh::proxy
