#include "app/gateway.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <pthread.h>

#include <csignal>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "admin/server.h"
#include "admin/service_registry.h"
#include "app/runtime.h"
#include "app/snapshot_builder.h"
#include "app/tls_listeners.h"
#include "config/diff.h"
#include "core/cpu.h"
#include "core/log.h"
#include "proxy/worker.h"
#include "upstream/dns.h"
#include "upstream/health_checker.h"

namespace gh::app {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

std::vector<tcp::endpoint> listen_endpoints(const config::Config& c, std::string& error) {
  std::vector<tcp::endpoint> out;
  for (const auto& l : c.listeners) {
    boost::system::error_code ec;
    auto addr = l.host.empty() ? asio::ip::address(asio::ip::address_v4::any()) : asio::ip::make_address(l.host, ec);
    if (ec) {
      asio::io_context io;
      tcp::resolver r(io);
      auto res = r.resolve(l.host, std::to_string(l.port), ec);
      if (ec || res.empty()) {
        error = "cannot resolve listen address " + l.host;
        return {};
      }
      out.push_back(*res.begin());
      continue;
    }
    out.emplace_back(addr, l.port);
  }
  return out;
}

std::optional<tcp::endpoint> admin_endpoint(const config::AdminConfig& a, std::string& error) {
  boost::system::error_code ec;
  auto addr = a.host.empty() ? asio::ip::address(asio::ip::address_v4::loopback()) : asio::ip::make_address(a.host, ec);
  if (!ec) return tcp::endpoint(addr, a.port);
  asio::io_context io;
  tcp::resolver r(io);
  auto res = r.resolve(a.host, std::to_string(a.port), ec);
  if (ec || res.empty()) {
    error = "cannot resolve the admin address " + a.host;
    return std::nullopt;
  }
  return *res.begin();
}

// The registered instances `svc` can take as `snap` stands: one that cannot (registered before a
// reload changed the service's protocol or routes, or by a gateway with another config on the
// same Redis) is left out, with a warning.
std::vector<config::InstanceConfig> usable(const proxy::Snapshot& snap, const upstream::Service& svc,
                                           std::vector<config::InstanceConfig> instances) {
  std::erase_if(instances, [&](const config::InstanceConfig& i) {
    std::string why = config::registration_error(*snap.config, svc.config(), i);
    if (!why.empty()) log::warn("service \"{}\": registered instance {}: {}; not used", svc.name(), i.url, why);
    return !why.empty();
  });
  return instances;
}

// Gives every service of `snap` the instances registered for it; endpoints that were in
// `previous` keep their health state.
void apply_registrations(const proxy::Snapshot& snap, const proxy::Snapshot* previous, const admin::ServiceRegistry& registry) {
  for (const auto& svc : snap.services) {
    auto registered = usable(snap, *svc, registry.instances(svc->name()));
    if (registered.empty() || !svc->set_registered(registered) || !previous) continue;
    if (const auto* old = previous->find_service(svc->name())) svc->inherit_health(*old);
  }
}

unsigned worker_count(const config::Config& c) {
  if (c.workers > 0) return c.workers;
  return available_cpus();
}

// What the gateway builds from a config before it listens.
struct Prepared {
  Result<std::shared_ptr<const proxy::Snapshot>> snapshot;
  std::shared_ptr<proxy::AccessLogSink> sink;
  std::vector<tcp::endpoint> endpoints;
  std::vector<std::shared_ptr<const net::TlsServerContext>> tls;  // by listener; null: plain
};

// Builds the snapshot (routes, services and their addresses, policies), opens the access log
// and resolves the listen addresses; nullopt and ERROR on the first failure.
std::optional<Prepared> prepare(const std::shared_ptr<const config::Config>& config, Runtime& runtime,
                                std::string& error) {
  auto snap = build_snapshot(config, nullptr, runtime);
  if (!snap) {
    error = snap.error().context;
    return std::nullopt;
  }
  std::vector<std::string> tls_errors;
  auto tls = load_tls_contexts(*config, tls_errors);
  if (!tls_errors.empty()) {
    error = fmt::format("{}", fmt::join(tls_errors, "\n"));
    return std::nullopt;
  }
  auto sink = proxy::AccessLogSink::open(config->access_log, error);
  if (!sink) return std::nullopt;
  auto endpoints = listen_endpoints(*config, error);
  if (endpoints.empty()) {
    if (error.empty()) error = "no listener";
    return std::nullopt;
  }
  return Prepared{std::move(snap), std::move(sink), std::move(endpoints), std::move(tls)};
}

}  // namespace

std::string check_runtime(std::shared_ptr<const config::Config> config) {
  // A loop that never runs: nothing is fetched or connected, only built.
  asio::io_context control;
  Runtime runtime(control.get_executor(), worker_count(*config));
  std::string error;
  prepare(config, runtime, error);
  return error;
}

int run_gateway(RunOptions opts) {
  std::signal(SIGPIPE, SIG_IGN);
  // The signals wait, blocked, until the signal set below takes them over: one sent while the
  // gateway starts (it may accept already) must not meet its default action, exit.
  sigset_t handled;
  sigemptyset(&handled);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&handled, sig);
  pthread_sigmask(SIG_BLOCK, &handled, nullptr);
  // The control loop and the runtime outlive everything built below (snapshots hold JWKS
  // sources that fetch on this loop), so they are declared first.
  asio::io_context control;
  const unsigned n = worker_count(*opts.config);  // fixed for the life of the process
  Runtime runtime(control.get_executor(), n);
  std::string error;
  auto prepared = prepare(opts.config, runtime, error);
  if (!prepared) {
    log::error("{}", error);
    return 1;
  }
  auto& snap = prepared->snapshot;
  auto& sink = prepared->sink;
  auto& endpoints = prepared->endpoints;

  // Workers bind with SO_REUSEPORT, which would let a second gateway (or anything else with
  // SO_REUSEPORT) silently share the port: first make sure the address is really free.
  for (const auto& ep : endpoints) {
    asio::io_context probe_io;
    tcp::acceptor probe(probe_io);
    boost::system::error_code ec;
    probe.open(ep.protocol(), ec);
    if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) probe.bind(ep, ec);
    if (ec) {
      log::error("cannot listen on {}:{}: {}", ep.address().to_string(), ep.port(), ec.message());
      return 1;
    }
  }

  proxy::GatewayShared shared;
  std::vector<std::unique_ptr<proxy::Worker>> workers;

  // Each TLS listener's certificates, shared by the workers, renewed by the watch and reloads.
  std::vector<std::shared_ptr<net::TlsCertificates>> certs;
  for (std::size_t i = 0; i < prepared->tls.size(); ++i)
    certs.push_back(prepared->tls[i] ? std::make_shared<net::TlsCertificates>(
                                           tls_server_options(*opts.config->listeners[i].tls), prepared->tls[i])
                                     : nullptr);
  TlsWatch tls_watch(control.get_executor(), certs, (*snap)->listeners);
  tls_watch.start(*opts.config);

  std::shared_ptr<const proxy::Snapshot> current = *snap;
  // Registered instances outlive config generations: the registry belongs to the process.
  admin::ServiceRegistry registry(control, runtime.clock(), opts.config->redis, runtime.metrics());
  std::unique_ptr<upstream::HealthChecker> checker;
  registry.on_change([&](const std::string& name) {
    auto instances = registry.instances(name);
    log::debug("registry: service \"{}\" has {} registered instance{}", name, instances.size(), instances.size() == 1 ? "" : "s");
    for (const auto& svc : current->services)
      if (svc->name() == name && svc->set_registered(usable(*current, *svc, instances)) && checker) checker->sync();
  });
  registry.start();
  checker = std::make_unique<upstream::HealthChecker>(control, current->services);
  checker->start();
  // Instance host names are resolved again on this loop; new addresses get health probes.
  auto make_dns = [&] {
    auto d = std::make_unique<upstream::DnsRefresher>(control, current->services, upstream::system_resolver(control),
                                                      [&checker] { checker->sync(); });
    d->start();
    return d;
  };
  auto dns = make_dns();

  std::unique_ptr<admin::AdminServer> admin_server;
  auto apply_reload = [&]() -> admin::Control::ReloadOutcome {
    admin::Control::ReloadOutcome outcome;
    auto loaded = load_config(opts.config_path);
    for (const auto& d : loaded.errors) outcome.errors.push_back(d.to_string());
    if (!loaded.config) return outcome;
    auto cfg = std::make_shared<const config::Config>(std::move(*loaded.config));
    auto next = build_snapshot(cfg, current.get(), runtime);
    if (!next) {
      outcome.errors.push_back(next.error().context);
      return outcome;
    }
    // Certificates are read again on every reload; one that fails refuses the reload.
    std::vector<std::pair<std::size_t, std::shared_ptr<const net::TlsServerContext>>> tls_next;
    for (std::size_t i = 0; i < certs.size() && i < cfg->listeners.size(); ++i) {
      if (!certs[i] || !cfg->listeners[i].tls) {
        if (!certs[i] != !cfg->listeners[i].tls) log::warn("reload: turning TLS on or off on a listener takes effect after a restart");
        continue;
      }
      std::vector<std::string> errs;
      config::Config one;
      one.file = cfg->file;
      one.listeners = {cfg->listeners[i]};
      auto ctx = load_tls_contexts(one, errs);
      for (auto& e : errs) outcome.errors.push_back(std::move(e));
      if (!ctx.empty()) tls_next.emplace_back(i, ctx[0]);
    }
    if (!outcome.errors.empty()) return outcome;
    apply_registrations(**next, current.get(), registry);
    std::string sink_error;
    std::shared_ptr<proxy::AccessLogSink> next_sink;
    if (cfg->access_log != current->config->access_log) {
      next_sink = proxy::AccessLogSink::open(cfg->access_log, sink_error);
      if (!next_sink) {
        outcome.errors.push_back(sink_error);
        return outcome;
      }
    }
    if (cfg->listeners.size() != current->config->listeners.size())
      log::warn("reload: listener changes take effect after a restart");
    const auto* was = current->config->admin ? &*current->config->admin : nullptr;
    const auto* now = cfg->admin ? &*cfg->admin : nullptr;
    if (!was != !now || (was && now && (was->host != now->host || was->port != now->port)))
      log::warn("reload: a change of the admin address takes effect after a restart");
    if (admin_server && now) admin_server->set_token(now->token);
    if (cfg->redis != opts.config->redis)
      log::warn("reload: registered instances stay in {} until a restart", registry.uses_redis() ? "the Redis the gateway started with" : "memory");
    const config::ConfigDiff changes = config::diff_configs(*current->config, *cfg);
    current = *next;
    for (auto& [i, ctx] : tls_next) certs[i]->install(tls_server_options(*cfg->listeners[i].tls), ctx);
    tls_watch.start(*cfg);
    for (auto& w : workers)
      asio::post(w->io(), [w = w.get(), s = current, next_sink] {
        w->set_snapshot(s);
        if (next_sink) w->access_log().set_sink(next_sink);
      });
    checker->stop();
    dns->stop();
    checker = std::make_unique<upstream::HealthChecker>(control, current->services);
    checker->start();
    dns = make_dns();
    if (next_sink) sink = next_sink;
    if (opts.on_reload) opts.on_reload(*cfg);
    log::info("reloaded {} (generation {}): {}", opts.config_path, current->generation, config::diff_summary(changes));
    outcome.ok = true;
    outcome.changes_json = config::diff_json(changes);
    return outcome;
  };
  auto reload = [&] {
    auto outcome = apply_reload();
    runtime.count_reload(outcome.ok);
    return outcome;
  };

  struct ControlImpl final : admin::Control {
    std::shared_ptr<const proxy::Snapshot>& current;
    std::function<ReloadOutcome()> do_reload;
    ControlImpl(std::shared_ptr<const proxy::Snapshot>& c, std::function<ReloadOutcome()> r)
        : current(c), do_reload(std::move(r)) {}
    std::shared_ptr<const proxy::Snapshot> snapshot() const override { return current; }
    ReloadOutcome reload() override {
      auto outcome = do_reload();
      for (const auto& e : outcome.errors) log::error("reload refused: {}", e);
      return outcome;
    }
  } admin_control(current, reload);
  if (opts.config->admin) {
    auto where = admin_endpoint(*opts.config->admin, error);
    admin_server = std::make_unique<admin::AdminServer>(control, opts.config->admin->token, admin_control, registry,
                                                        runtime.metrics(), runtime.clock());
    if (!where || !admin_server->listen(*where, error)) {
      log::error("{}", error);
      return 1;
    }
    admin_server->start();
    auto bound = admin_server->local_endpoint();
    log::info("admin API on {}:{}", bound.address().to_string(), bound.port());
  }
  // The workers listen last: once the public port accepts, the admin API does too.
  for (unsigned i = 0; i < n; ++i) {
    auto w = std::make_unique<proxy::Worker>(i, shared, sink);
    if (!w->listen(endpoints, error, {certs.begin(), certs.end()})) {
      log::error("{}", error);
      return 1;
    }
    w->set_snapshot(*snap);
    workers.push_back(std::move(w));
  }

  asio::signal_set signals(control, SIGTERM, SIGINT, SIGHUP);
  signals.add(SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &handled, nullptr);
  // Log rotation: the access log file is opened again at its configured path.
  auto reopen_logs = [&] {
    std::string reopen_error;
    if (!sink->reopen(reopen_error)) log::error("{}", reopen_error);
    else if (sink->is_file()) log::info("reopened the access log {}", current->config->access_log);
  };
  asio::steady_timer drain_timer(control);
  bool draining = false;
  core::Clock::Monotonic drain_deadline;

  std::function<void()> wait_drained = [&] {
    drain_timer.expires_after(std::chrono::milliseconds(20));
    drain_timer.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      if (shared.open_connections.load() == 0 || runtime.clock().now() >= drain_deadline) {
        for (auto& w : workers) w->terminate();
        tls_watch.stop();
        checker->stop();
        dns->stop();
        registry.stop();
        if (admin_server) admin_server->stop();
        signals.cancel();
        control.stop();
        return;
      }
      wait_drained();
    });
  };

  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        auto outcome = reload();
        for (const auto& e : outcome.errors) log::error("reload refused: {}", e);
        reopen_logs();
      } else if (sig == SIGUSR1) {
        reopen_logs();
      } else if (!draining) {
        draining = true;
        log::info("draining (up to {} ms)", current->config->limits.drain_timeout.count());
        shared.draining = true;
        drain_deadline = runtime.clock().now() + current->config->limits.drain_timeout;
        for (auto& w : workers) w->drain();
        wait_drained();
      } else {
        drain_deadline = runtime.clock().now();  // a second signal: stop now
      }
      wait_signal();
    });
  };
  wait_signal();

  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([w = w.get()] { w->run(); });
  std::string where;
  for (const auto& ep : endpoints) where += (where.empty() ? "" : ", ") + fmt::format("{}:{}", ep.address().to_string(), ep.port());
  log::info("listening on {} ({} worker{})", where, n, n == 1 ? "" : "s");
#if defined(BOOST_ASIO_HAS_IO_URING) && defined(BOOST_ASIO_DISABLE_EPOLL)
  log::warn("this build runs sockets on io_uring (GH_IO_URING), which fails under load with Boost 1.81's "
            "Asio: connections go unserved or the process crashes once idle timeouts fire among thousands "
            "of connections (docs/performance.md); use the default epoll build in production");
#endif
  if (opts.on_ready) opts.on_ready(where);

  control.run();
  // Stopping: a signal that arrives now (a supervisor repeating its SIGTERM) must not kill
  // the process with the signal's status while the workers finish; the signal set is cleared
  // first, since clearing restores the default action.
  boost::system::error_code ignore;
  signals.clear(ignore);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) std::signal(sig, SIG_IGN);
  for (auto& t : threads) t.join();
  log::info("stopped");
  return 0;
}

}  // namespace gh::app
