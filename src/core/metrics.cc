#include "core/metrics.h"

#include "core/check.h"

namespace gh::core {

namespace {

bool valid_name(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::string label_text(const Labels& labels) {
  std::string out;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ',';
    out += labels[i].first;
    out += "=\"";
    append_label_value(out, labels[i].second);
    out += '"';
  }
  return out;
}

}  // namespace

std::string_view type_name(MetricType t) noexcept {
  switch (t) {
    case MetricType::Counter: return "counter";
    case MetricType::Gauge: return "gauge";
    case MetricType::Histogram: return "histogram";
  }
  return "untyped";
}

void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

Metrics::Metrics(unsigned workers) : workers_(workers) { GH_CHECK(workers > 0); }

void Metrics::describe(std::string_view name, MetricType type, std::string_view help) {
  GH_CHECK(valid_name(name));
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{}).first;
    it->second.type = type;
  }
  GH_CHECK(it->second.type == type);
  if (it->second.help.empty()) it->second.help = help;
}

Metrics::Series& Metrics::series(std::string_view name, MetricType type, const Labels& labels) {
  GH_CHECK(valid_name(name));
  for (const auto& l : labels) GH_CHECK(valid_name(l.first));
  auto fam = families_.find(name);
  if (fam == families_.end()) {
    fam = families_.emplace(std::string(name), Family{}).first;
    fam->second.type = type;
  }
  GH_CHECK(fam->second.type == type);
  std::string key = label_text(labels);
  auto it = fam->second.series.find(key);
  if (it != fam->second.series.end()) return it->second;
  Series s;
  s.labels = labels;
  const unsigned slots = workers_ + 1;
  switch (type) {
    case MetricType::Counter: s.counter = std::make_unique<Counter>(slots); break;
    case MetricType::Gauge: s.gauge = std::make_unique<Gauge>(slots); break;
    case MetricType::Histogram: s.histogram = std::make_unique<Histogram>(slots); break;
  }
  return fam->second.series.emplace(std::move(key), std::move(s)).first->second;
}

Counter& Metrics::counter(std::string_view name, const Labels& labels) {
  std::lock_guard lock(mu_);
  return *series(name, MetricType::Counter, labels).counter;
}

Gauge& Metrics::gauge(std::string_view name, const Labels& labels) {
  std::lock_guard lock(mu_);
  return *series(name, MetricType::Gauge, labels).gauge;
}

Histogram& Metrics::histogram(std::string_view name, const Labels& labels) {
  for (const auto& l : labels) GH_CHECK(l.first != "le");
  std::lock_guard lock(mu_);
  return *series(name, MetricType::Histogram, labels).histogram;
}

std::vector<Metrics::Sample> Metrics::collect() const {
  std::lock_guard lock(mu_);
  std::vector<Sample> out;
  for (const auto& [name, fam] : families_) {
    if (fam.type != MetricType::Counter) continue;
    for (const auto& [labels, s] : fam.series)
      out.push_back({labels.empty() ? name : name + '{' + labels + '}', s.counter->value()});
  }
  return out;
}

std::vector<Metrics::FamilyData> Metrics::families() const {
  std::lock_guard lock(mu_);
  std::vector<FamilyData> out;
  out.reserve(families_.size());
  for (const auto& [name, fam] : families_) {
    FamilyData f;
    f.name = name;
    f.type = fam.type;
    f.help = fam.help;
    f.series.reserve(fam.series.size());
    for (const auto& [text, s] : fam.series) {
      SeriesData d;
      d.labels = s.labels;
      d.label_text = text;
      if (s.counter) d.counter = s.counter->value();
      if (s.gauge) d.gauge = s.gauge->value();
      if (s.histogram) d.histogram = s.histogram->read();
      f.series.push_back(std::move(d));
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace gh::core
