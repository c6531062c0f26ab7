#include "policies/security_headers/security_headers.h"

#include "core/strings.h"

namespace gh::policies {

SecurityHeadersPolicy::SecurityHeadersPolicy(std::string name, const SecurityHeadersConfig& cfg)
    : name_(std::move(name)), override_(cfg.override_existing) {
  auto find = [&](std::string_view header) -> const std::optional<std::string>* {
    for (const auto& [n, v] : cfg.headers)
      if (iequals(n, header)) return &v;
    return nullptr;
  };
  for (const auto& [n, v] : helmet_defaults()) {
    const auto* custom = find(n);
    if (!custom) set_.emplace_back(n, v);
    else if (*custom) set_.emplace_back(n, **custom);
    else untouched_.push_back(n);
  }
  for (const auto& [n, v] : cfg.headers) {
    bool is_default = false;
    for (const auto& [dn, dv] : helmet_defaults()) is_default |= iequals(dn, n);
    if (is_default) continue;
    if (v) set_.emplace_back(n, *v);
    else untouched_.push_back(n);
  }
  for (const auto& u : untouched_) keep_powered_by_ |= iequals(u, "x-powered-by");
  if (set_.size() <= 64) {
    for (const auto& [n, v] : set_) {
      if (n.size() >= 64) {
        name_lengths_ = 0;
        break;
      }
      name_lengths_ |= std::uint64_t{1} << n.size();
    }
  }
}

void SecurityHeadersPolicy::on_response(proxy::RequestContext&, http::ResponseHead& head) {
  if (!keep_powered_by_) head.fields.remove("X-Powered-By");
  if (name_lengths_ == 0) {
    for (const auto& [n, v] : set_) {
      if (!override_ && head.fields.has(n)) continue;
      head.fields.set(n, v);
    }
    return;
  }
  // Which of set_'s names the response has: one pass over its fields, most of which no name
  // of set_ matches in length.
  std::uint64_t present = 0;  // bit i: set_[i]
  for (const auto& f : head.fields) {
    const std::size_t len = f.name.size();
    if (len >= 64 || !(name_lengths_ >> len & 1)) continue;
    for (std::size_t i = 0; i < set_.size(); ++i) {
      if (set_[i].first.size() == len && iequals(f.name, set_[i].first)) {
        present |= std::uint64_t{1} << i;
        break;
      }
    }
  }
  for (std::size_t i = 0; i < set_.size(); ++i) {
    const auto& [n, v] = set_[i];
    if (!(present >> i & 1)) head.fields.add(n, v);
    else if (override_) head.fields.set(n, v);
  }
}

}  // namespace gh::policies
