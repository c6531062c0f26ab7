// Fault points: places where a test build can make the gateway fail on purpose, to test what
// happens when something that "cannot fail" does (an exception at the request boundary).
// With GH_FAULT_INJECTION defined (the presets' builds), GH_FAULT("name") throws
// std::runtime_error when the environment variable GATEHOUSE_FAULTS, read once, lists NAME
// (comma-separated). Without it (a packager's plain build), GH_FAULT compiles to nothing.
// Thread: any; the list is read once, then only read.
#pragma once

#ifdef GH_FAULT_INJECTION
#include <string_view>

namespace gh {
// Throws when NAME is listed in GATEHOUSE_FAULTS.
void fault_point(std::string_view name);
}  // namespace gh
#define GH_FAULT(name) ::gh::fault_point(name)
#else
#define GH_FAULT(name) ((void)0)
#endif
