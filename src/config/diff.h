// ConfigDiff: what a reload changes, from two loaded configs (SPEC §6). A reload answers and logs
// it; `gatehouse check --diff OLD NEW` prints it offline.
// Thread: pure functions over immutable Configs.
//
// Items are paired by name: routes by `name` (the match string when the file gives none),
// services and policies by their key, listeners by address (":8080", "127.0.0.1:8080",
// "[::1]:8080"). A renamed item is one removed and one added. Routes may share a default name
// (one path split by methods): such routes pair identical ones first, then in file order.
//
// A changed item lists its fields by the paths a user writes: "instances", "load_balancing",
// "health_check.interval", "timeouts.response", "retries.retry_on" for a service; "path",
// "methods", "policies", "strip_prefix", ... for a route, and "order" when the route moved among
// the routes both files have (routes are tried in file order among equals, so moving one can
// change what matches); the option names as written for a policy ("type", "limit", "keys"; an
// option's value is compared whole, since below the option names a mapping's keys can be data,
// such as api_key's keys themselves); "tls", "tls.cert" for a listener. Top-level
// settings that changed are listed under "settings" ("limits.max_body_bytes", "redis",
// "admin.token", "log.level", "defaults.policies", ...).
//
// Only names and field paths are ever reported, never values, so a changed jwt secret, api key
// list, Redis password or admin token shows as its field name alone.
//
// Files the config names (certificates, keys) are compared by path, not read: new contents under
// the same path are no change here, though a reload re-reads them.
//
// How fields are compared: the loaded structs, field by field, rather than the YAML they came
// from, so that `5s` and `5000ms`, a default written out and the same default left out, or a
// reordered mapping are no change. Each struct's fields are walked with Boost.PFR against a
// table of their user-facing names in diff.cc; the table's length is checked against the
// struct's field count at compile time, so a field added to a config struct later fails the
// build until it is named (or deliberately marked as not compared) there, and can never be
// silently ignored. Policy options stay YAML in the Config (each policy parses its own), so they
// are compared as YAML: mappings by key, scalars by text and tag, lists element by element.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace gh::config {

// One item present in both configs whose fields differ.
struct ItemChange {
  std::string name;
  std::vector<std::string> fields;  // user-facing config paths, in the order the struct declares them
  bool operator==(const ItemChange&) const = default;
};

// The changes in one keyed section (routes, services, policies or listeners).
struct SectionDiff {
  std::vector<std::string> added;    // in the new file's order
  std::vector<std::string> removed;  // in the old file's order
  std::vector<ItemChange> changed;   // in the new file's order
  bool empty() const { return added.empty() && removed.empty() && changed.empty(); }
};

struct ConfigDiff {
  SectionDiff routes;
  SectionDiff services;
  SectionDiff policies;
  SectionDiff listeners;
  std::vector<std::string> settings;  // top-level settings that changed, e.g. "limits.max_body_bytes"
  bool empty() const {
    return routes.empty() && services.empty() && policies.empty() && listeners.empty() && settings.empty();
  }
};

// What changed from `before` to `after`. Both are valid, loaded configs; their file names are
// not compared.
ConfigDiff diff_configs(const Config& before, const Config& after);

// One JSON object, keys always present and in this order, lists in the order above:
//   {"routes":{"added":[...],"removed":[...],"changed":[{"name":"...","fields":[...]}]},
//    "services":{...},"policies":{...},"listeners":{...},"settings":{"changed":[...]}}
std::string diff_json(const ConfigDiff& d);

// One line for the log: `routes: +new -old ~users(path,methods); services: ~user(instances);
// settings: limits.max_body_bytes, redis`, or `no changes`.
std::string diff_summary(const ConfigDiff& d);

}  // namespace gh::config
