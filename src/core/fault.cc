#include "core/fault.h"

#ifdef GH_FAULT_INJECTION
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace gh {

bool fault_active(std::string_view name) noexcept {
  static const std::string faults = [] {
    const char* v = std::getenv("GATEHOUSE_FAULTS");
    return std::string(v ? v : "");
  }();
  std::string_view rest = faults;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    if (rest.substr(0, comma) == name) return true;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return false;
}

void fault_point(std::string_view name) {
  if (fault_active(name)) throw std::runtime_error("fault point " + std::string(name));
}

}  // namespace gh
#endif
