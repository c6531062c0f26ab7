// Helpers for parsing a policy entry's options with diagnostics at their field paths.
// Thread: pure functions over parsed YAML.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace gh::policies {

// Reports every key of the entry that is not `type` or in `allowed`, with a suggestion.
void check_keys(const config::PolicyConfig& e, config::Diagnostics& d, const std::vector<std::string>& allowed);
// A string, or a list of strings; nullopt (and a diagnostic) otherwise. Absent: nullopt, no diagnostic.
std::optional<std::vector<std::string>> string_list(const config::PolicyConfig& e, config::Diagnostics& d,
                                                    const std::string& key);
std::optional<std::string> string_opt(const config::PolicyConfig& e, config::Diagnostics& d, const std::string& key);
std::optional<bool> bool_opt(const config::PolicyConfig& e, config::Diagnostics& d, const std::string& key);
// Reports a missing required option.
void require(const config::PolicyConfig& e, config::Diagnostics& d, const std::string& key, const std::string& what);

// Constant-time comparison of two byte strings (the length may leak).
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;
// Value of query parameter `name` in `query` (without '?'), percent-decoded; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

}  // namespace gh::policies
