#include "clients/http1/pool.h"

#include <algorithm>

namespace gh::clients::http1 {

bool ConnectionPool::take(const std::string& key, std::int64_t now_ms, boost::asio::ip::tcp::socket& out) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return false;
  auto& list = it->second;
  while (!list.empty()) {
    Idle idle = std::move(list.back());
    list.pop_back();
    if (now_ms - idle.since_ms < kPoolIdleMillis && idle.socket.is_open()) {
      out = std::move(idle.socket);
      return true;
    }
    boost::system::error_code ignore;
    idle.socket.close(ignore);
  }
  return false;
}

void ConnectionPool::put(const std::string& key, boost::asio::ip::tcp::socket&& s, std::int64_t now_ms) {
  auto& list = idle_[key];
  if (list.size() >= kPoolMaxIdlePerEndpoint) {
    boost::system::error_code ignore;
    list.front().socket.close(ignore);
    list.erase(list.begin());
  }
  list.push_back(Idle{std::move(s), now_ms});
}

void ConnectionPool::sweep(std::int64_t now_ms) {
  for (auto& [key, list] : idle_) {
    auto keep = std::find_if(list.begin(), list.end(),
                             [&](const Idle& i) { return now_ms - i.since_ms < kPoolIdleMillis; });
    for (auto it = list.begin(); it != keep; ++it) {
      boost::system::error_code ignore;
      it->socket.close(ignore);
    }
    list.erase(list.begin(), keep);
  }
}

void ConnectionPool::clear() {
  for (auto& [key, list] : idle_)
    for (auto& i : list) {
      boost::system::error_code ignore;
      i.socket.close(ignore);
    }
  idle_.clear();
}

std::size_t ConnectionPool::idle_count() const {
  std::size_t n = 0;
  for (const auto& [key, list] : idle_) n += list.size();
  return n;
}

}  // namespace gh::clients::http1
