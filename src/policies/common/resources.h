// Resources: what the policies of one config generation get from the process, which outlives
// that generation and is reused by the next one: the clock, the worker count (for PerWorker
// state), the rate-limit stores, the JWKS sources and the metrics registry. app::Runtime
// implements it; a policy factory takes a Resources& instead of making its own (no function
// statics, no thread per policy).
// Thread: called on the control thread while a snapshot is built; what it returns is shared
// with the workers and documents its own thread rules.
#pragma once

#include <memory>
#include <string>

#include "core/clock.h"
#include "core/metrics.h"

namespace gh::policies {

class MemoryStore;
class RedisStore;
class JwksSource;
struct JwksOptions;

class Resources {
 public:
  virtual ~Resources() = default;
  virtual const core::Clock& clock() const noexcept = 0;
  // Worker ids run from 0 to workers() - 1.
  virtual unsigned workers() const noexcept = 0;
  // The store of `store: memory`: one for the process, so a reload keeps every budget.
  virtual std::shared_ptr<MemoryStore> memory_store() = 0;
  // The store of `store: redis` for `url`, one per URL (a reload keeps its connections); null
  // when the URL is malformed (the loader refuses those first).
  virtual std::shared_ptr<RedisStore> redis_store(const std::string& url) = 0;
  // The key source of these options, one per distinct options (a reload keeps the key set).
  // REQUIRES: options.url is a URL parse_http_url accepts.
  virtual std::shared_ptr<JwksSource> jwks_source(const JwksOptions& options) = 0;
  virtual core::Metrics& metrics() = 0;
};

}  // namespace gh::policies
