// HS256 test tokens for `gatehouse token` and the demo banner.
// Thread: pure functions.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gh::app {

struct TokenRequest {
  std::string secret;
  std::string sub;
  std::string role;
  std::chrono::seconds ttl{3600};
  std::vector<std::pair<std::string, std::string>> claims;  // extra string claims (numbers stay numbers)
};

// A compact JWS: base64url(header).base64url(payload).base64url(HMAC-SHA256).
std::string mint_hs256(const TokenRequest& req);

std::string base64url(std::string_view bytes);

// The secret in the file at PATH, without its trailing newline (`\n` or `\r\n`); nullopt and
// ERROR when the file cannot be read or holds nothing.
std::optional<std::string> read_secret_file(const std::string& path, std::string& error);

}  // namespace gh::app
