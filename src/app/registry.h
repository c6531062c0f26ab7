// The policy types this binary knows: their validators (for `check`) and factories (for the
// snapshot). Only app/ knows every policy by name (STYLE §2).
// Thread: immutable after first use.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "app/runtime.h"
#include "config/config.h"
#include "proxy/policy.h"

namespace gh::app {

using PolicyFactory = std::function<std::shared_ptr<proxy::Policy>(const config::PolicyConfig&)>;

// Validators for the supported types, and the types still to come ("not yet supported").
const config::PolicyCatalog& policy_catalog();
// Builds a policy object from the config its validation built (the entry is not parsed again);
// nullptr for an unknown type, or an entry that was not loaded with policy_catalog(). What
// outlives the config (stores, JWKS sources, the clock, the worker count) comes from `runtime`;
// `redis_url` is the top-level `redis` (empty: none), the default store of rate limits.
std::shared_ptr<proxy::Policy> make_policy(const config::PolicyConfig& entry, Runtime& runtime,
                                           const std::string& redis_url = {});

}  // namespace gh::app
