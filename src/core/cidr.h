// Cidr: an IPv4 or IPv6 network ("10.0.0.0/8", "::1/128", or a bare address), and a set of them.
// Thread: immutable values; contains() is pure.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gh {

struct IpAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // v4 uses the first 4
  // Parses a literal IPv4 or IPv6 address (an IPv4-mapped IPv6 address becomes IPv4).
  static std::optional<IpAddress> parse(std::string_view s);
};

class Cidr {
 public:
  // nullopt when malformed (bad address, prefix out of range); `why` (if given) then says what.
  // An IPv4-mapped IPv6 network ("::ffff:10.0.0.0/120") is the IPv4 network it maps
  // (10.0.0.0/24); its prefix must be 96 or more, as a shorter one spans non-mapped addresses.
  static std::optional<Cidr> parse(std::string_view s, std::string* why = nullptr);
  bool contains(const IpAddress& a) const noexcept;

 private:
  IpAddress net_;
  unsigned prefix_ = 0;
};

class CidrSet {
 public:
  CidrSet() = default;
  explicit CidrSet(std::vector<Cidr> list) : list_(std::move(list)) {}
  bool empty() const noexcept { return list_.empty(); }
  bool contains(const IpAddress& a) const noexcept;
  bool contains(std::string_view address) const noexcept;

 private:
  std::vector<Cidr> list_;
};

// The client address for a connection from `peer`: when the peer is a trusted proxy, the
// right-most address of X-Forwarded-For that is not itself trusted (all trusted: the left-most).
// An unparsable entry stops the walk at the last address trusted so far.
std::string_view client_address(std::string_view peer, std::string_view xff, const CidrSet& trusted) noexcept;

}  // namespace gh
