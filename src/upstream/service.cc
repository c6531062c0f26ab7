#include "upstream/service.h"

#include "core/log.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <optional>
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

Result<std::shared_ptr<Service>> Service::build(const config::ServiceConfig& cfg,
                                                std::shared_ptr<const net::TlsClientContext> tls) {
  struct Blocking final : Resolver {
    void resolve(const std::string& host, std::function<void(Answer)> done) override { done(resolve_now(host)); }
  } blocking;
  return build(cfg, blocking, std::move(tls));
}

Result<std::shared_ptr<Service>> Service::build(const config::ServiceConfig& cfg, Resolver& resolver) {
  return build(cfg, resolver, nullptr);
}

bool Service::uses_tls(const config::ServiceConfig& cfg) noexcept {
  return std::any_of(cfg.instances.begin(), cfg.instances.end(), [](const auto& i) { return i.tls; });
}

std::shared_ptr<const net::TlsClientContext> Service::load_tls(const config::ServiceConfig& cfg, std::string& error) {
  net::TlsClientOptions o;
  o.ca = cfg.tls.ca;
  o.verify = cfg.tls.verify;
  o.client_cert = cfg.tls.client_cert;
  o.client_key = cfg.tls.client_key;
  // HTTP/2 over TLS is agreed through ALPN (RFC 9113 §3.2); an instance that does not pick h2
  // is a connect failure.
  o.alpn = {cfg.protocol == config::UpstreamProtocol::H2 ? "h2" : "http/1.1"};
  return net::TlsClientContext::load(o, error);
}

Result<std::shared_ptr<Service>> Service::build(const config::ServiceConfig& cfg, Resolver& resolver,
                                                std::shared_ptr<const net::TlsClientContext> tls) {
  std::shared_ptr<Service> s(new Service(cfg));
  s->tls_ = std::move(tls);
  if (!s->tls_ && uses_tls(cfg)) {
    std::string error;
    s->tls_ = load_tls(cfg, error);
    if (!s->tls_)
      return Error{ErrorCode::InvalidConfig, Source::Config, false, "service \"" + cfg.name + "\": tls: " + error};
  }
  s->per_instance_.resize(cfg.instances.size());
  for (const auto& inst : cfg.instances) s->names_ = s->names_ || !is_ip_literal(inst.host);
  for (std::size_t i = 0; i < cfg.instances.size(); ++i) {
    const auto& inst = cfg.instances[i];
    if (is_ip_literal(inst.host)) {
      s->per_instance_[i].push_back(s->make_endpoint(i, asio::ip::make_address(inst.host)));
      continue;
    }
    std::optional<Answer> answer;
    resolver.resolve(inst.host, [&](Answer a) { answer = std::move(a); });
    if (!answer || answer->addresses.empty())
      return Error{ErrorCode::InvalidConfig, Source::Config, false,
                   "service \"" + cfg.name + "\": cannot resolve host \"" + inst.host + "\"" +
                       (answer && !answer->error.empty() ? ": " + answer->error : std::string())};
    for (const auto& a : answer->addresses) s->per_instance_[i].push_back(s->make_endpoint(i, a));
  }
  s->publish();
  return s;
}

std::shared_ptr<Endpoint> Service::make_endpoint(std::size_t i, const asio::ip::address& a) const {
  return make_endpoint(config_.instances[i], a, is_ip_literal(config_.instances[i].host) ? Origin::Static : Origin::Dns);
}

std::shared_ptr<Endpoint> Service::make_endpoint(const config::InstanceConfig& inst, const asio::ip::address& a,
                                                 Origin source) const {
  auto e = std::make_shared<Endpoint>();
  e->url = inst.url;
  e->host = inst.host;
  e->port = inst.port;
  e->weight = std::max<std::uint32_t>(1, inst.weight);
  const std::string host = inst.host.find(':') != std::string::npos ? "[" + inst.host + "]" : inst.host;  // IPv6
  e->host_header = inst.port == 80 ? host : host + ":" + std::to_string(inst.port);
  e->has_health_check = config_.health_check.has_value();
  e->http2 = inst.h2c || config_.protocol != config::UpstreamProtocol::Http1;
  e->source = source;
  e->address = asio::ip::tcp::endpoint(a, inst.port);
  e->pool_key = a.is_v6() ? "[" + a.to_string() + "]:" + std::to_string(inst.port)
                          : a.to_string() + ":" + std::to_string(inst.port);
  if (inst.tls && tls_) {
    const auto& t = config_.tls;
    e->tls = clients::TlsTarget::make(tls_, inst.host, t.server_name,
                                      fmt::format("{}|{}|{}|{}", t.verify, t.ca, t.client_cert, t.client_key));
    e->pool_key += "/" + e->tls->pool_tag;
  }
  return e;
}

bool Service::set_registered(const std::vector<config::InstanceConfig>& instances) {
  std::vector<std::shared_ptr<Endpoint>> next;
  for (const auto& inst : instances) {
    if (inst.tls && !tls_) {
      std::string error;
      tls_ = load_tls(config_, error);
      if (!tls_) {
        log::warn("service \"{}\": registered instance {}: tls: {}; not used", config_.name, inst.url, error);
        continue;
      }
      if (!config_.tls.verify)
        log::warn("service \"{}\": TLS certificate verification is off (tls.verify: false)", config_.name);
    }
    std::vector<asio::ip::address> addresses;
    if (is_ip_literal(inst.host)) {
      addresses.push_back(asio::ip::make_address(inst.host));
    } else {
      Answer answer = resolve_now(inst.host);
      if (answer.addresses.empty()) {
        log::warn("service \"{}\": registered instance {}: cannot resolve host \"{}\"{}{}; not used until it does",
                  config_.name, inst.url, inst.host, answer.error.empty() ? "" : ": ", answer.error);
        continue;
      }
      addresses = std::move(answer.addresses);
    }
    for (const auto& a : addresses) {
      auto same = [&](const std::shared_ptr<Endpoint>& e) {
        return e->url == inst.url && e->address.address() == a && e->weight == std::max<std::uint32_t>(1, inst.weight);
      };
      if (auto it = std::find_if(registered_.begin(), registered_.end(), same); it != registered_.end()) {
        next.push_back(*it);
      } else if (auto r = std::find_if(retired_.begin(), retired_.end(), same); r != retired_.end()) {
        (*r)->retired.store(false, std::memory_order_relaxed);  // back again: with its old state
        next.push_back(*r);
        retired_.erase(r);
      } else {
        next.push_back(make_endpoint(inst, a, Origin::Registered));
      }
    }
  }
  if (next == registered_) return false;
  for (const auto& e : registered_)
    if (std::find(next.begin(), next.end(), e) == next.end()) {
      e->retired.store(true, std::memory_order_relaxed);
      retired_.push_back(e);
    }
  registered_ = std::move(next);
  publish();
  return true;
}

void Service::publish() {
  auto set = std::make_unique<Set>();
  for (const auto& list : per_instance_)
    for (const auto& e : list) set->endpoints.push_back(e);
  for (const auto& e : registered_) set->endpoints.push_back(e);
  set->weighted_sequence = smooth_sequence(set->endpoints);
  if (config_.load_balancing == config::Balance::Hash) {
    for (std::uint32_t i = 0; i < set->endpoints.size(); ++i) {
      const auto& e = set->endpoints[i];
      // A literal instance keeps its ring points by URL; a name's addresses each get their own.
      const std::string base = is_ip_literal(e->host) ? e->url : e->url + "@" + e->pool_key;
      for (std::uint32_t p = 0; p < kRingPointsPerWeight * e->weight; ++p)
        set->ring.emplace_back(hash_key(base + "#" + std::to_string(p)), i);
    }
    std::sort(set->ring.begin(), set->ring.end());
  }
  sets_.push_back(std::move(set));
  set_.store(sets_.back().get());
  reclaim();
}

void Service::reclaim() {
  // seq_cst: a reader that incremented pickers_ after this load also loads set_ after the
  // store above, so it cannot hold a Set freed here.
  if (sets_.size() > 1 && pickers_.load() == 0) sets_.erase(sets_.begin(), sets_.end() - 1);
}

class Service::Reading {
 public:
  // A service without host names never replaces its Set: nothing to count.
  explicit Reading(const Service& s) : s_(s), counted_(s.names_) {
    if (counted_) s_.pickers_.fetch_add(1);
    set_ = s_.set_.load(counted_ ? std::memory_order_seq_cst : std::memory_order_acquire);
  }
  ~Reading() {
    if (counted_) s_.pickers_.fetch_sub(1, std::memory_order_release);
  }
  Reading(const Reading&) = delete;
  Reading& operator=(const Reading&) = delete;
  const Set& set() const noexcept { return *set_; }

 private:
  const Service& s_;
  const bool counted_;
  const Set* set_;
};

bool Service::apply(std::size_t i, const Answer& answer) {
  const auto& inst = config_.instances[i];
  auto& current = per_instance_[i];
  if (answer.addresses.empty()) {
    log::warn("service \"{}\": cannot resolve host \"{}\"{}{}; keeping its {} address{}",
               config_.name, inst.host, answer.error.empty() ? "" : ": ", answer.error, current.size(),
               current.size() == 1 ? "" : "es");
    return false;
  }
  bool same = answer.addresses.size() == current.size();
  for (std::size_t k = 0; same && k < current.size(); ++k) same = current[k]->address.address() == answer.addresses[k];
  if (same) return false;

  std::vector<std::shared_ptr<Endpoint>> next;
  for (const auto& a : answer.addresses) {
    auto has = [&](const std::shared_ptr<Endpoint>& e) { return e->address.address() == a && e->url == inst.url; };
    if (auto it = std::find_if(current.begin(), current.end(), has); it != current.end()) {
      next.push_back(*it);
    } else if (auto r = std::find_if(retired_.begin(), retired_.end(), has); r != retired_.end()) {
      (*r)->retired.store(false, std::memory_order_relaxed);  // back again: with its old state
      next.push_back(*r);
      retired_.erase(r);
    } else {
      next.push_back(make_endpoint(i, a));
    }
  }
  for (const auto& e : current)
    if (std::find(next.begin(), next.end(), e) == next.end()) {
      e->retired.store(true, std::memory_order_relaxed);
      retired_.push_back(e);
    }
  std::string list;
  for (const auto& a : answer.addresses) list += (list.empty() ? "" : ", ") + a.to_string();
  log::info("service \"{}\": host \"{}\" now resolves to {}", config_.name, inst.host, list);
  current = std::move(next);
  return true;
}

bool Service::has_names() const noexcept { return names_; }

void Service::refresh(Resolver& resolver, std::function<void(bool changed)> done) {
  struct Round {
    std::size_t waiting = 1;  // one extra, released after every request is made
    bool changed = false;
    std::function<void(bool)> done;
  };
  auto round = std::make_shared<Round>();
  round->done = std::move(done);
  auto finish = [self = shared_from_this(), round] {
    if (--round->waiting != 0) return;
    if (round->changed) self->publish();
    else self->reclaim();
    if (round->done) round->done(round->changed);
  };
  for (std::size_t i = 0; i < config_.instances.size(); ++i) {
    if (is_ip_literal(config_.instances[i].host)) continue;
    ++round->waiting;
    resolver.resolve(config_.instances[i].host, [self = shared_from_this(), round, i, finish](Answer a) {
      if (self->apply(i, a)) round->changed = true;
      finish();
    });
  }
  finish();
}

std::vector<std::shared_ptr<Endpoint>> Service::endpoints() const {
  Reading r(*this);
  return r.set().endpoints;
}

std::size_t Service::available_count() const noexcept {
  const std::int64_t now = steady_now_ms();
  Reading r(*this);
  std::size_t n = 0;
  for (const auto& e : r.set().endpoints) n += e->available(now) ? 1 : 0;
  return n;
}

Endpoint* Service::pick_hash(const Set& set, const PickInput& in, std::int64_t now) const {
  const auto& ring = set.ring;
  if (ring.empty()) return nullptr;
  auto it = std::lower_bound(ring.begin(), ring.end(), std::make_pair(in.hash, std::uint32_t{0}));
  Endpoint* fallback = nullptr;
  for (std::size_t step = 0; step < ring.size(); ++step, ++it) {
    if (it == ring.end()) it = ring.begin();
    Endpoint* e = set.endpoints[it->second].get();
    if (!e->available(now)) continue;
    if (!avoided(in, e)) return e;
    if (!fallback) fallback = e;
  }
  return fallback;
}

Endpoint* Service::pick(const PickInput& in) const {
  const std::int64_t now = steady_now_ms();
  const auto lb = config_.load_balancing;
  Reading r(*this);
  const Set& set = r.set();
  const auto& endpoints = set.endpoints;
  const auto& sequence = set.weighted_sequence;
  if (lb == config::Balance::Hash && in.has_hash) return pick_hash(set, in, now);

  if (lb == config::Balance::Weighted && !sequence.empty()) {
    const std::size_t len = sequence.size();
    std::uint64_t start = rotation_.fetch_add(1, std::memory_order_relaxed);
    Endpoint* fallback = nullptr;
    for (std::size_t step = 0; step < len; ++step) {
      Endpoint* e = endpoints[sequence[(start + step) % len]].get();
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
  if (endpoints.size() > kMaxStackCandidates) {
    heap.resize(endpoints.size());
    cand = heap.data();
  }
  std::size_t n = 0;
  for (const auto& e : endpoints)
    if (e->available(now) && !avoided(in, e.get())) cand[n++] = e.get();
  if (n == 0)
    for (const auto& e : endpoints)
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
  // Control thread: the only writer of both services' sets, so no Reading is needed.
  const Set* mine = set_.load();
  const Set* theirs = previous.set_.load();
  for (const auto& e : mine->endpoints)
    for (const auto& old : theirs->endpoints)
      if (old->url == e->url && old->address == e->address) {
        e->active_healthy.store(old->active_healthy.load());
        e->ejected_until_ms.store(old->ejected_until_ms.load());
        e->requests.store(old->requests.load());
        e->errors.store(old->errors.load());
        e->ejections.store(old->ejections.load());
      }
}

}  // namespace gh::upstream
