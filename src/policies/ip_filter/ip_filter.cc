#include "policies/ip_filter/ip_filter.h"

#include "config/reader.h"
#include "proxy/request_context.h"

namespace gh::policies {

IpFilterConfig parse_ip_filter(const config::PolicyConfig& e, config::Diagnostics& d) {
  IpFilterConfig c;
  config::OptionReader r(e, d);
  r.check_keys({"allow", "deny"});
  bool has_allow = bool(e.options["allow"]), has_deny = bool(e.options["deny"]);
  if (has_allow == has_deny) {
    d.error(e.mark, e.path, "expected exactly one of `allow` or `deny` (a list of CIDRs)");
    return c;
  }
  std::string key = has_allow ? "allow" : "deny";
  c.allow_list = has_allow;
  auto list = r.string_list(key);
  if (!list) return c;
  std::vector<Cidr> cidrs;
  for (std::size_t i = 0; i < list->size(); ++i) {
    auto cidr = Cidr::parse((*list)[i]);
    if (!cidr) {
      const YAML::Node n = e.options[key].IsSequence() ? e.options[key][i] : e.options[key];
      d.error(n, e.path + "." + key + (e.options[key].IsSequence() ? "[" + std::to_string(i) + "]" : ""),
              "expected a CIDR like 10.0.0.0/8 or an address, got \"" + (*list)[i] + "\"");
      continue;
    }
    cidrs.push_back(*cidr);
  }
  c.cidrs = CidrSet(std::move(cidrs));
  return c;
}

bool IpFilterPolicy::allows(std::string_view client_ip) const {
  auto a = IpAddress::parse(client_ip);
  if (!a) return !cfg_.allow_list;  // an address we cannot read passes only a deny list
  return cfg_.cidrs.contains(*a) == cfg_.allow_list;
}

std::optional<proxy::Verdict> IpFilterPolicy::decide_now(proxy::RequestContext& ctx) {
  if (allows(ctx.client_ip())) return proxy::Continue{};
  proxy::LocalReply r;
  r.status = 403;
  r.reason = "ip_refused";
  r.message = "Forbidden";
  return r;
}

}  // namespace gh::policies
