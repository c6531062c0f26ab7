// Parking: keep-alive connections that stay idle wait for their next request in an epoll set
// of the worker's own, outside Asio's reactor. A parked connection holds no reactor state (its
// descriptor state goes back to Asio's pool) and no pending operation, only its session; the
// set is one descriptor in Asio's reactor, with one wait pending for all of them.
// Parking costs four epoll_ctl calls (out of Asio's set, into this one, and back), so only
// connections idle for a while are parked (Http1Session, kParkAfterTicks): a client that sends
// its next request soon never pays them.
// Thread: the worker's.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <cstddef>

namespace gh::proxy {

class Parking {
 public:
  class Client {
   public:
    // The parked descriptor is readable or hung up; it is out of the set already.
    virtual void on_unparked() = 0;

   protected:
    ~Client() = default;
  };

  explicit Parking(const boost::asio::any_io_executor& ex);
  ~Parking();
  Parking(const Parking&) = delete;
  Parking& operator=(const Parking&) = delete;

  // Adds fd to the set; false when it cannot be (the caller keeps the connection in Asio's).
  bool park(int fd, Client* client) noexcept;
  // Takes fd out of the set without a call back (the connection closes or wakes otherwise).
  void unpark(int fd) noexcept;
  std::size_t parked() const noexcept { return parked_; }

 private:
  void wait();
  void on_ready();

  int epfd_ = -1;
  boost::asio::posix::stream_descriptor set_;
  bool waiting_ = false;
  std::size_t parked_ = 0;
};

}  // namespace gh::proxy
