#include "core/fault.h"

#ifdef GH_FAULT_INJECTION
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace gh {

void fault_point(std::string_view name) {
  static const std::string faults = [] {
    const char* v = std::getenv("GATEHOUSE_FAULTS");
    return std::string(v ? v : "");
  }();
  if (faults.empty()) return;
  std::string_view rest = faults;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    if (rest.substr(0, comma) == name) throw std::runtime_error("fault point " + std::string(name));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
}

}  // namespace gh
#endif
