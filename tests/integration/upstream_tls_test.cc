// TLS to services (SPEC §7 "TLS to services"), end to end: the real binary in front of TLS
// instances made by the harness (a TLS front relaying to a plain Upstream, which counts its
// handshakes and sees the SNI and client certificates), with certificates a private CA issues
// for the test: the chain and the name verified (good, wrong host, self-signed, expired),
// `verify: false` warned about, `server_name`, mutual TLS, pooled connections reused, a failed
// verification retried on another instance, health checks over TLS, JWKS over https and
// rediss:// for a rate limit's Redis.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>

#include "harness/assertions.h"
#include "harness/redis.h"
#include "harness/tls.h"

namespace gh::integ {
namespace {

// A certificate for 127.0.0.1 (the IP the instances are written with) and `dns` names.
CertSpec for_ip(std::vector<std::string> dns = {}) {
  CertSpec s;
  s.cn = "service";
  s.dns = std::move(dns);
  s.ips = {"127.0.0.1"};
  return s;
}

CertSpec for_names(std::vector<std::string> dns) {
  CertSpec s;
  s.cn = dns.empty() ? "no name" : dns[0];
  s.dns = std::move(dns);
  return s;
}

// One service `svc` with INSTANCES (YAML list items) and TLS (the `tls:` value, or empty).
std::string one_service(const std::string& instances, const std::string& tls, const std::string& more = "") {
  return fill(R"(
services:
  svc:
    instances: [{I}]
{TLS}{MORE}
routes:
  - path: /
    service: svc
)",
              {{"I", instances}, {"TLS", tls.empty() ? "" : "    tls: " + tls + "\n"}, {"MORE", more}});
}

std::string q(const std::string& s) { return "\"" + s + "\""; }

Gateway::Options one_worker() {
  Gateway::Options o;
  o.workers = 1;
  return o;
}

TEST(UpstreamTls, GoodChainWithCaIsServed) {
  TempDir dir;
  Pki pki(dir.path());
  Upstream up("svc");
  TlsUpstream front(up.port(), pki.issue("svc", for_ip()));
  Gateway gw(one_service(q(front.url()), "{ca: " + q(pki.ca_file()) + "}"));
  GH_START(gw);
  Response r = http_get(gw.port(), "/hello");
  EXPECT_EQ(r.status, 200) << gw.diagnostics();
  EXPECT_EQ(r.body, "svc");
  ASSERT_TRUE(up.wait_requests(1));
  EXPECT_EQ(up.requests().back().target, "/hello");
  EXPECT_GE(front.handshakes(), 1);
  EXPECT_EQ(front.last_sni(), "");  // an IP is never sent as SNI
}

TEST(UpstreamTls, WrongHostNameIs502AndNothingReachesTheService) {
  TempDir dir;
  Pki pki(dir.path());
  Upstream up("svc");
  TlsUpstream front(up.port(), pki.issue("other", for_names({"other.test"})));
  Gateway gw(one_service(q(front.url()), "{ca: " + q(pki.ca_file()) + "}"));
  GH_START(gw);
  EXPECT_EQ(http_get(gw.port(), "/x").status, 502);
  EXPECT_EQ(up.request_count(), 0u);
  EXPECT_EQ(up.connections_accepted(), 0);  // the front relays only after its handshake
  EXPECT_TRUE(eventually([&] { return gw.stderr_text().find("IP address mismatch") != std::string::npos; }, 3s))
      << gw.diagnostics();
}

TEST(UpstreamTls, SelfSignedWithoutCaIs502) {
  TempDir dir;
  Pki pki(dir.path());
  Upstream up("svc");
  CertSpec self = for_ip();
  self.self_signed = true;
  TlsUpstream front(up.port(), pki.issue("self", self));
  Gateway gw(one_service(q(front.url()), ""));
  GH_START(gw);
  EXPECT_EQ(http_get(gw.port(), "/x").status, 502);
  EXPECT_EQ(up.request_count(), 0u);
  EXPECT_TRUE(eventually([&] { return gw.stderr_text().find("certificate verify failed") != std::string::npos; }, 3s))
      << gw.diagnostics();
}

TEST(UpstreamTls, ExpiredCertificateIs502) {
  TempDir dir;
  Pki pki(dir.path());
  Upstream up("svc");
  CertSpec old = for_ip();
  old.valid_from_days = -30;
  old.valid_to_days = -1;
  TlsUpstream front(up.port(), pki.issue("old", old));
  Gateway gw(one_service(q(front.url()), "{ca: " + q(pki.ca_file()) + "}"));
  GH_START(gw);
  EXPECT_EQ(http_get(gw.port(), "/x").status, 502);
  EXPECT_EQ(up.request_count(), 0u);
  EXPECT_TRUE(eventually([&] { return gw.stderr_text().find("certificate has expired") != std::string::npos; }, 3s))
      << gw.diagnostics();
}

TEST(UpstreamTls, VerifyFalseConnectsAndWarnsAtStartAndReload) {
  TempDir dir;
  Pki pki(dir.path());
  Upstream up("svc");
  CertSpec self = for_names({"whatever.test"});
  self.self_signed = true;
  TlsUpstream front(up.port(), pki.issue("self", self));
  const std::string yaml = one_service(q(front.url()), "{verify: false}");
  Gateway gw(yaml);
  GH_START(gw);
  EXPECT_EQ(http_get(gw.port(), "/x").status, 200) << gw.diagnostics();
  const std::string warning = "service \"svc\": TLS certificate verification is off";
  auto count = [&] {
    const std::string err = gw.stderr_text();
    int n = 0;
    for (auto p = err.find(warning); p != std::string::npos; p = err.find(warning, p + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count(), 1) << gw.diagnostics();
  gw.write_config(yaml);
  ASSERT_TRUE(gw.reload());
  EXPECT_TRUE(eventually([&] { return count() == 2; }, 5s)) << gw.diagnostics();
}

TEST(UpstreamTls, ServerNameIsTheSniAndTheNameChecked) {
  TempDir dir;
  Pki pki(dir.path());
  Upstream up("svc");
  TlsUpstream front(up.port(), pki.issue("billing", for_names({"billing.internal"})));
  Gateway gw(one_service(q(front.url()),
                         "{ca: " + q(pki.ca_file()) + ", server_name: billing.internal}"));
  GH_START(gw);
  EXPECT_EQ(http_get(gw.port(), "/x").status, 200) << gw.diagnostics();
  EXPECT_EQ(front.last_sni(), "billing.internal");
  // The Host the service sees stays the instance's.
  ASSERT_TRUE(up.wait_requests(1));
  EXPECT_EQ(up.requests().back().headers.value_or("Host", ""), "127.0.0.1:" + std::to_string(front.port()));
}

TEST(UpstreamTls, AnInstanceWrittenWithANameSendsItAsSniAndChecksIt) {
  TempDir dir;
  Pki pki(dir.path());
  Upstream up("svc");
  TlsUpstream good(up.port(), pki.issue("localhost", for_names({"localhost"})));
  Gateway gw(one_service(q("https://localhost:" + std::to_string(good.port())),
                         "{ca: " + q(pki.ca_file()) + "}"));
  GH_START(gw);
  EXPECT_EQ(http_get(gw.port(), "/x").status, 200) << gw.diagnostics();
  EXPECT_EQ(good.last_sni(), "localhost");
}

TEST(UpstreamTls, ClientCertificateGivesMutualTls) {
  TempDir dir;
  Pki pki(dir.path());
  Upstream up("svc");
  TlsUpstream front(up.port(), pki.issue("svc", for_ip()), pki.ca_file());
  CertSpec gw_spec;
  gw_spec.cn = "gatehouse-gw";
  CertFiles mine = pki.issue("gw", gw_spec);
  Gateway gw(one_service(q(front.url()), "{ca: " + q(pki.ca_file()) + ", client_cert: " +
                                                  q(mine.cert) + ", client_key: " + q(mine.key) + "}"));
  GH_START(gw);
  EXPECT_EQ(http_get(gw.port(), "/x").status, 200) << gw.diagnostics();
  auto subjects = front.client_subjects();
  ASSERT_FALSE(subjects.empty());
  EXPECT_EQ(subjects.back(), "gatehouse-gw");
}

TEST(UpstreamTls, AClientKeyThatCannotBeLoadedIsAConfigError) {
  TempDir dir;
  Pki pki(dir.path());
  CertFiles mine = pki.issue("gw", CertSpec{});
  CertFiles other = pki.issue("other", CertSpec{});
  const std::string yaml = one_service(q("https://127.0.0.1:9"), "{client_cert: " + q(mine.cert) +
                                                                       ", client_key: " + q(other.key) + "}");
  const std::string file = dir.write("gw.yaml", "listen: \"127.0.0.1:0\"\n" + yaml);
  ProcessResult r = run_gatehouse({"check", "-c", file});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("gw.yaml:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("services.svc.tls"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("does not match"), std::string::npos) << r.err;

  // A CA file that holds no certificate.
  const std::string garbage = dir.write("ca.pem", "not a certificate\n");
  const std::string bad_ca =
      dir.write("ca.yaml", "listen: \"127.0.0.1:0\"\n" + one_service(q("https://127.0.0.1:9"), "{ca: " + q(garbage) + "}"));
  r = run_gatehouse({"check", "-c", bad_ca});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("ca.yaml:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("services.svc.tls: cannot load ca " + garbage), std::string::npos) << r.err;
  // run refuses it too, before listening.
  r = run_gatehouse({"run", "-c", bad_ca});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("cannot load ca " + garbage), std::string::npos) << r.err;
}

TEST(UpstreamTls, KeptAliveConnectionsAreReused) {
  TempDir dir;
  Pki pki(dir.path());
  Upstream up("svc");
  TlsUpstream front(up.port(), pki.issue("svc", for_ip()));
  Gateway gw(one_service(q(front.url()), "{ca: " + q(pki.ca_file()) + "}"), one_worker());
  GH_START(gw);
  Conn c(gw.port());
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(c.send(make_request("GET", "/n/" + std::to_string(i))));
    auto r = c.read_response(5s);
    ASSERT_TRUE(r) << gw.diagnostics();
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(up.request_count(), 20u);
  EXPECT_EQ(front.handshakes(), 1);
}

TEST(UpstreamTls, ChangedTlsSettingsMakeNewConnectionsAfterAReload) {
  TempDir dir;
  Pki pki(dir.path());
  Upstream up("svc");
  TlsUpstream front(up.port(), pki.issue("billing", for_ip({"billing.internal"})));
  const std::string ca = q(pki.ca_file());
  Gateway gw(one_service(q(front.url()), "{ca: " + ca + "}"), one_worker());
  GH_START(gw);
  EXPECT_EQ(http_get(gw.port(), "/a").status, 200);
  EXPECT_EQ(http_get(gw.port(), "/b").status, 200);
  EXPECT_EQ(front.handshakes(), 1);
  gw.write_config(one_service(q(front.url()), "{ca: " + ca + ", server_name: billing.internal}"));
  ASSERT_TRUE(gw.reload());
  EXPECT_TRUE(eventually([&] {
    http_get(gw.port(), "/c");
    return front.last_sni() == "billing.internal";
  }, 5s)) << gw.diagnostics();
  EXPECT_EQ(front.handshakes(), 2);
}

TEST(UpstreamTls, AFailedVerificationIsRetriedOnAnotherInstance) {
  TempDir dir;
  Pki pki(dir.path());
  Upstream good_up("good"), bad_up("bad");
  TlsUpstream good(good_up.port(), pki.issue("good", for_ip()));
  TlsUpstream bad(bad_up.port(), pki.issue("bad", for_names({"elsewhere.test"})));
  Gateway gw(one_service(q(bad.url()) + ", " + q(good.url()), "{ca: " + q(pki.ca_file()) + "}"));
  GH_START(gw);
  for (int i = 0; i < 6; ++i) {
    Response r = http_get(gw.port(), "/x");
    EXPECT_EQ(r.status, 200) << gw.diagnostics();
    EXPECT_EQ(r.body, "good");
  }
  EXPECT_EQ(bad_up.request_count(), 0u);
  EXPECT_GE(bad.failed_handshakes(), 1);
}

TEST(UpstreamTls, HealthChecksGoOverTls) {
  TempDir dir;
  Pki pki(dir.path());
  Upstream good_up("good"), bad_up("bad");
  TlsUpstream good(good_up.port(), pki.issue("good", for_ip()));
  TlsUpstream bad(bad_up.port(), pki.issue("bad", for_names({"elsewhere.test"})));
  Gateway gw(one_service(q(bad.url()) + ", " + q(good.url()), "{ca: " + q(pki.ca_file()) + "}",
                         "    health_check: {path: /health, interval: 100ms, timeout: 1s, unhealthy_after: 1}\n"
                         "    retries: {attempts: 0}\n"));
  GH_START(gw);
  // The good instance is probed over TLS; the bad one fails its probes' verification and is
  // taken out, so requests (which may not be retried here) all reach the good one.
  ASSERT_TRUE(eventually([&] { return good_up.health_probes() >= 2; }, 5s)) << gw.diagnostics();
  EXPECT_GE(good.handshakes(), 1);
  ASSERT_TRUE(eventually([&] { return bad.failed_handshakes() >= 2; }, 5s)) << gw.diagnostics();
  EXPECT_EQ(bad_up.health_probes(), 0);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(http_get(gw.port(), "/x").status, 200) << gw.diagnostics();
}

// Tokens and the JWK Set made by the jose fixture (tests/fixtures/jose/jwks.mjs).
struct Minted {
  nlohmann::json doc;
  bool ok = false;
};

Minted mint(const TempDir& dir) {
  namespace fs = std::filesystem;
  const fs::path jose = fs::path(GH_FIXTURES_DIR) / "jose";
  Minted m;
  if (!fs::exists(jose / "node_modules" / "jose")) return m;
  const std::string cmd = "timeout 60 node '" + (jose / "jwks.mjs").string() + "' '" + dir.path() + "' >/dev/null";
  if (std::system(cmd.c_str()) != 0) return m;
  m.doc = nlohmann::json::parse(read_file(dir.path() + "/jwks.json"), nullptr, false);
  m.ok = m.doc.is_object() && m.doc["tokens"].is_array() && !m.doc["tokens"].empty();
  return m;
}

TEST(UpstreamTls, JwksIsFetchedOverHttps) {
  TempDir dir;
  Minted minted = mint(dir);
  ASSERT_TRUE(minted.ok) << "the jose fixture did not mint (run scripts/deps.sh)";
  const std::string keys = minted.doc["initial"].dump();
  const std::string token = minted.doc["tokens"][0]["token"];
  Pki pki(dir.path());
  Upstream idp("idp");
  idp.set_handler([keys](const Request&) {
    Reply r = Reply::text(keys);
    r.headers.add("Content-Type", "application/json");
    return r;
  });
  TlsUpstream idp_tls(idp.port(), pki.issue("idp", for_ip()));
  Upstream svc("svc");
  const std::string yaml = fill(R"(
services:
  svc: {instances: ["{SVC}"]}
policies:
  auth: {type: jwt, jwks_url: "{IDP}/.well-known/jwks.json", issuer: "{ISS}", audience: "{AUD}"}
routes:
  - path: /api
    service: svc
    policies: [auth]
)",
                                {{"SVC", svc.url()},
                                 {"IDP", idp_tls.url()},
                                 {"ISS", minted.doc["issuer"].get<std::string>()},
                                 {"AUD", minted.doc["audience"].get<std::string>()}});
  const Headers bearer = {{"Authorization", "Bearer " + token}};

  // The IdP's certificate comes from the test's CA: given the OpenSSL way.
  Gateway::Options trusted;
  trusted.env = {{"SSL_CERT_FILE", pki.ca_file()}};
  Gateway gw(yaml, trusted);
  GH_START(gw);
  ASSERT_TRUE(eventually([&] { return http_get(gw.port(), "/api/x", bearer).status == 200; }, 10s))
      << gw.diagnostics();
  EXPECT_GE(idp_tls.handshakes(), 1);
  EXPECT_EQ(idp.request_count(), 1u);
  EXPECT_EQ(idp.requests().back().target, "/.well-known/jwks.json");

  // Without that CA the IdP is not trusted: no keys, so no token passes.
  Gateway::Options untrusted;
  untrusted.env = {{"SSL_CERT_FILE", dir.path() + "/no-such-bundle.pem"}};
  Gateway gw2(yaml, untrusted);
  GH_START(gw2);
  ASSERT_TRUE(eventually([&] { return gw2.stderr_text().find("certificate verify failed") != std::string::npos; }, 10s))
      << gw2.diagnostics();
  EXPECT_EQ(http_get(gw2.port(), "/api/x", bearer).status, 401);
  EXPECT_EQ(idp.request_count(), 1u);
}

TEST(UpstreamTls, RedissCarriesTheRateLimitStore) {
  RedisServer redis;
  ASSERT_TRUE(redis.ready()) << "redis-server did not listen";
  TempDir dir;
  Pki pki(dir.path());
  TlsUpstream redis_tls(redis.port(), pki.issue("redis", for_ip()));
  Upstream svc("svc");
  const std::string yaml = fill(R"(
redis: "rediss://127.0.0.1:{PORT}"
services:
  svc: {instances: ["{SVC}"]}
policies:
  two:
    type: rate_limit
    limit: 2
    window: 1h
    key: global
    store: redis
    on_store_error: deny
routes:
  - path: /api
    service: svc
    policies: [two]
)",
                                {{"PORT", std::to_string(redis_tls.port())}, {"SVC", svc.url()}});
  Gateway::Options trusted;
  trusted.env = {{"SSL_CERT_FILE", pki.ca_file()}};
  Gateway gw(yaml, trusted);
  GH_START(gw);
  EXPECT_EQ(http_get(gw.port(), "/api/a").status, 200) << gw.diagnostics();
  EXPECT_EQ(http_get(gw.port(), "/api/b").status, 200) << gw.diagnostics();
  EXPECT_EQ(http_get(gw.port(), "/api/c").status, 429) << gw.diagnostics();
  EXPECT_GE(redis_tls.handshakes(), 1);
  EXPECT_EQ(svc.request_count(), 2u);

  // A Redis whose certificate is not trusted is a store outage: on_store_error: deny.
  Gateway::Options untrusted;
  untrusted.env = {{"SSL_CERT_FILE", dir.path() + "/no-such-bundle.pem"}};
  Gateway gw2(yaml, untrusted);
  GH_START(gw2);
  EXPECT_EQ(http_get(gw2.port(), "/api/d").status, 503) << gw2.diagnostics();
  EXPECT_TRUE(eventually([&] { return gw2.stderr_text().find("certificate verify failed") != std::string::npos; }, 5s))
      << gw2.diagnostics();
  EXPECT_EQ(svc.request_count(), 2u);
}

}  // namespace
}  // namespace gh::integ
