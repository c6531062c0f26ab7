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

// The exposition format's escaping of a label value: backslash, double quote, newline.
void append_escaped(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

}  // namespace

Metrics::Metrics(unsigned workers) : workers_(workers) { GH_CHECK(workers > 0); }

Counter& Metrics::counter(std::string_view name, const Labels& labels) {
  GH_CHECK(valid_name(name));
  std::string series(name);
  if (!labels.empty()) {
    series += '{';
    for (std::size_t i = 0; i < labels.size(); ++i) {
      GH_CHECK(valid_name(labels[i].first));
      if (i > 0) series += ',';
      series += labels[i].first;
      series += "=\"";
      append_escaped(series, labels[i].second);
      series += '"';
    }
    series += '}';
  }
  std::lock_guard lock(mu_);
  auto it = counters_.find(series);
  if (it == counters_.end()) it = counters_.emplace(std::move(series), std::make_unique<Counter>(workers_ + 1)).first;
  return *it->second;
}

std::vector<Metrics::Sample> Metrics::collect() const {
  std::lock_guard lock(mu_);
  std::vector<Sample> out;
  out.reserve(counters_.size());
  for (const auto& [series, c] : counters_) out.push_back({series, c->value()});
  return out;
}

}  // namespace gh::core
