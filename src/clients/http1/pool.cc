#include "clients/http1/pool.h"

#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>

#include <algorithm>

namespace gh::clients::http1 {

const net::EventLoop& ConnectionPool::event_loop(net::Stream& s) {
  if (!loop_) loop_.emplace(boost::asio::query(s.get_executor(), boost::asio::execution::context));
  return *loop_;
}

bool ConnectionPool::take(const std::string& key, std::int64_t now_ms, net::Stream& out) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return false;
  auto& list = it->second;
  while (!list.empty()) {
    Idle& idle = list.back();
    const bool fresh = now_ms - idle.since_ms < kPoolIdleMillis && idle.stream.is_open();
    if (fresh) out = std::move(idle.stream);
    else idle.stream.close();
    list.pop_back();
    if (fresh) return true;
  }
  return false;
}

void ConnectionPool::put(const std::string& key, net::Stream&& s, std::int64_t now_ms) {
  auto& list = idle_[key];
  if (list.size() >= kPoolMaxIdlePerEndpoint) {
    list.front().stream.close();
    list.erase(list.begin());
  }
  s.start_idle_watch(event_loop(s));
  list.emplace_back(std::move(s), now_ms);
}

void ConnectionPool::sweep(std::int64_t now_ms) {
  for (auto& [key, list] : idle_) {
    auto keep = std::find_if(list.begin(), list.end(),
                             [&](const Idle& i) { return now_ms - i.since_ms < kPoolIdleMillis; });
    for (auto it = list.begin(); it != keep; ++it) {
      it->stream.close();
    }
    list.erase(list.begin(), keep);
  }
}

void ConnectionPool::clear() {
  for (auto& [key, list] : idle_)
    for (auto& i : list) i.stream.close();
  idle_.clear();
}

std::size_t ConnectionPool::idle_count() const {
  std::size_t n = 0;
  for (const auto& [key, list] : idle_) n += list.size();
  return n;
}

}  // namespace gh::clients::http1
