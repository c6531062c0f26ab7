#include "core/result.h"

#include <stdexcept>

namespace gh {

const char* to_string(ErrorCode c) noexcept {
  switch (c) {
    case ErrorCode::BadRequest: return "bad_request";
    case ErrorCode::Timeout: return "timeout";
    case ErrorCode::ConnectRefused: return "connect_refused";
    case ErrorCode::ConnectFailed: return "connect_failed";
    case ErrorCode::UpstreamClosed: return "upstream_closed";
    case ErrorCode::BadResponse: return "bad_response";
    case ErrorCode::StoreUnavailable: return "store_unavailable";
    case ErrorCode::NotFound: return "not_found";
    case ErrorCode::Internal: return "internal";
    case ErrorCode::InvalidConfig: return "invalid_config";
    case ErrorCode::ClientGone: return "client_gone";
    case ErrorCode::PayloadTooLarge: return "payload_too_large";
    case ErrorCode::StreamRefused: return "stream_refused";
  }
  return "unknown";
}

void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throw std::runtime_error(std::string(to_string(e.code)) + ": " + e.context);
}

}  // namespace gh
