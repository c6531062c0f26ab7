#include "policies/api_key/api_key.h"

#include <algorithm>

#include "config/reader.h"
#include "core/strings.h"
#include "policies/common/credentials.h"
#include "proxy/request_context.h"
#include "proxy/worker.h"

namespace gh::policies {

ApiKeyConfig parse_api_key(const config::PolicyConfig& e, config::Diagnostics& d) {
  ApiKeyConfig c;
  config::OptionReader r(e, d);
  r.check_keys({"header", "query", "keys"});
  auto header = r.string_opt("header");
  auto query = r.string_opt("query");
  if (bool(header) == bool(query))
    d.error(e.mark, e.path, "expected exactly one of `header` (e.g. X-API-Key) or `query` (e.g. api_key)");
  if (header) c.header = *header;
  if (query) c.query = *query;
  const YAML::Node keys = e.options["keys"];
  if (!keys) {
    r.require("keys", "a map of key to consumer name");
  } else if (!keys.IsMap() || keys.size() == 0) {
    d.error(keys, e.path + ".keys", "expected a non-empty map of key to consumer name");
  } else {
    for (const auto& kv : keys) {
      std::string k = kv.first.Scalar();
      if (k.empty()) d.error(kv.first, e.path + ".keys", "an API key must not be empty");
      if (!kv.second.IsScalar() || kv.second.Scalar().empty()) {
        d.error(kv.second, e.path + ".keys." + k, "expected the consumer's name");
        continue;
      }
      c.keys.emplace_back(k, kv.second.Scalar());
    }
  }
  return c;
}

std::optional<std::string> ApiKeyPolicy::consumer(const http::RequestHead& req) const {
  std::optional<std::string> given;
  if (!cfg_.header.empty()) {
    if (req.fields.has(cfg_.header)) given = std::string(req.fields.get(cfg_.header));
  } else {
    given = query_param(req.query, cfg_.query);
  }
  if (!given || given->empty()) return std::nullopt;
  std::string found;
  for (const auto& [k, name] : cfg_.keys)  // every key is compared: no early exit on a match
    if (constant_time_equal(k, *given) && found.empty()) found = name;
  return found;
}

std::optional<proxy::Verdict> ApiKeyPolicy::decide_now(proxy::RequestContext& ctx) {
  auto who = consumer(ctx.request());
  if (who && !who->empty()) {
    if (!ctx.principal) {
      auto p = std::make_shared<proxy::Principal>();
      p->subject = *who;
      p->source = "api_key";
      p->claims.push_back({"consumer", *who, true, {}});
      ctx.principal = std::move(p);
    }
    return proxy::Continue{};
  }
  proxy::LocalReply r;
  r.status = 401;
  r.reason = who ? "invalid_api_key" : "no_api_key";
  r.message = who ? "Invalid API key" : "API key required";
  failures_.count(ctx.worker().id(), r.reason);
  return r;
}

void ApiKeyPolicy::on_upstream_request(proxy::RequestContext& ctx, std::vector<http::Field>& fields) {
  fields.erase(std::remove_if(fields.begin(), fields.end(),
                              [](const http::Field& f) { return iequals(f.name, kConsumerHeader); }),
               fields.end());
  auto who = consumer(ctx.request());
  if (who && !who->empty()) fields.push_back({kConsumerHeader, ctx.keep(std::move(*who))});
}

}  // namespace gh::policies
