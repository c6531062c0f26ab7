// HS256 test tokens for `gatehouse token` and the demo banner.
// Thread: pure functions.
#pragma once

#include <chrono>
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

}  // namespace gh::app
