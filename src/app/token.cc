#include "app/token.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "core/clock.h"
#include "proxy/access_log.h"

namespace gh::app {

std::string base64url(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
  } else if (i + 2 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
  }
  return out;
}

namespace {
bool is_number(std::string_view s) {
  if (s.empty()) return false;
  long long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc{} && p == s.data() + s.size();
}
}  // namespace

std::string mint_hs256(const TokenRequest& req) {
  using namespace std::chrono;
  const long long now = duration_cast<seconds>(core::Clock::real().wall_now().time_since_epoch()).count();
  std::string payload = "{";
  auto add = [&](std::string_view k, std::string_view v, bool raw) {
    if (payload.size() > 1) payload += ",";
    proxy::append_json_string(payload, k);
    payload += ":";
    if (raw) payload += v;
    else proxy::append_json_string(payload, v);
  };
  if (!req.sub.empty()) add("sub", req.sub, false);
  if (!req.role.empty()) add("role", req.role, false);
  for (const auto& [k, v] : req.claims) add(k, v, is_number(v) || v == "true" || v == "false");
  add("iat", std::to_string(now), true);
  add("exp", std::to_string(now + req.ttl.count()), true);
  payload += "}";
  std::string signing_input = base64url(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), req.secret.data(), static_cast<int>(req.secret.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac, &mac_len);
  return signing_input + "." + base64url(std::string_view(reinterpret_cast<const char*>(mac), mac_len));
}

std::optional<std::string> read_secret_file(const std::string& path, std::string& error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
    return std::nullopt;
  }
  std::string secret;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {  // EISDIR for a directory
      error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    secret.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  if (secret.empty()) {
    error = fmt::format("{} is empty", path);
    return std::nullopt;
  }
  return secret;
}

}  // namespace gh::app
