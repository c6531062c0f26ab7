// Instances by name and the checks `check` and `run` share (SPEC §2 services, trusted_proxies):
// an instance written with a host name is routed to by its addresses with the name as Host; a
// name that does not resolve is refused by `check` and by `run` at its place; an IPv4-mapped
// trusted_proxies network means the same to both.
#include <gtest/gtest.h>

#include <sstream>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

struct Ran {
  ProcessResult result;
  std::string path;
};

Ran gatehouse(const std::string& command, const std::string& yaml) {
  static TempDir dir;
  static int n = 0;
  const std::string path = dir.write("instances" + std::to_string(++n) + ".yaml", yaml);
  return {run_gatehouse({command, "-c", path}, {}, {}, 20s), path};
}

TEST(Instances, HostNameIsRoutedToWithTheNameAsHost) {
  Upstream up("by-name");
  // localhost may also resolve to ::1, where this service does not listen: a refused connect is
  // retried on the other address.
  Gateway gw(fill(R"(
services:
  svc:
    instances: ["http://localhost:{PORT}"]
    retries: {attempts: 3}
routes:
  - path: /
    service: svc
)",
                  {{"PORT", std::to_string(up.port())}}));
  GH_START(gw);
  for (int i = 0; i < 4; ++i) {
    auto r = http_get(gw.port(), "/hello");
    EXPECT_EQ(r.status, 200) << r.describe() << "\n" << gw.diagnostics();
    EXPECT_EQ(r.body, "by-name");
  }
  auto seen = up.requests();
  ASSERT_EQ(seen.size(), 4u);
  for (const auto& req : seen) EXPECT_EQ(req.headers.value_or("Host", ""), "localhost:" + std::to_string(up.port()));
}

const char* kUnresolvable = R"(listen: "127.0.0.1:0"
services:
  x:
    instances: ["http://127.0.0.1:3001", "http://nope.invalid:80"]
routes:
  - path: /
    service: x
)";

TEST(Instances, CheckRefusesANameThatDoesNotResolveAtItsPlace) {
  auto c = gatehouse("check", kUnresolvable);
  EXPECT_EQ(c.result.exit_code, 1) << c.result.err;
  EXPECT_NE(c.result.err.find(c.path + ":4:42: services.x.instances[1]: cannot resolve host \"nope.invalid\"\n"),
            std::string::npos)
      << c.result.err;
}

TEST(Instances, RunRefusesANameThatDoesNotResolveAtItsPlace) {
  auto c = gatehouse("run", kUnresolvable);
  EXPECT_FALSE(c.result.timed_out);
  EXPECT_EQ(c.result.exit_code, 1) << c.result.err;
  EXPECT_NE(c.result.err.find(c.path + ":4:42: services.x.instances[1]: cannot resolve host \"nope.invalid\""),
            std::string::npos)
      << c.result.err;
}

TEST(Instances, NamesThatResolvePassCheck) {
  auto c = gatehouse("check", R"(services:
  a: {instances: ["http://localhost:3001"]}
  b: {instances: ["http://localhost:3002", "http://localhost:3003"]}
routes:
  - {path: /a, service: a}
  - {path: /b, service: b}
)");
  EXPECT_EQ(c.result.exit_code, 0) << c.result.err;
}

// The client_ip of the only access-log line.
std::string logged_client(const Gateway& gw) {
  std::string client;
  eventually([&] {
    auto line = Json::parse(gw.access_log_text().substr(0, gw.access_log_text().find('\n')));
    if (!line || !line->get("client_ip") || line->get("client_ip")->type != Json::Type::String) return false;
    client = line->get("client_ip")->string;
    return true;
  }, 5s);
  return client;
}

std::string with_trusted(const Upstream& up, const std::string& cidr) {
  return fill(R"(
trusted_proxies: ["{CIDR}"]
services:
  svc: {instances: ["{U}"]}
routes:
  - {path: /, service: svc}
)",
              {{"CIDR", cidr}, {"U", up.url()}});
}

TEST(TrustedProxies, MappedNetworkIsTheIpv4NetworkForCheckAndRun) {
  Upstream up;
  for (auto [cidr, expected] : {std::pair{"::ffff:127.0.0.1/120", "203.0.113.9"},  // 127.0.0.0/24: trusted
                                std::pair{"::ffff:127.0.1.1/120", "127.0.0.1"}}) {  // 127.0.1.0/24: not
    const std::string yaml = with_trusted(up, cidr);
    auto c = gatehouse("check", "listen: \"127.0.0.1:0\"\n" + yaml);
    EXPECT_EQ(c.result.exit_code, 0) << cidr << ": " << c.result.err;
    Gateway::Options o;
    o.access_log_file = true;
    Gateway gw(yaml, o);
    GH_START(gw);
    Headers xff;
    xff.add("X-Forwarded-For", "203.0.113.9");
    auto r = http_get(gw.port(), "/", xff);
    EXPECT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(logged_client(gw), expected) << cidr;
  }
}

TEST(TrustedProxies, MappedNetworkWithAShortPrefixIsRefusedByCheckAndRun) {
  Upstream up;
  const std::string yaml = "listen: \"127.0.0.1:0\"\n" + with_trusted(up, "::ffff:10.0.0.1/80");
  for (const char* command : {"check", "run"}) {
    auto c = gatehouse(command, yaml);
    EXPECT_EQ(c.result.exit_code, 1) << command << ": " << c.result.err;
    EXPECT_NE(c.result.err.find(c.path + ":3:19: trusted_proxies[0]: expected a CIDR like 10.0.0.0/8, 192.168.1.7 or "
                                         "fd00::/8, got \"::ffff:10.0.0.1/80\": an IPv4-mapped network (::ffff:a.b.c.d) "
                                         "needs a prefix length of 96 or more"),
              std::string::npos)
        << command << ": " << c.result.err;
  }
}

}  // namespace
}  // namespace gh::integ
