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


// The head stays whole while a long body streams past it: the log line and the response
// policies (cors reads Origin after the body went to the service) see the head as sent.
TEST(AccessLog, LongBodiesLeaveTheHeadIntact) {
  Upstream up("svc");
  up.set_handler([](const Request& r) { return Reply::text(std::to_string(r.body.size())); });
  Gateway::Options options;
  options.access_log_file = true;
  Gateway gw(fill(R"(
policies:
  web: {type: cors, origins: ["https://app.example"]}
services:
  users: {instances: ["{U}"]}
routes:
  - {path: /api, service: users, policies: [web]}
)",
                  {{"U", up.url()}}),
             options);
  GH_START(gw);
  const std::string body = pattern_body(1u << 20, 3);
  const Headers fields{{"Origin", "https://app.example"}, {"User-Agent", "long-body-agent/1.0"}};
  std::string chunked;
  for (std::size_t at = 0; at < body.size(); at += 100000) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "%zx", std::min<std::size_t>(100000, body.size() - at));
    chunked += std::string(hex) + "\r\n" + body.substr(at, 100000) + "\r\n";
  }
  chunked += "0\r\n\r\n";
  Headers chunked_fields = fields;
  chunked_fields.add("Transfer-Encoding", "chunked");
  auto a = roundtrip(gw.port(), make_request("PUT", "/api/length?x=1", fields, body), 20s);
  auto b = roundtrip(gw.port(), make_request("POST", "/api/chunked?y=2", chunked_fields, chunked), 20s);
  for (const Response* r : {&a, &b}) {
    ASSERT_EQ(r->status, 200) << r->describe();
    EXPECT_EQ(r->body, std::to_string(body.size()));
    EXPECT_EQ(r->headers.value_or("access-control-allow-origin", "(none)"), "https://app.example") << r->describe();
  }
  std::vector<Json> lines;
  ASSERT_TRUE(eventually([&] {
    lines = log_lines(gw);
    return find_path(lines, "/api/length?x=1") && find_path(lines, "/api/chunked?y=2");
  }, 5s)) << "access log:\n" << gw.access_log_text();
  for (auto [path, method] : {std::pair{"/api/length?x=1", "PUT"}, std::pair{"/api/chunked?y=2", "POST"}}) {
    SCOPED_TRACE(path);
    const Json& j = *find_path(lines, path);
    EXPECT_TRUE(j.get("method") && j.get("method")->is_string(method));
    EXPECT_TRUE(j.get("user_agent") && j.get("user_agent")->is_string("long-body-agent/1.0"));
    EXPECT_TRUE(j.get("bytes_in") && j.get("bytes_in")->is_number(static_cast<double>(body.size())));
  }
}

// Every request gets its line, exactly once: also those that end before or outside the proxy.
class AccessLogEveryRequest : public ::testing::Test {
 protected:
  void start(const std::string& top = "", Env env = {}) {
    Gateway::Options options;
    options.access_log_file = true;
    options.env = std::move(env);
    options.workers = 1;
    gw_ = std::make_unique<Gateway>(fill(R"(
{TOP}
services:
  svc: {instances: ["{U}"]}
routes:
  - path: /
    service: svc
)",
                                         {{"U", up_.url()}, {"TOP", top}}),
                                    options);
    GH_START(*gw_);
  }
  // The lines whose FIELD has the string VALUE, once the log has at least one.
  std::vector<Json> lines_with(const char* field, std::string_view value) {
    std::vector<Json> found;
    eventually([&] {
      found.clear();
      for (const Json& j : log_lines(*gw_))
        if (j.get(field) && j.get(field)->is_string(value)) found.push_back(j);
      return !found.empty();
    });
    std::this_thread::sleep_for(150ms);  // a second line, if any, would be flushed by now
    found.clear();
    for (const Json& j : log_lines(*gw_))
      if (j.get(field) && j.get(field)->is_string(value)) found.push_back(j);
    return found;
  }
  std::vector<Json> lines_with_status(int status) {
    std::vector<Json> found;
    eventually([&] {
      found.clear();
      for (const Json& j : log_lines(*gw_))
        if (j.get("status") && j.get("status")->is_number(status)) found.push_back(j);
      return !found.empty();
    });
    return found;
  }

  Upstream up_{"svc"};
  std::unique_ptr<Gateway> gw_;
};

TEST_F(AccessLogEveryRequest, MalformedHeadIsLogged) {
  start();
  auto r = roundtrip(gw_->port(), "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(IsJsonError(r, 400, "Bad request"));
  auto lines = lines_with_status(400);
  ASSERT_EQ(lines.size(), 1u) << gw_->access_log_text();
  const std::string id = r.headers.value_or("X-Request-Id", "<none>");
  EXPECT_TRUE(lines[0].get("request_id") && lines[0].get("request_id")->is_string(id)) << gw_->access_log_text();
  EXPECT_TRUE(lines[0].get("client_ip") && lines[0].get("client_ip")->is_string("127.0.0.1"));
  EXPECT_TRUE(ReachedNothing(up_));
}

TEST_F(AccessLogEveryRequest, HeadTimeoutIsLogged) {
  start("limits: {header_timeout: 300ms}");
  Conn c(gw_->port());
  ASSERT_TRUE(c.send("GET /slow HTTP/1.1\r\nHost: x\r\n"));
  auto r = c.read_response(3s);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(lines_with_status(408).size(), 1u) << gw_->access_log_text();
}

TEST_F(AccessLogEveryRequest, ClientGoneMidBodyIsLogged) {
  start();
  {
    Conn c(gw_->port());
    ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\nHost: x\r\nX-Request-Id: gone-mid-body\r\n"
                       "Content-Length: 1000\r\n\r\n0123456789"));
    ASSERT_TRUE(eventually([&] { return up_.heads_seen() == 1; }));
  }  // closed with 990 bytes of the body unsent
  auto lines = lines_with("request_id", "gone-mid-body");
  ASSERT_EQ(lines.size(), 1u) << gw_->access_log_text();
  EXPECT_TRUE(lines[0].get("status") && lines[0].get("status")->is_number(499)) << gw_->access_log_text();
  EXPECT_TRUE(lines[0].get("path") && lines[0].get("path")->is_string("/upload"));
  EXPECT_EQ(up_.request_count(), 0u);
}

TEST_F(AccessLogEveryRequest, ExceptionBeforeAnyResponseAnswers500AndIsLogged) {
  start("", {{"GATEHOUSE_FAULTS", "before_proxy"}});
  auto r = http_get(gw_->port(), "/boom", {{"X-Request-Id", "fault-before"}});
  EXPECT_TRUE(IsJsonError(r, 500, "Internal error")) << r.describe();
  auto lines = lines_with("request_id", "fault-before");
  ASSERT_EQ(lines.size(), 1u) << gw_->access_log_text();
  EXPECT_TRUE(lines[0].get("status") && lines[0].get("status")->is_number(500));
  EXPECT_TRUE(ReachedNothing(up_));
  EXPECT_NE(gw_->stderr_text().find("fault-before"), std::string::npos) << "the error log names the request";
  // The gateway goes on serving.
  EXPECT_TRUE(IsJsonError(http_get(gw_->port(), "/again"), 500, "Internal error"));
  EXPECT_TRUE(gw_->alive());
}

TEST_F(AccessLogEveryRequest, ExceptionAfterTheHeadClosesAndIsLogged) {
  up_.set_handler([](const Request&) { return Reply::text(std::string(200000, 'x')); });
  start("", {{"GATEHOUSE_FAULTS", "after_response_head"}});
  Conn c(gw_->port());
  ASSERT_TRUE(c.send(make_request("GET", "/big", {{"X-Request-Id", "fault-after"}})));
  EXPECT_TRUE(c.wait_closed());
  EXPECT_EQ(c.pending().rfind("HTTP/1.1 200", 0), 0u) << "the head was sent before the failure";
  auto lines = lines_with("request_id", "fault-after");
  ASSERT_EQ(lines.size(), 1u) << gw_->access_log_text();
  EXPECT_TRUE(lines[0].get("status") && lines[0].get("status")->is_number(200));
}

const Json* find_path_prefix(const std::vector<Json>& lines, std::string_view prefix) {
  for (const Json& j : lines) {
    if (j.get("path") && j.get("path")->type == Json::Type::String && j.get("path")->string.rfind(prefix, 0) == 0)
      return &j;
  }
  return nullptr;
}

bool is_null(const Json& j, const char* key) { return j.get(key) && j.get(key)->type == Json::Type::Null; }

// host, user_agent, reason (the gateway's own reply's reason, null when proxied) and consumer
// (the api_key consumer or the JWT subject, null when none).
TEST(AccessLog, HostUserAgentReasonAndConsumer) {
  Upstream up("svc");
  Gateway::Options options;
  options.access_log_file = true;
  Gateway gw(fill(R"(
services:
  svc: {instances: ["{U}"]}
policies:
  keys: {type: api_key, header: X-API-Key, keys: {k-123: mobile-app}}
  auth: {type: jwt, secret: log-test-secret}
routes:
  - {path: /keyed, service: svc, policies: [keys]}
  - {path: /signed, service: svc, policies: [auth]}
  - {path: /open, service: svc}
)",
                  {{"U", up.url()}}),
             options);
  GH_START(gw);
  auto token = run_gatehouse({"token", "--secret", "log-test-secret", "--sub", "user-42"});
  ASSERT_EQ(token.exit_code, 0) << token.err;
  std::string jwt = token.out.substr(0, token.out.find('\n'));

  EXPECT_EQ(http_get(gw.port(), "/open/a", {{"User-Agent", "curl/8.5.0"}}).status, 200);
  EXPECT_EQ(http_get(gw.port(), "/keyed/b", {{"X-API-Key", "k-123"}}).status, 200);
  EXPECT_EQ(http_get(gw.port(), "/keyed/c", {{"X-API-Key", "wrong"}}).status, 401);
  EXPECT_EQ(http_get(gw.port(), "/signed/d", {{"Authorization", "Bearer " + jwt}}).status, 200);
  EXPECT_EQ(http_get(gw.port(), "/nowhere/e").status, 404);
  // HTTP/1.0 without Host
  Response no_host = roundtrip(gw.port(), "GET /open/f HTTP/1.0\r\n\r\n");
  EXPECT_EQ(no_host.status, 200);

  std::vector<Json> lines;
  ASSERT_TRUE(eventually([&] {
    lines = log_lines(gw);
    return lines.size() >= 6;
  }, 5s)) << gw.access_log_text();

  const Json* open = find_path(lines, "/open/a");
  ASSERT_TRUE(open) << gw.access_log_text();
  EXPECT_TRUE(open->get("host") && open->get("host")->is_string("gw.test"));
  EXPECT_TRUE(open->get("user_agent") && open->get("user_agent")->is_string("curl/8.5.0"));
  EXPECT_TRUE(is_null(*open, "reason"));
  EXPECT_TRUE(is_null(*open, "consumer"));

  const Json* keyed = find_path(lines, "/keyed/b");
  ASSERT_TRUE(keyed);
  EXPECT_TRUE(keyed->get("consumer") && keyed->get("consumer")->is_string("mobile-app"));
  EXPECT_TRUE(is_null(*keyed, "reason"));
  EXPECT_TRUE(is_null(*keyed, "user_agent"));

  const Json* refused = find_path(lines, "/keyed/c");
  ASSERT_TRUE(refused);
  EXPECT_TRUE(refused->get("status") && refused->get("status")->is_number(401));
  ASSERT_TRUE(refused->get("reason") && refused->get("reason")->type == Json::Type::String);
  EXPECT_FALSE(refused->get("reason")->string.empty());
  EXPECT_TRUE(is_null(*refused, "consumer"));

  const Json* signed_in = find_path(lines, "/signed/d");
  ASSERT_TRUE(signed_in);
  EXPECT_TRUE(signed_in->get("consumer") && signed_in->get("consumer")->is_string("user-42"));

  const Json* missing = find_path(lines, "/nowhere/e");
  ASSERT_TRUE(missing);
  EXPECT_TRUE(missing->get("reason") && missing->get("reason")->is_string("no_route"));

  const Json* bare = find_path(lines, "/open/f");
  ASSERT_TRUE(bare);
  EXPECT_TRUE(is_null(*bare, "host"));
}

// Bytes from the client are logged as UTF-8: valid sequences as they are, invalid bytes as
// U+FFFD, control characters escaped; every line stays one valid JSON object.
TEST(AccessLog, WritesUtf8) {
  Upstream up("svc");
  Gateway::Options options;
  options.access_log_file = true;
  Gateway gw(fill("services:\n  svc: {instances: [\"{U}\"]}\nroutes: [{path: /api, service: svc}]\n",
                  {{"U", up.url()}}),
             options);
  GH_START(gw);
  EXPECT_EQ(http_get(gw.port(), "/api/caf\xc3\xa9", {{"User-Agent", "na\xc3\xafve \xe2\x82\xac"}}).status, 200);
  EXPECT_EQ(http_get(gw.port(), "/api/latin\xe9", {{"User-Agent", "bad\xff\x80 tab\tend"}}).status, 200);

  std::vector<Json> lines;
  ASSERT_TRUE(eventually([&] {
    lines = log_lines(gw);
    return lines.size() >= 2;
  }, 5s)) << gw.access_log_text();
  const std::string text = gw.access_log_text();
  EXPECT_NE(text.find("\"/api/caf\xc3\xa9\""), std::string::npos) << "not UTF-8 as sent: " << text;
  EXPECT_EQ(text.find("\\u00c3"), std::string::npos) << "bytes escaped one by one: " << text;

  const Json* cafe = find_path(lines, "/api/caf\xc3\xa9");
  ASSERT_TRUE(cafe) << text;
  EXPECT_TRUE(cafe->get("user_agent") && cafe->get("user_agent")->is_string("na\xc3\xafve \xe2\x82\xac"));

  const Json* latin = find_path_prefix(lines, "/api/latin");
  ASSERT_TRUE(latin) << text;
  EXPECT_TRUE(latin->get("path")->is_string("/api/latin\xef\xbf\xbd"));
  EXPECT_TRUE(latin->get("user_agent") && latin->get("user_agent")->is_string("bad\xef\xbf\xbd\xef\xbf\xbd tab\tend"));
  EXPECT_NE(text.find("tab\\tend"), std::string::npos) << text;
}

}  // namespace
}  // namespace gh::integ
