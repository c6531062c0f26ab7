// `gatehouse route`: explains offline what a request would meet.
#pragma once

#include <string>
#include <vector>

namespace gh::app {

// Runs the gateway's own decisions on one request, offline: the strict parser, the checks
// before routing, the route table, each policy of the chain (rate limits described, not run),
// the balancer. Prints one line a step and where the chain stops. CLIENT_IP stands for the
// connection's peer. Returns 0, 1 for a config that does not load, 2 for a malformed -H.
int explain_route(const std::string& config_path, const std::string& method, const std::string& target,
                  const std::vector<std::string>& headers, const std::string& client_ip = "127.0.0.1");

}  // namespace gh::app
