// Operating the binary: signals for log rotation, exit codes, --help and --version, the error
// log's level and format, and `workers: auto` under a CPU affinity mask.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>

#include <cstdio>
#include <regex>
#include <sstream>

#include "harness/assertions.h"

#ifndef GH_GIT_COMMIT
#define GH_GIT_COMMIT "unknown"
#endif

namespace gh::integ {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream s(text);
  for (std::string line; std::getline(s, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

bool contains(const std::string& text, std::string_view what) { return text.find(what) != std::string::npos; }

std::string one_service(const Upstream& up) {
  return fill(R"(
services:
  svc: {instances: ["{U}"]}
routes:
  - path: /
    service: svc
)",
              {{"U", up.url()}});
}

// ---- log rotation ----------------------------------------------------------------------------

// What logrotate does: rename the file, signal the process, expect a new file at the old path.
void check_rotation(int sig) {
  Upstream up("svc");
  Gateway::Options options;
  options.access_log_file = true;
  Gateway gw(one_service(up), options);
  GH_START(gw);
  ASSERT_EQ(http_get(gw.port(), "/before-rotation").status, 200);
  const std::string path = gw.access_log_path();
  ASSERT_TRUE(eventually([&] { return contains(read_file(path), "/before-rotation"); }, 5s)) << gw.diagnostics();

  const std::string rotated = path + ".1";
  ASSERT_EQ(std::rename(path.c_str(), rotated.c_str()), 0);
  ASSERT_TRUE(gw.signal(sig));
  ASSERT_TRUE(eventually([&] { return contains(gw.stderr_text(), "reopened the access log"); }, 5s))
      << gw.diagnostics();
  ASSERT_EQ(http_get(gw.port(), "/after-rotation").status, 200);

  EXPECT_TRUE(eventually([&] { return contains(read_file(path), "/after-rotation"); }, 5s))
      << "new file:\n" << read_file(path) << "\nrotated file:\n" << read_file(rotated);
  EXPECT_FALSE(contains(read_file(path), "/before-rotation"));
  EXPECT_TRUE(contains(read_file(rotated), "/before-rotation"));
  EXPECT_FALSE(contains(read_file(rotated), "/after-rotation"));
  EXPECT_TRUE(gw.alive());
  EXPECT_EQ(http_get(gw.port(), "/still-serving").status, 200);
  EXPECT_EQ(gw.stop(), 0);
}

TEST(Operations, Sigusr1ReopensTheAccessLog) { check_rotation(SIGUSR1); }

TEST(Operations, SighupAlsoReopensTheAccessLog) { check_rotation(SIGHUP); }

TEST(Operations, Sigusr1WithoutALogFileIsHarmless) {
  Upstream up("svc");
  Gateway gw(one_service(up));  // access_log: off
  GH_START(gw);
  ASSERT_TRUE(gw.signal(SIGUSR1));
  ASSERT_TRUE(gw.signal(SIGUSR1));
  EXPECT_EQ(http_get(gw.port(), "/").status, 200);
  EXPECT_TRUE(gw.alive());
  EXPECT_EQ(gw.stop(), 0);  // and it still drains and exits normally
}

// ---- exit codes, --help, --version -----------------------------------------------------------

TEST(Operations, UsageErrorsExitWith2) {
  const std::vector<std::vector<std::string>> cases = {
      {},                                    // no command
      {"version"},                           // not a command
      {"run", "--no-such-flag"},
      {"check"},                             // neither -c nor ./gatehouse.yaml
      {"demo", "--port", "70000"},
      {"run", "-c", "x.yaml", "--log-level", "verbose"},
      {"token"},                             // no secret
      {"token", "--secret", "s", "--secret-file", "f"},
      {"token", "--secret", "s", "--ttl", "forever"},
  };
  for (const auto& args : cases) {
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    auto r = run_gatehouse(args);
    EXPECT_EQ(r.exit_code, 2) << "gatehouse " << shown << "\n" << r.err;
    EXPECT_FALSE(r.err.empty()) << "gatehouse " << shown << ": no message";
  }
}

TEST(Operations, HelpShowsTheProgramNameAndExitCodes) {
  auto r = run_gatehouse({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "Usage: gatehouse ")) << r.out;
  EXPECT_FALSE(contains(r.out, gatehouse_binary())) << "usage shows the build path:\n" << r.out;
  EXPECT_TRUE(contains(r.out, "Exit status: 0 ok; 1 invalid config or runtime failure; 2 usage error.")) << r.out;
  auto sub = run_gatehouse({"run", "--help"});
  EXPECT_EQ(sub.exit_code, 0);
  EXPECT_TRUE(contains(sub.out, "--log-level")) << sub.out;
}

TEST(Operations, ConfigAndRuntimeFailuresExitWith1) {
  TempDir dir;
  const std::string bad = dir.write("bad.yaml", "services: {}\nroutes: []\nworkers: none\n");
  auto check = run_gatehouse({"check", "-c", bad});
  EXPECT_EQ(check.exit_code, 1) << check.err;
  auto run = run_gatehouse({"run", "-c", bad});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_TRUE(contains(run.err, bad + ":3:10: workers: ")) << run.err;
  auto missing = run_gatehouse({"check", "-c", dir.path() + "/absent.yaml"});
  EXPECT_EQ(missing.exit_code, 1) << missing.err;

  // A port that is taken: the config is valid, starting fails.
  Upstream up("svc");
  Gateway first(one_service(up));
  GH_START(first);
  const std::string taken = dir.write("taken.yaml", "listen: \"127.0.0.1:" + std::to_string(first.port()) +
                                                         "\"\naccess_log: off\n" + one_service(up));
  auto busy = run_gatehouse({"run", "-c", taken});
  EXPECT_EQ(busy.exit_code, 1) << busy.err;
  EXPECT_TRUE(contains(busy.err, "cannot listen on")) << busy.err;
}

TEST(Operations, VersionNamesTheCommitAndOpenSsl) {
  auto r = run_gatehouse({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_TRUE(std::regex_match(lines[0], std::regex(R"(gatehouse [0-9]+\.[0-9]+\.[0-9]+)"))) << lines[0];
  EXPECT_EQ(lines[1], std::string("commit ") + GH_GIT_COMMIT);
  EXPECT_TRUE(std::regex_match(lines[2], std::regex(R"(OpenSSL [0-9]+\.[0-9]+\.[0-9]+.*)"))) << lines[2];
}

// ---- gatehouse token --secret-file -----------------------------------------------------------

TEST(Operations, TokenSecretFromAFile) {
  TempDir dir;
  const std::string file = dir.write("secret", "file-secret-1\n");  // as `echo ... > file` writes it
  auto minted = run_gatehouse({"token", "--secret-file", file, "--sub", "u1"});
  ASSERT_EQ(minted.exit_code, 0) << minted.err;
  const std::string jwt = minted.out.substr(0, minted.out.find('\n'));

  // The gateway verifies it with the secret without the newline.
  Upstream up("svc");
  Gateway gw(fill(R"(
services:
  svc: {instances: ["{U}"]}
policies:
  auth: {type: jwt, secret: file-secret-1}
routes:
  - {path: /, service: svc, policies: [auth]}
)",
                  {{"U", up.url()}}));
  GH_START(gw);
  EXPECT_EQ(http_get(gw.port(), "/", {{"Authorization", "Bearer " + jwt}}).status, 200);
  auto other = run_gatehouse({"token", "--secret", "file-secret-1\n", "--sub", "u1"});
  ASSERT_EQ(other.exit_code, 0);
  EXPECT_EQ(http_get(gw.port(), "/", {{"Authorization", "Bearer " + other.out.substr(0, other.out.find('\n'))}}).status,
            401);  // the check above is not vacuous: a secret with the newline is refused
}

TEST(Operations, TokenSecretFileErrors) {
  TempDir dir;
  auto absent = run_gatehouse({"token", "--secret-file", dir.path() + "/absent"});
  EXPECT_EQ(absent.exit_code, 1);
  EXPECT_TRUE(contains(absent.err, "--secret-file: cannot read " + dir.path() + "/absent: No such file or directory"))
      << absent.err;
  EXPECT_TRUE(absent.out.empty()) << absent.out;

  auto directory = run_gatehouse({"token", "--secret-file", dir.path()});
  EXPECT_EQ(directory.exit_code, 1);
  EXPECT_TRUE(contains(directory.err, "Is a directory")) << directory.err;

  const std::string empty = dir.write("empty", "\n");
  auto blank = run_gatehouse({"token", "--secret-file", empty});
  EXPECT_EQ(blank.exit_code, 1);
  EXPECT_TRUE(contains(blank.err, empty + " is empty")) << blank.err;
}

// ---- the error log ---------------------------------------------------------------------------

TEST(Operations, ErrorLogIsTextWithTimeAndLevelByDefault) {
  Upstream up("svc");
  Gateway gw(one_service(up));
  GH_START(gw);
  ASSERT_TRUE(eventually([&] { return contains(gw.stderr_text(), "listening on"); }, 5s)) << gw.diagnostics();
  static const std::regex line(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info listening on 127\.0\.0\.1:\d+ \(2 workers\))");
  bool found = false;
  for (const auto& l : lines_of(gw.stderr_text())) found = found || std::regex_match(l, line);
  EXPECT_TRUE(found) << gw.stderr_text();
  EXPECT_FALSE(contains(gw.stderr_text(), " debug ")) << "debug lines at the default level:\n" << gw.stderr_text();
}

TEST(Operations, ErrorLogAsJsonLines) {
  Upstream up("svc");
  Gateway gw(one_service(up) + "log: {format: json, level: debug}\n");
  GH_START(gw);
  ASSERT_EQ(gw.stop(), 0);
  auto lines = lines_of(gw.stderr_text());
  ASSERT_FALSE(lines.empty());
  bool listening = false, debug = false;
  for (const auto& l : lines) {
    auto j = Json::parse(l);
    ASSERT_TRUE(j && j->type == Json::Type::Object) << "not a JSON object: " << l;
    ASSERT_EQ(j->object.size(), 3u) << l;
    ASSERT_TRUE(j->get("time") && j->get("time")->type == Json::Type::String) << l;
    EXPECT_TRUE(std::regex_match(j->get("time")->string, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
    ASSERT_TRUE(j->get("level") && j->get("level")->type == Json::Type::String) << l;
    ASSERT_TRUE(j->get("msg") && j->get("msg")->type == Json::Type::String) << l;
    const std::string& level = j->get("level")->string;
    EXPECT_TRUE(level == "debug" || level == "info" || level == "warn" || level == "error") << l;
    listening = listening || (level == "info" && contains(j->get("msg")->string, "listening on"));
    debug = debug || level == "debug";
  }
  EXPECT_TRUE(listening) << gw.stderr_text();
  EXPECT_TRUE(debug) << gw.stderr_text();
}

TEST(Operations, LogLevelFromConfigAndTheFlagOverIt) {
  Upstream up("svc");
  Gateway quiet(one_service(up) + "log: {level: warn}\n");
  GH_START(quiet);
  EXPECT_EQ(quiet.stop(), 0);
  EXPECT_FALSE(contains(quiet.stderr_text(), "listening on")) << quiet.stderr_text();
  EXPECT_FALSE(contains(quiet.stderr_text(), "stopped")) << quiet.stderr_text();

  Gateway::Options verbose;
  verbose.args = {"--log-level", "debug"};
  Gateway loud(one_service(up) + "log: {level: warn}\n", verbose);
  GH_START(loud);
  EXPECT_EQ(loud.stop(), 0);
  EXPECT_TRUE(contains(loud.stderr_text(), " info listening on")) << loud.stderr_text();
  EXPECT_TRUE(contains(loud.stderr_text(), " debug ")) << loud.stderr_text();
}

TEST(Operations, ReloadAppliesTheLogSettings) {
  Upstream up("svc");
  Gateway gw(one_service(up));
  GH_START(gw);
  gw.write_config(one_service(up) + "log: {format: json}\n");
  ASSERT_TRUE(gw.reload());
  bool json = false;
  EXPECT_TRUE(eventually([&] {
    for (const auto& l : lines_of(gw.stderr_text())) {
      auto j = Json::parse(l);
      json = json || (j && j->get("msg") && contains(j->get("msg")->string, "reloaded "));
    }
    return json;
  }, 5s)) << gw.stderr_text();
}

TEST(Operations, LogSectionIsValidated) {
  TempDir dir;
  const std::string path = dir.write("log.yaml", R"(services:
  svc: {instances: ["http://127.0.0.1:3001"]}
routes: [{path: /, service: svc}]
log:
  level: eror
  format: xml
  colour: true
)");
  auto r = run_gatehouse({"check", "-c", path});
  EXPECT_EQ(r.exit_code, 1);
  auto lines = lines_of(r.err);
  EXPECT_EQ(lines, (std::vector<std::string>{
                       path + ":5:10: log.level: unknown log level \"eror\"; did you mean \"error\"?",
                       path + ":6:11: log.format: unknown log format \"xml\"; expected one of: text, json",
                       path + ":7:3: log.colour: unknown key \"colour\"; expected one of: level, format",
                   }));
}

// ---- workers: auto ---------------------------------------------------------------------------

// Runs F with this thread's CPU affinity set to CPU 0 only (as `taskset -c 0` would), so that a
// process started by F inherits that mask.
template <class F>
void on_cpu0(F f) {
  cpu_set_t saved, one;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  f();
  sched_setaffinity(0, sizeof saved, &saved);
}

TEST(Operations, WorkersAutoCountsTheAffinityMask) {
  Upstream up("svc");
  Gateway::Options options;
  options.add_header = false;
  Gateway gw("listen: \"127.0.0.1:{PORT}\"\nworkers: auto\naccess_log: off\n" + one_service(up), options);
  bool started = false;
  on_cpu0([&] { started = gw.start(); });
  ASSERT_TRUE(started) << gw.error();
  EXPECT_TRUE(eventually([&] { return contains(gw.stderr_text(), "(1 worker)"); }, 5s)) << gw.stderr_text();
  EXPECT_EQ(http_get(gw.port(), "/").status, 200);
}

}  // namespace
}  // namespace gh::integ
