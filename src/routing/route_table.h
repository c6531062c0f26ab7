// RouteTable: the compiled form of `routes:`; maps method + host + normalized path (+ headers) to the
// index of the route that serves the request.
// Thread: immutable after build(); shared by every worker through the config snapshot, read with no
// lock. match() allocates nothing (RE2 may grow its internal DFA cache, under its own lock).
// Failure: build() returns nullptr with a message when a pattern does not compile; match() cannot fail.
//
// Lookup cost does not grow with the number of routes:
// - exact paths: one hash lookup (string_view key, no copy);
// - prefixes: a segment trie with sorted children (binary search per path segment); the walk stops at
//   the deepest node on the path, and candidates are tried from there back up to the root;
// - regexes: a linear list in file order (routes rarely have many). With kRegexSetMin or more, one
//   RE2::Set pass first tells whether any regex matches at all, so a miss costs one scan of the path
//   instead of one per regex. A hit walks the list up to the first match that satisfies its
//   constraints; a regex whose possible matches (RE2::PossibleMatchRange) cannot include the path
//   is skipped with two string compares, so the walk is cheap when regexes start with ^ and literals.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <re2/re2.h>
#include <re2/set.h>

#include "config/config.h"
#include "http/fields.h"

namespace gh::routing {

// Regex routes needed before the RE2::Set pre-filter pays for itself.
constexpr std::size_t kRegexSetMin = 4;

struct MatchInput {
  std::string_view method;               // upper case as sent
  std::string_view host;                 // Host header value, may carry :port (ignored when matching)
  std::string_view path;                 // already normalized (normalize_path), no query
  const http::Fields* fields = nullptr;  // request headers, for `headers` matches; null = none
};

class RouteTable {
 public:
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;

  // Compiles `routes` (in file order). Exact and prefix patterns are normalized like request paths
  // (so "/api//v1/" is the prefix "/api/v1"). Returns nullptr and sets *error (when not null) if a
  // regex does not compile or a pattern cannot be normalized; config validation already checks
  // these, so this is a safety net.
  static std::shared_ptr<const RouteTable> build(const std::vector<config::RouteConfig>& routes,
                                                 std::string* error);

  // Index of the matched route in the vector given to build(), or -1 (the caller answers 404).
  // The most specific candidate wins: an exact match, then the longest prefix (whole segments:
  // /api/users matches /api/users and /api/users/42, not /api/usersX; "/" matches everything),
  // then regexes in file order; among equally specific candidates the earlier route wins.
  // A regex is searched in the path (RE2 partial match): `^/v2/orders/` matches /v2/orders/abc;
  // anchor with ^ and $ for a whole-path match.
  // A candidate must also satisfy its constraints, otherwise the next candidate in that order is
  // tried:
  // - methods: empty = any; exact, case-sensitive; a route allowing GET also allows HEAD;
  // - host: the request's Host without its port (and without one trailing dot), compared
  //   case-insensitively; "*.example.com" matches one or more labels before ".example.com"
  //   (a.example.com, a.b.example.com), never example.com itself; a request without Host matches
  //   only routes without a host;
  // - headers: every listed header must be present; its first occurrence's value must equal the
  //   configured value exactly, or fully match the RE2 pattern.
  int match(const MatchInput& in) const;

  // Number of routes given to build().
  std::size_t size() const { return routes_.size(); }

  // The normalized prefix of route `index` ("/api/users"; "/" for the root), to pass to
  // strip_prefix(); empty for exact and regex routes.
  // REQUIRES: 0 <= index < size().
  std::string_view prefix(int index) const;

 private:
  struct HeaderRule {
    std::string name;
    std::string value;               // exact value, when regex is null
    std::unique_ptr<re2::RE2> regex;
  };
  struct Route {
    config::MatchKind kind = config::MatchKind::Prefix;
    std::string prefix;              // normalized; prefix routes only
    std::unique_ptr<re2::RE2> path_regex;  // regex routes only
    // Every path path_regex is found in lies in [path_min, path_max] (byte order): a cheap test
    // that skips most ^-anchored regexes with a literal start. Unbounded when has_range is false.
    std::string path_min, path_max;
    bool has_range = false;
    std::vector<std::string> methods;
    bool allows_head = false;        // methods is empty, or lists HEAD or GET
    std::string host;                // lower case; empty = any
    bool host_wildcard = false;      // host is ".example.com" (written "*.example.com")
    std::vector<HeaderRule> headers;
  };
  struct Node {
    std::uint32_t parent = 0;        // the root is its own parent
    std::vector<std::pair<std::string, std::uint32_t>> children;  // sorted by segment
    std::vector<int> routes;         // prefix routes ending here, in file order
  };
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  RouteTable() = default;
  std::uint32_t child_of(std::uint32_t node, std::string_view segment) const;
  std::uint32_t deepest_node(std::string_view path) const;
  bool any_regex_may_match(std::string_view path) const;
  static bool accepts(const Route& r, const MatchInput& in, std::string_view host);

  std::vector<Route> routes_;  // in file order
  std::unordered_map<std::string, std::vector<int>, StringHash, std::equal_to<>> exact_;
  std::vector<Node> nodes_;    // prefix trie; nodes_[0] is the root ("/")
  std::vector<int> regex_;     // regex routes, in file order
  std::unique_ptr<re2::RE2::Set> regex_set_;  // over regex_ (same order); null below kRegexSetMin
};

// For strip_prefix: `path` with the route's `prefix` removed ("/api/users/42" with prefix
// "/api/users" -> "/42"; exactly the prefix, or the prefix plus "/" -> "/"; prefix "/" -> path
// unchanged). Matching is on whole segments, as in RouteTable::match; a trailing slash on the prefix
// is ignored. Returns `path` unchanged when the prefix does not match it. The query is the
// caller's. The result views `path` (or a static "/").
std::string_view strip_prefix(std::string_view path, std::string_view prefix);

}  // namespace gh::routing
