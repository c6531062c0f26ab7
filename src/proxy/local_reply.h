// Rendering of gateway-made responses: status texts and the standard JSON error body (SPEC §3).
// Thread: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace gh::proxy {

// "OK", "Not Found"... for the status line.
std::string_view reason_phrase(int status) noexcept;
// The standard "error" text of a gateway-made response: "No route", "Bad gateway"...
std::string_view error_message(int status) noexcept;
// {"error":"<message>"} or, with a service, {"error":"...","service":"<name>"}.
std::string error_body(std::string_view message, std::string_view service = {});

// gRPC (SPEC §7): whether a request's content-type is application/grpc (also +proto, ;...).
bool is_grpc(std::string_view content_type) noexcept;
// The gRPC status code a gateway-made answer of `status` becomes: 404 12 UNIMPLEMENTED, 401 16
// UNAUTHENTICATED, 403 7 PERMISSION_DENIED, 413 and 429 8 RESOURCE_EXHAUSTED, 502 and 503 14
// UNAVAILABLE, 408 and 504 4 DEADLINE_EXCEEDED, 400, 414, 431 and 500 13 INTERNAL, others 2 UNKNOWN.
int grpc_status(int status) noexcept;
// `text` percent-encoded as grpc-message wants it (bytes outside 0x20–0x7e, and '%').
std::string grpc_message(std::string_view text);
// A grpc-timeout value ("100m", "5S": at most 8 digits and one of H M S m u n) in milliseconds,
// rounded up; -1 when malformed.
long long grpc_timeout_ms(std::string_view value) noexcept;

}  // namespace gh::proxy
