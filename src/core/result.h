// Result/Error: how the data plane reports an expected failure as a value.
// Thread: plain values, no shared state.
#pragma once

#include <boost/system/result.hpp>

#include <string>
#include <utility>

namespace gh {

// Closed set of failure kinds; stable names are used in logs and counters.
enum class ErrorCode {
  BadRequest,
  Timeout,
  ConnectRefused,
  ConnectFailed,
  UpstreamClosed,
  BadResponse,
  StoreUnavailable,
  NotFound,
  Internal,
  InvalidConfig,
  ClientGone,       // the client closed or reset its connection mid-request
  PayloadTooLarge,  // a request body over limits.max_body_bytes
  StreamRefused,    // an HTTP/2 instance refused the stream: not processed, safe to send again
};

// Who caused the failure: decides 4xx vs 5xx and which counter moves.
enum class Source { Downstream, Upstream, Internal, Config };

struct Error {
  ErrorCode code = ErrorCode::Internal;
  Source source = Source::Internal;
  bool retryable = false;  // safe to retry on another endpoint (no bytes sent upstream yet)
  std::string context;     // detail for logs; never sent to clients

  static Error upstream(ErrorCode c, std::string ctx, bool retryable = false) {
    return Error{c, Source::Upstream, retryable, std::move(ctx)};
  }
  static Error downstream(ErrorCode c, std::string ctx) {
    return Error{c, Source::Downstream, false, std::move(ctx)};
  }
  static Error internal(std::string ctx) {
    return Error{ErrorCode::Internal, Source::Internal, false, std::move(ctx)};
  }
};

const char* to_string(ErrorCode c) noexcept;

// Called by boost::system::result::value() on an error; throws std::runtime_error.
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

template <class T>
using Result = boost::system::result<T, Error>;

}  // namespace gh
