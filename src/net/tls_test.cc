// Unit tests of the TLS helpers that see attacker bytes or decide which certificate serves: the
// server_name extension parser and the name matching (the handshakes themselves are tested end
// to end in tests/integration/tls_listener_test.cc).
#include <gtest/gtest.h>

#include <string>

#include "net/tls.h"

namespace gh::net {
namespace {

std::string extension(std::string_view name, unsigned type = 0) {
  std::string entry;
  entry.push_back(static_cast<char>(type));
  entry.push_back(static_cast<char>(name.size() >> 8));
  entry.push_back(static_cast<char>(name.size() & 0xff));
  entry += name;
  std::string out;
  out.push_back(static_cast<char>(entry.size() >> 8));
  out.push_back(static_cast<char>(entry.size() & 0xff));
  return out + entry;
}

std::string_view parse(const std::string& bytes) {
  return parse_server_name(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

TEST(ServerName, ParsesTheHostName) {
  EXPECT_EQ(parse(extension("api.example.com")), "api.example.com");
  EXPECT_EQ(parse(extension("a")), "a");
}

TEST(ServerName, MalformedOrAbsentGivesNothing) {
  EXPECT_EQ(parse(""), "");
  EXPECT_EQ(parse_server_name(nullptr, 10), "");
  std::string ok = extension("api.example.com");
  for (std::size_t cut = 0; cut < ok.size(); ++cut) EXPECT_EQ(parse(ok.substr(0, cut)), "") << cut;
  std::string longer = ok + "x";  // list length no longer matches
  EXPECT_EQ(parse(longer), "");
  std::string lying = ok;
  lying[4] = static_cast<char>(0x7f);  // entry longer than the list
  EXPECT_EQ(parse(lying), "");
  EXPECT_EQ(parse(extension("api.example.com", 1)), "");  // not a host_name entry
  EXPECT_EQ(parse(extension(std::string("a\0b", 3))), "");
  EXPECT_EQ(parse(extension("a b")), "");
  EXPECT_EQ(parse(extension("caf\xc3\xa9")), "");
}

TEST(ServerName, NameMatching) {
  EXPECT_TRUE(tls_name_matches("api.example.com", "api.example.com"));
  EXPECT_TRUE(tls_name_matches("api.example.com", "API.Example.COM"));
  EXPECT_FALSE(tls_name_matches("api.example.com", "api.example.co"));
  EXPECT_TRUE(tls_name_matches("*.example.com", "a.example.com"));
  EXPECT_TRUE(tls_name_matches("*.example.com", "A.EXAMPLE.com"));
  EXPECT_FALSE(tls_name_matches("*.example.com", "a.b.example.com"));  // one label only
  EXPECT_FALSE(tls_name_matches("*.example.com", "example.com"));
  EXPECT_FALSE(tls_name_matches("*.example.com", ".example.com"));
  EXPECT_FALSE(tls_name_matches("*.example.com", "aexample.com"));
  EXPECT_FALSE(tls_name_matches("", "a"));
}

TEST(TlsContexts, LoadFailuresSayWhy) {
  std::string error;
  TlsServerOptions none;
  EXPECT_EQ(TlsServerContext::load(none, error), nullptr);
  EXPECT_EQ(error, "no certificate");
  TlsServerOptions missing;
  missing.certificates.push_back({"/nonexistent/cert.pem", "/nonexistent/key.pem"});
  EXPECT_EQ(TlsServerContext::load(missing, error), nullptr);
  EXPECT_NE(error.find("cannot load certificate /nonexistent/cert.pem"), std::string::npos) << error;
  TlsClientOptions client;
  client.ca = "/nonexistent/ca.pem";
  EXPECT_EQ(TlsClientContext::load(client, error), nullptr);
  EXPECT_NE(error.find("cannot load ca /nonexistent/ca.pem"), std::string::npos) << error;
  EXPECT_NE(TlsClientContext::system(error), nullptr) << error;
}

}  // namespace
}  // namespace gh::net
