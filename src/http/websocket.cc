#include "http/websocket.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <array>

#include "core/strings.h"

namespace gh::http {

namespace {
constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool is_base64_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}
}  // namespace

bool is_websocket_upgrade(std::string_view v) noexcept { return iequals(trim_ows(v), "websocket"); }

bool valid_websocket_key(std::string_view key) noexcept {
  key = trim_ows(key);
  if (key.size() != 24 || !key.ends_with("==")) return false;
  for (std::size_t i = 0; i < 22; ++i)
    if (!is_base64_char(key[i])) return false;
  // The 22nd character carries 2 bits of the 16th byte and 4 zero bits.
  return std::string_view("AQgw").find(key[21]) != std::string_view::npos;
}

std::string websocket_accept(std::string_view key) {
  key = trim_ows(key);
  std::string input(key);
  input.append(kGuid);
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest.data());
  std::array<unsigned char, 4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1> out{};
  int n = EVP_EncodeBlock(out.data(), digest.data(), static_cast<int>(digest.size()));
  return std::string(reinterpret_cast<const char*>(out.data()), static_cast<std::size_t>(n));
}

}  // namespace gh::http
