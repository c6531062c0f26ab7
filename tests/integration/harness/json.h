// Integration harness, JSON: a small strict parser for the gateway's JSON bodies (error replies,
// /health, access log lines), so tests compare values rather than spacing.
// Thread: plain data.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gh::integ {

struct Json {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;

  // The member KEY of an object, or nullptr.
  const Json* get(std::string_view key) const;
  bool is_string(std::string_view s) const { return type == Type::String && string == s; }
  bool is_number(double n) const { return type == Type::Number && number == n; }

  // Parses the whole of TEXT (surrounding whitespace allowed); nullopt when it is not JSON.
  static std::optional<Json> parse(std::string_view text);
};

}  // namespace gh::integ
