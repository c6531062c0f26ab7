// Parking: a keep-alive connection idle for about a second (a tenth of one when its worker holds
// many connections) leaves Asio's reactor for the worker's own epoll set, and comes back when its client sends, closes, or a deadline or drain
// ends it. What each epoll instance of the process watches is read from /proc (its fdinfo has
// one "tfd:" line per watched descriptor), so the tests see the move itself, not only that
// requests still work.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

// Watched descriptors, by epoll descriptor, of process PID.
std::map<int, int> epoll_watch_counts(pid_t pid) {
  std::map<int, int> out;
  const std::string proc = "/proc/" + std::to_string(pid);
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(proc + "/fd", ec)) {
    std::error_code link_ec;
    auto target = std::filesystem::read_symlink(e.path(), link_ec);
    if (link_ec || target.string() != "anon_inode:[eventpoll]") continue;
    const int fd = std::stoi(e.path().filename().string());
    std::ifstream info(proc + "/fdinfo/" + std::to_string(fd));
    int n = 0;
    for (std::string line; std::getline(info, line);)
      if (line.rfind("tfd:", 0) == 0) ++n;
    out[fd] = n;
  }
  return out;
}

std::string describe(const std::map<int, int>& counts) {
  std::string s;
  for (auto [fd, n] : counts) s += "epoll fd " + std::to_string(fd) + ": " + std::to_string(n) + " watched\n";
  return s;
}

int sockets_of(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code link_ec;
    if (std::filesystem::read_symlink(e.path(), link_ec).string().rfind("socket:", 0) == 0) ++n;
  }
  return n;
}

class Parking : public ::testing::Test {
 protected:
  void start(const std::string& limits = "") {
    Gateway::Options options;
    options.workers = 1;
    gw_ = std::make_unique<Gateway>(fill(R"(
{LIMITS}
services:
  svc: {instances: ["{U}"]}
routes:
  - path: /
    service: svc
)",
                                         {{"U", up_.url()}, {"LIMITS", limits}}),
                                    options);
    GH_START(*gw_);
  }
  // Opens N connections and has each carry one request.
  void open(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      conns_.push_back(std::make_unique<Conn>(gw_->port()));
      ASSERT_TRUE(conns_.back()->send(make_request("GET", "/first/" + std::to_string(i))));
      auto r = conns_.back()->read_response();
      ASSERT_TRUE(r && r->status == 200) << "request " << i;
    }
  }
  // The epoll descriptor that comes to watch exactly N descriptors and watched none before:
  // the worker's parking set. -1 if none does within TIMEOUT.
  int parking_set_with(int n, const std::map<int, int>& before, Millis timeout = 4s) {
    int found = -1;
    eventually([&] {
      for (auto [fd, count] : epoll_watch_counts(gw_->pid()))
        if (count == n && before.count(fd) && before.at(fd) == 0) found = fd;
      return found >= 0;
    }, timeout);
    return found;
  }

  Upstream up_{"svc"};
  std::unique_ptr<Gateway> gw_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

TEST_F(Parking, IdleConnectionsAreParkedAndServedWhenTheySend) {
  start();
  const auto before = epoll_watch_counts(gw_->pid());
  open(20);
  const int set = parking_set_with(20, before);
  ASSERT_GE(set, 0) << "no epoll set came to hold the 20 idle connections:\n" << describe(epoll_watch_counts(gw_->pid()));
  for (std::size_t i = 0; i < conns_.size(); ++i) {
    ASSERT_TRUE(conns_[i]->send(make_request("GET", "/again/" + std::to_string(i))));
    auto r = conns_[i]->read_response();
    ASSERT_TRUE(r) << "parked connection " << i << " not answered";
    EXPECT_EQ(r->status, 200);
  }
  // Each left the set before its request was served (and is back in Asio's reactor).
  EXPECT_EQ(epoll_watch_counts(gw_->pid())[set], 0) << describe(epoll_watch_counts(gw_->pid()));
  // Idle again: parked again, and served again.
  ASSERT_EQ(parking_set_with(20, {{set, 0}}), set);
  ASSERT_TRUE(conns_[7]->send(make_request("POST", "/third", {}, "body")));
  auto r = conns_[7]->read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(up_.request_count(), 41u);
}

// A worker holding many connections (over 256) parks those idle for a tenth of a second, not a
// second: a burst of thousands of connections then does not hold
// Asio's per-connection state all at once.
TEST_F(Parking, ManyIdleConnectionsAreParkedSooner) {
  start();
  const auto before = epoll_watch_counts(gw_->pid());
  constexpr std::size_t kMany = 300;
  // All requests first, then all answers: the connections go idle together.
  for (std::size_t i = 0; i < kMany; ++i) {
    conns_.push_back(std::make_unique<Conn>(gw_->port()));
    ASSERT_TRUE(conns_.back()->send(make_request("GET", "/many/" + std::to_string(i))));
  }
  for (std::size_t i = 0; i < kMany; ++i) {
    auto r = conns_[i]->read_response();
    ASSERT_TRUE(r && r->status == 200) << "request " << i;
  }
  const auto idle_since = Clock::now();
  const int set = parking_set_with(kMany, before, 3s);
  const auto parked_after = Clock::now() - idle_since;
  ASSERT_GE(set, 0) << describe(epoll_watch_counts(gw_->pid()));
  // A second's idleness would be 900 ms at the least (ten sweeps).
  EXPECT_LT(parked_after, 700ms) << "took " << std::chrono::duration_cast<Millis>(parked_after).count() << " ms";
  for (std::size_t i = 0; i < kMany; i += 50) {
    ASSERT_TRUE(conns_[i]->send(make_request("GET", "/again/" + std::to_string(i))));
    auto r = conns_[i]->read_response();
    ASSERT_TRUE(r) << "parked connection " << i << " not answered";
    EXPECT_EQ(r->status, 200);
  }
}

TEST_F(Parking, ParkedConnectionsTheirClientsCloseAreForgotten) {
  start();
  const auto before = epoll_watch_counts(gw_->pid());
  const int sockets_before = sockets_of(gw_->pid());
  open(10);
  const int set = parking_set_with(10, before);
  ASSERT_GE(set, 0) << describe(epoll_watch_counts(gw_->pid()));
  conns_.clear();  // the clients close
  EXPECT_TRUE(eventually([&] { return epoll_watch_counts(gw_->pid())[set] == 0; }, 3s))
      << describe(epoll_watch_counts(gw_->pid()));
  // Their sockets are closed too (the upstream pool may keep one connection to the service).
  EXPECT_TRUE(eventually([&] { return sockets_of(gw_->pid()) <= sockets_before + 1; }, 3s))
      << sockets_of(gw_->pid()) << " sockets, " << sockets_before << " before";
  EXPECT_EQ(http_get(gw_->port(), "/still").status, 200);
}

TEST_F(Parking, IdleTimeoutClosesAParkedConnection) {
  start("limits: {idle_timeout: 2500ms}");
  const auto before = epoll_watch_counts(gw_->pid());
  open(1);
  const auto t0 = Clock::now();
  const int set = parking_set_with(1, before, 2s);
  ASSERT_GE(set, 0) << describe(epoll_watch_counts(gw_->pid()));
  EXPECT_TRUE(conns_[0]->wait_closed(5s)) << "parked connection outlived its idle timeout";
  EXPECT_GE(Clock::now() - t0, 2s);
  EXPECT_TRUE(eventually([&] { return epoll_watch_counts(gw_->pid())[set] == 0; }, 2s));
}

TEST_F(Parking, DrainClosesParkedConnectionsAndExits) {
  start();
  const auto before = epoll_watch_counts(gw_->pid());
  open(5);
  ASSERT_GE(parking_set_with(5, before), 0) << describe(epoll_watch_counts(gw_->pid()));
  const auto t0 = Clock::now();
  auto code = gw_->stop(10s);
  ASSERT_TRUE(code.has_value()) << "had to be killed with parked connections open";
  EXPECT_EQ(*code, 0) << gw_->diagnostics();
  EXPECT_LT(Clock::now() - t0, 5s);
  for (auto& c : conns_) EXPECT_TRUE(c->wait_closed(2s));
}

}  // namespace
}  // namespace gh::integ
