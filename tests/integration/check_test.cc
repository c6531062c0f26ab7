// `gatehouse check`: every error printed as FILE:LINE:COL: PATH: message, exit 1; exit 0 on a
// valid file, the project's seed example (examples/seed.yaml) included (docs/configuration.md);
// `check --diff OLD NEW` prints what a reload from OLD to NEW changes (docs/operations.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <sstream>
#include <tuple>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

struct Checked {
  ProcessResult result;
  std::string path;
};

Checked check(const std::string& yaml, const Env& env = {}, const std::vector<std::string>& unset = {}) {
  static TempDir dir;
  static int n = 0;
  const std::string path = dir.write("check" + std::to_string(++n) + ".yaml", yaml);
  return {run_gatehouse({"check", "-c", path}, env, unset), path};
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream s(text);
  for (std::string line; std::getline(s, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// The error line that starts with PATH:LINE:COL: FIELD: , or "".
std::string error_at(const Checked& c, int line, int col, const std::string& field) {
  const std::string prefix = c.path + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + field + ": ";
  for (const std::string& l : lines(c.result.err)) {
    if (l.rfind(prefix, 0) == 0) return l;
  }
  return "";
}

TEST(Check, SeedExamplePasses) {
  auto r = run_gatehouse({"check", "-c", examples_dir() + "/seed.yaml"}, {{"JWT_SECRET", "integration-secret"}});
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(Check, SeedWithoutItsSecretFailsAtTheVariable) {
  const std::string path = examples_dir() + "/seed.yaml";
  auto r = run_gatehouse({"check", "-c", path}, {}, {"JWT_SECRET"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  // The line of `secret: "${JWT_SECRET}"` in the file.
  const std::string text = read_file(path);
  const std::size_t at = text.find("${JWT_SECRET}");
  ASSERT_NE(at, std::string::npos);
  const int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
  const std::string prefix = path + ":" + std::to_string(line) + ":";
  EXPECT_NE(r.err.find(prefix), std::string::npos) << "expected an error at " << prefix << "\n" << r.err;
  EXPECT_NE(r.err.find("JWT_SECRET"), std::string::npos) << r.err;
}

TEST(Check, ValidFilePassesQuietly) {
  auto c = check(R"(listen: "127.0.0.1:3000"
services:
  user:
    instances: ["http://127.0.0.1:3001"]
routes:
  - path: /api/users
    service: user
)");
  EXPECT_EQ(c.result.exit_code, 0) << c.result.err;
}

TEST(Check, UnknownServiceSuggestsTheNearestName) {
  auto c = check(R"(services:
  user:
    instances: ["http://127.0.0.1:3001"]
routes:
  - path: /api/users
    service: usr
)");
  EXPECT_EQ(c.result.exit_code, 1);
  const std::string line = error_at(c, 6, 14, "routes[0].service");
  ASSERT_FALSE(line.empty()) << "expected " << c.path << ":6:14: routes[0].service: ..., got:\n" << c.result.err;
  EXPECT_NE(line.find("unknown service \"usr\""), std::string::npos) << line;
  EXPECT_NE(line.find("did you mean \"user\"?"), std::string::npos) << line;
}

TEST(Check, BadDurationIsPlacedAtItsValue) {
  auto c = check(R"(services:
  user:
    instances: ["http://127.0.0.1:3001"]
    timeouts:
      response: 30x
routes:
  - path: /api
    service: user
)");
  EXPECT_EQ(c.result.exit_code, 1);
  const std::string line = error_at(c, 5, 17, "services.user.timeouts.response");
  ASSERT_FALSE(line.empty()) << "expected " << c.path << ":5:17: services.user.timeouts.response: ..., got:\n"
                             << c.result.err;
  EXPECT_NE(line.find("duration"), std::string::npos) << "does not say a duration was expected: " << line;
}

TEST(Check, UnsetVariableIsAnError) {
  auto c = check(R"(services:
  user:
    instances:
      - ${GH_INTEG_UNSET_VARIABLE}
routes:
  - path: /api
    service: user
)",
                 {}, {"GH_INTEG_UNSET_VARIABLE"});
  EXPECT_EQ(c.result.exit_code, 1);
  const std::string prefix = c.path + ":4:9: services.user.instances[0]: ";
  EXPECT_NE(c.result.err.find(prefix), std::string::npos) << "expected an error at " << prefix << "\n" << c.result.err;
  EXPECT_NE(c.result.err.find("GH_INTEG_UNSET_VARIABLE"), std::string::npos) << c.result.err;
}

// SPEC §1: the line names the field the unset variable stands in, wherever it is.
TEST(Check, UnsetVariablesNameTheirFields) {
  auto c = check(R"(services:
  user: {instances: ["http://127.0.0.1:3001"]}
  product:
    instances: ["http://10.0.0.17:3002", "http://${GH_INTEG_PRODUCT_HOST}:3002"]
policies:
  auth:
    type: jwt
    secret: "${GH_INTEG_SECRET}"
  cors:
    type: cors
    origins: ["https://a.example", "https://${GH_INTEG_ORIGIN_HOST}"]
routes:
  - path: /api
    service: user
    policies: [auth, cors]
)",
                 {}, {"GH_INTEG_PRODUCT_HOST", "GH_INTEG_SECRET", "GH_INTEG_ORIGIN_HOST"});
  EXPECT_EQ(c.result.exit_code, 1);
  auto unset = [&](const std::string& where, const std::string& var) {
    return c.path + ":" + where + ": environment variable " + var + " is not set; set it, or write ${" + var +
           ":-default} to give a default";
  };
  EXPECT_EQ(lines(c.result.err),
            (std::vector<std::string>{unset("4:50: services.product.instances[1]", "GH_INTEG_PRODUCT_HOST"),
                                      unset("8:14: policies.auth.secret", "GH_INTEG_SECRET"),
                                      unset("11:45: policies.cors.origins[1]", "GH_INTEG_ORIGIN_HOST")}));
}

TEST(Check, VariablesAndDefaultsAreSubstituted) {
  const std::string yaml = R"(services:
  user:
    instances: ["${GH_INTEG_URL}", "${GH_INTEG_UNSET_VARIABLE:-http://127.0.0.1:3002}"]
routes:
  - path: /api
    service: user
)";
  auto c = check(yaml, {{"GH_INTEG_URL", "http://127.0.0.1:3001"}}, {"GH_INTEG_UNSET_VARIABLE"});
  EXPECT_EQ(c.result.exit_code, 0) << c.result.err;
}

TEST(Check, EveryErrorIsListedOneALine) {
  auto c = check(R"(services:
  user:
    instances: ["http://127.0.0.1:3001"]
    timeouts:
      connect: soon
routes:
  - path: /api/users
    service: usr
  - path: /api/orders
    service: order
)");
  EXPECT_EQ(c.result.exit_code, 1);
  EXPECT_FALSE(error_at(c, 5, 16, "services.user.timeouts.connect").empty()) << c.result.err;
  EXPECT_FALSE(error_at(c, 8, 14, "routes[0].service").empty()) << c.result.err;
  EXPECT_FALSE(error_at(c, 10, 14, "routes[1].service").empty()) << c.result.err;
  static const std::regex format(R"(^.+:[0-9]+:[0-9]+: [A-Za-z0-9_.\[\]-]+: .+$)");
  for (const std::string& l : lines(c.result.err)) {
    EXPECT_TRUE(std::regex_match(l, format)) << "not FILE:LINE:COL: PATH: message: " << l;
  }
}

TEST(Check, UnknownPolicyIsReportedWithItsIndex) {
  auto c = check(R"(services:
  user:
    instances: ["http://127.0.0.1:3001"]
policies:
  per-ip: {type: rate_limit, limit: 10, window: 1m}
routes:
  - path: /api
    service: user
    policies: [per-ip, per_ip]
)");
  EXPECT_EQ(c.result.exit_code, 1);
  const std::string line = error_at(c, 9, 24, "routes[0].policies[1]");
  ASSERT_FALSE(line.empty()) << c.result.err;
  EXPECT_NE(line.find("did you mean \"per-ip\"?"), std::string::npos) << line;
}

// `yes` is refused the same way by every boolean, the loader's and each policy's, in one run.
TEST(Check, EveryBooleanRefusesYesTheSameWay) {
  auto c = check(R"(services:
  user:
    instances: ["http://127.0.0.1:3001"]
    preserve_host: yes
policies:
  auth: {type: jwt, secret: s, require_exp: yes}
  web: {type: cors, origins: ["https://app.example"], credentials: yes}
  sec: {type: security_headers, override: yes}
routes:
  - path: /api
    service: user
    strip_prefix: yes
    policies: [web, auth, sec]
)");
  EXPECT_EQ(c.result.exit_code, 1);
  const std::string refused = "expected true or false, got \"yes\" (YAML 1.2 reads \"yes\" as a string; write true)";
  for (auto [line, col, field] : {std::tuple{4, 20, "services.user.preserve_host"},
                                  std::tuple{6, 45, "policies.auth.require_exp"},
                                  std::tuple{7, 68, "policies.web.credentials"},
                                  std::tuple{8, 43, "policies.sec.override"},
                                  std::tuple{12, 19, "routes[0].strip_prefix"}}) {
    const std::string at = c.path + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + field + ": ";
    EXPECT_EQ(error_at(c, line, col, field), at + refused) << c.result.err;
  }
  EXPECT_EQ(lines(c.result.err).size(), 5u) << c.result.err;
}

}  // namespace
}  // namespace gh::integ

namespace gh::integ {
namespace {

TEST(Check, UnreadableOrEndlessFilesAreRefusedNotRead) {
  auto zero = run_gatehouse({"check", "-c", "/dev/zero"}, {}, {}, 20s);
  EXPECT_FALSE(zero.timed_out);
  EXPECT_EQ(zero.exit_code, 1);
  EXPECT_NE(zero.err.find("/dev/zero: (file): cannot read the file: larger than 16 MiB"), std::string::npos) << zero.err;
  TempDir dir;
  auto directory = run_gatehouse({"check", "-c", dir.path()});
  EXPECT_EQ(directory.exit_code, 1);
  EXPECT_NE(directory.err.find("it is a directory"), std::string::npos) << directory.err;
  auto missing = run_gatehouse({"check", "-c", dir.path() + "/none.yaml"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("cannot read the file"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace gh::integ

// `check --diff OLD NEW` (SPEC §6): both files checked as `check` does, then what a reload from
// OLD to NEW changes, as the JSON `POST /reload` answers with, on stdout.
namespace gh::integ {
namespace {

constexpr const char* kDiffOld = R"(listen: "127.0.0.1:3000"
services:
  user:
    instances: ["http://127.0.0.1:3001", "http://127.0.0.1:3002"]
    timeouts: {response: 30s}
  order:
    instances: ["http://127.0.0.1:3003"]
policies:
  auth: {type: jwt, secret: old-jwt-secret}
  per-ip: {type: rate_limit, limit: 10, window: 1m}
routes:
  - name: users
    path: /api/users
    service: user
    policies: [auth]
  - path: /api/orders
    service: order
)";

constexpr const char* kDiffNew = R"(listen: ["127.0.0.1:3000", "127.0.0.1:3100"]
limits: {max_body_bytes: 1MiB}
services:
  user:
    instances: ["http://127.0.0.1:3001"]
    timeouts: {response: 5s}
  billing:
    instances: ["http://127.0.0.1:3004"]
policies:
  auth: {type: jwt, secret: new-jwt-secret}
  per-ip: {type: rate_limit, limit: 10, window: 1m}
routes:
  - name: users
    path: /api/users
    methods: [GET]
    service: user
    policies: [auth, per-ip]
  - path: /api/billing
    service: billing
)";

ProcessResult check_diff(const std::string& old_yaml, const std::string& new_yaml, std::string* old_path = nullptr,
                         std::string* new_path = nullptr) {
  static TempDir dir;
  static int n = 0;
  ++n;
  const std::string a = dir.write("old" + std::to_string(n) + ".yaml", old_yaml);
  const std::string b = dir.write("new" + std::to_string(n) + ".yaml", new_yaml);
  if (old_path) *old_path = a;
  if (new_path) *new_path = b;
  return run_gatehouse({"check", "--diff", a, b});
}

TEST(CheckDiff, PrintsWhatChanges) {
  auto r = check_diff(kDiffOld, kDiffNew);
  EXPECT_FALSE(r.timed_out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out,
            R"({"changes":{)"
            R"("routes":{"added":["/api/billing"],"removed":["/api/orders"],)"
            R"("changed":[{"name":"users","fields":["methods","policies"]}]},)"
            R"("services":{"added":["billing"],"removed":["order"],)"
            R"("changed":[{"name":"user","fields":["instances","timeouts.response"]}]},)"
            R"("policies":{"added":[],"removed":[],"changed":[{"name":"auth","fields":["secret"]}]},)"
            R"("listeners":{"added":["127.0.0.1:3100"],"removed":[],"changed":[]},)"
            R"("settings":{"changed":["limits.max_body_bytes"]}}})"
            "\n");
  auto json = Json::parse(r.out);
  ASSERT_TRUE(json.has_value()) << r.out;
  ASSERT_NE(json->get("changes"), nullptr);
  EXPECT_EQ(r.out.find("jwt-secret"), std::string::npos) << "a secret's value is printed: " << r.out;

  // The other way round: what was added is removed.
  auto back = check_diff(kDiffNew, kDiffOld);
  ASSERT_EQ(back.exit_code, 0) << back.err;
  auto reverse = Json::parse(back.out);
  ASSERT_TRUE(reverse.has_value()) << back.out;
  const Json* listeners = reverse->get("changes")->get("listeners");
  ASSERT_NE(listeners, nullptr);
  ASSERT_EQ(listeners->get("removed")->array.size(), 1u) << back.out;
  EXPECT_TRUE(listeners->get("removed")->array[0].is_string("127.0.0.1:3100"));
  EXPECT_TRUE(listeners->get("added")->array.empty());
}

TEST(CheckDiff, IdenticalFilesPrintEmptyChanges) {
  auto r = check_diff(kDiffOld, kDiffOld);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            R"({"changes":{"routes":{"added":[],"removed":[],"changed":[]},)"
            R"("services":{"added":[],"removed":[],"changed":[]},)"
            R"("policies":{"added":[],"removed":[],"changed":[]},)"
            R"("listeners":{"added":[],"removed":[],"changed":[]},"settings":{"changed":[]}}})"
            "\n");
}

TEST(CheckDiff, InvalidNewPrintsItsErrorsAndExits1) {
  std::string old_path, new_path;
  const std::string broken = std::string(kDiffNew) + "  - path: /api/stock\n    service: stock\n";
  auto r = check_diff(kDiffOld, broken, &old_path, &new_path);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find(new_path + ":21:14: routes[2].service: unknown service \"stock\""), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find(old_path), std::string::npos) << "the valid OLD file is blamed: " << r.err;
}

// Both files are checked in full: the errors of each are printed, OLD's first.
TEST(CheckDiff, InvalidOldAndNewPrintEveryError) {
  std::string old_path, new_path;
  const std::string bad_old = std::string(kDiffOld) + "workers: none\n";
  const std::string bad_new = std::string(kDiffNew) + "access_log: [a]\n";
  auto r = check_diff(bad_old, bad_new, &old_path, &new_path);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  const auto old_at = r.err.find(old_path + ":18:10: workers: ");
  const auto new_at = r.err.find(new_path + ":20:13: access_log: ");
  EXPECT_NE(old_at, std::string::npos) << r.err;
  EXPECT_NE(new_at, std::string::npos) << r.err;
  EXPECT_LT(old_at, new_at) << r.err;

  // A file that cannot be read is an invalid file too.
  auto missing = run_gatehouse({"check", "--diff", old_path + ".none", new_path});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find(old_path + ".none: (file): cannot read the file"), std::string::npos) << missing.err;
}

TEST(CheckDiff, NeedsExactlyTwoFilesAndNoConfigOption) {
  TempDir dir;
  const std::string a = dir.write("a.yaml", kDiffOld);
  auto one = run_gatehouse({"check", "--diff", a});
  EXPECT_EQ(one.exit_code, 2) << one.err;
  EXPECT_EQ(one.out, "");
  auto both = run_gatehouse({"check", "-c", a, "--diff", a, a});
  EXPECT_EQ(both.exit_code, 2) << both.err;
  EXPECT_NE(both.err.find("excludes"), std::string::npos) << both.err;
  auto help = run_gatehouse({"check", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--diff OLD NEW"), std::string::npos) << help.out;
}

}  // namespace
}  // namespace gh::integ
