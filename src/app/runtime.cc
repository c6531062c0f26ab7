#include "app/runtime.h"

#include <algorithm>

#include "proxy/metrics.h"

namespace gh::app {

namespace {

core::Metrics& described(core::Metrics& m) {
  proxy::describe_metrics(m);
  return m;
}

std::shared_ptr<policies::MemoryStore> make_memory_store(const core::Clock& clock) {
  policies::MemoryStore::Options o;
  o.clock = &clock;
  return std::make_shared<policies::MemoryStore>(o);
}

}  // namespace

Runtime::Runtime(boost::asio::any_io_executor control, unsigned workers, const core::Clock& clock)
    : control_(std::move(control)), workers_(workers), clock_(clock), metrics_(workers),
      reloads_ok_(described(metrics_).counter(proxy::kConfigReloads, {{"result", "success"}})),
      reloads_failed_(metrics_.counter(proxy::kConfigReloads, {{"result", "failure"}})),
      memory_(make_memory_store(clock)) {}

std::shared_ptr<policies::RedisStore> Runtime::redis_store(const std::string& url) {
  std::lock_guard lock(mu_);
  auto it = redis_.find(url);
  if (it != redis_.end()) return it->second;
  policies::RedisStore::Options o;
  o.url = url;
  auto created = policies::RedisStore::create(o);
  if (!created) return nullptr;
  redis_.emplace(url, *created);
  return *created;
}

std::shared_ptr<policies::JwksSource> Runtime::jwks_source(const policies::JwksOptions& options) {
  std::lock_guard lock(mu_);
  // Sources no snapshot uses any more are gone: forget them.
  std::erase_if(jwks_, [](const auto& e) { return e.second.expired(); });
  for (const auto& [o, weak] : jwks_)
    if (o == options)
      if (auto s = weak.lock()) return s;
  auto s = std::make_shared<policies::JwksSource>(options, control_, clock_);
  jwks_.emplace_back(options, s);
  return s;
}

}  // namespace gh::app
