// Fault points: places where a test build can make the gateway fail on purpose, to test what
// happens when something that "cannot fail" does (an exception at the request boundary).
// With GH_FAULT_INJECTION defined (the presets' builds), GH_FAULT("name") throws
// std::runtime_error when the environment variable GATEHOUSE_FAULTS, read once, lists NAME
// (comma-separated). GH_FAULT_ACTIVE("name") says whether NAME is listed, for a fault that is
// not an exception (an allocation that fails). Without GH_FAULT_INJECTION (a packager's plain
// build), GH_FAULT compiles to nothing and GH_FAULT_ACTIVE to false.
// Thread: any; the list is read once, then only read.
#pragma once

#ifdef GH_FAULT_INJECTION
#include <string_view>

namespace gh {
// Whether NAME is listed in GATEHOUSE_FAULTS.
bool fault_active(std::string_view name) noexcept;
// Throws when NAME is listed in GATEHOUSE_FAULTS.
void fault_point(std::string_view name);
}  // namespace gh
#define GH_FAULT(name) ::gh::fault_point(name)
#define GH_FAULT_ACTIVE(name) ::gh::fault_active(name)
#else
#define GH_FAULT(name) ((void)0)
#define GH_FAULT_ACTIVE(name) false
#endif
