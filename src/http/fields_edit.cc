#include <algorithm>

#include "core/strings.h"
#include "http/fields.h"

namespace gh::http {

std::size_t Fields::remove(std::string_view name) noexcept {
  auto it = std::remove_if(list_.begin(), list_.end(), [&](const Field& f) { return iequals(f.name, name); });
  std::size_t n = static_cast<std::size_t>(list_.end() - it);
  list_.erase(it, list_.end());
  return n;
}

void Fields::set(std::string_view name, std::string_view value) {
  bool placed = false;
  auto it = std::remove_if(list_.begin(), list_.end(), [&](Field& f) {
    if (!iequals(f.name, name)) return false;
    if (placed) return true;
    f.value = value;
    placed = true;
    return false;
  });
  list_.erase(it, list_.end());
  if (!placed) list_.push_back({name, value});
}

}  // namespace gh::http
