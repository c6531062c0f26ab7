// Fields lookups: linear, case-insensitive scans over a short vector of views.
#include "http/fields.h"

#include "core/strings.h"

namespace gh::http {

std::string_view Fields::get(std::string_view name) const noexcept {
  for (const Field& f : list_)
    if (iequals(f.name, name)) return f.value;
  return {};
}

bool Fields::has(std::string_view name) const noexcept {
  for (const Field& f : list_)
    if (iequals(f.name, name)) return true;
  return false;
}

std::size_t Fields::count(std::string_view name) const noexcept {
  std::size_t n = 0;
  for (const Field& f : list_)
    if (iequals(f.name, name)) ++n;
  return n;
}

}  // namespace gh::http
