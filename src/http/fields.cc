// Fields lookups: linear, case-insensitive scans over a short vector of views.
#include "http/fields.h"

namespace gh::http {
namespace {

constexpr char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c + ('a' - 'A')) : c; }

bool same_name(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

}  // namespace

std::string_view Fields::get(std::string_view name) const noexcept {
  for (const Field& f : list_)
    if (same_name(f.name, name)) return f.value;
  return {};
}

bool Fields::has(std::string_view name) const noexcept {
  for (const Field& f : list_)
    if (same_name(f.name, name)) return true;
  return false;
}

std::size_t Fields::count(std::string_view name) const noexcept {
  std::size_t n = 0;
  for (const Field& f : list_)
    if (same_name(f.name, name)) ++n;
  return n;
}

}  // namespace gh::http
