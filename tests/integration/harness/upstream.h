// Upstream: a loopback HTTP/1.1 service instance for integration tests. Listens on 127.0.0.1
// (port 0 on first start, the same port on a restart), one thread per connection, keep-alive,
// records every request it receives and answers through a replaceable handler.
// Thread: all public members are thread-safe; the handler runs on connection threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness/http.h"
#include "harness/net.h"

namespace gh::integ {

// What the handler answers.
struct Reply {
  int status = 200;
  std::string reason = "OK";
  Headers headers;
  std::string body;
  bool chunked = false;            // frame the body as chunks instead of Content-Length
  std::optional<std::string> raw;  // send exactly these bytes, then close
  Millis delay{0};                 // wait this long before answering (interrupted by stop())
  bool close = false;              // close the connection after answering (no Connection: close sent)
  bool upgrade = false;            // after this (101) head, echo every byte back until EOF
  std::string after_eof;           // with upgrade: sent once the peer's EOF arrives, then close
  bool reset = false;              // answer nothing: reset the connection (RST) after reading the request

  static Reply text(std::string body, int status = 200);
};

using Handler = std::function<Reply(const Request&)>;

class Upstream {
 public:
  // NAME is what the default handler answers with, e.g. "instance-1".
  explicit Upstream(std::string name = "instance");
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  const std::string& name() const { return name_; }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void set_handler(Handler h);
  // GET HEALTH_PATH ("/health") answers 200 when healthy, 500 otherwise; such probes are counted
  // in health_probes() and never recorded as requests.
  void set_healthy(bool healthy) { healthy_ = healthy; }
  int health_probes() const { return health_probes_; }

  // Complete requests (head and whole body) other than health probes, in arrival order.
  std::vector<Request> requests() const;
  std::size_t request_count() const;
  // Request heads received, whether or not their body arrived complete.
  int heads_seen() const { return heads_seen_; }
  int connections_accepted() const { return accepted_; }
  int connections_closed() const { return closed_; }
  // Requests whose head arrived but whose body was cut off (connection closed or bad chunking).
  int bodies_aborted() const { return bodies_aborted_; }
  // Waits until at least N requests are recorded.
  bool wait_requests(std::size_t n, Millis timeout = 5s) const;
  void clear();

  // Closes the listener and every connection: new connections are refused.
  void stop();
  // Listens again on the same port.
  void start();
  bool running() const { return running_; }

  // Handlers for common cases.
  static Handler echo_body();        // 200 with the request body as the response body
  Handler named() const;             // 200 with the instance name as the body (the default)

 private:
  void accept_loop();
  void serve(int fd);
  bool handle_one(int fd, std::string& buf);

  std::string name_;
  int port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> running_{false};
  std::atomic<bool> healthy_{true};
  std::atomic<int> health_probes_{0};
  std::atomic<int> heads_seen_{0};
  std::atomic<int> accepted_{0};
  std::atomic<int> closed_{0};
  std::atomic<int> bodies_aborted_{0};
  std::thread acceptor_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  Handler handler_;
  std::vector<Request> requests_;
  std::set<int> live_fds_;
  // Connection threads; finished ones are joined on the next accept, so a service that sees
  // thousands of short connections does not run out of threads.
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Worker> workers_;
};

}  // namespace gh::integ
