#include "admin/prometheus.h"

#include <fmt/format.h>

#include <set>

#include "proxy/metrics.h"

namespace gh::admin {

namespace {

// HELP text escaping: backslash and newline.
void append_help(std::string& out, std::string_view help) {
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

void append_header(std::string& out, std::string_view name, core::MetricType type, std::string_view help) {
  if (!help.empty()) {
    out += "# HELP ";
    out += name;
    out += ' ';
    append_help(out, help);
    out += '\n';
  }
  out += "# TYPE ";
  out += name;
  out += ' ';
  out += core::type_name(type);
  out += '\n';
}

// name{labels[,extra]} value
template <class V>
void append_sample(std::string& out, std::string_view name, std::string_view suffix, std::string_view labels,
                   std::string_view extra, V value) {
  out += name;
  out += suffix;
  if (!labels.empty() || !extra.empty()) {
    out += '{';
    out += labels;
    if (!labels.empty() && !extra.empty()) out += ',';
    out += extra;
    out += '}';
  }
  fmt::format_to(std::back_inserter(out), " {}\n", value);
}

void append_family(std::string& out, const core::Metrics::FamilyData& f) {
  append_header(out, f.name, f.type, f.help);
  for (const auto& s : f.series) {
    switch (f.type) {
      case core::MetricType::Counter: append_sample(out, f.name, "", s.label_text, "", s.counter); break;
      case core::MetricType::Gauge: append_sample(out, f.name, "", s.label_text, "", s.gauge); break;
      case core::MetricType::Histogram: {
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < core::Histogram::kBuckets; ++i) {
          cumulative += s.histogram.buckets[i];
          const std::string le = i < core::Histogram::kBounds.size()
                                     ? fmt::format("le=\"{}\"", core::Histogram::kBounds[i])
                                     : std::string("le=\"+Inf\"");
          append_sample(out, f.name, "_bucket", s.label_text, le, cumulative);
        }
        append_sample(out, f.name, "_sum", s.label_text, "", s.histogram.sum);
        append_sample(out, f.name, "_count", s.label_text, "", cumulative);
        break;
      }
    }
  }
}

void append_instance_health(std::string& out, const proxy::Snapshot& snapshot, const core::Clock& clock) {
  append_header(out, proxy::kInstanceHealthy, core::MetricType::Gauge,
                "Whether an instance is available now: its active health check passes and it is not passively "
                "ejected (1), or not (0).");
  const std::int64_t now = clock.now_ms();
  for (const auto& svc : snapshot.services) {
    std::set<std::string> seen;  // one series per label set, whatever the endpoints
    for (const auto& e : svc->endpoints()) {
      std::string instance = instance_label(*e);
      if (!seen.insert(instance).second) continue;
      std::string labels = "service=\"";
      core::append_label_value(labels, svc->name());
      labels += "\",instance=\"";
      core::append_label_value(labels, instance);
      labels += '"';
      append_sample(out, proxy::kInstanceHealthy, "", labels, "", e->available(now) ? 1 : 0);
    }
  }
}

}  // namespace

std::string instance_label(const upstream::Endpoint& e) {
  if (e.source != upstream::Origin::Dns) return e.url;
  return e.url + " (" + e.pool_key + ")";
}

std::string render_prometheus(const core::Metrics& metrics, const proxy::Snapshot& snapshot, const core::Clock& clock) {
  std::string out;
  out.reserve(16 * 1024);
  bool health_done = false;
  for (const auto& f : metrics.families()) {
    if (!health_done && f.name > proxy::kInstanceHealthy) {
      append_instance_health(out, snapshot, clock);
      health_done = true;
    }
    append_family(out, f);
  }
  if (!health_done) append_instance_health(out, snapshot, clock);
  return out;
}

}  // namespace gh::admin
