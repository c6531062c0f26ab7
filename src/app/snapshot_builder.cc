#include "app/snapshot_builder.h"

#include <map>

#include <fmt/format.h>

#include "app/registry.h"
#include "core/log.h"
#include "policies/rate_limit/rate_limit_config.h"
#include "upstream/dns.h"

namespace gh::app {

config::LoadResult load_config(const std::string& path) {
  auto r = config::load_file(path, policy_catalog());
  if (!r.config) return r;
  // Checks that span the whole file rather than one policy entry.
  config::Diagnostics d(path);
  policies::check_rate_limit_stores(*r.config, d);
  // What the format describes but this version does not do is refused, not accepted and
  // ignored: `check` must not pass a file that `run` would not honour.
  // The admin API is never served on the public listener: it needs a port of its own.
  if (const auto& admin = r.config->admin)
    for (const config::ListenerConfig& l : r.config->listeners)
      if (l.port == admin->port && admin->port != 0 && (l.host == admin->host || l.host.empty() || admin->host.empty()))
        d.error(admin->mark, "admin.address",
                fmt::format("the admin API needs a port of its own; {}:{} is also a listener", admin->host, admin->port));
  upstream::check_instance_hosts(*r.config, d);
  if (!d.empty()) {
    r.errors = d.list();
    r.config.reset();
  }
  return r;
}

Result<std::shared_ptr<const proxy::Snapshot>> build_snapshot(std::shared_ptr<const config::Config> config,
                                                              const proxy::Snapshot* previous, Runtime& runtime) {
  auto snap = std::make_shared<proxy::Snapshot>();
  snap->config = config;
  snap->generation = runtime.next_generation();
  snap->parse_limits.max_uri_bytes = config->limits.max_uri_bytes;
  snap->parse_limits.max_header_bytes = config->limits.max_header_bytes;
  snap->parse_limits.max_headers = config->limits.max_headers;

  std::vector<Cidr> trusted;
  for (const auto& t : config->trusted_proxies) {
    auto c = Cidr::parse(t);
    if (!c) return Error{ErrorCode::InvalidConfig, Source::Config, false, "trusted_proxies: bad CIDR " + t};
    trusted.push_back(*c);
  }
  snap->trusted_proxies = CidrSet(std::move(trusted));

  std::string error;
  snap->table = routing::RouteTable::build(config->routes, &error);
  if (!snap->table) return Error{ErrorCode::InvalidConfig, Source::Config, false, "routes: " + error};

  std::map<std::string, std::shared_ptr<upstream::Service>> services;
  std::vector<std::string> tls_errors;
  for (const auto& sc : config->services) {
    // https:// instances: the service's TLS context, loaded with every generation (so a reload
    // reads the CA and client certificate files again); a file that cannot be loaded is a
    // config error at its `tls:`.
    std::shared_ptr<const net::TlsClientContext> tls;
    if (upstream::Service::uses_tls(sc)) {
      std::string error;
      tls = upstream::Service::load_tls(sc, error);
      if (!tls) {
        tls_errors.push_back(config::Diagnostic{config->file, sc.tls.mark.line ? sc.tls.mark : sc.mark,
                                                "services." + sc.name + ".tls", error}
                                 .to_string());
        continue;
      }
      if (!sc.tls.verify)
        log::warn("service \"{}\": TLS certificate verification is off (tls.verify: false): its https instances are "
                  "not authenticated",
                  sc.name);
    }
    auto s = upstream::Service::build(sc, std::move(tls));
    if (!s) return s.error();
    if (previous)
      if (const auto* old = previous->find_service(sc.name)) (*s)->inherit_health(*old);
    services[sc.name] = *s;
    snap->services.push_back(*s);
  }

  if (!tls_errors.empty())
    return Error{ErrorCode::InvalidConfig, Source::Config, false, fmt::format("{}", fmt::join(tls_errors, "\n"))};

  std::map<std::string, std::shared_ptr<proxy::Policy>> policies;
  for (const auto& pc : config->policies) {
    auto p = make_policy(pc, runtime, config->redis);
    if (!p)
      return Error{ErrorCode::InvalidConfig, Source::Config, false,
                   "policy \"" + pc.name + "\": type \"" + pc.type + "\" cannot be built"};
    policies[pc.name] = std::move(p);
  }
  auto policy = [&](const std::string& name) -> std::shared_ptr<proxy::Policy> {
    auto it = policies.find(name);
    return it == policies.end() ? nullptr : it->second;
  };

  for (std::size_t i = 0; i < config->routes.size(); ++i) {
    const auto& rc = config->routes[i];
    proxy::CompiledRoute cr;
    cr.config = &rc;
    cr.service = services.at(rc.service);
    for (const auto& n : config->default_policies) {
      auto p = policy(n);
      if (!p) return Error{ErrorCode::InvalidConfig, Source::Config, false, "unknown policy \"" + n + "\""};
      cr.chain.push_back(std::move(p));
    }
    for (const auto& n : rc.policies) {
      auto p = policy(n);
      if (!p) return Error{ErrorCode::InvalidConfig, Source::Config, false, "unknown policy \"" + n + "\""};
      cr.chain.push_back(std::move(p));
    }
    if (rc.strip_prefix && rc.kind == config::MatchKind::Prefix)
      cr.strip = std::string(snap->table->prefix(static_cast<int>(i)));
    snap->routes.push_back(std::move(cr));
  }

  // Listeners change only with a restart: a reload keeps the labels of those the workers opened.
  if (previous) {
    snap->listeners = previous->listeners;
  } else {
    for (const auto& l : config->listeners) snap->listeners.push_back(proxy::listener_label(l.host, l.port));
  }
  if (config->admin) {
    // Every series is taken here, once per generation; the request path only writes to them.
    core::Metrics& m = runtime.metrics();
    auto pm = std::make_shared<proxy::ProxyMetrics>();
    pm->routes.reserve(snap->routes.size());
    for (const auto& cr : snap->routes) pm->routes.push_back(proxy::RouteMetrics::make(m, cr.config->name, cr.service->name()));
    pm->unmatched = proxy::RouteMetrics::make(m, "", "");
    pm->websocket_tunnels = &m.gauge(proxy::kWebsocketTunnelsOpen);
    for (std::size_t i = 0; i < snap->listeners.size(); ++i) {
      const std::string& l = snap->listeners[i];
      pm->connections_open.push_back(&m.gauge(proxy::kConnectionsOpen, {{"listener", l}}));
      const bool tls = i < config->listeners.size() && config->listeners[i].tls;
      pm->tls_handshake_failures.push_back(tls ? &m.counter(proxy::kTlsHandshakeFailures, {{"listener", l}}) : nullptr);
    }
    for (std::size_t i = 0; i < snap->routes.size(); ++i) snap->routes[i].metrics = &pm->routes[i];
    snap->metrics = std::move(pm);
  }
  return std::shared_ptr<const proxy::Snapshot>(std::move(snap));
}

}  // namespace gh::app
