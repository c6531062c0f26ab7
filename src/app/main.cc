// gatehouse: command-line entry point (SPEC §1).
#include <CLI/CLI.hpp>
#include <openssl/crypto.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "app/demo.h"
#include "app/gateway.h"
#include "app/route_cmd.h"
#include "app/snapshot_builder.h"
#include "app/token.h"
#include "config/diff.h"
#include "core/heap.h"
#include "core/log.h"
#include "core/strings.h"

#ifndef GH_GIT_COMMIT
#define GH_GIT_COMMIT "unknown"
#endif

namespace {

std::string default_config(const std::string& given) {
  if (!given.empty()) return given;
  if (std::filesystem::exists("gatehouse.yaml")) return "gatehouse.yaml";
  return {};
}

// Exit status (documented in --help).
constexpr int kExitOk = 0, kExitFailure = 1, kExitUsage = 2;

// `check`'s steps on one file, the same as `run`'s up to its listening sockets, so the two cannot
// disagree: every error printed to stderr, and the config only when the file is valid.
std::shared_ptr<const gh::config::Config> checked_config(const std::string& path) {
  auto loaded = gh::app::load_config(path);
  for (const auto& e : loaded.errors) fmt::print(stderr, "{}\n", e.to_string());
  if (!loaded.config) return nullptr;
  auto config = std::make_shared<const gh::config::Config>(std::move(*loaded.config));
  if (std::string error = gh::app::check_runtime(config); !error.empty()) {
    fmt::print(stderr, "{}\n", error);
    return nullptr;
  }
  return config;
}

// `check --diff OLD NEW`: both files checked (every error of each printed), then what a reload
// from OLD to NEW would change, as the JSON `POST /reload` answers with.
int check_diff(const std::string& old_path, const std::string& new_path) {
  auto before = checked_config(old_path);
  auto after = checked_config(new_path);
  if (!before || !after) return kExitFailure;
  fmt::print("{{\"changes\":{}}}\n", gh::config::diff_json(gh::config::diff_configs(*before, *after)));
  return kExitOk;
}

std::string version_text() {
  return fmt::format("gatehouse {}\ncommit {}\n{}", GH_VERSION, GH_GIT_COMMIT, OpenSSL_version(OPENSSL_VERSION));
}

const std::vector<std::string> kLogLevels{"debug", "info", "warn", "error"};

// OpenSSL's memory comes from the binary's per-thread cache (src/app/allocator.cc), as the rest
// of a request's does: with SSL_MODE_RELEASE_BUFFERS it allocates a record buffer of about
// 16.5 KiB for each read and each write and frees it after, which from malloc costs a search of
// its bins and a coalescing free every time. It must be set before OpenSSL allocates anything;
// set later it is refused, and OpenSSL keeps malloc.
void use_heap_for_openssl() noexcept {
  CRYPTO_set_mem_functions([](std::size_t n, const char*, int) { return gh::core::heap_malloc(n); },
                           [](void* p, std::size_t n, const char*, int) { return gh::core::heap_realloc(p, n); },
                           [](void* p, const char*, int) { gh::core::heap_free(p); });
}

}  // namespace

int main(int argc, char** argv) {
  use_heap_for_openssl();
  CLI::App app{"gatehouse: an API gateway. One binary, one YAML file.", "gatehouse"};
  app.set_version_flag("--version", version_text, "print the version, git commit and OpenSSL version, and exit");
  app.footer("Exit status: 0 ok; 1 invalid config or runtime failure; 2 usage error.");
  app.require_subcommand(1);

  std::string config_path;
  std::string log_level;
  auto* run = app.add_subcommand("run", "run the gateway from a config file");
  run->add_option("-c,--config", config_path, "config file (default ./gatehouse.yaml)");
  run->add_option("--log-level", log_level, "debug, info, warn or error: overrides the config's log.level")
      ->check(CLI::IsMember(kLogLevels));

  std::vector<std::string> diff_paths;
  auto* check = app.add_subcommand(
      "check", "validate a config file: exit 0, or print every error and exit 1; --diff OLD NEW: what a reload changes");
  auto* check_config = check->add_option("-c,--config", config_path, "config file (default ./gatehouse.yaml)");
  auto* check_diff_opt =
      check
          ->add_option("--diff", diff_paths,
                       "validate OLD and NEW, then print what a reload from OLD to NEW changes, as JSON "
                       "({\"changes\": {...}}, as POST /reload answers)")
          ->type_size(2)
          ->expected(1)
          ->type_name("OLD NEW");
  check_config->excludes(check_diff_opt);
  check_diff_opt->excludes(check_config);

  unsigned demo_port = 3000;
  auto* demo = app.add_subcommand("demo", "run built-in demo services behind the gateway");
  demo->add_option("--port", demo_port, "gateway port")->check(CLI::Range(1, 65535));
  demo->add_option("--log-level", log_level, "debug, info, warn or error (default info)")
      ->check(CLI::IsMember(kLogLevels));

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
  std::string secret_file;
  auto* secret_opt = tok->add_option("--secret", token.secret, "HMAC secret");
  auto* secret_file_opt =
      tok->add_option("--secret-file", secret_file, "read the HMAC secret from this file (trailing newline removed)");
  secret_opt->excludes(secret_file_opt);
  secret_file_opt->excludes(secret_opt);
  tok->add_option("--sub", token.sub, "subject claim");
  tok->add_option("--role", token.role, "role claim");
  tok->add_option("--ttl", ttl, "lifetime, e.g. 15m, 1h (default 1h)");
  tok->add_option("--claim", claims, "an extra claim k=v (repeatable)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version "fail" with exit code 0; every other parse error is a usage error.
    app.exit(e);
    return e.get_exit_code() == 0 ? kExitOk : kExitUsage;
  }
  const auto flag_level = gh::log::parse_level(log_level);  // nullopt: not given
  gh::log::setup(flag_level.value_or(gh::log::Level::Info), gh::log::Format::Text);

  if (*check && !diff_paths.empty()) {
    if (diff_paths.size() != 2) {
      fmt::print(stderr, "gatehouse: check --diff: give two files, OLD NEW\n");
      return kExitUsage;
    }
    return check_diff(diff_paths[0], diff_paths[1]);
  }
  if (*run || *check || *route) {
    config_path = default_config(config_path);
    if (config_path.empty()) {
      fmt::print(stderr, "gatehouse: no config file: give -c FILE or create ./gatehouse.yaml\n");
      return kExitUsage;
    }
  }
  if (*check) {
    if (!checked_config(config_path)) return kExitFailure;
    fmt::print("{}: ok\n", config_path);
    return kExitOk;
  }
  if (*run) {
    auto loaded = gh::app::load_config(config_path);
    for (const auto& e : loaded.errors) gh::log::error("{}", e.to_string());
    if (!loaded.config) return kExitFailure;
    // The config's log settings, with --log-level over its level; again after each reload.
    auto apply_log = [flag_level](const gh::config::Config& c) {
      gh::log::setup(flag_level.value_or(c.log.level), c.log.format);
    };
    apply_log(*loaded.config);
    gh::log::debug("loaded {}: services {}, policies {}, routes {}", config_path, loaded.config->services.size(),
                   loaded.config->policies.size(), loaded.config->routes.size());
    gh::app::RunOptions opts;
    opts.config_path = config_path;
    opts.config = std::make_shared<const gh::config::Config>(std::move(*loaded.config));
    opts.on_reload = apply_log;
    return gh::app::run_gateway(std::move(opts));
  }
  if (*demo) return gh::app::run_demo(demo_port);
  if (*route) return gh::app::explain_route(config_path, method, target, headers);
  if (*tok) {
    if (token.secret.empty() && secret_file.empty()) {
      fmt::print(stderr, "gatehouse: token: give --secret S or --secret-file PATH\n");
      return kExitUsage;
    }
    if (!secret_file.empty()) {
      std::string error;
      auto secret = gh::app::read_secret_file(secret_file, error);
      if (!secret) {
        fmt::print(stderr, "gatehouse: --secret-file: {}\n", error);
        return kExitFailure;
      }
      token.secret = std::move(*secret);
    }
    auto d = gh::parse_duration(ttl);
    if (!d) {
      fmt::print(stderr, "gatehouse: --ttl: expected a duration like 15m or 1h, got \"{}\"\n", ttl);
      return kExitUsage;
    }
    token.ttl = std::chrono::duration_cast<std::chrono::seconds>(*d);
    for (const auto& c : claims) {
      auto eq = c.find('=');
      if (eq == std::string::npos || eq == 0) {
        fmt::print(stderr, "gatehouse: --claim: expected k=v, got \"{}\"\n", c);
        return kExitUsage;
      }
      token.claims.emplace_back(c.substr(0, eq), c.substr(eq + 1));
    }
    fmt::print("{}\n", gh::app::mint_hs256(token));
    return kExitOk;
  }
  return kExitOk;
}
