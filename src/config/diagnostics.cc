#include <fmt/format.h>

#include <algorithm>

#include "config/config.h"

namespace gh::config {

std::string Diagnostic::to_string() const {
  if (mark.line > 0) return fmt::format("{}:{}:{}: {}: {}", file, mark.line, mark.col, path, message);
  return fmt::format("{}: {}: {}", file, path, message);
}

Mark mark_of(const YAML::Node& n) {
  if (!n.IsDefined()) return {};
  auto m = n.Mark();
  if (m.line < 0) return {};
  return Mark{m.line + 1, m.column + 1};
}

std::string describe_value(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "nothing";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  const std::string& s = n.Scalar();
  if (n.Tag() == "?") {
    std::string_view v = s;
    if (!v.empty() && (v[0] == '-' || v[0] == '+')) v.remove_prefix(1);
    bool digits = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits || s == "true" || s == "false") return s;
  }
  return "\"" + s + "\"";
}

void Diagnostics::error(Mark m, std::string path, std::string message) {
  list_.push_back(Diagnostic{file_, m, std::move(path), std::move(message)});
}

void Diagnostics::error(const YAML::Node& at, std::string path, std::string message) {
  error(mark_of(at), std::move(path), std::move(message));
}

const ServiceConfig* Config::find_service(std::string_view name) const {
  for (const auto& s : services)
    if (s.name == name) return &s;
  return nullptr;
}

const PolicyConfig* Config::find_policy(std::string_view name) const {
  for (const auto& p : policies)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace gh::config
