// gatehouse: command-line entry point (SPEC §1).
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include "app/demo.h"
#include "app/gateway.h"
#include "app/route_cmd.h"
#include "app/snapshot_builder.h"
#include "app/token.h"
#include "core/strings.h"

namespace {

std::string default_config(const std::string& given) {
  if (!given.empty()) return given;
  if (std::filesystem::exists("gatehouse.yaml")) return "gatehouse.yaml";
  return {};
}

int check_or_print(const gh::config::LoadResult& r) {
  for (const auto& e : r.errors) fmt::print(stderr, "{}\n", e.to_string());
  return r.config ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gatehouse: an API gateway. One binary, one YAML file."};
  app.set_version_flag("--version", std::string("gatehouse ") + GH_VERSION);
  app.require_subcommand(1);

  std::string config_path;
  auto* run = app.add_subcommand("run", "run the gateway from a config file");
  run->add_option("-c,--config", config_path, "config file (default ./gatehouse.yaml)");

  auto* check = app.add_subcommand("check", "validate a config file: exit 0, or print every error and exit 1");
  check->add_option("-c,--config", config_path, "config file (default ./gatehouse.yaml)");

  unsigned demo_port = 3000;
  auto* demo = app.add_subcommand("demo", "run built-in demo services behind the gateway");
  demo->add_option("--port", demo_port, "gateway port")->check(CLI::Range(1, 65535));

  std::string method, target;
  std::vector<std::string> headers;
  auto* route = app.add_subcommand("route", "explain what a request would meet");
  route->add_option("-c,--config", config_path, "config file (default ./gatehouse.yaml)");
  route->add_option("METHOD", method, "request method")->required();
  route->add_option("PATH", target, "request path, with an optional query")->required();
  route->add_option("-H,--header", headers, "a request header, 'Name: value' (repeatable)");

  gh::app::TokenRequest token;
  std::string ttl = "1h";
  std::vector<std::string> claims;
  auto* tok = app.add_subcommand("token", "mint an HS256 test token");
  tok->add_option("--secret", token.secret, "HMAC secret")->required();
  tok->add_option("--sub", token.sub, "subject claim");
  tok->add_option("--role", token.role, "role claim");
  tok->add_option("--ttl", ttl, "lifetime, e.g. 15m, 1h (default 1h)");
  tok->add_option("--claim", claims, "an extra claim k=v (repeatable)");

  CLI11_PARSE(app, argc, argv);

  if (*run || *check || *route) {
    config_path = default_config(config_path);
    if (config_path.empty()) {
      fmt::print(stderr, "gatehouse: no config file: give -c FILE or create ./gatehouse.yaml\n");
      return 2;
    }
  }
  if (*check) {
    int rc = check_or_print(gh::app::load_config(config_path));
    if (rc == 0) fmt::print("{}: ok\n", config_path);
    return rc;
  }
  if (*run) {
    auto loaded = gh::app::load_config(config_path);
    if (check_or_print(loaded) != 0) return 1;
    gh::app::RunOptions opts;
    opts.config_path = config_path;
    opts.config = std::make_shared<const gh::config::Config>(std::move(*loaded.config));
    return gh::app::run_gateway(std::move(opts));
  }
  if (*demo) return gh::app::run_demo(demo_port);
  if (*route) return gh::app::explain_route(config_path, method, target, headers);
  if (*tok) {
    auto d = gh::parse_duration(ttl);
    if (!d) {
      fmt::print(stderr, "gatehouse: --ttl: expected a duration like 15m or 1h, got \"{}\"\n", ttl);
      return 2;
    }
    token.ttl = std::chrono::duration_cast<std::chrono::seconds>(*d);
    for (const auto& c : claims) {
      auto eq = c.find('=');
      if (eq == std::string::npos || eq == 0) {
        fmt::print(stderr, "gatehouse: --claim: expected k=v, got \"{}\"\n", c);
        return 2;
      }
      token.claims.emplace_back(c.substr(0, eq), c.substr(eq + 1));
    }
    fmt::print("{}\n", gh::app::mint_hs256(token));
    return 0;
  }
  return 0;
}
