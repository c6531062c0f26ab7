// Url: the one parser of the URLs gatehouse reads (service instances, redis, jwks_url), over
// Boost.URL (RFC 3986). User, password and host are percent-decoded, so a password may hold
// any byte written as %XX (`redis://:p%2Fss@host` is the password "p/ss").
// Thread: pure functions over values.
// Failure: parse() returns nullopt and says why in words a config error can quote.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gh {

struct Url {
  std::string scheme;                 // lower case, e.g. "http"
  bool has_userinfo = false;          // an '@' in the authority
  std::string user;                   // decoded
  std::optional<std::string> password;  // decoded; nullopt when no ':' in the userinfo
  std::string host;                   // decoded; an IPv6 literal without its brackets
  bool ipv6 = false;
  std::optional<std::uint16_t> port;  // when written
  std::string path;                   // as written (percent-encoded), "" when none
  std::optional<std::string> query;   // as written, without '?'
  bool has_fragment = false;

  // host[:port] as a Host field carries it: IPv6 in brackets, the port only when written.
  std::string authority() const;

  // An absolute URL with an authority: scheme://[userinfo@]host[:port][/path][?query][#fragment].
  // The host is an IPv4 or IPv6 literal or a DNS name (letters, digits, '-', '_', '.'); a port
  // when written is 1 to 65535.
  static std::optional<Url> parse(std::string_view text, std::string* why = nullptr);
};

// `redis://[user[:password]@]host[:port][/db]`, or `rediss://` for TLS: the port defaults to
// 6379, the db to 0;
// `redis://secret@host` is a password without a user. Reserved characters in the user or the
// password are written %XX (`redis://:p%2Fss@host` is the password "p/ss").
struct RedisAddress {
  std::string user;      // empty: AUTH with the password only (when there is one)
  std::string password;  // empty: no AUTH
  std::string host;      // an IPv6 literal without its brackets
  std::uint16_t port = 6379;
  int db = 0;
  bool tls = false;      // rediss://
};
std::optional<RedisAddress> parse_redis_url(std::string_view text, std::string* why = nullptr);

}  // namespace gh
