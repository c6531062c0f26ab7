// `gatehouse demo`: built-in demo services (user x2, product, order) on free loopback ports and
// the gateway in front of them on an embedded config.
#pragma once

namespace gh::app {

// Runs until SIGTERM/SIGINT; returns the exit code.
int run_demo(unsigned port);

}  // namespace gh::app
