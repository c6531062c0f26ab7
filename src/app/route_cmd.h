// `gatehouse route`: explains offline what a request would meet.
#pragma once

#include <string>
#include <vector>

namespace gh::app {

int explain_route(const std::string& config_path, const std::string& method, const std::string& target,
                  const std::vector<std::string>& headers);

}  // namespace gh::app
