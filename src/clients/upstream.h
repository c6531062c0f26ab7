// Upstream: the Outbound a request uses, speaking HTTP/1.1 or HTTP/2 as its endpoint says
// (the `http2` of open()): it forwards every operation to the one it opened with, without a
// coroutine frame of its own. Both are kept, so a warm request slot allocates nothing whichever
// it speaks.
// Thread: owned by one request on one worker.
#pragma once

#include "clients/http1/connection.h"
#include "clients/http2/client.h"

namespace gh::clients {

class Upstream final : public Outbound {
 public:
  Upstream(const boost::asio::any_io_executor& ex, http1::ConnectionPool& pool1, http2::Pool& pool2,
           BufferPool& buffers, const core::Clock& clock)
      : h1_(ex, pool1, buffers, clock), h2_(ex, pool2) {}

  void set_parse_limits(const http::ParseLimits* limits) noexcept { h1_.set_parse_limits(limits); }

  boost::asio::awaitable<Result<void>> open(const boost::asio::ip::tcp::endpoint& address, const std::string& pool_key,
                                            const TlsTarget* tls, bool http2, bool pooled, bool check_idle) override {
    select(http2);
    return cur_->open(address, pool_key, tls, http2, pooled, check_idle);
  }
  bool open_pooled_now(const std::string& pool_key, bool http2, bool check_idle) noexcept override {
    select(http2);
    return cur_->open_pooled_now(pool_key, http2, check_idle);
  }
  bool reused() const noexcept override { return cur_->reused(); }
  void send_head(const http::OutgoingRequest& req) override { cur_->send_head(req); }
  boost::asio::awaitable<Result<void>> send_body(std::string_view data, bool last) override {
    return cur_->send_body(data, last);
  }
  boost::asio::awaitable<Result<http::ResponseHead*>> read_head(bool head_request) override {
    return cur_->read_head(head_request);
  }
  bool body_now(http::BodyPart& out) noexcept override { return cur_->body_now(out); }
  boost::asio::awaitable<Result<http::BodyPart>> read_body() override { return cur_->read_body(); }
  const http::Fields* trailers() const noexcept override { return cur_->trailers(); }
  void finish(bool complete) override { cur_->finish(complete); }
  void close() noexcept override { cur_->close(); }
  void cancel() noexcept override { cur_->cancel(); }
  std::string_view take_buffered() noexcept override { return cur_->take_buffered(); }
  net::Stream* tunnel_stream() noexcept override { return cur_->tunnel_stream(); }

 private:
  void select(bool http2) noexcept {
    Outbound* next = http2 ? static_cast<Outbound*>(&h2_) : &h1_;
    if (next != cur_) cur_->close();  // what the other one held for an earlier request goes
    cur_ = next;
  }

  http1::Connection h1_;
  http2::Call h2_;
  Outbound* cur_ = &h1_;
};

}  // namespace gh::clients
