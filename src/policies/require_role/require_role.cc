#include "policies/require_role/require_role.h"

#include "config/reader.h"
#include "proxy/request_context.h"
#include "proxy/worker.h"

namespace gh::policies {

RequireRoleConfig parse_require_role(const config::PolicyConfig& e, config::Diagnostics& d) {
  RequireRoleConfig c;
  config::OptionReader r(e, d);
  r.check_keys({"roles", "claim"});
  r.require("roles", "a role or a list of roles, e.g. roles: [admin]");
  if (auto roles = r.string_list("roles")) {
    if (roles->empty()) d.error(e.options["roles"], e.path + ".roles", "expected at least one role");
    c.roles = std::move(*roles);
  }
  if (auto claim = r.string_opt("claim")) {
    if (claim->empty()) d.error(e.options["claim"], e.path + ".claim", "expected a claim name");
    c.claim = std::move(*claim);
  }
  return c;
}

int RequireRolePolicy::decide(const proxy::RequestContext& ctx) const {
  if (!ctx.principal) return 401;
  const auto* claim = ctx.principal->claim(cfg_.claim);
  if (!claim) return 403;
  for (const auto& role : cfg_.roles) {
    if (claim->is_string && claim->text == role) return 0;
    for (const auto& s : claim->strings)
      if (s == role) return 0;
  }
  return 403;
}

std::optional<proxy::Verdict> RequireRolePolicy::decide_now(proxy::RequestContext& ctx) {
  int status = decide(ctx);
  if (status == 0) return proxy::Continue{};
  proxy::LocalReply r;
  r.status = status;
  if (status == 401) {
    r.reason = "no_principal";
    r.message = "Access token required";
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"gatehouse\"");
  } else {
    r.reason = "insufficient_role";
    r.message = "Insufficient permissions";
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"gatehouse\", error=\"insufficient_scope\"");
  }
  failures_.count(ctx.worker().id(), r.reason);
  return r;
}

}  // namespace gh::policies
