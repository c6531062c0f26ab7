#include "admin/events.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <ctime>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "proxy/metrics.h"

namespace gh::admin {

namespace {

using core::Histogram;

std::string key(std::string_view family, std::string_view label_text) {
  std::string k(family);
  k += '{';
  k += label_text;
  return k;
}

std::string_view label(const core::Labels& labels, std::string_view name) {
  for (const auto& [n, v] : labels)
    if (n == name) return v;
  return {};
}

// `v` with at most `decimals` decimals and no trailing zeros: 120, 0.25, 1.333.
void append_number(std::string& out, double v, int decimals) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  std::string s = fmt::format("{:.{}f}", v, decimals);
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  out += s;
}

void append_optional_ms(std::string& out, std::optional<double> ms) {
  if (ms) append_number(out, *ms, 3);
  else out += "null";
}

// What one interval holds for a set of requests: counts by status class and durations.
struct Tally {
  std::array<std::uint64_t, 5> classes{};  // by proxy::status_class
  Histogram::Data duration;
  std::uint64_t requests() const noexcept {
    std::uint64_t n = 0;
    for (auto c : classes) n += c;
    return n;
  }
  void add_duration(const Histogram::Data& d) {
    for (std::size_t i = 0; i < Histogram::kBuckets; ++i) duration.buckets[i] += d.buckets[i];
    duration.sum += d.sum;
  }
};

// "rps", "error_rate_4xx", "error_rate_5xx", "p50_ms", "p99_ms" of a tally over `seconds`.
void append_rates(std::string& out, const Tally& t, double seconds) {
  const std::uint64_t n = t.requests();
  out += "\"rps\":";
  append_number(out, seconds > 0 ? static_cast<double>(n) / seconds : 0.0, 3);
  out += ",\"error_rate_4xx\":";
  append_number(out, n ? static_cast<double>(t.classes[3]) / static_cast<double>(n) : 0.0, 4);
  out += ",\"error_rate_5xx\":";
  append_number(out, n ? static_cast<double>(t.classes[4]) / static_cast<double>(n) : 0.0, 4);
  out += ",\"p50_ms\":";
  append_optional_ms(out, EventsSummarizer::quantile_ms(t.duration, 0.5));
  out += ",\"p99_ms\":";
  append_optional_ms(out, EventsSummarizer::quantile_ms(t.duration, 0.99));
}

// RFC 3339 in UTC with milliseconds: 2026-12-06T08:00:01.000Z.
std::string rfc3339(core::Clock::Wall t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  long frac = static_cast<long>(ms % 1000);
  if (frac < 0) {
    frac += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

bool is_auth_policy(std::string_view type) { return type == "jwt" || type == "api_key" || type == "require_role"; }

}  // namespace

EventsSummarizer::EventsSummarizer(const core::Metrics& metrics, const core::Clock& clock)
    : metrics_(metrics), clock_(clock), previous_(read(metrics.families())), previous_time_(clock.now()) {}

EventsSummarizer::Reading EventsSummarizer::read(const std::vector<core::Metrics::FamilyData>& families) {
  Reading r;
  for (const auto& f : families) {
    for (const auto& s : f.series) {
      if (f.type == core::MetricType::Counter) r.counters.emplace(key(f.name, s.label_text), s.counter);
      else if (f.type == core::MetricType::Histogram) r.histograms.emplace(key(f.name, s.label_text), s.histogram);
    }
  }
  return r;
}

std::optional<double> EventsSummarizer::quantile_ms(const Histogram::Data& d, double q) {
  const std::uint64_t n = d.count();
  if (n == 0) return std::nullopt;
  const double rank = q * static_cast<double>(n);
  std::uint64_t below = 0;
  for (std::size_t i = 0; i < Histogram::kBuckets; ++i) {
    const std::uint64_t b = d.buckets[i];
    if (b == 0) continue;
    if (static_cast<double>(below + b) >= rank) {
      if (i == Histogram::kBounds.size()) return Histogram::kBounds.back() * 1000;
      const double lower = i == 0 ? 0.0 : Histogram::kBounds[i - 1];
      const double upper = Histogram::kBounds[i];
      const double within = std::clamp((rank - static_cast<double>(below)) / static_cast<double>(b), 0.0, 1.0);
      return (lower + (upper - lower) * within) * 1000;
    }
    below += b;
  }
  return Histogram::kBounds.back() * 1000;
}

std::string EventsSummarizer::tick(const proxy::Snapshot& snapshot) {
  const core::Clock::Monotonic now = clock_.now();
  const double seconds = std::chrono::duration<double>(now - previous_time_).count();
  const std::vector<core::Metrics::FamilyData> families = metrics_.families();
  Reading current = read(families);

  auto counter_delta = [&](std::string_view family, std::string_view label_text) -> std::uint64_t {
    const std::string k = key(family, label_text);
    auto cur = current.counters.find(k);
    if (cur == current.counters.end()) return 0;
    auto prev = previous_.counters.find(k);
    const std::uint64_t before = prev == previous_.counters.end() ? 0 : prev->second;
    return cur->second > before ? cur->second - before : 0;
  };
  auto histogram_delta = [&](std::string_view family, std::string_view label_text) {
    Histogram::Data d;
    const std::string k = key(family, label_text);
    auto cur = current.histograms.find(k);
    if (cur == current.histograms.end()) return d;
    d = cur->second;
    auto prev = previous_.histograms.find(k);
    if (prev != previous_.histograms.end()) {
      for (std::size_t i = 0; i < Histogram::kBuckets; ++i)
        d.buckets[i] = d.buckets[i] > prev->second.buckets[i] ? d.buckets[i] - prev->second.buckets[i] : 0;
      d.sum = std::max(0.0, d.sum - prev->second.sum);
    }
    return d;
  };
  auto family = [&](std::string_view name) -> const core::Metrics::FamilyData* {
    for (const auto& f : families)
      if (f.name == name) return &f;
    return nullptr;
  };

  // Requests by route name and by service, and in total.
  Tally total;
  std::map<std::string, Tally, std::less<>> by_route, by_service;
  if (const auto* f = family(proxy::kRequestsTotal)) {
    for (const auto& s : f->series) {
      const std::uint64_t n = counter_delta(f->name, s.label_text);
      if (n == 0) continue;
      std::string_view code = label(s.labels, "code");
      std::size_t c = 0;
      while (c < proxy::kStatusClasses.size() && proxy::kStatusClasses[c] != code) ++c;
      if (c == proxy::kStatusClasses.size()) continue;
      total.classes[c] += n;
      std::string_view route = label(s.labels, "route");
      std::string_view service = label(s.labels, "service");
      if (!route.empty()) by_route[std::string(route)].classes[c] += n;
      if (!service.empty()) by_service[std::string(service)].classes[c] += n;
    }
  }
  if (const auto* f = family(proxy::kRequestDuration)) {
    for (const auto& s : f->series) {
      Histogram::Data d = histogram_delta(f->name, s.label_text);
      total.add_duration(d);
      std::string_view route = label(s.labels, "route");
      if (!route.empty()) by_route[std::string(route)].add_duration(d);
    }
  }
  // A service's latency: its routes' (the snapshot's routes to it, each name once).
  std::vector<std::string> route_names;
  std::vector<std::string_view> route_services;
  for (const auto& r : snapshot.routes) {
    const std::string& name = r.config->name;
    if (std::find(route_names.begin(), route_names.end(), name) != route_names.end()) continue;
    route_names.push_back(name);
    route_services.push_back(r.service->name());
    by_service[r.service->name()].add_duration(by_route[name].duration);
  }

  std::string out;
  out.reserve(1024);
  out += "{\"time\":\"";
  out += rfc3339(clock_.wall_now());
  out += "\",\"interval_s\":";
  append_number(out, seconds, 3);
  out += fmt::format(",\"generation\":{}", snapshot.generation);
  out += ",\"totals\":{";
  append_rates(out, total, seconds);
  out += "},\"routes\":[";
  for (std::size_t i = 0; i < route_names.size(); ++i) {
    if (i > 0) out += ',';
    out += "{\"name\":";
    append_json_string(out, route_names[i]);
    out += ",\"service\":";
    append_json_string(out, route_services[i]);
    out += ',';
    append_rates(out, by_route[route_names[i]], seconds);
    out += '}';
  }
  out += "],\"services\":[";
  const std::int64_t now_ms = clock_.now_ms();
  for (std::size_t i = 0; i < snapshot.services.size(); ++i) {
    const upstream::Service& svc = *snapshot.services[i];
    if (i > 0) out += ',';
    out += "{\"name\":";
    append_json_string(out, svc.name());
    out += ',';
    append_rates(out, by_service[svc.name()], seconds);
    const auto endpoints = svc.endpoints();
    std::string instances;
    std::size_t healthy = 0;
    for (const auto& e : endpoints) {
      const bool up = e->available(now_ms);
      healthy += up ? 1 : 0;
      if (!instances.empty()) instances += ',';
      instances += "{\"url\":";
      append_json_string(instances, e->url);
      instances += ",\"source\":\"";
      instances += upstream::origin_name(e->source);
      instances += fmt::format("\",\"healthy\":{},\"in_flight\":{}}}", up ? "true" : "false",
                               e->in_flight.load(std::memory_order_relaxed));
    }
    out += fmt::format(",\"healthy\":{},\"total\":{},\"instances\":[", healthy, endpoints.size());
    out += instances;
    out += "]}";
  }
  out += "]";

  // Per second, by policy name: every policy of the config of the kinds that count them.
  auto per_policy = [&](std::string_view field, std::string_view fam, auto wanted) {
    out += ",\"";
    out += field;
    out += "\":{";
    bool first = true;
    if (!snapshot.config) {
      out += '}';
      return;
    }
    const auto* f = family(fam);
    for (const auto& p : snapshot.config->policies) {
      if (!wanted(p.type)) continue;
      std::uint64_t n = 0;
      if (f)
        for (const auto& s : f->series)
          if (label(s.labels, "policy") == p.name) n += counter_delta(f->name, s.label_text);
      if (!first) out += ',';
      first = false;
      append_json_string(out, p.name);
      out += ':';
      append_number(out, seconds > 0 ? static_cast<double>(n) / seconds : 0.0, 3);
    }
    out += '}';
  };
  per_policy("rate_limit_rejections", proxy::kRateLimitRejections,
             [](std::string_view type) { return type == "rate_limit"; });
  per_policy("auth_failures", proxy::kAuthFailures, is_auth_policy);

  std::int64_t connections = 0, tunnels = 0;
  if (const auto* f = family(proxy::kConnectionsOpen))
    for (const auto& s : f->series) connections += s.gauge;
  if (const auto* f = family(proxy::kWebsocketTunnelsOpen))
    for (const auto& s : f->series) tunnels += s.gauge;
  out += fmt::format(",\"connections_open\":{},\"websocket_tunnels_open\":{}}}", std::max<std::int64_t>(connections, 0),
                     std::max<std::int64_t>(tunnels, 0));

  previous_ = std::move(current);
  previous_time_ = now;
  return out;
}

}  // namespace gh::admin
