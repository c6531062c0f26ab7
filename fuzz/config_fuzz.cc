// libFuzzer target for the config loader (gh::config::load_string, src/config/config.h): ${VAR}
// substitution, YAML parsing and validation, with the binary's own policy catalog, so every
// policy's option parser runs too. A few environment variables are set for the references to
// find (GH_FUZZ_*; see fuzz/config.dict).
// Checked: nothing crashes or throws; there is a config exactly when there is no diagnostic;
// every diagnostic has a message and points into the text as written; and a config that loads
// is one the gateway can build: its routes name services and policies that exist, its route
// table compiles, and every policy object can be constructed from its validated entry.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <boost/asio/io_context.hpp>

#include "app/registry.h"
#include "config/config.h"
#include "fuzz_check.h"
#include "routing/route_table.h"

namespace {

using namespace gh;

bool setup() {
  ::setenv("GH_FUZZ_URL", "http://127.0.0.1:3001", 1);
  ::setenv("GH_FUZZ_SECRET", "a-secret-of-more-than-32-bytes!!", 1);
  ::setenv("GH_FUZZ_EMPTY", "", 1);
  ::setenv("GH_FUZZ_QUOTES", "a\"b'c\\d\n#e: [f, {g}]", 1);
  ::setenv("GH_FUZZ_NUMBER", "100", 1);
  ::unsetenv("GH_FUZZ_UNSET");
  return true;
}

// Whether building `entry` would reach out of the process: a JWKS source starts fetching at once.
bool reaches_out(const config::PolicyConfig& entry) {
  return entry.type == "jwt" && entry.options.IsMap() && entry.options["jwks_url"];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool ready = setup();
  (void)ready;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const config::LoadResult r = config::load_string(text, "fuzz.yaml", app::policy_catalog());

  FUZZ_CHECK(r.config.has_value() == r.errors.empty());
  int lines = 1;
  for (char c : text) lines += c == '\n';
  for (const config::Diagnostic& d : r.errors) {
    FUZZ_CHECK(!d.message.empty() && !d.path.empty());
    FUZZ_CHECK(d.file == "fuzz.yaml");
    FUZZ_CHECK(d.mark.line >= 0 && d.mark.line <= lines && d.mark.col >= 0);
    FUZZ_CHECK(!d.to_string().empty());
  }
  if (!r.config) return 0;

  const config::Config& c = *r.config;
  FUZZ_CHECK(!c.services.empty() && !c.routes.empty());
  for (const std::string& name : c.default_policies) FUZZ_CHECK(c.find_policy(name) != nullptr);
  for (const config::RouteConfig& route : c.routes) {
    FUZZ_CHECK(c.find_service(route.service) != nullptr);
    for (const std::string& name : route.policies) FUZZ_CHECK(c.find_policy(name) != nullptr);
  }
  for (const config::ServiceConfig& s : c.services) {
    FUZZ_CHECK(!s.instances.empty());
    for (const config::InstanceConfig& i : s.instances) FUZZ_CHECK(!i.host.empty() && i.port != 0);
  }

  std::string error;
  FUZZ_CHECK(routing::RouteTable::build(c.routes, &error) != nullptr);
  static boost::asio::io_context control;  // never run: no policy built here reaches out
  static app::Runtime runtime(control.get_executor(), 1);
  for (const config::PolicyConfig& entry : c.policies) {
    if (reaches_out(entry)) continue;
    FUZZ_CHECK(app::make_policy(entry, runtime) != nullptr);
  }
  return 0;
}
