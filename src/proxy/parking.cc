#include "proxy/parking.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <array>

#include "core/log.h"

namespace gh::proxy {

Parking::Parking(const boost::asio::any_io_executor& ex) : set_(ex) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) {
    log::warn("idle connections stay in the event loop: epoll_create1 failed");
    return;
  }
  boost::system::error_code ec;
  set_.assign(epfd_, ec);
  if (ec) {
    ::close(epfd_);
    epfd_ = -1;
  }
}

Parking::~Parking() {
  boost::system::error_code ignore;
  set_.close(ignore);  // closes epfd_
}

bool Parking::park(int fd, Client* client) noexcept {
  if (epfd_ < 0) return false;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.ptr = client;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) return false;
  ++parked_;
  wait();
  return true;
}

void Parking::unpark(int fd) noexcept {
  if (::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr) == 0) --parked_;
}

void Parking::wait() {
  if (waiting_ || parked_ == 0) return;
  waiting_ = true;
  set_.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
    waiting_ = false;
    if (!ec) on_ready();
  });
}

void Parking::on_ready() {
  std::array<epoll_event, 64> events;
  const int n = ::epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 0);
  // A client takes its descriptor out of the set first thing, and acts only on itself, so no
  // call back ends a client whose event is later in this batch.
  for (int i = 0; i < n; ++i) {
    auto* client = static_cast<Client*>(events[i].data.ptr);
    client->on_unparked();
  }
  wait();
}

}  // namespace gh::proxy
