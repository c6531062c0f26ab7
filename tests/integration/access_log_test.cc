// Access log: one JSON object per request with the fields of SPEC §2, null where they do not
// apply.
#include <gtest/gtest.h>

#include <sstream>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

std::vector<Json> log_lines(const Gateway& gw) {
  std::vector<Json> out;
  std::istringstream s(gw.access_log_text());
  for (std::string line; std::getline(s, line);) {
    if (line.empty()) continue;
    auto j = Json::parse(line);
    EXPECT_TRUE(j) << "not a JSON line: " << line;
    if (j) out.push_back(*j);
  }
  return out;
}

const Json* find_path(const std::vector<Json>& lines, std::string_view path) {
  for (const Json& j : lines) {
    if (j.get("path") && j.get("path")->is_string(path)) return &j;
  }
  return nullptr;
}

TEST(AccessLog, OneJsonObjectPerRequestWithEveryField) {
  Upstream up("svc");
  up.set_handler([](const Request& r) { return Reply::text(std::string(r.body.size() * 2, 'o')); });
  Gateway::Options options;
  options.access_log_file = true;
  Gateway gw(fill(R"(
services:
  users: {instances: ["{U}"]}
routes:
  - name: users-route
    path: /api
    service: users
)",
                  {{"U", up.url()}}),
             options);
  GH_START(gw);
  auto r = http_request(gw.port(), "POST", "/api/items?q=1", {{"X-Request-Id", "log-test-1"}}, "12345");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(http_get(gw.port(), "/missing?x=2").status, 404);

  std::vector<Json> lines;
  ASSERT_TRUE(eventually([&] {
    lines = log_lines(gw);
    return find_path(lines, "/api/items?q=1") && find_path(lines, "/missing?x=2");
  }, 5s)) << "access log:\n" << gw.access_log_text();

  const Json& ok = *find_path(lines, "/api/items?q=1");
  auto str = [](const Json& j, const char* k) { return j.get(k) && j.get(k)->type == Json::Type::String; };
  auto num = [](const Json& j, const char* k) { return j.get(k) && j.get(k)->type == Json::Type::Number; };
  auto null = [](const Json& j, const char* k) { return j.get(k) && j.get(k)->type == Json::Type::Null; };
  EXPECT_TRUE(str(ok, "time"));
  EXPECT_TRUE(ok.get("request_id") && ok.get("request_id")->is_string("log-test-1"));
  EXPECT_TRUE(ok.get("client_ip") && ok.get("client_ip")->is_string("127.0.0.1"));
  EXPECT_TRUE(ok.get("method") && ok.get("method")->is_string("POST"));
  EXPECT_TRUE(ok.get("route") && ok.get("route")->is_string("users-route"));
  EXPECT_TRUE(ok.get("service") && ok.get("service")->is_string("users"));
  EXPECT_TRUE(ok.get("instance") && ok.get("instance")->is_string(up.url()));
  EXPECT_TRUE(ok.get("status") && ok.get("status")->is_number(200));
  EXPECT_TRUE(ok.get("bytes_in") && ok.get("bytes_in")->is_number(5));
  EXPECT_TRUE(ok.get("bytes_out") && ok.get("bytes_out")->is_number(10));
  EXPECT_TRUE(num(ok, "upstream_ms"));
  EXPECT_TRUE(num(ok, "total_ms"));

  const Json& miss = *find_path(lines, "/missing?x=2");
  EXPECT_TRUE(miss.get("status") && miss.get("status")->is_number(404));
  EXPECT_TRUE(null(miss, "route"));
  EXPECT_TRUE(null(miss, "service"));
  EXPECT_TRUE(null(miss, "instance"));
  EXPECT_TRUE(null(miss, "upstream_ms"));
  EXPECT_TRUE(str(miss, "request_id"));
}

}  // namespace
}  // namespace gh::integ
