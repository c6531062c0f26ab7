// Helpers for policies that read a credential from a request: a comparison that takes the same
// time wherever the bytes differ, and a query parameter decoded as a browser encodes it.
// (Options are read with config/reader.h, like every other part of the config.)
// Thread: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gh::policies {

// Constant-time comparison of two byte strings (the length may leak).
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;
// Value of query parameter `name` in `query` (without '?'), percent-decoded; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

}  // namespace gh::policies
