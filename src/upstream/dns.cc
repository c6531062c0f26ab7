#include "upstream/dns.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "upstream/service.h"

namespace gh::upstream {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

Answer to_answer(const boost::system::error_code& ec, const tcp::resolver::results_type& results) {
  Answer a;
  if (!ec)
    for (const auto& r : results) a.addresses.push_back(r.endpoint().address());
  std::sort(a.addresses.begin(), a.addresses.end());
  a.addresses.erase(std::unique(a.addresses.begin(), a.addresses.end()), a.addresses.end());
  if (a.addresses.empty()) a.error = ec ? ec.message() : "no address";
  return a;
}

class SystemResolver final : public Resolver, public std::enable_shared_from_this<SystemResolver> {
 public:
  explicit SystemResolver(asio::io_context& io) : resolver_(io) {}
  void resolve(const std::string& host, std::function<void(Answer)> done) override {
    resolver_.async_resolve(host, "", [self = shared_from_this(), done = std::move(done)](
                                          const boost::system::error_code& ec, tcp::resolver::results_type results) {
      done(to_answer(ec, results));
    });
  }

 private:
  tcp::resolver resolver_;
};

}  // namespace

std::shared_ptr<Resolver> system_resolver(asio::io_context& io) { return std::make_shared<SystemResolver>(io); }

Answer resolve_now(const std::string& host) {
  asio::io_context io;
  tcp::resolver r(io);
  boost::system::error_code ec;
  auto results = r.resolve(host, "", ec);
  return to_answer(ec, results);
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

void check_instance_hosts(const config::Config& c, config::Diagnostics& d) {
  std::map<std::string, bool> resolves;  // one lookup per name
  for (const auto& s : c.services)
    for (std::size_t i = 0; i < s.instances.size(); ++i) {
      const auto& inst = s.instances[i];
      if (is_ip_literal(inst.host)) continue;
      auto it = resolves.find(inst.host);
      if (it == resolves.end()) it = resolves.emplace(inst.host, !resolve_now(inst.host).addresses.empty()).first;
      if (!it->second)
        d.error(inst.mark, fmt::format("services.{}.instances[{}]", s.name, i),
                fmt::format("cannot resolve host \"{}\"", inst.host));
    }
}

struct DnsRefresher::State {
  bool stopped = false;
  std::shared_ptr<Resolver> resolver;
  std::function<void()> on_change;
  std::vector<std::unique_ptr<asio::steady_timer>> timers;  // one per service with names
};

namespace {

void schedule(std::shared_ptr<DnsRefresher::State> state, std::shared_ptr<Service> svc, asio::steady_timer* timer) {
  timer->expires_after(svc->config().dns_refresh);
  timer->async_wait([state, svc, timer](boost::system::error_code ec) {
    if (ec || state->stopped) return;
    // The next round waits for this one's answers: a slow resolver never stacks lookups.
    svc->refresh(*state->resolver, [state, svc, timer](bool changed) {
      if (state->stopped) return;
      if (changed && state->on_change) state->on_change();
      schedule(state, svc, timer);
    });
  });
}

}  // namespace

DnsRefresher::DnsRefresher(asio::io_context& io, std::vector<std::shared_ptr<Service>> services,
                           std::shared_ptr<Resolver> resolver, std::function<void()> on_change)
    : io_(io), services_(std::move(services)), state_(std::make_shared<State>()) {
  state_->resolver = std::move(resolver);
  state_->on_change = std::move(on_change);
}

DnsRefresher::~DnsRefresher() { stop(); }

void DnsRefresher::start() {
  for (const auto& s : services_) {
    if (!s->has_names()) continue;
    state_->timers.push_back(std::make_unique<asio::steady_timer>(io_));
    schedule(state_, s, state_->timers.back().get());
  }
}

void DnsRefresher::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  for (auto& t : state_->timers) t->cancel();
}

}  // namespace gh::upstream
