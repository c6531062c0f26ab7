#include "http/head_writer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gh::http {
namespace {

constexpr const char* kMany[] = {"x-many-0", "x-many-1", "x-many-2", "x-many-3", "x-many-4",
                                 "x-many-5", "x-many-6", "x-many-7", "x-many-8", "x-many-9"};

// A field of each size from 0 to 40 bytes, names and values alike (the writer copies short
// parts in words and longer ones whole), appended after what the string already held.
TEST(HeadWriter, ResponseHeadHoldsEveryFieldByteForByte) {
  std::vector<std::string> names, values;
  for (std::size_t n = 1; n <= 40; ++n) {
    names.push_back("X-" + std::string(n - 1, static_cast<char>('a' + n % 26)));
    std::string v;
    for (std::size_t i = 0; i < n - 1; ++i) v.push_back(static_cast<char>('0' + (i * 7 + n) % 75));
    values.push_back(v);
  }
  Fields fields;
  std::string want = "before|HTTP/1.1 404 Not Found\r\n";
  for (std::size_t i = 0; i < names.size(); ++i) {
    fields.add(names[i], values[i]);
    want += names[i] + ": " + values[i] + "\r\n";
  }
  want += "Content-Length: 18446744073709551615\r\nConnection: keep-alive\r\n\r\n";
  std::string out = "before|";
  ResponseFraming framing;
  framing.body = BodyKind::Length;
  framing.content_length = 18446744073709551615ULL;
  framing.keep_alive_10 = true;
  write_response_head(out, 404, "Not Found", fields, framing);
  EXPECT_EQ(out, want);

  out.clear();
  write_response_head(out, 204, "", Fields{}, ResponseFraming{.body = BodyKind::Chunked, .close = true});
  EXPECT_EQ(out, "HTTP/1.1 204 \r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
}

TEST(HeadWriter, RequestHeadKeepsAnEmptyQueryAndTheFieldsInOrder) {
  const std::vector<Field> fields = {{"Accept", "*/*"}, {"X-Forwarded-For", "203.0.113.7"}, {"A", ""}};
  OutgoingRequest req;
  req.method = "POST";
  req.path = "/api/users";
  req.has_query = true;
  req.host = "users.internal:8080";
  req.fields = &fields;
  req.body = BodyKind::Length;
  req.content_length = 0;
  std::string out;
  write_request_head(out, req);
  EXPECT_EQ(out,
            "POST /api/users? HTTP/1.1\r\nHost: users.internal:8080\r\nAccept: */*\r\n"
            "X-Forwarded-For: 203.0.113.7\r\nA: \r\nContent-Length: 0\r\n\r\n");
  req.query = "a=1&b=two";
  req.body = BodyKind::Chunked;
  out.clear();
  write_request_head(out, req);
  EXPECT_NE(out.find("POST /api/users?a=1&b=two HTTP/1.1\r\n"), std::string::npos);
  EXPECT_EQ(out.substr(out.size() - 35), "A: \r\nTransfer-Encoding: chunked\r\n\r\n");
}

// Names a Connection field lists are the connection's own, in any case and however the list
// is spaced, over several Connection fields, and past the eight names kept apart.
TEST(HeadWriter, ConnectionScopeCoversListedAndFixedNames) {
  for (const bool many : {false, true}) {
    Fields fields;
    fields.add("Content-Type", "text/plain");
    fields.add("connection", "keep-alive, X-Secret ,,\tx-other");
    fields.add("CONNECTION", "close");
    if (many)
      for (int i = 0; i < 10; ++i) fields.add("Connection", kMany[i]);
    const ConnectionScope scope(fields);
    SCOPED_TRACE(many);
    for (const char* name : {"x-secret", "X-SECRET", "X-Other", "close", "te", "Keep-Alive", "Transfer-Encoding",
                             "Connection", "Upgrade", "Trailer", "Proxy-Connection"})
      EXPECT_TRUE(scope.scoped(name)) << name;
    for (const char* name : {"X-Secre", "X-Secrets", "Content-Type", "Host", "x", "Date"})
      EXPECT_FALSE(scope.scoped(name)) << name;
    if (many) {
      EXPECT_TRUE(scope.scoped("X-MANY-9"));
      EXPECT_TRUE(scope.scoped("x-many-0"));
    }
  }
}

}  // namespace
}  // namespace gh::http
