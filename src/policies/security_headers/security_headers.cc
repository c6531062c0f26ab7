#include "policies/security_headers/security_headers.h"

#include <bit>

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
  for (const auto& [n, v] : set_) set_fields_.push_back({n, v});
  by_length_ready_ = set_.size() <= 64;
  for (const auto& [n, v] : set_) by_length_ready_ &= n.size() < 64;
  if (by_length_ready_)
    for (std::size_t i = 0; i < set_.size(); ++i) by_length_[set_[i].first.size()] |= std::uint64_t{1} << i;
}

void SecurityHeadersPolicy::on_response(proxy::RequestContext&, http::ResponseHead& head) {
  if (!by_length_ready_) {
    if (!keep_powered_by_) head.fields.remove("X-Powered-By");
    for (const auto& [n, v] : set_) {
      if (!override_ && head.fields.has(n)) continue;
      head.fields.set(n, v);
    }
    return;
  }
  // Which of set_'s names the response has, and whether it has an X-Powered-By to remove: one
  // pass over its fields, each compared only with the names of its length.
  constexpr std::string_view kPoweredBy = "x-powered-by";
  std::uint64_t present = 0;  // bit i: set_[i]
  bool powered_by = false;
  for (const auto& f : head.fields) {
    const std::size_t len = f.name.size();
    if (len >= 64) continue;
    if (len == kPoweredBy.size() && !keep_powered_by_ && iequals(f.name, kPoweredBy)) {
      powered_by = true;  // removed below: it counts as absent
      continue;
    }
    for (std::uint64_t c = by_length_[len]; c != 0; c &= c - 1) {
      const int i = std::countr_zero(c);
      if (iequals(f.name, set_[static_cast<std::size_t>(i)].first)) {
        present |= std::uint64_t{1} << i;
        break;
      }
    }
  }
  if (powered_by) head.fields.remove(kPoweredBy);
  if (present == 0) {  // the usual case: the service sent none of them
    head.fields.add_all(set_fields_);
    return;
  }
  for (std::size_t i = 0; i < set_.size(); ++i) {
    const auto& [n, v] = set_[i];
    if (!(present >> i & 1)) head.fields.add(n, v);
    else if (override_) head.fields.set(n, v);
  }
}

}  // namespace gh::policies
