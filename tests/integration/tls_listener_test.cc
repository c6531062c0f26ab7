// TLS listeners (SPEC §7 "TLS on listeners"), end to end: the real binary with certificates a
// private CA made for the test, against OpenSSL clients (the harness's, `openssl s_client` and
// curl): SNI choice among several certificates and wildcards, sni_strict, refused TLS 1.0/1.1,
// ALPN, client certificates, resumption whichever worker a client reaches, renewed files
// served without a restart (rename and symlink swap) and a broken pair kept out, the handshake
// timeout, plain HTTP sent to the TLS port, X-Forwarded-Proto.
#include <gtest/gtest.h>

#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>

#include "harness/assertions.h"
#include "harness/tls.h"

namespace gh::integ {
namespace {

namespace fs = std::filesystem;

// A certificate for the names a test asks by, valid for 127.0.0.1 too.
CertSpec names(std::vector<std::string> dns) {
  CertSpec s;
  s.cn = dns.empty() ? "no name" : dns[0];
  s.dns = std::move(dns);
  s.ips = {"127.0.0.1"};
  return s;
}

std::string tls_config(const Upstream& up, const std::string& tls_yaml, int workers = 2, const std::string& top = "") {
  return fill(R"(listen:
  - address: "127.0.0.1:{PORT}"
    tls: {TLS}
workers: {W}
access_log: off
{TOP}
services:
  svc: {instances: ["{U}"]}
routes:
  - path: /
    service: svc
)",
              {{"TLS", tls_yaml}, {"W", std::to_string(workers)}, {"TOP", top}, {"U", up.url()}});
}

Gateway::Options raw() {
  Gateway::Options o;
  o.add_header = false;
  return o;
}

// Every test has a private CA, a certificate for api.test (and 127.0.0.1) and a service; most
// run a gateway whose one TLS listener serves that certificate.
class TlsListener : public ::testing::Test {
 protected:
  // The gateway, with EXTRA keys beside `cert` and `key` in its `tls:` (e.g. ", sni_strict: true").
  Gateway& gateway(const std::string& extra = "", int workers = 2, const std::string& top = "") {
    gw_ = std::make_unique<Gateway>(
        tls_config(up, fill("{cert: \"{C}\", key: \"{K}\"{X}}", {{"C", api.cert}, {"K", api.key}, {"X", extra}}),
                   workers, top),
        raw());
    return *gw_;
  }

  TempDir dir;
  Pki pki{dir.path()};
  CertFiles api = pki.issue("api", names({"api.test"}));
  Upstream up{"svc"};

 private:
  std::unique_ptr<Gateway> gw_;
};

TlsOptions verified(const std::string& ca, const std::string& name) {
  TlsOptions o;
  o.sni = name;
  o.ca_file = ca;
  o.verify_name = name;
  return o;
}

TEST_F(TlsListener, ServesHttpsAndTellsTheServiceItWasHttps) {
  Gateway& gw = gateway();
  GH_START(gw);

  std::string error;
  Response r = tls_get(gw.port(), "/hello", verified(pki.ca_file(), "api.test"), {}, &error);
  ASSERT_EQ(r.status, 200) << error << "\n" << gw.diagnostics();
  ASSERT_TRUE(up.wait_requests(1));
  auto seen = up.requests().back();
  EXPECT_EQ(seen.target, "/hello");
  EXPECT_EQ(seen.headers.value_or("X-Forwarded-Proto", ""), "https");

  // A client that sends X-Forwarded-Proto itself does not decide it.
  r = tls_get(gw.port(), "/again", verified(pki.ca_file(), "api.test"), {{"X-Forwarded-Proto", "http"}});
  ASSERT_EQ(r.status, 200);
  ASSERT_TRUE(up.wait_requests(2));
  EXPECT_EQ(up.requests().back().headers.all("X-Forwarded-Proto"), std::vector<std::string>{"https"});

  // Keep-alive over TLS: several requests on one connection.
  TlsClient c(gw.port(), verified(pki.ca_file(), "api.test"));
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c.version(), "TLSv1.3");
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.send(make_request("GET", "/k" + std::to_string(i))));
    auto k = c.read_response();
    ASSERT_TRUE(k) << i;
    EXPECT_EQ(k->status, 200);
  }
}

TEST_F(TlsListener, SniPicksTheCertificateAndTheFirstIsTheDefault) {
  auto def = pki.issue("default", names({"default.test"}));
  auto both = pki.issue("both", names({"api.test", "api2.test"}));
  auto wild = pki.issue("wild", names({"*.wild.test"}));
  Gateway gw(tls_config(up, fill(R"({certificates: [{cert: "{D}", key: "{DK}"}, {cert: "{A}", key: "{AK}"}, {cert: "{W}", key: "{WK}"}]})",
                                 {{"D", def.cert}, {"DK", def.key}, {"A", both.cert}, {"AK", both.key},
                                  {"W", wild.cert}, {"WK", wild.key}})),
             raw());
  GH_START(gw);

  auto served = [&](const std::string& sni) {
    TlsOptions o;
    o.sni = sni;
    TlsClient c(gw.port(), o);
    EXPECT_TRUE(c.ok()) << sni << ": " << c.error();
    return c.peer_names().empty() ? std::string("none") : c.peer_names()[0];
  };
  EXPECT_EQ(served("api.test"), "api.test");
  EXPECT_EQ(served("API2.Test"), "api.test");  // names compare without case; any SAN picks
  EXPECT_EQ(served("x.wild.test"), "*.wild.test");
  EXPECT_EQ(served("a.b.wild.test"), "default.test");  // a wildcard stands for one label only
  EXPECT_EQ(served("wild.test"), "default.test");
  EXPECT_EQ(served("other.test"), "default.test");
  EXPECT_EQ(served(""), "default.test");

  // And the chosen certificate verifies for its name.
  EXPECT_EQ(tls_get(gw.port(), "/", verified(pki.ca_file(), "y.wild.test")).status, 200);
}

TEST_F(TlsListener, SniStrictRefusesUnknownAndMissingNames) {
  Gateway& gw = gateway(", sni_strict: true");
  GH_START(gw);
  TlsOptions known;
  known.sni = "api.test";
  EXPECT_TRUE(TlsClient(gw.port(), known).ok());
  TlsOptions unknown;
  unknown.sni = "other.test";
  TlsClient u(gw.port(), unknown);
  EXPECT_FALSE(u.ok());
  EXPECT_NE(u.error().find("unrecognized name"), std::string::npos) << u.error();
  TlsClient none(gw.port(), TlsOptions{});
  EXPECT_FALSE(none.ok());
  EXPECT_EQ(up.request_count(), 0u);
}

TEST_F(TlsListener, OnlyTls12AndTls13AreSpoken) {
  Gateway& gw = gateway();
  GH_START(gw);
  for (int v : {TLS1_VERSION, TLS1_1_VERSION}) {
    TlsOptions o;
    o.min_version = v;
    o.max_version = v;
    TlsClient c(gw.port(), o);
    EXPECT_FALSE(c.ok()) << "version " << std::hex << v << " was accepted";
  }
  TlsOptions v12;
  v12.max_version = TLS1_2_VERSION;
  TlsClient c12(gw.port(), v12);
  ASSERT_TRUE(c12.ok()) << c12.error();
  EXPECT_EQ(c12.version(), "TLSv1.2");

  // The same with OpenSSL's own command-line client.
  std::string cmd = "echo | openssl s_client -connect 127.0.0.1:" + std::to_string(gw.port()) +
                    " -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  int status = ::pclose(p);
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("alert protocol version"), std::string::npos) << out;
}

TEST_F(TlsListener, MinVersion13RefusesTls12) {
  Gateway& gw = gateway(", min_version: \"1.3\"");
  GH_START(gw);
  TlsOptions v12;
  v12.max_version = TLS1_2_VERSION;
  EXPECT_FALSE(TlsClient(gw.port(), v12).ok());
  EXPECT_TRUE(TlsClient(gw.port(), TlsOptions{}).ok());
}

TEST_F(TlsListener, AlpnPrefersH2AndRefusesClientsWithNothingInCommon) {
  Gateway& gw = gateway();
  GH_START(gw);
  TlsOptions both;
  both.alpn = {"http/1.1", "h2"};
  TlsClient b(gw.port(), both);
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ(b.alpn(), "h2");  // the listener's order ([h2, http/1.1]) decides
  TlsOptions h1only;
  h1only.alpn = {"http/1.1"};
  TlsClient h1(gw.port(), h1only);
  ASSERT_TRUE(h1.ok()) << h1.error();
  EXPECT_EQ(h1.alpn(), "http/1.1");
  TlsOptions other;
  other.alpn = {"spdy/3"};
  TlsClient h(gw.port(), other);
  EXPECT_FALSE(h.ok());
  EXPECT_NE(h.error().find("no application protocol"), std::string::npos) << h.error();
  TlsClient none(gw.port(), TlsOptions{});
  ASSERT_TRUE(none.ok()) << none.error();
  EXPECT_EQ(none.alpn(), "");
}

TEST_F(TlsListener, AlpnWithoutH2KeepsHttp2Off) {
  Gateway& gw = gateway(", alpn: [http/1.1]");
  GH_START(gw);
  TlsOptions both;
  both.alpn = {"h2", "http/1.1"};
  TlsClient b(gw.port(), both);
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ(b.alpn(), "http/1.1");
  TlsOptions h2only;
  h2only.alpn = {"h2"};
  EXPECT_FALSE(TlsClient(gw.port(), h2only).ok());
}

TEST_F(TlsListener, ClientCertificatesRequiredOrOptional) {
  Pki other(dir.path(), "other-ca");
  CertSpec client_spec;
  client_spec.cn = "client-1";
  auto client = pki.issue("client", client_spec);
  auto stranger = other.issue("stranger", client_spec);
  {
    Gateway gw(tls_config(up, fill("{cert: \"{C}\", key: \"{K}\", client_ca: \"{CA}\", client_auth: required}",
                                   {{"C", api.cert}, {"K", api.key}, {"CA", pki.ca_file()}})),
               raw());
    GH_START(gw);
    TlsOptions with = verified(pki.ca_file(), "api.test");
    with.client = client;
    EXPECT_EQ(tls_get(gw.port(), "/mtls", with).status, 200);
    EXPECT_EQ(tls_get(gw.port(), "/none", verified(pki.ca_file(), "api.test")).status, 0);
    TlsOptions wrong = verified(pki.ca_file(), "api.test");
    wrong.client = stranger;
    EXPECT_EQ(tls_get(gw.port(), "/stranger", wrong).status, 0);
    ASSERT_TRUE(up.wait_requests(1));
    EXPECT_EQ(up.request_count(), 1u);
    EXPECT_EQ(up.requests()[0].target, "/mtls");
  }
  up.clear();
  Gateway gw(tls_config(up, fill("{cert: \"{C}\", key: \"{K}\", client_ca: \"{CA}\", client_auth: optional}",
                                 {{"C", api.cert}, {"K", api.key}, {"CA", pki.ca_file()}})),
             raw());
  GH_START(gw);
  EXPECT_EQ(tls_get(gw.port(), "/none", verified(pki.ca_file(), "api.test")).status, 200);
  TlsOptions wrong = verified(pki.ca_file(), "api.test");
  wrong.client = stranger;
  EXPECT_EQ(tls_get(gw.port(), "/stranger", wrong).status, 0);  // one shown must still verify
}

TEST_F(TlsListener, SessionsResumeWhicheverWorkerTheClientReaches) {
  Gateway& gw = gateway();
  GH_START(gw);
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    TlsOptions o = verified(pki.ca_file(), "api.test");
    o.max_version = version;
    SessionPtr session;
    {
      TlsClient first(gw.port(), o);
      ASSERT_TRUE(first.ok()) << first.error();
      EXPECT_FALSE(first.resumed());
      ASSERT_TRUE(first.send(make_request("GET", "/first")));
      ASSERT_TRUE(first.read_response());  // TLS 1.3 tickets arrive after the handshake
      session = first.session();
    }
    ASSERT_TRUE(session);
    int resumed = 0;
    for (int i = 0; i < 20; ++i) {
      o.session = session;
      TlsClient c(gw.port(), o);
      ASSERT_TRUE(c.ok()) << c.error();
      resumed += c.resumed();
      ASSERT_TRUE(c.send(make_request("GET", "/again")));
      auto r = c.read_response();
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200);
    }
    EXPECT_EQ(resumed, 20) << "TLS version " << std::hex << version;
    // Each resumption leaves the client a ticket of its own (TLS 1.3 clients use one once):
    // a chain of connections, each resuming with the ticket the previous one got, resumes.
    for (int i = 0; i < 5; ++i) {
      o.session = session;
      TlsClient c(gw.port(), o);
      ASSERT_TRUE(c.ok()) << c.error();
      EXPECT_TRUE(c.resumed()) << "link " << i;
      ASSERT_TRUE(c.send(make_request("GET", "/chain")));
      ASSERT_TRUE(c.read_response());
      auto next = c.session();
      ASSERT_TRUE(next);
      if (version == TLS1_3_VERSION) {
        EXPECT_NE(next.get(), session.get());
      }
      session = next;
    }
  }
}

TEST_F(TlsListener, ConnectionCloseEndsWithCloseNotify) {
  Gateway& gw = gateway();
  GH_START(gw);
  TlsClient c(gw.port(), verified(pki.ca_file(), "api.test"));
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_TRUE(c.send(make_request("GET", "/bye", {{"Connection", "close"}})));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(c.close_notify()) << "the gateway closed without close_notify";
}

TEST_F(TlsListener, SessionTicketsOffMeansFullHandshakes) {
  Gateway& gw = gateway(", session_tickets: false");
  GH_START(gw);
  TlsOptions o = verified(pki.ca_file(), "api.test");
  SessionPtr session;
  {
    TlsClient first(gw.port(), o);
    ASSERT_TRUE(first.ok());
    ASSERT_TRUE(first.send(make_request("GET", "/")));
    ASSERT_TRUE(first.read_response());
    session = first.session();
  }
  o.session = session;
  TlsClient again(gw.port(), o);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again.resumed());
}

// Which certificate a handshake with SNI `name` gets, or "" when it fails.
std::string first_name(int port, const std::string& name) {
  TlsOptions o;
  o.sni = name;
  TlsClient c(port, o);
  return c.ok() && !c.peer_names().empty() ? c.peer_names()[0] : std::string();
}

TEST_F(TlsListener, RenewedFilesServeWithoutARestartAndABrokenPairIsKeptOut) {
  auto cert = pki.issue("site", names({"v1.test"}));
  Gateway gw(tls_config(up, fill("{cert: \"{C}\", key: \"{K}\", reload_check: 200ms}", {{"C", cert.cert}, {"K", cert.key}}),
                        2, "log: {level: debug}"),
             raw());
  GH_START(gw);
  ASSERT_EQ(first_name(gw.port(), "x"), "v1.test");

  // Renewal by rename (each file replaced atomically): new handshakes get the new one.
  pki.issue("site", names({"v2.test"}));
  EXPECT_TRUE(eventually([&] { return first_name(gw.port(), "x") == "v2.test"; }, 3s)) << gw.diagnostics();

  // A key that does not match the certificate: the old pair keeps serving, the log says why.
  auto other = pki.issue("other", names({"v3.test"}));
  fs::copy_file(other.key, cert.key + ".new");
  fs::rename(cert.key + ".new", cert.key);
  EXPECT_TRUE(eventually([&] { return gw.stderr_text().find("cannot be used") != std::string::npos; }, 3s))
      << gw.diagnostics();
  EXPECT_EQ(first_name(gw.port(), "x"), "v2.test");
  EXPECT_EQ(tls_get(gw.port(), "/", TlsOptions{}).status, 200);

  // The matching certificate arrives: served.
  fs::copy_file(other.cert, cert.cert + ".new");
  fs::rename(cert.cert + ".new", cert.cert);
  EXPECT_TRUE(eventually([&] { return first_name(gw.port(), "x") == "v3.test"; }, 3s)) << gw.diagnostics();
}

TEST_F(TlsListener, SymlinkSwapAsKubernetesMountsDo) {
  // A Kubernetes secret volume: tls.crt -> ..data/tls.crt, ..data -> ..2026_v1 (a directory).
  fs::create_directory(dir.path() + "/..v1");
  fs::create_directory(dir.path() + "/..v2");
  auto v1 = pki.issue("v1", names({"v1.test"}));
  auto v2 = pki.issue("v2", names({"v2.test"}));
  fs::copy_file(v1.cert, dir.path() + "/..v1/tls.crt");
  fs::copy_file(v1.key, dir.path() + "/..v1/tls.key");
  fs::copy_file(v2.cert, dir.path() + "/..v2/tls.crt");
  fs::copy_file(v2.key, dir.path() + "/..v2/tls.key");
  fs::create_directory_symlink("..v1", dir.path() + "/..data");
  fs::create_symlink("..data/tls.crt", dir.path() + "/tls.crt");
  fs::create_symlink("..data/tls.key", dir.path() + "/tls.key");
  Gateway gw(tls_config(up, fill("{cert: \"{D}/tls.crt\", key: \"{D}/tls.key\", reload_check: 200ms}", {{"D", dir.path()}})),
             raw());
  GH_START(gw);
  ASSERT_EQ(first_name(gw.port(), "x"), "v1.test");
  // The swap: a new link renamed over ..data, as the kubelet does.
  fs::create_directory_symlink("..v2", dir.path() + "/..data_tmp");
  fs::rename(dir.path() + "/..data_tmp", dir.path() + "/..data");
  EXPECT_TRUE(eventually([&] { return first_name(gw.port(), "x") == "v2.test"; }, 3s)) << gw.diagnostics();
}

TEST_F(TlsListener, ReloadReadsTheFilesAgainAndRefusesABrokenPair) {
  auto cert = pki.issue("site", names({"v1.test"}));
  auto next = pki.issue("next", names({"v2.test"}));
  auto mismatched = pki.issue("odd", names({"odd.test"}));
  auto yaml = [&](const CertFiles& f) {
    return tls_config(up, fill("{cert: \"{C}\", key: \"{K}\", reload_check: 0s}", {{"C", f.cert}, {"K", f.key}}));
  };
  Gateway gw(yaml(cert), raw());
  GH_START(gw);
  ASSERT_EQ(first_name(gw.port(), "x"), "v1.test");
  // A config naming a pair that does not match is refused whole; the old pair serves on.
  gw.write_config(yaml(CertFiles{next.cert, mismatched.key}));
  ASSERT_TRUE(gw.reload());
  EXPECT_TRUE(eventually([&] { return gw.stderr_text().find("reload refused") != std::string::npos; }, 3s))
      << gw.diagnostics();
  EXPECT_EQ(first_name(gw.port(), "x"), "v1.test");
  // A good one is taken.
  gw.write_config(yaml(next));
  ASSERT_TRUE(gw.reload());
  EXPECT_TRUE(eventually([&] { return first_name(gw.port(), "x") == "v2.test"; }, 3s)) << gw.diagnostics();
}

// A TLS keep-alive connection idle long enough to be parked (its descriptor leaves the event
// loop and comes back) goes on with the same TLS session.
TEST_F(TlsListener, KeptAliveConnectionIsServedAfterIdling) {
  Gateway& gw = gateway("", 1);
  GH_START(gw);
  TlsClient c(gw.port(), verified(pki.ca_file(), "api.test"));
  ASSERT_TRUE(c.ok()) << c.error();
  for (const char* path : {"/first", "/after-idling", "/again"}) {
    ASSERT_TRUE(c.send(make_request("GET", path)));
    auto r = c.read_response();
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    std::this_thread::sleep_for(1600ms);
  }
  EXPECT_EQ(up.request_count(), 3u);
}

// A handshake waits for its client until handshake_timeout, however long an idle keep-alive
// connection would wait before it is parked: parking never cuts a handshake short.
TEST_F(TlsListener, SlowHandshakeIsCutOnlyAtItsTimeout) {
  Gateway& gw = gateway(", handshake_timeout: 2500ms", 1);
  GH_START(gw);
  const auto t0 = Clock::now();
  Conn slow(gw.port());
  ASSERT_TRUE(slow.ok());
  EXPECT_TRUE(slow.silent_for(1800ms)) << "a handshake not begun after a second was cut";
  EXPECT_TRUE(slow.wait_closed(3s));
  EXPECT_GE(Clock::now() - t0, 2300ms);
  EXPECT_EQ(tls_get(gw.port(), "/", verified(pki.ca_file(), "api.test")).status, 200);
}

TEST_F(TlsListener, SilentClientIsCutAtTheHandshakeTimeoutAndCounted) {
  const int admin_port = free_port();
  Gateway& gw = gateway(", handshake_timeout: 500ms", 1,
                        fill("admin: {address: \"127.0.0.1:{A}\", token: \"t0ken-for-tls\"}", {{"A", std::to_string(admin_port)}}));
  GH_START(gw);
  ASSERT_TRUE(wait_for_port(admin_port));
  auto failures = [&] {
    auto r = http_get(admin_port, "/metrics", {{"Authorization", "Bearer t0ken-for-tls"}});
    auto label = "gatehouse_tls_handshake_failures_total{listener=\"127.0.0.1:" + std::to_string(gw.port()) + "\"} ";
    auto at = r.body.find(label);
    return at == std::string::npos ? -1 : std::stoi(r.body.substr(at + label.size()));
  };
  const int before = failures();
  ASSERT_GE(before, 0);
  auto t0 = Clock::now();
  Conn silent(gw.port());
  ASSERT_TRUE(silent.ok());
  EXPECT_TRUE(silent.wait_closed(3s));
  auto took = Clock::now() - t0;
  EXPECT_GE(took, 400ms);
  EXPECT_LT(took, 2s);
  // Half a ClientHello, then silence: cut as well.
  Conn partial(gw.port());
  ASSERT_TRUE(partial.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)));
  EXPECT_TRUE(partial.wait_closed(3s));
  EXPECT_TRUE(eventually([&] { return failures() >= before + 2; }, 3s)) << failures();
  EXPECT_EQ(up.request_count(), 0u);
}

TEST_F(TlsListener, PlainHttpToTheTlsPortForwardsNothing) {
  Gateway& gw = gateway();
  GH_START(gw);
  Response r = roundtrip(gw.port(), make_request("GET", "/plain"));
  EXPECT_EQ(r.status, 400) << r.describe();
  EXPECT_NE(r.body.find("plain HTTP"), std::string::npos) << r.body;
  EXPECT_EQ(r.headers.value_or("Connection", ""), "close");
  EXPECT_TRUE(up.requests().empty());
  // Garbage that is neither TLS nor HTTP: closed, nothing forwarded.
  Conn junk(gw.port());
  ASSERT_TRUE(junk.send("\x01\x02\x03 not tls at all\r\n\r\n"));
  EXPECT_TRUE(junk.wait_closed(3s));
  EXPECT_TRUE(up.requests().empty());
}

TEST_F(TlsListener, CurlVerifiesTheChainAndGetsThrough) {
  Gateway& gw = gateway();
  GH_START(gw);
  const std::string port = std::to_string(gw.port());
  // curl asks for h2 and gets it (the listener prefers it); with --http1.1 it gets HTTP/1.1.
  for (std::string version : {"", "--http1.1 "}) {
    std::string cmd = "curl -sS --max-time 5 -o /dev/null -w '%{http_code} %{http_version}' " + version + "--cacert " +
                      pki.ca_file() + " --resolve api.test:" + port + ":127.0.0.1 https://api.test:" + port +
                      "/curl 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    char buf[256] = {0};
    std::string out = std::fgets(buf, sizeof buf, p) ? buf : "";
    ::pclose(p);
    EXPECT_EQ(out, version.empty() ? "200 2" : "200 1.1") << cmd;
  }
  ASSERT_TRUE(up.wait_requests(2));
  for (const auto& r : up.requests()) {
    EXPECT_EQ(r.headers.value_or("X-Forwarded-Proto", ""), "https");
    EXPECT_EQ(r.headers.value_or("X-Forwarded-Host", ""), "api.test:" + port);
  }
}

TEST_F(TlsListener, BrokenCertificatesAreErrorsAtStartAndInCheck) {
  auto a = pki.issue("a", names({"a.test"}));
  auto b = pki.issue("b", names({"b.test"}));
  std::string yaml = tls_config(up, fill("{cert: \"{C}\", key: \"{K}\"}", {{"C", a.cert}, {"K", b.key}}));
  std::string file = dir.write("gw.yaml", fill(yaml, {{"PORT", std::to_string(free_port())}}));
  auto check = run_gatehouse({"check", "-c", file});
  EXPECT_EQ(check.exit_code, 1) << check.out << check.err;
  EXPECT_NE((check.out + check.err).find("does not match"), std::string::npos) << check.out << check.err;
  EXPECT_NE((check.out + check.err).find("gw.yaml:3:"), std::string::npos) << check.out << check.err;
  std::string not_pem = dir.write("junk.pem", "not a certificate\n");
  file = dir.write("gw2.yaml", fill(tls_config(up, fill("{cert: \"{C}\", key: \"{K}\"}", {{"C", not_pem}, {"K", a.key}})),
                                    {{"PORT", std::to_string(free_port())}}));
  auto run = run_gatehouse({"run", "-c", file}, {}, {}, 5s);
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  EXPECT_NE(run.err.find("cannot load certificate"), std::string::npos) << run.err;
}

TEST_F(TlsListener, WebSocketTunnelOverTls) {
  up.set_handler([](const Request&) {
    Reply r;
    r.status = 101;
    r.reason = "Switching Protocols";
    r.upgrade = true;  // then echoes every byte
    r.headers.add("Upgrade", "websocket");
    r.headers.add("Connection", "Upgrade");
    r.headers.add("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");  // RFC 6455 1.3's example
    return r;
  });
  Gateway& gw = gateway();
  GH_START(gw);
  TlsClient c(gw.port(), verified(pki.ca_file(), "api.test"));
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_TRUE(c.send(make_request("GET", "/chat",
                                  {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}, {"Sec-WebSocket-Version", "13"},
                                   {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}})));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 101) << r->describe();
  std::string big(40000, 'w');  // more than one TLS record each way
  ASSERT_TRUE(c.send("hello-over-tls" + big + "end"));
  EXPECT_TRUE(c.wait_for("hello-over-tls" + big + "end"));
  ASSERT_EQ(up.requests().size(), 1u);
  EXPECT_EQ(up.requests()[0].headers.value_or("X-Forwarded-Proto", ""), "https");
}

}  // namespace
}  // namespace gh::integ
