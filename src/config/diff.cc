// ConfigDiff: see diff.h for what is compared and why field tables.

#include "config/diff.h"

#include <boost/pfr.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

#include "core/json.h"

namespace gh::config {

namespace {

// ---- field tables -----------------------------------------------------------------------------
//
// FieldNames<T>::names holds one entry per field of T, in declaration order:
//   "path"     a leaf, reported as PREFIX + "path" when the two values differ;
//   "prefix."  a nested struct (or an optional one), walked with PREFIX + "prefix." in front;
//              when only one side has it, reported as PREFIX + "prefix";
//   ""         not compared: an item's own key, a position in the file, or a part that is
//              compared by hand (said beside it).
// Two fields may share one name (e.g. a listener's host and port are both its "address").

template <class T>
struct FieldNames;

template <>
struct FieldNames<CertificateConfig> {
  static constexpr std::array<std::string_view, 3> names{"cert", "key", ""};
};

template <>
struct FieldNames<TlsConfig> {
  static constexpr std::array<std::string_view, 10> names{
      "certificates", "min_version",       "alpn",         "sni_strict", "client_ca", "client_auth",
      "session_tickets", "handshake_timeout", "reload_check", ""};
};

template <>
struct FieldNames<ListenerConfig> {
  // host and port are the listener's key.
  static constexpr std::array<std::string_view, 5> names{"", "", "tls.", "h2c", ""};
};

template <>
struct FieldNames<AdminConfig> {
  static constexpr std::array<std::string_view, 4> names{"address", "address", "token", ""};
};

template <>
struct FieldNames<Http2Limits> {
  static constexpr std::array<std::string_view, 4> names{"max_concurrent_streams", "stream_window",
                                                         "connection_window", "idle_timeout"};
};

template <>
struct FieldNames<Limits> {
  static constexpr std::array<std::string_view, 13> names{
      "max_uri_bytes", "max_header_bytes", "max_headers",     "max_body_bytes",
      "header_timeout", "body_timeout",    "min_body_rate",   "idle_timeout",
      "drain_timeout",  "max_connections", "underscores_in_headers", "websocket_idle_timeout", "http2."};
};

template <>
struct FieldNames<InstanceConfig> {
  // host and port are parsed from url; compared too, they cannot disagree with it.
  static constexpr std::array<std::string_view, 7> names{"url", "host", "port", "weight", "url", "url", ""};
};

template <>
struct FieldNames<UpstreamTlsConfig> {
  static constexpr std::array<std::string_view, 6> names{"ca", "verify", "server_name", "client_cert", "client_key",
                                                         ""};
};

template <>
struct FieldNames<HashOn> {
  static constexpr std::array<std::string_view, 2> names{"kind", "name"};
};

template <>
struct FieldNames<HealthCheckConfig> {
  static constexpr std::array<std::string_view, 6> names{"path",    "expected_status", "interval",
                                                         "timeout", "healthy_after",   "unhealthy_after"};
};

template <>
struct FieldNames<RetryConfig> {
  // `retry_on` in the file sets both on_connect_failure and on_status.
  static constexpr std::array<std::string_view, 3> names{"attempts", "retry_on", "retry_on"};
};

template <>
struct FieldNames<ServiceConfig> {
  static constexpr std::array<std::string_view, 15> names{
      "",                  // name: the key
      "instances",     "load_balancing",   "hash_on",       "health_check.", "timeouts.connect",
      "timeouts.response", "timeouts.idle", "retries.",     "protocol",      "tls.",
      "preserve_host", "max_in_flight", "dns_refresh",
      ""};                 // mark
};

template <>
struct FieldNames<HeaderMatch> {
  static constexpr std::array<std::string_view, 3> names{"name", "value", "regex"};
};

template <>
struct FieldNames<RouteConfig> {
  static constexpr std::array<std::string_view, 12> names{
      "",  // name: the key
      "",  // kind: with pattern, by hand in route_fields (the key a user writes: path, exact or regex)
      "",  // pattern: ditto
      "methods", "host", "headers", "strip_prefix", "service", "policies", "websocket", "websocket_idle_timeout",
      ""};  // mark
};

template <>
struct FieldNames<LogConfig> {
  static constexpr std::array<std::string_view, 2> names{"level", "format"};
};

template <>
struct FieldNames<Config> {
  static constexpr std::array<std::string_view, 15> names{
      "",                  // file: where each came from is not a change
      "",                  // listeners: their own section
      "admin.",        "workers",     "redis", "trusted_proxies", "limits.", "health_endpoint", "access_log", "log.",
      "",                  // services: their own section
      "",                  // policies: their own section
      "defaults.policies",
      "",                  // routes: their own section
      ""};                 // document: the parsed file, compared through the fields above
};

// PolicyConfig is compared by hand (policy_fields): its options stay YAML and `built` is derived
// from them. Its fields: name (the key), type (also in options), options, path and mark
// (positions), built.
static_assert(boost::pfr::tuple_size_v<PolicyConfig> == 6,
              "PolicyConfig gained or lost a field: compare it in policy_fields (src/config/diff.cc)");

template <class T>
concept Described = requires { FieldNames<T>::names; };

template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};

template <class T>
struct IsVector : std::false_type {};
template <class T, class A>
struct IsVector<std::vector<T, A>> : std::true_type {};

constexpr bool nested(std::string_view name) {
  return !name.empty() && name.back() == '.';
}

// A table fits its struct: one name per field, and a nested name only on a struct with a table.
template <class T>
consteval bool table_fits() {
  if (FieldNames<T>::names.size() != boost::pfr::tuple_size_v<T>) return false;
  return []<std::size_t... I>(std::index_sequence<I...>) {
    auto ok = []<std::size_t J>(std::integral_constant<std::size_t, J>) {
      using F = boost::pfr::tuple_element_t<J, T>;
      if (!nested(FieldNames<T>::names[J])) return true;
      if constexpr (IsOptional<F>::value) return Described<typename F::value_type>;
      else return Described<F>;
    };
    return (ok(std::integral_constant<std::size_t, I>{}) && ...);
  }(std::make_index_sequence<boost::pfr::tuple_size_v<T>>{});
}

#define GH_DIFF_TABLE_FITS(T)                                                                       \
  static_assert(table_fits<T>(), #T " gained or lost a field, or names a nested field wrongly: "   \
                                 "name each field in FieldNames<" #T "> (src/config/diff.cc)")
GH_DIFF_TABLE_FITS(CertificateConfig);
GH_DIFF_TABLE_FITS(TlsConfig);
GH_DIFF_TABLE_FITS(UpstreamTlsConfig);
GH_DIFF_TABLE_FITS(ListenerConfig);
GH_DIFF_TABLE_FITS(AdminConfig);
GH_DIFF_TABLE_FITS(Http2Limits);
GH_DIFF_TABLE_FITS(Limits);
GH_DIFF_TABLE_FITS(InstanceConfig);
GH_DIFF_TABLE_FITS(HashOn);
GH_DIFF_TABLE_FITS(HealthCheckConfig);
GH_DIFF_TABLE_FITS(RetryConfig);
GH_DIFF_TABLE_FITS(ServiceConfig);
GH_DIFF_TABLE_FITS(HeaderMatch);
GH_DIFF_TABLE_FITS(RouteConfig);
GH_DIFF_TABLE_FITS(LogConfig);
GH_DIFF_TABLE_FITS(Config);
#undef GH_DIFF_TABLE_FITS

// ---- comparing --------------------------------------------------------------------------------

void add(std::vector<std::string>& out, std::string field) {
  if (std::find(out.begin(), out.end(), field) == out.end()) out.push_back(std::move(field));
}

template <class T>
bool same(const T& a, const T& b);

template <class T, std::size_t... I>
bool same_fields(const T& a, const T& b, std::index_sequence<I...>) {
  auto one = [&]<std::size_t J>(std::integral_constant<std::size_t, J>) {
    if constexpr (FieldNames<T>::names[J].empty()) return true;
    else return same(boost::pfr::get<J>(a), boost::pfr::get<J>(b));
  };
  return (one(std::integral_constant<std::size_t, I>{}) && ...);
}

// Equal as configuration: every compared field of a struct, element by element in a list.
template <class T>
bool same(const T& a, const T& b) {
  if constexpr (IsOptional<T>::value) {
    if (a.has_value() != b.has_value()) return false;
    return !a || same(*a, *b);
  } else if constexpr (IsVector<T>::value) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!same(a[i], b[i])) return false;
    return true;
  } else if constexpr (Described<T>) {
    return same_fields(a, b, std::make_index_sequence<boost::pfr::tuple_size_v<T>>{});
  } else {
    return a == b;
  }
}

template <class T>
void diff_fields(const T& a, const T& b, const std::string& prefix, std::vector<std::string>& out);

template <class T, std::size_t I>
void diff_field(const T& a, const T& b, const std::string& prefix, std::vector<std::string>& out) {
  constexpr std::string_view name = FieldNames<T>::names[I];
  if constexpr (!name.empty()) {
    using F = boost::pfr::tuple_element_t<I, T>;
    const F& fa = boost::pfr::get<I>(a);
    const F& fb = boost::pfr::get<I>(b);
    if constexpr (nested(name)) {
      const std::string inner = prefix + std::string(name);
      if constexpr (IsOptional<F>::value) {
        if (fa && fb) diff_fields(*fa, *fb, inner, out);
        else if (fa.has_value() != fb.has_value()) add(out, inner.substr(0, inner.size() - 1));
      } else {
        diff_fields(fa, fb, inner, out);
      }
    } else if (!same(fa, fb)) {
      add(out, prefix + std::string(name));
    }
  }
}

// Appends to OUT the paths (PREFIX + name) of the fields that differ, in declaration order.
template <class T>
void diff_fields(const T& a, const T& b, const std::string& prefix, std::vector<std::string>& out) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (diff_field<T, I>(a, b, prefix, out), ...);
  }(std::make_index_sequence<boost::pfr::tuple_size_v<T>>{});
}

// ---- YAML (policy options) --------------------------------------------------------------------

std::string key_text(const YAML::Node& key) { return key.IsScalar() ? key.Scalar() : YAML::Dump(key); }

std::vector<std::pair<std::string, YAML::Node>> entries(const YAML::Node& map) {
  std::vector<std::pair<std::string, YAML::Node>> out;
  for (auto it = map.begin(); it != map.end(); ++it) out.emplace_back(key_text(it->first), it->second);
  return out;
}

const YAML::Node* find_entry(const std::vector<std::pair<std::string, YAML::Node>>& list, const std::string& key) {
  for (const auto& [k, v] : list)
    if (k == key) return &v;
  return nullptr;
}

bool is_nothing(const YAML::Node& n) { return !n.IsDefined() || n.IsNull(); }

// Equal as written: scalars by text and tag (`10` and `"10"` differ), lists element by element,
// mappings by key whatever their order.
bool same_node(const YAML::Node& a, const YAML::Node& b) {
  if (is_nothing(a) || is_nothing(b)) return is_nothing(a) && is_nothing(b);
  if (a.Type() != b.Type()) return false;
  if (a.IsScalar()) return a.Scalar() == b.Scalar() && a.Tag() == b.Tag();
  if (a.IsSequence()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!same_node(a[i], b[i])) return false;
    return true;
  }
  auto ea = entries(a), eb = entries(b);
  if (ea.size() != eb.size()) return false;
  for (const auto& [key, value] : ea) {
    const YAML::Node* other = find_entry(eb, key);
    if (!other || !same_node(value, *other)) return false;
  }
  return true;
}

// The keys of two mappings whose values differ: the new mapping's order, then keys only the old
// one has. Values are compared whole, never followed into: below the option names, a mapping's
// keys can be data, and secret (api_key's `keys` maps each API key to its consumer).
void diff_options(const YAML::Node& a, const YAML::Node& b, std::vector<std::string>& out) {
  auto ea = entries(a), eb = entries(b);
  for (const auto& [key, value] : eb) {
    const YAML::Node* old = find_entry(ea, key);
    if (!old || !same_node(*old, value)) add(out, key);
  }
  for (const auto& [key, value] : ea)
    if (!find_entry(eb, key)) add(out, key);
}

// ---- items ------------------------------------------------------------------------------------

std::string_view match_key(MatchKind k) {
  switch (k) {
    case MatchKind::Prefix: return "path";
    case MatchKind::Exact: return "exact";
    case MatchKind::Regex: return "regex";
  }
  return "path";
}

std::vector<std::string> route_fields(const RouteConfig& a, const RouteConfig& b) {
  std::vector<std::string> out;
  if (a.kind != b.kind) {
    add(out, std::string(match_key(a.kind)));
    add(out, std::string(match_key(b.kind)));
  } else if (a.pattern != b.pattern) {
    add(out, std::string(match_key(b.kind)));
  }
  diff_fields(a, b, "", out);
  return out;
}

std::vector<std::string> service_fields(const ServiceConfig& a, const ServiceConfig& b) {
  std::vector<std::string> out;
  diff_fields(a, b, "", out);
  return out;
}

std::vector<std::string> policy_fields(const PolicyConfig& a, const PolicyConfig& b) {
  std::vector<std::string> out;
  if (a.type != b.type) add(out, "type");
  if (a.options.IsMap() && b.options.IsMap()) diff_options(a.options, b.options, out);
  else if (!same_node(a.options, b.options)) add(out, "options");
  return out;
}

std::vector<std::string> listener_fields(const ListenerConfig& a, const ListenerConfig& b) {
  std::vector<std::string> out;
  diff_fields(a, b, "", out);
  return out;
}

std::string listener_address(const ListenerConfig& l) {
  if (l.host.find(':') != std::string::npos) return "[" + l.host + "]:" + std::to_string(l.port);
  return l.host + ":" + std::to_string(l.port);
}

// The indexes of a longest strictly increasing subsequence of V.
std::vector<std::size_t> longest_increasing(const std::vector<std::size_t>& v) {
  std::vector<std::size_t> tails;                    // index in v of the smallest tail per length
  std::vector<std::size_t> prev(v.size(), SIZE_MAX);
  for (std::size_t i = 0; i < v.size(); ++i) {
    auto pos =
        std::lower_bound(tails.begin(), tails.end(), v[i], [&](std::size_t t, std::size_t x) { return v[t] < x; });
    if (pos != tails.begin()) prev[i] = *(pos - 1);
    if (pos == tails.end()) tails.push_back(i);
    else *pos = i;
  }
  std::vector<std::size_t> out;
  for (std::size_t i = tails.empty() ? SIZE_MAX : tails.back(); i != SIZE_MAX; i = prev[i]) out.push_back(i);
  std::reverse(out.begin(), out.end());
  return out;
}

// Pairs the items of two lists by key and reports what was added, removed and changed. With
// `order`, an item that moved relative to the others both lists hold also gets the field "order".
template <class T, class KeyFn, class FieldsFn>
SectionDiff diff_section(const std::vector<T>& before, const std::vector<T>& after, KeyFn key, FieldsFn fields,
                         bool order = false) {
  std::map<std::string, std::vector<std::size_t>> old_by_key;
  for (std::size_t i = 0; i < before.size(); ++i) old_by_key[key(before[i])].push_back(i);

  // after index -> before index; items sharing a key pair with an identical one first, then in order.
  std::vector<std::optional<std::size_t>> pair(after.size());
  std::vector<bool> old_taken(before.size(), false);
  std::map<std::string, std::vector<std::size_t>> new_by_key;
  for (std::size_t i = 0; i < after.size(); ++i) new_by_key[key(after[i])].push_back(i);
  for (const auto& [k, news] : new_by_key) {
    auto it = old_by_key.find(k);
    if (it == old_by_key.end()) continue;
    const std::vector<std::size_t>& olds = it->second;
    if (olds.size() > 1 || news.size() > 1) {
      for (std::size_t n : news)
        for (std::size_t o : olds)
          if (!old_taken[o] && fields(before[o], after[n]).empty()) {
            pair[n] = o;
            old_taken[o] = true;
            break;
          }
    }
    for (std::size_t n : news) {
      if (pair[n]) continue;
      for (std::size_t o : olds)
        if (!old_taken[o]) {
          pair[n] = o;
          old_taken[o] = true;
          break;
        }
    }
  }

  std::vector<bool> moved(after.size(), false);
  if (order) {
    std::vector<std::size_t> paired_new, old_index;  // in the new order
    for (std::size_t n = 0; n < after.size(); ++n)
      if (pair[n]) paired_new.push_back(n), old_index.push_back(*pair[n]);
    std::vector<bool> kept(paired_new.size(), false);
    for (std::size_t i : longest_increasing(old_index)) kept[i] = true;
    for (std::size_t i = 0; i < paired_new.size(); ++i)
      if (!kept[i]) moved[paired_new[i]] = true;
  }

  SectionDiff d;
  for (std::size_t n = 0; n < after.size(); ++n) {
    if (!pair[n]) {
      d.added.push_back(key(after[n]));
      continue;
    }
    std::vector<std::string> f = fields(before[*pair[n]], after[n]);
    if (moved[n]) add(f, "order");
    if (!f.empty()) d.changed.push_back(ItemChange{key(after[n]), std::move(f)});
  }
  for (std::size_t o = 0; o < before.size(); ++o)
    if (!old_taken[o]) d.removed.push_back(key(before[o]));
  return d;
}

// ---- output -----------------------------------------------------------------------------------

void append_strings(std::string& out, const std::vector<std::string>& list) {
  out += '[';
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, list[i]);
  }
  out += ']';
}

void append_section(std::string& out, std::string_view name, const SectionDiff& s) {
  out += '"';
  out += name;
  out += "\":{\"added\":";
  append_strings(out, s.added);
  out += ",\"removed\":";
  append_strings(out, s.removed);
  out += ",\"changed\":[";
  for (std::size_t i = 0; i < s.changed.size(); ++i) {
    if (i) out += ',';
    out += "{\"name\":";
    append_json_string(out, s.changed[i].name);
    out += ",\"fields\":";
    append_strings(out, s.changed[i].fields);
    out += '}';
  }
  out += "]}";
}

std::string join(const std::vector<std::string>& list, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (i) out += sep;
    out += list[i];
  }
  return out;
}

std::string section_summary(std::string_view name, const SectionDiff& s) {
  std::vector<std::string> parts;
  for (const auto& a : s.added) parts.push_back("+" + a);
  for (const auto& r : s.removed) parts.push_back("-" + r);
  for (const auto& c : s.changed) parts.push_back("~" + c.name + "(" + join(c.fields, ",") + ")");
  return std::string(name) + ": " + join(parts, " ");
}

}  // namespace

ConfigDiff diff_configs(const Config& before, const Config& after) {
  ConfigDiff d;
  d.routes = diff_section(
      before.routes, after.routes, [](const RouteConfig& r) { return r.name; }, route_fields, true);
  d.services = diff_section(
      before.services, after.services, [](const ServiceConfig& s) { return s.name; }, service_fields);
  d.policies = diff_section(
      before.policies, after.policies, [](const PolicyConfig& p) { return p.name; }, policy_fields);
  d.listeners = diff_section(before.listeners, after.listeners, listener_address, listener_fields);
  diff_fields(before, after, "", d.settings);
  return d;
}

std::string diff_json(const ConfigDiff& d) {
  std::string out = "{";
  append_section(out, "routes", d.routes);
  out += ',';
  append_section(out, "services", d.services);
  out += ',';
  append_section(out, "policies", d.policies);
  out += ',';
  append_section(out, "listeners", d.listeners);
  out += ",\"settings\":{\"changed\":";
  append_strings(out, d.settings);
  out += "}}";
  return out;
}

std::string diff_summary(const ConfigDiff& d) {
  std::vector<std::string> parts;
  for (auto [name, section] : {std::pair<std::string_view, const SectionDiff*>{"routes", &d.routes},
                               {"services", &d.services},
                               {"policies", &d.policies},
                               {"listeners", &d.listeners}})
    if (!section->empty()) parts.push_back(section_summary(name, *section));
  if (!d.settings.empty()) parts.push_back("settings: " + join(d.settings, ", "));
  return parts.empty() ? std::string("no changes") : join(parts, "; ");
}

}  // namespace gh::config
