#include "app/demo.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <random>
#include <thread>

#include <fmt/format.h>

#include "app/gateway.h"
#include "app/registry.h"
#include "app/token.h"
#include "core/log.h"
#include "http/parser.h"
#include "proxy/access_log.h"

namespace gh::app {

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr const char* kDemoSecret = "demo-secret";

std::string demo_body(std::string_view service, std::string_view instance, const http::RequestHead& req) {
  std::string out = "{\"service\":";
  proxy::append_json_string(out, service);
  out += ",\"instance\":";
  proxy::append_json_string(out, instance);
  out += ",\"method\":";
  proxy::append_json_string(out, req.method);
  out += ",\"path\":";
  proxy::append_json_string(out, req.target);
  out += ",\"request_id\":";
  proxy::append_json_string(out, req.fields.get("x-request-id"));
  // The verified caller, as the gateway's jwt policy forwards it.
  for (auto [field, key] : {std::pair{"x-user-id", ",\"user_id\":"}, std::pair{"x-user-role", ",\"user_role\":"}}) {
    if (auto v = req.fields.get(field); !v.empty()) {
      out += key;
      proxy::append_json_string(out, v);
    }
  }
  if (service == "user") out += R"(,"data":[{"id":1,"name":"Ada Lovelace"},{"id":2,"name":"Alan Turing"}])";
  if (service == "product") out += R"(,"data":[{"id":"p-1","name":"Keyboard","price":49},{"id":"p-2","name":"Mouse","price":19}])";
  if (service == "order") out += R"(,"data":[{"id":"o-1","product":"p-1","quantity":2}])";
  out += "}\n";
  return out;
}

// One demo instance: a tiny keep-alive HTTP server answering JSON.
asio::awaitable<void> serve(tcp::socket sock, std::string service, std::string instance) {
  std::string buf;
  std::array<char, 8192> chunk;
  http::RequestHead req;
  for (;;) {
    http::ParseOutcome out;
    for (;;) {
      out = http::parse_request(buf, http::ParseLimits{}, req);
      if (out.state != http::ParseState::Partial) break;
      auto [ec, n] = co_await sock.async_read_some(asio::buffer(chunk), nothrow);
      if (ec) co_return;
      buf.append(chunk.data(), n);
    }
    if (out.state == http::ParseState::Invalid) co_return;
    std::size_t need = req.head_size + (req.body == http::BodyKind::Length ? req.content_length : 0);
    if (req.body == http::BodyKind::Chunked) co_return;  // the demo services take no chunked bodies
    while (buf.size() < need) {
      auto [ec, n] = co_await sock.async_read_some(asio::buffer(chunk), nothrow);
      if (ec) co_return;
      buf.append(chunk.data(), n);
    }
    std::string body = req.path == "/health" ? std::string("{\"status\":\"ok\"}\n") : demo_body(service, instance, req);
    std::string head = fmt::format(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Powered-By: Express\r\n\r\n",
        body.size());
    bool keep = req.keep_alive;
    buf.erase(0, need);
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
    auto [ec, n] = co_await asio::async_write(sock, bufs, nothrow);
    if (ec || !keep) co_return;
  }
}

asio::awaitable<void> accept_loop(std::shared_ptr<tcp::acceptor> acc, std::string service, std::string instance) {
  for (;;) {
    auto [ec, sock] = co_await acc->async_accept(nothrow);
    if (ec) co_return;
    asio::co_spawn(acc->get_executor(), serve(std::move(sock), service, instance), asio::detached);
  }
}

}  // namespace

int run_demo(unsigned port) {
  asio::io_context io;
  struct Instance {
    std::string service, name;
    std::uint16_t port;
  };
  std::vector<Instance> instances = {{"user", "user-1", 0}, {"user", "user-2", 0}, {"product", "product-1", 0},
                                     {"order", "order-1", 0}};
  for (auto& inst : instances) {
    auto acc = std::make_shared<tcp::acceptor>(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    inst.port = acc->local_endpoint().port();
    asio::co_spawn(io, accept_loop(acc, inst.service, inst.name), asio::detached);
  }
  auto guard = asio::make_work_guard(io);
  std::thread services([&] { io.run(); });

  // The admin API on a free loopback port, with a token made for this run.
  std::uint16_t admin_port = 0;
  {
    tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    admin_port = probe.local_endpoint().port();
  }
  std::string admin_token;
  {
    std::random_device rd;
    for (int i = 0; i < 4; ++i) admin_token += fmt::format("{:08x}", rd());
  }

  std::string yaml = fmt::format(R"(# gatehouse demo: the embedded config
listen: "127.0.0.1:{0}"
admin: {{address: "127.0.0.1:{6}", token: "{7}"}}
workers: 1
access_log: stdout
services:
  user:
    instances: ["http://127.0.0.1:{1}", "http://127.0.0.1:{2}"]
    load_balancing: round_robin
    health_check: {{path: /health, interval: 5s}}
  product:
    instances: ["http://127.0.0.1:{3}"]
    health_check: {{path: /health, interval: 5s}}
  order:
    instances: ["http://127.0.0.1:{4}"]
    health_check: {{path: /health, interval: 5s}}
policies:
  jwt:
    type: jwt
    secret: "{5}"
    forward_claims: {{sub: X-User-Id, role: X-User-Role}}
  admins-only:
    type: require_role
    roles: [admin]
  per-ip:
    type: rate_limit
    key: client_ip
    limit: 100
    window: 15m
  users-per-ip:
    type: rate_limit
    key: client_ip
    limit: 50
    window: 15m
  admin-per-ip:
    type: rate_limit
    key: client_ip
    limit: 200
    window: 15m
defaults:
  policies: [security_headers, per-ip]
routes:
  - path: /api/admin
    service: user
    policies: [jwt, admins-only, admin-per-ip]
  - path: /api/users
    service: user
    policies: [jwt, users-per-ip]
  - path: /api/products
    service: product
  - path: /api/orders
    service: order
    policies: [jwt]
)",
                                 port, instances[0].port, instances[1].port, instances[2].port, instances[3].port,
                                 kDemoSecret, admin_port, admin_token);
  auto loaded = config::load_string(yaml, "<demo>", policy_catalog());
  if (!loaded.config) {
    for (const auto& e : loaded.errors) log::error("{}", e.to_string());
    io.stop();
    services.join();
    return 1;
  }
  TokenRequest user{kDemoSecret, "42", "user", std::chrono::hours(1), {}};
  TokenRequest admin{kDemoSecret, "1", "admin", std::chrono::hours(1), {}};
  const std::string user_jwt = mint_hs256(user), admin_jwt = mint_hs256(admin);

  RunOptions opts;
  opts.config = std::make_shared<const config::Config>(std::move(*loaded.config));
  opts.on_ready = [&](const std::string&) {
    std::string base = fmt::format("http://127.0.0.1:{}", port);
    fmt::print(
        "\ngatehouse demo: the gateway listens on {0}, in front of user (2 instances), product and order,\n"
        "with the routes and policies of examples/seed.yaml. Try:\n"
        "  curl -i {0}/api/products             # open to all\n"
        "  curl -i {0}/health\n"
        "  curl -i {0}/nowhere                  # 404 JSON from the gateway\n"
        "  curl -i {0}/api/users                # 401: a token is required\n"
        "  curl -i -H 'Authorization: Bearer {1}' {0}/api/users    # user token: run it twice, see \"instance\" alternate\n"
        "  curl -i -H 'Authorization: Bearer {1}' {0}/api/orders   # user token\n"
        "  curl -i -H 'Authorization: Bearer {1}' {0}/api/admin    # 403: the user token lacks role admin\n"
        "  curl -i -H 'Authorization: Bearer {2}' {0}/api/admin    # 200: admin token\n"
        "The tokens are HS256 with secret \"{3}\", valid for an hour (user: sub 42, role user; admin: sub 1,\n"
        "role admin); the services see them as X-User-Id and X-User-Role.\n"
        "Each client IP may make 100 requests per 15 minutes, at most 50 of them to /api/users\n"
        "(see the RateLimit-* headers).\n"
        "The admin API and its live dashboard: open http://127.0.0.1:{4}/ and enter the admin token {5}\n"
        "  curl -H 'Authorization: Bearer {5}' http://127.0.0.1:{4}/services\n"
        "  curl -H 'Authorization: Bearer {5}' http://127.0.0.1:{4}/metrics\n"
        "Access log lines follow below. Stop with Ctrl-C.\n\n",
        base, user_jwt, admin_jwt, kDemoSecret, admin_port, admin_token);
    std::fflush(stdout);
  };
  int rc = run_gateway(std::move(opts));
  guard.reset();
  io.stop();
  services.join();
  return rc;
}

}  // namespace gh::app
