#include "proxy/offline.h"

namespace gh::proxy {

boost::asio::awaitable<Result<http::BodyPart>> MemoryDownstream::read_body() {
  if (head_.body == http::BodyKind::None || body_read_) co_return http::BodyPart{{}, true};
  body_read_ = true;
  co_return http::BodyPart{body_, true};
}

void MemoryDownstream::send_head(const http::ResponseHead& head, bool close) {
  started_ = true;
  close_ = close;
  status_ = head.status;
  fields_.clear();
  for (const auto& f : head.fields) fields_.emplace_back(f.name, f.value);
  response_.clear();
}

boost::asio::awaitable<Result<void>> MemoryDownstream::send_body(std::string_view data, bool last) {
  if (head_.method != "HEAD") response_.append(data);
  if (last) complete_ = true;
  co_return Result<void>{};
}

boost::asio::awaitable<void> MemoryDownstream::tunnel(clients::Outbound&, std::chrono::milliseconds, std::uint64_t&,
                                                      std::uint64_t&) {
  co_return;
}

boost::asio::awaitable<Result<void>> DryRunOutbound::open(const boost::asio::ip::tcp::endpoint&, const std::string&,
                                                          const clients::TlsTarget*, bool, bool, bool) {
  request_.clear();
  body_.clear();
  co_return Result<void>{};
}

void DryRunOutbound::send_head(const http::OutgoingRequest& req) { http::write_request_head(request_, req); }

boost::asio::awaitable<Result<void>> DryRunOutbound::send_body(std::string_view data, bool) {
  body_.append(data);
  co_return Result<void>{};
}

boost::asio::awaitable<Result<http::ResponseHead*>> DryRunOutbound::read_head(bool) {
  response_.reset();
  response_.status = 200;
  response_.reason = "OK";
  response_.body = http::BodyKind::None;
  co_return &response_;
}

boost::asio::awaitable<Result<http::BodyPart>> DryRunOutbound::read_body() { co_return http::BodyPart{{}, true}; }

}  // namespace gh::proxy
