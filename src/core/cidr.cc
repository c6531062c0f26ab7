#include "core/cidr.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string>

#include "core/strings.h"

namespace gh {

std::optional<IpAddress> IpAddress::parse(std::string_view s) {
  if (s.empty() || s.size() > 45) return std::nullopt;
  char buf[64];
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  IpAddress a;
  if (s.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, a.bytes.data()) != 1) return std::nullopt;
    return a;
  }
  if (inet_pton(AF_INET6, buf, a.bytes.data()) != 1) return std::nullopt;
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(a.bytes.data(), kMapped, 12) == 0) {
    std::memmove(a.bytes.data(), a.bytes.data() + 12, 4);
    std::memset(a.bytes.data() + 4, 0, 12);
    return a;
  }
  a.v6 = true;
  return a;
}

std::optional<Cidr> Cidr::parse(std::string_view s, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<Cidr> {
    if (why) *why = reason;
    return std::nullopt;
  };
  s = trim_ows(s);
  auto slash = s.find('/');
  std::string_view text = s.substr(0, slash);
  auto addr = IpAddress::parse(text);
  if (!addr) return fail("not an IPv4 or IPv6 address");
  // Written as IPv6 but parsed as IPv4: an IPv4-mapped address, whose prefix counts 128 bits.
  const bool mapped = !addr->v6 && text.find(':') != std::string_view::npos;
  unsigned max = addr->v6 || mapped ? 128 : 32;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view p = s.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || ec != std::errc{} || end != p.data() + p.size()) return fail("the prefix length is not a number");
    if (prefix > max) return fail(max == 32 ? "the prefix length is over 32" : "the prefix length is over 128");
  }
  if (mapped) {
    if (prefix < 96) return fail("an IPv4-mapped network (::ffff:a.b.c.d) needs a prefix length of 96 or more");
    prefix -= 96;
  }
  Cidr c;
  c.net_ = *addr;
  c.prefix_ = prefix;
  return c;
}

bool Cidr::contains(const IpAddress& a) const noexcept {
  if (a.v6 != net_.v6) return false;
  unsigned full = prefix_ / 8, rest = prefix_ % 8;
  if (std::memcmp(a.bytes.data(), net_.bytes.data(), full) != 0) return false;
  if (rest == 0) return true;
  std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == (net_.bytes[full] & mask);
}

bool CidrSet::contains(const IpAddress& a) const noexcept {
  for (const auto& c : list_)
    if (c.contains(a)) return true;
  return false;
}

bool CidrSet::contains(std::string_view address) const noexcept {
  auto a = IpAddress::parse(address);
  return a && contains(*a);
}

std::string_view client_address(std::string_view peer, std::string_view xff, const CidrSet& trusted) noexcept {
  if (trusted.empty() || xff.empty() || !trusted.contains(peer)) return peer;
  std::string_view client = peer;
  while (!xff.empty()) {
    auto comma = xff.rfind(',');
    std::string_view item = trim_ows(comma == std::string_view::npos ? xff : xff.substr(comma + 1));
    xff = comma == std::string_view::npos ? std::string_view{} : xff.substr(0, comma);
    // Accept "[v6]" and "v4:port" forms as some proxies write them.
    if (item.size() > 2 && item.front() == '[') {
      auto close = item.find(']');
      if (close != std::string_view::npos) item = item.substr(1, close - 1);
    } else if (std::count(item.begin(), item.end(), ':') == 1) {
      item = item.substr(0, item.find(':'));
    }
    auto a = IpAddress::parse(item);
    if (!a) return client;
    client = item;
    if (!trusted.contains(*a)) return client;
  }
  return client;
}

}  // namespace gh
