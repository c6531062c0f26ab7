#include "core/cidr.h"

#include <gtest/gtest.h>

namespace gh {
namespace {

TEST(Cidr, ParsesAndMatches) {
  auto c = Cidr::parse("10.0.0.0/8");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains(*IpAddress::parse("10.1.2.3")));
  EXPECT_FALSE(c->contains(*IpAddress::parse("11.1.2.3")));
  EXPECT_TRUE(Cidr::parse("192.168.1.7")->contains(*IpAddress::parse("192.168.1.7")));
  EXPECT_FALSE(Cidr::parse("192.168.1.7")->contains(*IpAddress::parse("192.168.1.8")));
  EXPECT_TRUE(Cidr::parse("fd00::/8")->contains(*IpAddress::parse("fd12::1")));
  EXPECT_FALSE(Cidr::parse("fd00::/8")->contains(*IpAddress::parse("10.0.0.1")));
  EXPECT_TRUE(Cidr::parse("127.0.0.0/8")->contains(*IpAddress::parse("::ffff:127.0.0.1")));
  EXPECT_TRUE(Cidr::parse("10.0.0.0/9")->contains(*IpAddress::parse("10.127.0.1")));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/9")->contains(*IpAddress::parse("10.128.0.1")));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/33"));
  EXPECT_FALSE(Cidr::parse("10.0.0/8"));
  EXPECT_FALSE(Cidr::parse("nonsense"));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/"));
}

TEST(Cidr, MappedNetworkIsTheIpv4NetworkItMaps) {
  auto c = Cidr::parse("::ffff:10.0.0.1/120");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains(*IpAddress::parse("10.0.0.200")));
  EXPECT_TRUE(c->contains(*IpAddress::parse("::ffff:10.0.0.7")));
  EXPECT_FALSE(c->contains(*IpAddress::parse("10.0.1.1")));
  EXPECT_TRUE(Cidr::parse("::ffff:10.0.0.1")->contains(*IpAddress::parse("10.0.0.1")));
  EXPECT_FALSE(Cidr::parse("::ffff:10.0.0.1")->contains(*IpAddress::parse("10.0.0.2")));
  std::string why;
  EXPECT_FALSE(Cidr::parse("::ffff:10.0.0.1/80", &why));
  EXPECT_EQ(why, "an IPv4-mapped network (::ffff:a.b.c.d) needs a prefix length of 96 or more");
  EXPECT_FALSE(Cidr::parse("::ffff:10.0.0.1/129", &why));
  EXPECT_EQ(why, "the prefix length is over 128");
  EXPECT_FALSE(Cidr::parse("10.0.0.1/40", &why));
  EXPECT_EQ(why, "the prefix length is over 32");
  EXPECT_FALSE(Cidr::parse("10.0.0.300/8", &why));
  EXPECT_EQ(why, "not an IPv4 or IPv6 address");
}

TEST(ClientAddress, BelievesOnlyTrustedHops) {
  CidrSet trusted({*Cidr::parse("10.0.0.0/8")});
  // Untrusted peer: X-Forwarded-For is ignored whatever it says.
  EXPECT_EQ(client_address("203.0.113.9", "1.2.3.4", trusted), "203.0.113.9");
  // Trusted peer: the right-most untrusted address is the client.
  EXPECT_EQ(client_address("10.0.0.2", "1.2.3.4", trusted), "1.2.3.4");
  EXPECT_EQ(client_address("10.0.0.2", "6.6.6.6, 1.2.3.4, 10.0.0.7", trusted), "1.2.3.4");
  // Everything trusted: the left-most.
  EXPECT_EQ(client_address("10.0.0.2", "10.0.0.5, 10.0.0.7", trusted), "10.0.0.5");
  // Garbage stops the walk.
  EXPECT_EQ(client_address("10.0.0.2", "1.2.3.4, garbage", trusted), "10.0.0.2");
  EXPECT_EQ(client_address("10.0.0.2", "[2001:db8::1], 1.2.3.4:5678", trusted), "1.2.3.4");
  // No trusted proxies configured: the peer.
  EXPECT_EQ(client_address("10.0.0.2", "1.2.3.4", CidrSet{}), "10.0.0.2");
}

}  // namespace
}  // namespace gh
