// Offline ends of an exchange, for `gatehouse route` and tests: a Downstream that holds the
// whole request in memory and records the response, and an Outbound that sends nothing and
// answers every request 200 with no body (a dry run). With them the real Exchange runs a
// request without a socket, so what `gatehouse route` says cannot drift from what the gateway
// does.
// Thread: one exchange at a time, on the thread running it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "clients/outbound.h"
#include "proxy/downstream.h"

namespace gh::proxy {

class MemoryDownstream : public Downstream {
 public:
  // `head` must outlive the object; `body` is the request body, handed out in one piece.
  MemoryDownstream(http::RequestHead& head, std::string peer_ip, std::string body = {})
      : head_(head), peer_ip_(std::move(peer_ip)), body_(std::move(body)) {}

  http::RequestHead& head() noexcept override { return head_; }
  std::string_view peer_ip() const noexcept override { return peer_ip_; }
  std::string_view scheme() const noexcept override { return "http"; }
  boost::asio::awaitable<Result<http::BodyPart>> read_body() override;
  bool body_replayable() const noexcept override { return true; }
  void rewind_body() noexcept override { body_read_ = false; }
  void send_head(const http::ResponseHead& head, bool close) override;
  boost::asio::awaitable<Result<void>> send_body(std::string_view data, bool last) override;
  bool response_started() const noexcept override { return started_; }
  void abort() noexcept override { aborted_ = true; }
  boost::asio::awaitable<void> tunnel(clients::Outbound&, std::chrono::milliseconds, std::uint64_t&,
                                      std::uint64_t&) override;
  void arm_after(std::chrono::milliseconds) noexcept override {}
  bool timed_out() const noexcept override { return false; }
  bool draining() const noexcept override { return false; }

  // What was answered.
  int status() const noexcept { return status_; }
  const std::vector<std::pair<std::string, std::string>>& fields() const noexcept { return fields_; }
  const std::string& body() const noexcept { return response_; }
  bool complete() const noexcept { return complete_; }
  bool aborted() const noexcept { return aborted_; }
  bool closes() const noexcept { return close_; }

 private:
  http::RequestHead& head_;
  std::string peer_ip_;
  std::string body_;
  bool body_read_ = false;
  bool started_ = false, complete_ = false, aborted_ = false, close_ = false;
  int status_ = 0;
  std::vector<std::pair<std::string, std::string>> fields_;
  std::string response_;
};

class DryRunOutbound final : public clients::Outbound {
 public:
  boost::asio::awaitable<Result<void>> open(const boost::asio::ip::tcp::endpoint&, const std::string&,
                                            const clients::TlsTarget*, bool, bool, bool) override;
  bool reused() const noexcept override { return false; }
  void send_head(const http::OutgoingRequest& req) override;
  boost::asio::awaitable<Result<void>> send_body(std::string_view data, bool last) override;
  boost::asio::awaitable<Result<http::ResponseHead*>> read_head(bool head_request) override;
  boost::asio::awaitable<Result<http::BodyPart>> read_body() override;
  void finish(bool) override {}
  void close() noexcept override {}
  void cancel() noexcept override {}
  std::string_view take_buffered() noexcept override { return {}; }
  net::Stream* tunnel_stream() noexcept override { return nullptr; }

  // The request head as it would have been written (HTTP/1.1), and the body bytes.
  const std::string& request() const noexcept { return request_; }
  const std::string& request_body() const noexcept { return body_; }

 private:
  std::string request_, body_;
  http::ResponseHead response_;
};

}  // namespace gh::proxy
