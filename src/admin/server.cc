#include "admin/server.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/url/parse_query.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <deque>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "admin/assets.h"
#include "admin/events.h"
#include "admin/prometheus.h"
#include "core/log.h"
#include "core/strings.h"
#include "core/url.h"
#include "http/parser.h"
#include "upstream/endpoint.h"

namespace gh::admin {

namespace asio = boost::asio;
using asio::ip::tcp;
using nlohmann::json;

namespace {

using Digest = std::array<unsigned char, 32>;

Digest sha256(std::string_view s) {
  Digest d{};
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), d.data(), &len, EVP_sha256(), nullptr);
  return d;
}

struct Request {
  std::string method;
  std::string path;
  std::string query;
  std::string authorization;
  std::string body;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

Response json_response(int status, const json& j) { return Response{status, j.dump() + "\n"}; }

Response error_response(int status, std::string_view error, std::string_view reason = {}) {
  json j{{"error", error}};
  if (!reason.empty()) j["reason"] = reason;
  return json_response(status, j);
}

std::string render(const Response& r, bool keep_alive) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n", r.status,
                                reason_phrase(r.status), r.content_type, r.body.size());
  out += "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n";
  for (const auto& [k, v] : r.headers) out += fmt::format("{}: {}\r\n", k, v);
  if (!keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
  out += r.body;
  return out;
}

// --- GET /config: the document as JSON, secrets masked ---------------------------------------

constexpr std::string_view kMask = "***";

bool secret_key(std::string_view k) {
  return k == "secret" || k == "token" || k == "password";
}

// A URL's password (redis://user:pass@host) becomes ***.
std::string mask_url(const std::string& s) {
  if (s.find("://") == std::string::npos || s.find('@') == std::string::npos) return s;
  auto url = Url::parse(s);
  if (!url || !url->has_userinfo) return s;
  const auto scheme_end = s.find("://") + 3;
  const auto at = s.find('@', scheme_end);
  const std::string userinfo = s.substr(scheme_end, at - scheme_end);
  const auto colon = userinfo.find(':');
  if (colon == std::string::npos) return s.substr(0, scheme_end) + std::string(kMask) + s.substr(at);  // a password alone
  return s.substr(0, scheme_end) + userinfo.substr(0, colon + 1) + std::string(kMask) + s.substr(at);
}

json scalar_json(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return mask_url(s);  // quoted in the file: a string
  if (s == "true") return true;
  if (s == "false") return false;
  if (s == "null" || s == "~") return nullptr;
  if (!s.empty() && s.size() < 16 && s.find_first_not_of("0123456789") == std::string::npos && (s == "0" || s[0] != '0'))
    return std::stoll(s);
  return mask_url(s);
}

json yaml_json(const YAML::Node& n, int depth = 0) {
  if (depth > 64) return nullptr;
  switch (n.Type()) {
    case YAML::NodeType::Scalar: return scalar_json(n);
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const auto& item : n) a.push_back(yaml_json(item, depth + 1));
      return a;
    }
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : n) {
        const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
        o[key] = secret_key(key) ? json(kMask) : yaml_json(kv.second, depth + 1);
      }
      return o;
    }
    default: return nullptr;
  }
}

json config_json(const config::Config& c) {
  json j = c.document.IsDefined() && !c.document.IsNull() ? yaml_json(c.document) : json::object();
  if (!j.is_object()) return json::object();
  // api_key's `keys` map holds the keys themselves (as its names).
  if (auto p = j.find("policies"); p != j.end() && p->is_object())
    for (auto& entry : *p)
      if (entry.is_object() && entry.contains("keys")) entry["keys"] = kMask;
  j["file"] = c.file;
  return j;
}

// --- GET /routes -------------------------------------------------------------------------------

json routes_json(const proxy::Snapshot& snap) {
  json out = json::array();
  const auto& cfg = *snap.config;
  for (const auto& r : cfg.routes) {
    json j;
    j["name"] = r.name;
    j["match"] = r.kind == config::MatchKind::Prefix ? "path" : r.kind == config::MatchKind::Exact ? "exact" : "regex";
    j["pattern"] = r.pattern;
    j["methods"] = r.methods;
    j["host"] = r.host.empty() ? json(nullptr) : json(r.host);
    json headers = json::object();
    for (const auto& h : r.headers) headers[h.name] = h.regex ? json{{"regex", h.value}} : json(h.value);
    j["headers"] = headers;
    j["strip_prefix"] = r.strip_prefix;
    j["service"] = r.service;
    std::vector<std::string> chain = cfg.default_policies;
    chain.insert(chain.end(), r.policies.begin(), r.policies.end());
    j["policies"] = chain;
    j["websocket"] = r.websocket;
    out.push_back(std::move(j));
  }
  return json{{"routes", out}};
}

}  // namespace

// --- the server ----------------------------------------------------------------------------------

struct AdminServer::State : std::enable_shared_from_this<State> {
  State(asio::io_context& io, std::string token, Control& control, ServiceRegistry& registry, core::Metrics& metrics,
        const core::Clock& clock)
      : io(io), token(sha256(token)), control(control), registry(registry), metrics(metrics), clock(clock) {}

  asio::io_context& io;
  Digest token;
  Control& control;
  ServiceRegistry& registry;
  core::Metrics& metrics;
  const core::Clock& clock;
  std::optional<tcp::acceptor> acceptor;
  std::set<std::shared_ptr<tcp::socket>> connections;
  asio::steady_timer ticker{io};
  bool stopped = false;
  // Each endpoint's error count at each of the last 60 ticks, for "recent_errors".
  std::map<std::string, std::deque<std::uint64_t>> error_history;

  static std::string endpoint_key(const std::string& service, const upstream::Endpoint& e) {
    return service + "|" + e.url + "|" + e.pool_key;
  }

  bool authorized(const Request& r) const {
    constexpr std::string_view kBearer = "Bearer ";
    std::string_view v = r.authorization;
    if (v.size() <= kBearer.size() || !iequals(v.substr(0, kBearer.size()), kBearer)) return false;
    Digest given = sha256(v.substr(kBearer.size()));
    return CRYPTO_memcmp(given.data(), token.data(), token.size()) == 0;
  }

  // Once a second: the error history (and, once wired, the events summary).
  asio::awaitable<void> tick_loop() {
    auto self = shared_from_this();
    while (!stopped) {
      ticker.expires_after(std::chrono::seconds(1));
      boost::system::error_code ec;
      co_await ticker.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (stopped) co_return;
      auto snap = control.snapshot();
      std::set<std::string> seen;
      for (const auto& svc : snap->services)
        for (const auto& e : svc->endpoints()) {
          auto key = endpoint_key(svc->name(), *e);
          auto& h = error_history[key];
          h.push_back(e->errors.load(std::memory_order_relaxed));
          if (h.size() > 61) h.pop_front();
          seen.insert(std::move(key));
        }
      std::erase_if(error_history, [&](const auto& kv) { return !seen.count(kv.first); });
    }
  }

  json services_json(const proxy::Snapshot& snap) {
    const auto now = clock.now();
    const std::int64_t now_ms = clock.now_ms();
    std::map<std::string, core::Clock::Monotonic> expiry;
    for (const auto& r : registry.all()) expiry[r.service + "|" + r.instance.url] = r.expires;
    json out = json::array();
    for (const auto& svc : snap.services) {
      const auto& c = svc->config();
      json s;
      s["name"] = c.name;
      s["load_balancing"] = std::array{"round_robin", "weighted", "least_request", "random", "hash"}[static_cast<int>(c.load_balancing)];
      s["health_check"] = c.health_check ? json{{"path", c.health_check->path}} : json(nullptr);
      s["in_flight"] = svc->in_flight();
      s["max_in_flight"] = c.max_in_flight == 0 ? json(nullptr) : json(c.max_in_flight);
      json instances = json::array();
      std::size_t healthy = 0;
      auto endpoints = svc->endpoints();
      for (const auto& e : endpoints) {
        json i;
        const bool available = e->available(now_ms);
        healthy += available ? 1 : 0;
        i["url"] = e->url;
        i["address"] = e->pool_key;
        i["source"] = upstream::origin_name(e->source);
        i["weight"] = e->weight;
        i["healthy"] = available;
        i["active_healthy"] = e->active_healthy.load(std::memory_order_relaxed);
        const std::int64_t ejected_for = e->ejected_until_ms.load(std::memory_order_relaxed) - now_ms;
        i["ejected"] = ejected_for > 0;
        i["ejected_for_ms"] = ejected_for > 0 ? ejected_for : 0;
        i["ejections"] = e->ejections.load(std::memory_order_relaxed);
        i["in_flight"] = e->in_flight.load(std::memory_order_relaxed);
        i["requests"] = e->requests.load(std::memory_order_relaxed);
        const std::uint64_t errors = e->errors.load(std::memory_order_relaxed);
        i["errors"] = errors;
        auto h = error_history.find(endpoint_key(c.name, *e));
        // Until a minute of history exists, everything since the start counts as recent.
        const std::uint64_t minute_ago = h == error_history.end() || h->second.size() < 61 ? 0 : h->second.front();
        i["recent_errors"] = errors - std::min(errors, minute_ago);
        if (e->source == upstream::Origin::Registered) {
          auto x = expiry.find(c.name + "|" + e->url);
          i["ttl_left_s"] = x == expiry.end() ? json(nullptr)
                                               : json(std::max<double>(0, std::chrono::duration<double>(x->second - now).count()));
        }
        instances.push_back(std::move(i));
      }
      s["healthy"] = healthy;
      s["total"] = endpoints.size();
      s["instances"] = std::move(instances);
      out.push_back(std::move(s));
    }
    return json{{"services", out}, {"registry", registry.uses_redis() ? "redis" : "memory"}};
  }

  // Checks a registration's body; a Response when it is refused.
  static std::optional<Response> validate_registration(const proxy::Snapshot& snap, const std::string& service,
                                                       const Request& r, config::InstanceConfig& inst,
                                                       std::chrono::milliseconds& ttl) {
    const upstream::Service* svc = snap.find_service(service);
    if (!svc) return error_response(400, "Bad request", fmt::format("unknown service \"{}\"", service));
    json body = json::parse(r.body, nullptr, false);
    if (body.is_discarded() || !body.is_object())
      return error_response(400, "Bad request", "expected a JSON object like {\"url\": \"http://10.0.0.7:3001\", \"ttl\": \"30s\"}");
    for (const auto& [k, _] : body.items())
      if (k != "url" && k != "ttl" && k != "weight")
        return error_response(400, "Bad request", fmt::format("unknown field \"{}\"; expected url, ttl, weight", k));
    if (!body.contains("url") || !body["url"].is_string())
      return error_response(400, "Bad request", "url: expected a string like \"http://10.0.0.7:3001\"");
    std::string why;
    if (config::parse_instance(body["url"].get<std::string>(), inst, why) != config::InstanceUrl::Ok)
      return error_response(400, "Bad request", "url: " + why);
    if (why = config::registration_error(*snap.config, svc->config(), inst); !why.empty())
      return error_response(400, "Bad request", "url: " + why);
    if (body.contains("ttl")) {
      const json& t = body["ttl"];
      std::optional<std::chrono::milliseconds> parsed;
      if (t.is_number() && t.get<double>() > 0 && t.get<double>() < 1e9)
        parsed = std::chrono::milliseconds(static_cast<std::int64_t>(t.get<double>() * 1000));
      else if (t.is_string())
        parsed = parse_duration(t.get<std::string>());
      if (!parsed || *parsed < kMinTtl || *parsed > kMaxTtl)
        return error_response(400, "Bad request", "ttl: expected a duration from 1s to 24h, like \"30s\", or a number of seconds");
      ttl = *parsed;
    }
    if (body.contains("weight")) {
      const json& w = body["weight"];
      if (!w.is_number_integer() || w.get<long long>() < 1 || w.get<long long>() > 1'000'000)
        return error_response(400, "Bad request", "weight: expected an integer from 1 to 1000000");
      inst.weight = static_cast<std::uint32_t>(w.get<long long>());
    }
    for (const auto& fixed : svc->config().instances)
      if (fixed.host == inst.host && fixed.port == inst.port)
        return error_response(400, "Bad request",
                                 fmt::format("{} is already an instance of \"{}\" in the config file", inst.url, service));
    if (!upstream::is_ip_literal(inst.host) && upstream::resolve_now(inst.host).addresses.empty())
      return error_response(400, "Bad request", fmt::format("url: cannot resolve host \"{}\"", inst.host));
    return std::nullopt;
  }

  asio::awaitable<Response> register_instance(const proxy::Snapshot& snap, const std::string& service, const Request& r) {
    config::InstanceConfig inst;
    std::chrono::milliseconds ttl{30'000};
    if (auto refused = validate_registration(snap, service, r, inst, ttl)) co_return std::move(*refused);
    const std::string url = inst.url;
    const std::uint32_t weight = inst.weight;
    auto added = co_await registry.add(service, std::move(inst), ttl);
    if (!added) co_return error_response(503, "Registry store unavailable", added.error().context);
    log::info("admin: {} {} for service \"{}\" (ttl {} ms)", *added ? "registered" : "renewed", url, service, ttl.count());
    co_return json_response(*added ? 201 : 200, json{{"service", service},
                                                     {"url", url},
                                                     {"weight", weight},
                                                     {"ttl_s", ttl.count() / 1000.0},
                                                     {"registered", *added ? "new" : "renewed"}});
  }

  asio::awaitable<Response> deregister_instance(const std::string& service, const Request& r) {
    std::string url;
    if (auto params = boost::urls::parse_query(r.query))
      for (auto p : *params)
        if (p.key == "url") url = p.value;
    if (url.empty()) co_return error_response(400, "Bad request", "expected ?url=URL, the registered instance's URL");
    auto removed = co_await registry.remove(service, url);
    if (!removed) co_return error_response(503, "Registry store unavailable", removed.error().context);
    if (!*removed) co_return error_response(404, "Not registered", fmt::format("{} is not registered for \"{}\"", url, service));
    log::info("admin: removed {} from service \"{}\"", url, service);
    co_return json_response(200, json{{"service", service}, {"url", url}, {"removed", true}});
  }

  asio::awaitable<Response> handle(const Request& r) {
    auto allow = [](std::string_view methods) {
      Response resp = error_response(405, "Method not allowed");
      resp.headers.emplace_back("Allow", std::string(methods));
      return resp;
    };
    if (r.path == "/livez") {
      if (r.method != "GET" && r.method != "HEAD") co_return allow("GET, HEAD");
      co_return json_response(200, json{{"status", "alive"}});
    }
    // The dashboard's files: no token (they hold no data; the page asks for it).
    if (const Asset* asset = find_asset(r.path); asset && (r.method == "GET" || r.method == "HEAD")) {
      Response resp{200, std::string(asset->body), std::string(asset->content_type)};
      resp.headers.emplace_back("Content-Security-Policy",
                                "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                "base-uri 'none'; form-action 'self'");
      resp.headers.emplace_back("Referrer-Policy", "no-referrer");
      co_return resp;
    }
    if (!authorized(r)) {
      Response resp = error_response(401, "Unauthorized");
      resp.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"gatehouse admin\"");
      co_return resp;
    }
    auto snap = control.snapshot();
    if (r.path == "/config") {
      if (r.method != "GET") co_return allow("GET");
      co_return json_response(200, config_json(*snap->config));
    }
    if (r.path == "/routes") {
      if (r.method != "GET") co_return allow("GET");
      co_return json_response(200, routes_json(*snap));
    }
    if (r.path == "/services") {
      if (r.method != "GET") co_return allow("GET");
      co_return json_response(200, services_json(*snap));
    }
    if (r.path == "/metrics") {
      if (r.method != "GET" && r.method != "HEAD") co_return allow("GET, HEAD");
      Response resp{200, render_prometheus(metrics, *snap, clock)};
      resp.content_type = kPrometheusContentType;
      co_return resp;
    }
    if (r.path == "/events") co_return allow("GET");
    if (r.path == "/reload") {
      if (r.method != "POST") co_return allow("POST");
      auto outcome = control.reload();
      if (!outcome.ok) co_return json_response(400, json{{"error", "Invalid config"}, {"errors", outcome.errors}});
      json changes = json::parse(outcome.changes_json, nullptr, false);
      if (changes.is_discarded()) changes = json::object();
      co_return json_response(200, json{{"reloaded", true}, {"changes", changes}});
    }
    constexpr std::string_view kServices = "/services/";
    constexpr std::string_view kInstances = "/instances";
    std::string_view p = r.path;
    if (p.starts_with(kServices) && p.ends_with(kInstances) && p.size() > kServices.size() + kInstances.size()) {
      const std::string service(p.substr(kServices.size(), p.size() - kServices.size() - kInstances.size()));
      if (service.find('/') == std::string::npos) {
        if (r.method == "POST") co_return co_await register_instance(*snap, service, r);
        if (r.method == "DELETE") co_return co_await deregister_instance(service, r);
        co_return allow("POST, DELETE");
      }
    }
    co_return error_response(404, "Not found");
  }

  asio::awaitable<void> serve(std::shared_ptr<tcp::socket> sock) {
    auto self = shared_from_this();
    connections.insert(sock);
    asio::steady_timer deadline(io);
    auto arm = [&](std::chrono::seconds d) {
      deadline.expires_after(d);
      deadline.async_wait([sock](boost::system::error_code ec) {
        if (ec) return;
        boost::system::error_code ignored;
        sock->close(ignored);
      });
    };
    std::string buf;
    std::array<char, 4096> chunk;
    http::ParseLimits limits;
    boost::system::error_code ec;
    for (bool first = true; !stopped; first = false) {
      arm(first ? kAdminHeadTimeout : kAdminIdleTimeout);
      http::RequestHead head;
      http::ParseOutcome parsed;
      for (;;) {
        parsed = http::parse_request(buf, limits, head);
        if (parsed.state != http::ParseState::Partial) break;
        std::size_t n = co_await sock->async_read_some(asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
        if (!buf.empty() || n > 0) arm(kAdminHeadTimeout);
        buf.append(chunk.data(), n);
      }
      if (ec) break;
      Response resp;
      bool keep_alive = head.keep_alive;
      Request req;
      if (parsed.state == http::ParseState::Invalid) {
        resp = error_response(parsed.status, "Bad request", parsed.detail);
        keep_alive = false;
      } else if (head.body == http::BodyKind::Chunked) {
        resp = error_response(411, "Length required", "admin requests send a Content-Length");
        keep_alive = false;
      } else if (head.content_length > kMaxAdminBody) {
        resp = error_response(413, "Payload too large");
        keep_alive = false;
      } else {
        // The head's views point into `buf`, which reading the body may move: copy them first.
        req.method = head.method;
        req.path = head.path;
        req.query = head.query;
        req.authorization = head.fields.get("authorization");
        const std::size_t need = head.head_size + head.content_length;
        if (head.expect_continue && buf.size() < need) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          co_await asio::async_write(*sock, asio::buffer(kContinue), asio::redirect_error(asio::use_awaitable, ec));
          if (ec) break;
        }
        while (buf.size() < need) {
          std::size_t n = co_await sock->async_read_some(asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
          if (ec) break;
          buf.append(chunk.data(), n);
        }
        if (ec) break;
        req.body = buf.substr(head.head_size, head.content_length);
        buf.erase(0, need);
        deadline.cancel();
        if (req.path == "/events" && req.method == "GET" && authorized(req)) {
          co_await stream_events(sock);
          break;
        }
        resp = co_await handle(req);
      }
      if (stopped) break;
      std::string out = render(resp, keep_alive);
      if (req.method == "HEAD") out.resize(out.size() - resp.body.size());
      co_await asio::async_write(*sock, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !keep_alive) break;
    }
    deadline.cancel();
    boost::system::error_code ignored;
    sock->shutdown(tcp::socket::shutdown_both, ignored);
    sock->close(ignored);
    connections.erase(sock);
  }

  // GET /events: one summary a second until the client goes or the server stops. The stream
  // ends with the connection (no Content-Length, Connection: close).
  asio::awaitable<void> stream_events(std::shared_ptr<tcp::socket> sock) {
    EventsSummarizer summarizer(metrics, clock);
    std::string out =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\nretry: 1000\n\n";
    boost::system::error_code ec;
    co_await asio::async_write(*sock, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
    // A peer that closes is noticed by the next write; one that stops reading fills its
    // window and the write waits, bounded by the same deadline as a request.
    asio::steady_timer tick(io);
    while (!ec && !stopped) {
      tick.expires_after(std::chrono::seconds(1));
      co_await tick.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec || stopped) break;
      out = "data: " + summarizer.tick(*control.snapshot()) + "\n\n";
      asio::steady_timer write_deadline(io, kAdminHeadTimeout);
      write_deadline.async_wait([sock](boost::system::error_code e) {
        if (!e) sock->close(e);
      });
      co_await asio::async_write(*sock, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    while (!stopped) {
      auto sock = std::make_shared<tcp::socket>(io);
      boost::system::error_code ec;
      co_await acceptor->async_accept(*sock, asio::redirect_error(asio::use_awaitable, ec));
      if (stopped) co_return;
      if (ec) {
        if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
          asio::steady_timer pause(io, std::chrono::milliseconds(100));
          co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        continue;
      }
      if (connections.size() >= kMaxAdminConnections) {
        sock->close(ec);
        continue;
      }
      sock->set_option(tcp::no_delay(true), ec);
      asio::co_spawn(io, serve(std::move(sock)), asio::detached);
    }
  }
};

AdminServer::AdminServer(asio::io_context& io, std::string token, Control& control, ServiceRegistry& registry,
                         core::Metrics& metrics, const core::Clock& clock)
    : state_(std::make_shared<State>(io, std::move(token), control, registry, metrics, clock)) {}

AdminServer::~AdminServer() { stop(); }

bool AdminServer::listen(const tcp::endpoint& address, std::string& error) {
  boost::system::error_code ec;
  tcp::acceptor a(state_->io);
  a.open(address.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(address, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error = fmt::format("cannot listen on {}:{} (admin): {}", address.address().to_string(), address.port(), ec.message());
    return false;
  }
  state_->acceptor.emplace(std::move(a));
  return true;
}

void AdminServer::set_token(const std::string& token) { state_->token = sha256(token); }

tcp::endpoint AdminServer::local_endpoint() const {
  boost::system::error_code ec;
  return state_->acceptor ? state_->acceptor->local_endpoint(ec) : tcp::endpoint{};
}

void AdminServer::start() {
  if (!state_->acceptor) return;
  asio::co_spawn(state_->io, state_->accept_loop(), asio::detached);
  asio::co_spawn(state_->io, state_->tick_loop(), asio::detached);
}

void AdminServer::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  state_->ticker.cancel();
  boost::system::error_code ec;
  if (state_->acceptor) state_->acceptor->close(ec);
  for (const auto& s : state_->connections) s->close(ec);
}

}  // namespace gh::admin
