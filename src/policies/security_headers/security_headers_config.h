// SecurityHeadersConfig: the options of a `type: security_headers` entry, parsed and validated.
// Thread: plain data.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace gh::policies {

struct SecurityHeadersConfig {
  bool override_existing = false;  // `override`: replace a header the service set itself
  // `headers`: name -> value to use instead (nullopt = `false`: neither added nor touched).
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;
};

// helmet 8's default response headers, in the order helmet sends them.
const std::vector<std::pair<std::string, std::string>>& helmet_defaults();

// Parses one entry; problems go to `diag` at the entry's path. A default-constructed config
// (no entry under `policies:`) is helmet's defaults.
SecurityHeadersConfig parse_security_headers(const config::PolicyConfig& entry, config::Diagnostics& diag);

}  // namespace gh::policies
