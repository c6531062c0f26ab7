#include "routing/route_table.h"

#include <algorithm>
#include <utility>

#include "core/strings.h"
#include "routing/normalize.h"

namespace gh::routing {
namespace {

RE2::Options regex_options() {
  RE2::Options o;
  o.set_log_errors(false);  // errors are returned to the caller
  return o;
}

// Host without its port and without one trailing dot: "Api.Example.com.:8080" -> "Api.Example.com".
std::string_view host_name(std::string_view host) noexcept {
  if (!host.empty() && host.front() == '[') {  // IPv6 literal
    const std::size_t close = host.find(']');
    host = close == std::string_view::npos ? host : host.substr(0, close + 1);
  } else if (const std::size_t colon = host.find(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return host;
}

// Calls f(segment) for each non-empty segment of `path`; stops early when f returns false.
template <class F>
void for_each_segment(std::string_view path, F&& f) {
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i && !f(path.substr(i, j - i))) return;
    i = j + 1;
  }
}

std::string route_error(std::size_t index, const config::RouteConfig& rc, std::string_view what) {
  std::string out = "routes[" + std::to_string(index) + "]";
  if (!rc.name.empty()) out += " (" + rc.name + ")";
  out += ": ";
  out += what;
  return out;
}

constexpr std::uint32_t kRoot = 0;
constexpr std::uint32_t kNoNode = UINT32_MAX;
constexpr int kRangeBytes = 64;  // precision of a regex route's [path_min, path_max]

}  // namespace

std::shared_ptr<const RouteTable> RouteTable::build(const std::vector<config::RouteConfig>& routes,
                                                    std::string* error) {
  auto fail = [&](std::string message) -> std::shared_ptr<const RouteTable> {
    if (error) *error = std::move(message);
    return nullptr;
  };

  std::shared_ptr<RouteTable> t(new RouteTable());
  t->routes_.reserve(routes.size());
  t->nodes_.emplace_back();  // root
  std::vector<std::string> regex_patterns;
  std::string normalized;

  for (std::size_t i = 0; i < routes.size(); ++i) {
    const config::RouteConfig& rc = routes[i];
    const int index = static_cast<int>(i);
    Route r;
    r.kind = rc.kind;

    switch (rc.kind) {
      case config::MatchKind::Exact:
        if (!normalize_path(rc.pattern, normalized))
          return fail(route_error(i, rc, "exact path \"" + rc.pattern + "\" cannot be normalized"));
        t->exact_[normalized].push_back(index);
        break;
      case config::MatchKind::Prefix: {
        if (!normalize_path(rc.pattern, normalized))
          return fail(route_error(i, rc, "path prefix \"" + rc.pattern + "\" cannot be normalized"));
        if (normalized.size() > 1 && normalized.back() == '/') normalized.pop_back();
        r.prefix = normalized;
        std::uint32_t node = kRoot;
        for_each_segment(normalized, [&](std::string_view seg) {
          auto& children = t->nodes_[node].children;
          auto it = std::lower_bound(children.begin(), children.end(), seg,
                                     [](const auto& c, std::string_view s) { return c.first < s; });
          if (it != children.end() && it->first == seg) {
            node = it->second;
          } else {
            const auto next = static_cast<std::uint32_t>(t->nodes_.size());
            children.insert(it, {std::string(seg), next});  // before push_back, which may move `children`
            Node child;
            child.parent = node;
            t->nodes_.push_back(std::move(child));
            node = next;
          }
          return true;
        });
        t->nodes_[node].routes.push_back(index);
        break;
      }
      case config::MatchKind::Regex:
        r.path_regex = std::make_unique<RE2>(rc.pattern, regex_options());
        if (!r.path_regex->ok())
          return fail(route_error(i, rc, "invalid regex \"" + rc.pattern + "\": " + r.path_regex->error()));
        // Searched, not fully matched (SPEC §2): only a pattern anchored with ^ bounds where a
        // matching path can start, so only those get a range, computed for "(?:P).*" (what a
        // search anchored at the start matches).
        if (rc.pattern.starts_with('^')) {
          RE2 anchored("(?:" + rc.pattern + ").*", regex_options());
          r.has_range = anchored.ok() && anchored.PossibleMatchRange(&r.path_min, &r.path_max, kRangeBytes);
        }
        t->regex_.push_back(index);
        regex_patterns.push_back(rc.pattern);
        break;
    }

    r.methods = rc.methods;
    r.allows_head = rc.methods.empty() ||
                    std::any_of(rc.methods.begin(), rc.methods.end(),
                                [](const std::string& m) { return m == "GET" || m == "HEAD"; });

    if (!rc.host.empty()) {
      std::string_view host = rc.host;
      if (host.starts_with("*.")) {
        host.remove_prefix(1);  // keep the dot: ".example.com"
        r.host_wildcard = true;
      }
      if (host.size() > 1 && host.back() == '.') host.remove_suffix(1);
      r.host = to_lower(host);
    }

    for (const config::HeaderMatch& h : rc.headers) {
      HeaderRule rule;
      rule.name = h.name;
      if (h.regex) {
        rule.regex = std::make_unique<RE2>(h.value, regex_options());
        if (!rule.regex->ok())
          return fail(route_error(i, rc, "header " + h.name + ": invalid regex \"" + h.value +
                                             "\": " + rule.regex->error()));
      } else {
        rule.value = h.value;
      }
      r.headers.push_back(std::move(rule));
    }
    t->routes_.push_back(std::move(r));
  }

  if (regex_patterns.size() >= kRegexSetMin) {
    auto set = std::make_unique<RE2::Set>(regex_options(), RE2::UNANCHORED);
    for (const std::string& p : regex_patterns) {
      std::string message;
      if (set->Add(p, &message) < 0) return fail("route regex set: \"" + p + "\": " + message);
    }
    // Without the set (out of memory compiling it), every regex is simply tried in turn.
    if (set->Compile()) t->regex_set_ = std::move(set);
  }
  return t;
}

std::uint32_t RouteTable::child_of(std::uint32_t node, std::string_view segment) const {
  const auto& children = nodes_[node].children;
  auto it = std::lower_bound(children.begin(), children.end(), segment,
                             [](const auto& c, std::string_view s) { return c.first < s; });
  return it != children.end() && it->first == segment ? it->second : kNoNode;
}

std::uint32_t RouteTable::deepest_node(std::string_view path) const {
  std::uint32_t node = kRoot;
  for_each_segment(path, [&](std::string_view seg) {
    const std::uint32_t next = child_of(node, seg);
    if (next == kNoNode) return false;
    node = next;
    return true;
  });
  return node;
}

bool RouteTable::any_regex_may_match(std::string_view path) const {
  if (!regex_set_) return true;
  RE2::Set::ErrorInfo info{RE2::Set::kNoError};
  if (regex_set_->Match(path, nullptr, &info)) return true;
  return info.kind != RE2::Set::kNoError;  // the DFA gave up: let the list decide
}

bool RouteTable::accepts(const Route& r, const MatchInput& in, std::string_view host) {
  if (!r.methods.empty()) {
    const bool ok = (in.method == "HEAD" && r.allows_head) ||
                    std::find(r.methods.begin(), r.methods.end(), in.method) != r.methods.end();
    if (!ok) return false;
  }
  if (!r.host.empty()) {
    if (r.host_wildcard) {
      // At least one label before the suffix: "a.example.com" for ".example.com".
      if (host.size() <= r.host.size() || !iequals(host.substr(host.size() - r.host.size()), r.host))
        return false;
    } else if (!iequals(host, r.host)) {
      return false;
    }
  }
  for (const HeaderRule& h : r.headers) {
    if (!in.fields) return false;
    const http::Field* found = nullptr;
    for (const http::Field& f : *in.fields) {
      if (iequals(f.name, h.name)) {
        found = &f;
        break;
      }
    }
    if (!found) return false;
    if (h.regex ? !RE2::FullMatch(found->value, *h.regex) : found->value != h.value) return false;
  }
  return true;
}

int RouteTable::match(const MatchInput& in) const {
  const std::string_view host = host_name(in.host);

  if (!exact_.empty()) {
    if (auto it = exact_.find(in.path); it != exact_.end()) {
      for (int i : it->second)
        if (accepts(routes_[i], in, host)) return i;
    }
  }

  // Deepest prefix first, then each shorter one up to the root.
  for (std::uint32_t node = deepest_node(in.path);; node = nodes_[node].parent) {
    for (int i : nodes_[node].routes)
      if (accepts(routes_[i], in, host)) return i;
    if (node == kRoot) break;
  }

  if (!regex_.empty() && any_regex_may_match(in.path)) {
    for (int i : regex_) {
      const Route& r = routes_[i];
      if (r.has_range && (in.path < r.path_min || in.path > r.path_max)) continue;
      if (accepts(r, in, host) && RE2::PartialMatch(in.path, *r.path_regex)) return i;
    }
  }
  return -1;
}

std::string_view RouteTable::prefix(int index) const { return routes_[static_cast<std::size_t>(index)].prefix; }

std::string_view strip_prefix(std::string_view path, std::string_view prefix) {
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  if (prefix.empty()) return path;  // "/": nothing to strip
  if (!path.starts_with(prefix)) return path;
  if (path.size() == prefix.size()) return "/";
  if (path[prefix.size()] != '/') return path;  // "/api/usersX" is not under "/api/users"
  return path.substr(prefix.size());
}

}  // namespace gh::routing
