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

}  // namespace gh::proxy
