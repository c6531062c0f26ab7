#include "upstream/service.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <algorithm>
#include <random>

namespace gh::upstream {

namespace asio = boost::asio;

namespace {

constexpr std::size_t kMaxStackCandidates = 64;
constexpr std::uint32_t kRingPointsPerWeight = 100;
constexpr std::size_t kMaxWeightedSequence = 100'000;

std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t thread_random() noexcept {
  thread_local std::uint64_t state = std::random_device{}() | 1;
  state = mix(state);
  return state;
}

bool avoided(const PickInput& in, const Endpoint* e) noexcept {
  for (std::size_t i = 0; i < in.avoid_count; ++i)
    if (in.avoid[i] == e) return true;
  return false;
}

// Smooth weighted round robin (the nginx sequence), precomputed once so picking is lock-free.
std::vector<std::uint32_t> smooth_sequence(const std::vector<std::shared_ptr<Endpoint>>& eps) {
  std::uint64_t total = 0;
  for (const auto& e : eps) total += e->weight;
  std::uint64_t len = std::min<std::uint64_t>(total, kMaxWeightedSequence);
  std::vector<std::int64_t> current(eps.size(), 0);
  std::vector<std::uint32_t> seq;
  seq.reserve(len);
  for (std::uint64_t n = 0; n < len; ++n) {
    std::size_t best = 0;
    for (std::size_t i = 0; i < eps.size(); ++i) {
      current[i] += eps[i]->weight;
      if (current[i] > current[best]) best = i;
    }
    current[best] -= static_cast<std::int64_t>(total);
    seq.push_back(static_cast<std::uint32_t>(best));
  }
  return seq;
}

}  // namespace

std::uint64_t hash_key(std::string_view key) noexcept {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ULL;
  return mix(h);
}

Result<std::shared_ptr<Service>> Service::build(const config::ServiceConfig& cfg) {
  std::shared_ptr<Service> s(new Service(cfg));
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  for (const auto& inst : cfg.instances) {
    auto e = std::make_shared<Endpoint>();
    e->url = inst.url;
    e->host = inst.host;
    e->port = inst.port;
    e->weight = std::max<std::uint32_t>(1, inst.weight);
    e->host_header = inst.port == 80 ? inst.host : inst.host + ":" + std::to_string(inst.port);
    e->has_health_check = cfg.health_check.has_value();
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(inst.host, ec);
    if (ec) {
      auto results = resolver.resolve(inst.host, std::to_string(inst.port), ec);
      if (ec || results.empty())
        return Error{ErrorCode::InvalidConfig, Source::Config, false,
                     "service \"" + cfg.name + "\": cannot resolve " + inst.host + ": " + ec.message()};
      e->address = *results.begin();
    } else {
      e->address = asio::ip::tcp::endpoint(addr, inst.port);
    }
    e->pool_key = e->address.address().to_string() + ":" + std::to_string(e->address.port());
    s->endpoints_.push_back(std::move(e));
  }
  s->weighted_sequence_ = smooth_sequence(s->endpoints_);
  if (cfg.load_balancing == config::Balance::Hash) {
    for (std::uint32_t i = 0; i < s->endpoints_.size(); ++i) {
      const auto& e = s->endpoints_[i];
      for (std::uint32_t p = 0; p < kRingPointsPerWeight * e->weight; ++p)
        s->ring_.emplace_back(hash_key(e->url + "#" + std::to_string(p)), i);
    }
    std::sort(s->ring_.begin(), s->ring_.end());
  }
  return s;
}

std::size_t Service::available_count() const noexcept {
  const std::int64_t now = steady_now_ms();
  std::size_t n = 0;
  for (const auto& e : endpoints_) n += e->available(now) ? 1 : 0;
  return n;
}

Endpoint* Service::pick_hash(const PickInput& in, std::int64_t now) const {
  if (ring_.empty()) return nullptr;
  auto it = std::lower_bound(ring_.begin(), ring_.end(), std::make_pair(in.hash, std::uint32_t{0}));
  Endpoint* fallback = nullptr;
  for (std::size_t step = 0; step < ring_.size(); ++step, ++it) {
    if (it == ring_.end()) it = ring_.begin();
    Endpoint* e = endpoints_[it->second].get();
    if (!e->available(now)) continue;
    if (!avoided(in, e)) return e;
    if (!fallback) fallback = e;
  }
  return fallback;
}

Endpoint* Service::pick(const PickInput& in) const {
  const std::int64_t now = steady_now_ms();
  const auto lb = config_.load_balancing;
  if (lb == config::Balance::Hash && in.has_hash) return pick_hash(in, now);

  if (lb == config::Balance::Weighted && !weighted_sequence_.empty()) {
    const std::size_t len = weighted_sequence_.size();
    std::uint64_t start = rotation_.fetch_add(1, std::memory_order_relaxed);
    Endpoint* fallback = nullptr;
    for (std::size_t step = 0; step < len; ++step) {
      Endpoint* e = endpoints_[weighted_sequence_[(start + step) % len]].get();
      if (!e->available(now)) continue;
      if (!avoided(in, e)) return e;
      if (!fallback) fallback = e;
    }
    return fallback;
  }

  // Candidates: available endpoints not yet tried; if every available one was tried, all available.
  Endpoint* stack[kMaxStackCandidates];
  std::vector<Endpoint*> heap;
  Endpoint** cand = stack;
  if (endpoints_.size() > kMaxStackCandidates) {
    heap.resize(endpoints_.size());
    cand = heap.data();
  }
  std::size_t n = 0;
  for (const auto& e : endpoints_)
    if (e->available(now) && !avoided(in, e.get())) cand[n++] = e.get();
  if (n == 0)
    for (const auto& e : endpoints_)
      if (e->available(now)) cand[n++] = e.get();
  if (n == 0) return nullptr;

  switch (lb) {
    case config::Balance::LeastRequest: {
      if (n == 1) return cand[0];
      std::uint64_t r = thread_random();
      std::size_t a = r % n, b = (r >> 32) % (n - 1);
      if (b >= a) ++b;
      // Compare in_flight / weight without division.
      auto load = [](const Endpoint* e, const Endpoint* o) {
        return std::uint64_t(e->in_flight.load(std::memory_order_relaxed)) * o->weight;
      };
      return load(cand[a], cand[b]) <= load(cand[b], cand[a]) ? cand[a] : cand[b];
    }
    case config::Balance::Random: {
      std::uint64_t total = 0;
      for (std::size_t i = 0; i < n; ++i) total += cand[i]->weight;
      std::uint64_t r = thread_random() % total;
      for (std::size_t i = 0; i < n; ++i) {
        if (r < cand[i]->weight) return cand[i];
        r -= cand[i]->weight;
      }
      return cand[n - 1];
    }
    default:  // round robin, and hash without a key
      return cand[rotation_.fetch_add(1, std::memory_order_relaxed) % n];
  }
}

bool Service::try_acquire() const noexcept {
  std::uint32_t now = in_flight_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (config_.max_in_flight != 0 && now > config_.max_in_flight) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void Service::release() const noexcept { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

void Service::inherit_health(const Service& previous) {
  for (auto& e : endpoints_)
    for (const auto& old : previous.endpoints_)
      if (old->url == e->url) {
        e->active_healthy.store(old->active_healthy.load());
        e->ejected_until_ms.store(old->ejected_until_ms.load());
        e->requests.store(old->requests.load());
        e->errors.store(old->errors.load());
      }
}

}  // namespace gh::upstream
