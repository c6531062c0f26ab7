// Runtime: what the process keeps across config generations, so that a reload swaps routes
// and policies without losing what they use: the Redis stores by URL (a reload with the same
// `redis` keeps the connections), the JWKS sources by URL and options (a reload keeps the key
// set and starts no fetch), the memory rate-limit store (a reload keeps every budget), the
// metrics registry (counters survive reloads; every family of SPEC §6 is described in it from
// the start), the clock and the worker count. Policies reach
// it through policies::Resources; the snapshot builder takes a Runtime&.
//
// JWKS sources fetch on the control executor given here (the main thread's loop in
// run_gateway; the command's own loop for `route`). The Runtime holds them weakly: a source
// lives while a policy of some live snapshot uses it (the current snapshot stays alive while
// the next one is built, so a reload finds it), and a source that no config names any more
// stops with the last snapshot that held it.
//
// Thread: built and used on the control thread (snapshot builds); what it hands out is shared
// with the workers under the thread rules of each object. REQUIRES: the control io_context
// outlives the Runtime and every snapshot built with it.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "policies/common/resources.h"
#include "policies/jwt/jwks.h"
#include "policies/rate_limit/memory_store.h"
#include "policies/rate_limit/redis_store.h"

namespace gh::app {

class Runtime final : public policies::Resources {
 public:
  // REQUIRES: workers > 0; `clock` outlives the Runtime and what it builds.
  Runtime(boost::asio::any_io_executor control, unsigned workers, const core::Clock& clock = core::Clock::real());
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const core::Clock& clock() const noexcept override { return clock_; }
  unsigned workers() const noexcept override { return workers_; }
  std::shared_ptr<policies::MemoryStore> memory_store() override { return memory_; }
  std::shared_ptr<policies::RedisStore> redis_store(const std::string& url) override;
  std::shared_ptr<policies::JwksSource> jwks_source(const policies::JwksOptions& options) override;
  core::Metrics& metrics() override { return metrics_; }

  // Counts a configuration reload in gatehouse_config_reloads_total{result="success"|"failure"}.
  // REQUIRES: called on the control thread.
  void count_reload(bool ok) noexcept { (ok ? reloads_ok_ : reloads_failed_).inc(metrics_.control_slot()); }

  const boost::asio::any_io_executor& control() const noexcept { return control_; }
  // The number of the next snapshot generation: 1, 2, ... over the life of the process.
  std::uint64_t next_generation() noexcept { return ++generation_; }

 private:
  boost::asio::any_io_executor control_;
  unsigned workers_;
  const core::Clock& clock_;
  core::Metrics metrics_;
  core::Counter& reloads_ok_;
  core::Counter& reloads_failed_;
  std::shared_ptr<policies::MemoryStore> memory_;
  std::uint64_t generation_ = 0;
  std::mutex mu_;  // guards the two maps (builds run on the control thread; tools may differ)
  std::map<std::string, std::shared_ptr<policies::RedisStore>> redis_;
  std::vector<std::pair<policies::JwksOptions, std::weak_ptr<policies::JwksSource>>> jwks_;
};

}  // namespace gh::app
