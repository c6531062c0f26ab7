// Gateway: the running process. Owns the control io_context (signals, reloads, health checks,
// JWKS fetches), the Runtime that outlives config generations, and the worker threads;
// publishes each new config generation to every worker.
// Thread: the Gateway object lives on the main (control) thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "config/config.h"

namespace gh::app {

struct RunOptions {
  std::string config_path;                            // re-read on SIGHUP / reload
  std::shared_ptr<const config::Config> config;       // already validated
  std::function<void(const std::string&)> on_ready;   // called once listening (e.g. demo banner)
  std::function<void(const config::Config&)> on_reload;  // after a reload took effect (log settings)
};

// What `gatehouse check` adds to loading the file: everything run_gateway builds before it
// listens (the snapshot with every service's addresses and every policy, the access log, the
// listen addresses), built and dropped. Returns the error run would stop on, or "".
std::string check_runtime(std::shared_ptr<const config::Config> config);

// Runs until SIGTERM/SIGINT has drained the gateway. Returns the process exit code.
int run_gateway(RunOptions opts);

}  // namespace gh::app
