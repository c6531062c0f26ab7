#include "core/url.h"

#include <gtest/gtest.h>

namespace gh {
namespace {

TEST(Url, SplitsAndDecodes) {
  auto u = Url::parse("HTTP://Api.Internal:8080/keys?v=1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scheme, "http");
  EXPECT_EQ(u->host, "Api.Internal");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->path, "/keys");
  EXPECT_EQ(u->query, "v=1");
  EXPECT_FALSE(u->has_userinfo);
  EXPECT_EQ(u->authority(), "Api.Internal:8080");

  u = Url::parse("redis://:p%2Fss@cache:6379/2");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->has_userinfo);
  EXPECT_EQ(u->user, "");
  EXPECT_EQ(u->password, "p/ss");
  EXPECT_EQ(u->host, "cache");
  EXPECT_EQ(u->path, "/2");

  u = Url::parse("redis://us%40er:p%3Aw%40d@cache");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->user, "us@er");
  EXPECT_EQ(u->password, "p:w@d");
  EXPECT_FALSE(u->port);

  u = Url::parse("redis://secret@cache");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->user, "secret");
  EXPECT_FALSE(u->password);

  u = Url::parse("http://[::1]:80");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_TRUE(u->ipv6);
  EXPECT_EQ(u->authority(), "[::1]:80");

  u = Url::parse("http://10.0.0.5:3001/");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "10.0.0.5");
  EXPECT_EQ(u->path, "/");
  EXPECT_FALSE(u->query);
  EXPECT_TRUE(Url::parse("http://a#frag")->has_fragment);
}

TEST(Url, RefusesWithAReason) {
  struct Case {
    const char* text;
    const char* why;
  };
  for (auto [text, why] : {
           Case{"http://a b:1", "the URL contains a space or a control character"},
           Case{"10.0.0.5:3001", "expected scheme://host"},
           Case{"http:a:1", "expected scheme://host"},
           Case{"http:///x", "the URL has no host"},
           Case{"http://a:0", "the port must be a number from 1 to 65535"},
           Case{"http://a:65536", "the port must be a number from 1 to 65535"},
           Case{"http://a:99999999999", "the port must be a number from 1 to 65535"},
           Case{"http://a:", "the port must be a number from 1 to 65535"},
           Case{"http://a%2Fb:1", "the host is not a name or an IP address"},
           Case{"http://[v1.x]:1", "the host is not a name or an IP address"},
           Case{"http://[::1:1", "not a valid URL (a reserved character such as / # ? @ in a user name or password is "
                                 "written %XX)"},
       }) {
    std::string reason;
    EXPECT_FALSE(Url::parse(text, &reason)) << text;
    EXPECT_EQ(reason, why) << text;
  }
}

TEST(RedisUrl, ReadsUserPasswordHostPortAndDb) {
  auto a = parse_redis_url("redis://user:pw@redis.internal:6380/2");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->user, "user");
  EXPECT_EQ(a->password, "pw");
  EXPECT_EQ(a->host, "redis.internal");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(a->db, 2);
  a = parse_redis_url("redis://:p%2Fss@h:6379");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->user, "");
  EXPECT_EQ(a->password, "p/ss");
  a = parse_redis_url("redis://secret@h");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->user, "");
  EXPECT_EQ(a->password, "secret");
  EXPECT_EQ(a->port, 6379);
  EXPECT_EQ(a->db, 0);
  EXPECT_FALSE(a->tls);
  a = parse_redis_url("rediss://:pw@cache.internal/3");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->tls);
  EXPECT_EQ(a->password, "pw");
  EXPECT_EQ(a->host, "cache.internal");
  EXPECT_EQ(a->port, 6379);
  EXPECT_EQ(a->db, 3);
  a = parse_redis_url("redis://[::1]:7000/");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 7000);
  EXPECT_EQ(a->db, 0);
  for (auto [text, why] : {std::pair{"redis://:p/ss@h:6379", "a \"/\" in the user name or password is written %2F"},
                           std::pair{"redis://u:p/ss@h", "a \"/\" in the user name or password is written %2F"},
                           std::pair{"http://h:6379", "the scheme is not redis:// or rediss://"},
                           std::pair{"redis://h:6379/x", "the database after the / must be a number"},
                           std::pair{"redis://h:6379/1/2", "the database after the / must be a number"},
                           std::pair{"redis://h:0", "the port must be a number from 1 to 65535"},
                           std::pair{"redis://h?x=1", "a redis URL has no query or fragment"},
                           std::pair{"localhost:6379", "expected scheme://host"}}) {
    std::string reason;
    EXPECT_FALSE(parse_redis_url(text, &reason)) << text;
    EXPECT_EQ(reason, why) << text;
  }
}

}  // namespace
}  // namespace gh
