// `gatehouse demo` (docs/operations.md): the real binary's demo, run as a user runs it, follows
// the seed. /api/users and /api/orders need a token, /api/admin the admin role; the tokens are
// the ones the demo prints in its curl commands, read back from its output.
#include <gtest/gtest.h>

#include <cstdlib>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <regex>
#include <sstream>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

// `gatehouse demo --port PORT` as a child process, its stdout and stderr in files. Stopped with
// SIGTERM (SIGKILL past a deadline) when the test ends; it dies with the test process.
class Demo {
 public:
  explicit Demo(int port) : port_(port) {
    const std::string out = dir_.path() + "/stdout", err = dir_.path() + "/stderr";
    const std::string binary = gatehouse_binary(), port_text = std::to_string(port);
    std::vector<std::string> args = {binary, "demo", "--port", port_text};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(out_fd, 1);
      ::dup2(err_fd, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out_fd);
    ::close(err_fd);
  }

  ~Demo() {
    if (!status_) stop();
  }

  Demo(const Demo&) = delete;
  Demo& operator=(const Demo&) = delete;

  // The exit code once the process has exited (128 + signal when killed by one).
  std::optional<int> exited() {
    if (status_ || pid_ <= 0) return status_;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return status_;
  }

  // SIGTERM, then the exit code; nullopt when it had to be killed after TIMEOUT.
  std::optional<int> stop(Millis timeout = 10s) {
    if (pid_ <= 0) return std::nullopt;
    if (!exited()) ::kill(pid_, SIGTERM);
    if (eventually([&] { return exited().has_value(); }, timeout)) return status_;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    status_ = -1;
    return std::nullopt;
  }

  std::string out() const { return read_file(dir_.path() + "/stdout"); }
  std::string err() const { return read_file(dir_.path() + "/stderr"); }
  int port() const { return port_; }

 private:
  TempDir dir_;
  int port_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// The token of each printed `curl ... -H 'Authorization: Bearer TOKEN' URL` command, by the
// URL's path (several commands may name one path with different tokens).
std::multimap<std::string, std::string> printed_tokens(const std::string& out, int port) {
  std::multimap<std::string, std::string> tokens;
  const std::regex command("curl -i -H 'Authorization: Bearer ([A-Za-z0-9_.-]+)' http://127\\.0\\.0\\.1:" +
                           std::to_string(port) + "(/[^ ]*)");
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_search(line, m, command)) tokens.emplace(m[2], m[1]);
  }
  return tokens;
}

std::vector<std::string> tokens_for(const std::multimap<std::string, std::string>& tokens, const std::string& path) {
  std::vector<std::string> out;
  for (auto [it, end] = tokens.equal_range(path); it != end; ++it) out.push_back(it->second);
  return out;
}

Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

TEST(Demo, FollowsTheSeedWithThePrintedTokens) {
  Demo demo(free_port());
  // Ready once it has printed its curl commands (after its listener is open).
  const bool ready = eventually([&] { return demo.out().find("Stop with Ctrl-C") != std::string::npos; }, 15s);
  ASSERT_TRUE(ready) << "the demo printed no commands; exit " << demo.exited().value_or(-1) << "\nstdout:\n"
                     << demo.out() << "\nstderr:\n"
                     << demo.err();
  const std::string out = demo.out();
  const auto tokens = printed_tokens(out, demo.port());

  // One user token for /api/users and /api/orders; on /api/admin the user token, then the admin one.
  const auto users = tokens_for(tokens, "/api/users"), orders = tokens_for(tokens, "/api/orders"),
             admin = tokens_for(tokens, "/api/admin");
  ASSERT_EQ(users.size(), 1u) << out;
  ASSERT_EQ(orders, users) << out;
  ASSERT_EQ(admin.size(), 2u) << out;
  const std::string& user_token = users[0];
  EXPECT_EQ(admin[0], user_token) << out;
  const std::string& admin_token = admin[1];
  ASSERT_NE(admin_token, user_token) << out;

  // /api/users needs a token, as the seed's does.
  auto none = http_get(demo.port(), "/api/users");
  EXPECT_TRUE(IsJsonError(none, 401, "Access token required"));
  EXPECT_TRUE(IsJsonError(http_get(demo.port(), "/api/orders"), 401, "Access token required"));

  auto users_ok = http_get(demo.port(), "/api/users", bearer(user_token));
  EXPECT_EQ(users_ok.status, 200) << users_ok.describe();
  EXPECT_NE(users_ok.body.find("\"service\":\"user\""), std::string::npos) << users_ok.body;
  EXPECT_NE(users_ok.body.find("\"user_role\":\"user\""), std::string::npos) << users_ok.body;
  // users-per-ip: 50 per 15 minutes, the tighter of the two limits on the route.
  EXPECT_EQ(users_ok.headers.value_or("RateLimit-Policy", ""), "50;w=900") << users_ok.describe();

  auto orders_ok = http_get(demo.port(), "/api/orders", bearer(user_token));
  EXPECT_EQ(orders_ok.status, 200) << orders_ok.describe();
  EXPECT_NE(orders_ok.body.find("\"service\":\"order\""), std::string::npos) << orders_ok.body;

  EXPECT_TRUE(IsJsonError(http_get(demo.port(), "/api/admin", bearer(user_token)), 403, "Insufficient permissions"));
  auto admin_ok = http_get(demo.port(), "/api/admin", bearer(admin_token));
  EXPECT_EQ(admin_ok.status, 200) << admin_ok.describe();
  EXPECT_NE(admin_ok.body.find("\"user_role\":\"admin\""), std::string::npos) << admin_ok.body;

  // The open route and the health endpoint, as printed.
  EXPECT_EQ(http_get(demo.port(), "/api/products").status, 200);
  EXPECT_EQ(http_get(demo.port(), "/health").status, 200);

  // The printed admin API and token: the services with the demo's four instances, the dashboard.
  const std::string open = "open http://127.0.0.1:";
  auto at = out.find(open);
  ASSERT_NE(at, std::string::npos) << out;
  const int admin_port = std::atoi(out.c_str() + at + open.size());
  const std::string token_word = "enter the admin token ";
  auto t = out.find(token_word, at);
  ASSERT_NE(t, std::string::npos) << out;
  const std::string api_token = out.substr(t + token_word.size(), out.find('\n', t) - t - token_word.size());
  Response services = http_get(admin_port, "/services", bearer(api_token));
  EXPECT_EQ(services.status, 200) << services.describe();
  for (const char* name : {"\"user\"", "\"product\"", "\"order\""})
    EXPECT_NE(services.body.find(name), std::string::npos) << services.body;
  EXPECT_EQ(http_get(admin_port, "/services").status, 401);
  EXPECT_EQ(http_get(admin_port, "/").status, 200);

  EXPECT_EQ(demo.stop(), 0) << demo.err();
}

TEST(Demo, APortInUseIsAnErrorNotAHang) {
  // Something else listens on the port: the demo says so and exits 1.
  const int port = free_port();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  Demo demo(port);
  const bool exited = eventually([&] { return demo.exited().has_value(); }, 15s);
  ::close(fd);
  ASSERT_TRUE(exited) << "the demo did not exit with its port taken\n" << demo.out() << demo.err();
  EXPECT_EQ(demo.exited(), 1) << demo.err();
  EXPECT_NE(demo.err().find(std::to_string(port)), std::string::npos) << demo.err();
}

}  // namespace
}  // namespace gh::integ
