// Helpers for policies that read a credential from a request: a comparison that takes the same
// time wherever the bytes differ, and a query parameter decoded as a browser encodes it.
// (Options are read with config/reader.h, like every other part of the config.)
// Thread: pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace gh::policies {

// Constant-time comparison of two byte strings (the length may leak).
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;
// Value of query parameter `name` in `query` (without '?'), percent-decoded; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name);
// How many parameters of `query` are named `name` (names compared percent-decoded).
std::size_t query_param_count(std::string_view query, std::string_view name);
// `query` without its parameters named `name`; the others are kept as sent, in their order.
std::string remove_query_param(std::string_view query, std::string_view name);

// Cookies (RFC 6265 §5.4: `Cookie: a=1; b=2`). Names are compared exactly; a value in double
// quotes is returned without them.
// Calls fn(name, value, whole_pair) for each cookie of one Cookie field value.
template <class Fn>
void for_each_cookie(std::string_view field_value, Fn fn);
// `field_value` without its cookies named `name`; the others are kept, in order, joined by "; ".
std::string remove_cookie(std::string_view field_value, std::string_view name);

template <class Fn>
void for_each_cookie(std::string_view v, Fn fn) {
  while (!v.empty()) {
    const std::size_t semi = v.find(';');
    std::string_view pair = v.substr(0, semi);
    while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t')) pair.remove_prefix(1);
    while (!pair.empty() && (pair.back() == ' ' || pair.back() == '\t')) pair.remove_suffix(1);
    if (!pair.empty()) {
      const std::size_t eq = pair.find('=');
      std::string_view name = pair.substr(0, eq);
      std::string_view value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
      fn(name, value, pair);
    }
    if (semi == std::string_view::npos) break;
    v.remove_prefix(semi + 1);
  }
}

}  // namespace gh::policies
