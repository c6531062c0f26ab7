// Builds a runtime Snapshot from a validated Config: compiles routes, resolves services and
// constructs policy objects. Runs on the control thread (it may resolve host names).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "app/runtime.h"
#include "config/config.h"
#include "core/result.h"
#include "proxy/snapshot.h"

namespace gh::app {

// `previous` (may be null) lends its endpoints' health state to the new generation; `runtime`
// provides what outlives it (stores, JWKS sources, the generation number). REQUIRES: while a
// reload builds, the current snapshot is still held, so that its JWKS sources are reused.
Result<std::shared_ptr<const proxy::Snapshot>> build_snapshot(std::shared_ptr<const config::Config> config,
                                                              const proxy::Snapshot* previous, Runtime& runtime);

// Loads and validates a file against this binary's policy catalog.
config::LoadResult load_config(const std::string& path);

}  // namespace gh::app
