#include "core/url.h"

// Boost.URL is header-only here: its sources are compiled once, in this file.
#include <boost/url/parse.hpp>
#include <boost/url/src.hpp>

#include <algorithm>
#include <charconv>

namespace gh {

namespace {

bool is_dns_name(std::string_view s) {
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_';
  });
}

}  // namespace

std::string Url::authority() const {
  std::string out = ipv6 ? "[" + host + "]" : host;
  if (port) out += ":" + std::to_string(*port);
  return out;
}

std::optional<Url> Url::parse(std::string_view text, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<Url> {
    if (why) *why = reason;
    return std::nullopt;
  };
  for (unsigned char c : text)
    if (c <= 0x20 || c >= 0x7f) return fail("the URL contains a space or a control character");
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) {
    if (text.find("://") == std::string_view::npos) return fail("expected scheme://host");
    return fail("not a valid URL (a reserved character such as / # ? @ in a user name or password is written %XX)");
  }
  const boost::urls::url_view& u = *parsed;
  if (!u.has_authority()) return fail("expected scheme://host");
  Url out;
  out.scheme = std::string(u.scheme());
  std::transform(out.scheme.begin(), out.scheme.end(), out.scheme.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  out.has_userinfo = u.has_userinfo();
  if (out.has_userinfo) {
    out.user = u.user();
    if (u.has_password()) out.password = u.password();
  }
  switch (u.host_type()) {
    case boost::urls::host_type::ipv4: out.host = u.host_address(); break;
    case boost::urls::host_type::ipv6:
      out.host = u.host_ipv6_address().to_string();
      out.ipv6 = true;
      break;
    case boost::urls::host_type::name:
      out.host = u.host_name();
      if (out.host.empty()) return fail("the URL has no host");
      if (!is_dns_name(out.host)) return fail("the host is not a name or an IP address");
      break;
    default: return fail("the host is not a name or an IP address");
  }
  if (u.has_port()) {
    std::string_view p = u.port();
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (p.empty() || p.size() > 5 || ec != std::errc{} || end != p.data() + p.size() || v == 0 || v > 65535)
      return fail("the port must be a number from 1 to 65535");
    out.port = static_cast<std::uint16_t>(v);
  }
  out.path = std::string(u.encoded_path());
  if (u.has_query()) out.query = std::string(u.encoded_query());
  out.has_fragment = u.has_fragment();
  return out;
}

std::optional<RedisAddress> parse_redis_url(std::string_view text, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<RedisAddress> {
    if (why) *why = reason;
    return std::nullopt;
  };
  std::string reason;
  auto u = Url::parse(text, &reason);
  if (!u) {
    // redis://:p/ss@host reads as an empty authority and the path "p/ss@host".
    auto rest = text.substr(std::min(text.size(), text.find("://") + 3));
    if (rest.find('@') != std::string_view::npos && rest.find('/') < rest.find('@'))
      return fail("a \"/\" in the user name or password is written %2F");
    if (why) *why = reason;
    return std::nullopt;
  }
  if (u->scheme != "redis" && u->scheme != "rediss") return fail("the scheme is not redis:// or rediss://");
  if (u->query || u->has_fragment) return fail("a redis URL has no query or fragment");
  if (u->path.find('@') != std::string::npos) return fail("a \"/\" in the user name or password is written %2F");
  RedisAddress a;
  a.tls = u->scheme == "rediss";
  if (u->password) {
    a.user = u->user;
    a.password = *u->password;
  } else {
    a.password = u->user;  // redis://secret@host
  }
  a.host = u->host;
  if (u->port) a.port = *u->port;
  std::string_view db = u->path;
  if (!db.empty()) db.remove_prefix(1);
  if (!db.empty()) {
    auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), a.db);
    if (ec != std::errc{} || end != db.data() + db.size() || a.db < 0 || db.size() > 5)
      return fail("the database after the / must be a number");
  }
  return a;
}

}  // namespace gh
