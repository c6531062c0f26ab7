#include "policies/security_headers/security_headers.h"

#include <gtest/gtest.h>

#include <memory>

#include "proxy/request_context.h"
#include "proxy/worker.h"

namespace gh::policies {
namespace {

config::PolicyConfig entry(const std::string& yaml) {
  config::PolicyConfig p;
  p.name = "sec";
  p.type = "security_headers";
  p.path = "policies.sec";
  p.options = YAML::Load(yaml);
  return p;
}

struct Harness {
  proxy::GatewayShared shared;
  proxy::Worker worker{0, shared, nullptr};
  http::RequestHead req;
  proxy::RequestContext ctx{worker, nullptr, req};
};

// A response after the policy `yaml` describes ran over it. The fields it added view the
// policy's strings: it is kept with the head.
struct Responded {
  std::unique_ptr<SecurityHeadersPolicy> policy;
  http::ResponseHead head;
};

Responded respond(const std::string& yaml, std::initializer_list<http::Field> fields) {
  config::Diagnostics diag("t.yaml");
  Responded r;
  r.policy = std::make_unique<SecurityHeadersPolicy>("sec", parse_security_headers(entry(yaml), diag));
  EXPECT_TRUE(diag.empty()) << yaml;
  Harness h;
  for (const auto& f : fields) r.head.fields.add(f.name, f.value);
  r.policy->on_response(h.ctx, r.head);
  return r;
}

TEST(SecurityHeaders, AddsHelmetDefaultsAndRemovesPoweredBy) {
  config::Diagnostics diag("t.yaml");
  SecurityHeadersPolicy p("sec", parse_security_headers(entry("{type: security_headers}"), diag));
  ASSERT_TRUE(diag.empty());
  Harness h;
  http::ResponseHead head;
  head.fields.add("X-Powered-By", "Express");
  head.fields.add("Content-Type", "text/plain");
  p.on_response(h.ctx, head);
  EXPECT_FALSE(head.fields.has("X-Powered-By"));
  EXPECT_EQ(head.fields.get("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(head.fields.get("X-Frame-Options"), "SAMEORIGIN");
  EXPECT_EQ(head.fields.get("Strict-Transport-Security"), "max-age=31536000; includeSubDomains");
  EXPECT_EQ(head.fields.get("X-XSS-Protection"), "0");
  EXPECT_EQ(head.fields.get("Referrer-Policy"), "no-referrer");
  EXPECT_EQ(head.fields.get("Cross-Origin-Opener-Policy"), "same-origin");
  EXPECT_EQ(head.fields.get("Origin-Agent-Cluster"), "?1");
  EXPECT_NE(head.fields.get("Content-Security-Policy").find("default-src 'self'"), std::string_view::npos);
  EXPECT_EQ(head.fields.size(), 1u + helmet_defaults().size());
}

TEST(SecurityHeaders, KeepsServiceHeaderUnlessOverride) {
  config::Diagnostics diag("t.yaml");
  SecurityHeadersPolicy keep("sec", parse_security_headers(entry("{type: security_headers}"), diag));
  SecurityHeadersPolicy over("sec", parse_security_headers(entry("{type: security_headers, override: true}"), diag));
  ASSERT_TRUE(diag.empty());
  Harness h;
  http::ResponseHead a;
  a.fields.add("X-Frame-Options", "DENY");
  keep.on_response(h.ctx, a);
  EXPECT_EQ(a.fields.get("X-Frame-Options"), "DENY");
  http::ResponseHead b;
  b.fields.add("X-Frame-Options", "DENY");
  over.on_response(h.ctx, b);
  EXPECT_EQ(b.fields.get("X-Frame-Options"), "SAMEORIGIN");
  EXPECT_EQ(b.fields.count("X-Frame-Options"), 1u);
}

// Names are matched whatever their case, duplicates included, on the quick path (names told
// apart by length first) and on the one a name of 64 bytes or more takes.
TEST(SecurityHeaders, KeepOrOverrideMatchesNamesInAnyCase) {
  const std::string long_name(70, 'x');
  for (const std::string& extra : {std::string("X-Extra"), long_name}) {
    for (const bool override_existing : {false, true}) {
      const std::string yaml = std::string("{type: security_headers, override: ") + (override_existing ? "true" : "false") +
                               ", headers: {" + extra + ": added}}";
      SCOPED_TRACE(yaml);
      const Responded r = respond(yaml, {{"x-frame-options", "DENY"},
                                         {"Content-Type", "text/plain"},
                                         {"X-FRAME-OPTIONS", "DENY"},
                                         {"x-content-type-options", "service"}});
      const http::ResponseHead& head = r.head;
      if (override_existing) {
        EXPECT_EQ(head.fields.count("X-Frame-Options"), 1u);
        EXPECT_EQ(head.fields.get("X-Frame-Options"), "SAMEORIGIN");
        EXPECT_EQ(head.fields.get("X-Content-Type-Options"), "nosniff");
      } else {
        EXPECT_EQ(head.fields.count("X-Frame-Options"), 2u);
        EXPECT_EQ(head.fields.get("X-Frame-Options"), "DENY");
        EXPECT_EQ(head.fields.get("X-Content-Type-Options"), "service");
      }
      EXPECT_EQ(head.fields.get(extra), "added");
      EXPECT_EQ(head.fields.get("Referrer-Policy"), "no-referrer");
      EXPECT_EQ(head.fields.get("Content-Type"), "text/plain");
    }
  }
}

// X-Powered-By goes whatever its case and however often it comes, on both paths; `false` keeps
// the service's; a value of its own replaces the service's.
TEST(SecurityHeaders, PoweredByGoesInAnyCaseUnlessKeptOrSet) {
  const std::string long_name(70, 'x');
  for (const std::string& extra : {std::string("X-Extra"), long_name}) {
    struct Case {
      std::string powered_by;  // the policy's option for it, if any
      std::size_t left;        // X-Powered-By fields after on_response
      std::string_view value;  // the first one's value
    };
    for (const Case& c : {Case{"", 0, ""}, Case{"false", 2, "Express"}, Case{"gatehouse", 1, "gatehouse"}}) {
      std::string yaml = "{type: security_headers, headers: {" + extra + ": added";
      if (!c.powered_by.empty()) yaml += ", X-Powered-By: " + c.powered_by;
      yaml += "}}";
      SCOPED_TRACE(yaml);
      const Responded r =
          respond(yaml, {{"x-powered-by", "Express"}, {"Content-Type", "text/plain"}, {"X-POWERED-BY", "PHP"}});
      const http::ResponseHead& head = r.head;
      EXPECT_EQ(head.fields.count("X-Powered-By"), c.left);
      EXPECT_EQ(head.fields.get("X-Powered-By"), c.value);
      EXPECT_EQ(head.fields.get(extra), "added");
      EXPECT_EQ(head.fields.get("Content-Type"), "text/plain");
    }
  }
}

TEST(SecurityHeaders, PerHeaderValuesAndFalse) {
  config::Diagnostics diag("t.yaml");
  SecurityHeadersPolicy p("sec", parse_security_headers(entry(R"yaml({type: security_headers, headers: {
      X-Frame-Options: DENY, Content-Security-Policy: false, Permissions-Policy: "camera=()"}})yaml"),
                                                        diag));
  ASSERT_TRUE(diag.empty());
  Harness h;
  http::ResponseHead head;
  head.fields.add("Content-Security-Policy", "default-src *");
  p.on_response(h.ctx, head);
  EXPECT_EQ(head.fields.get("X-Frame-Options"), "DENY");
  EXPECT_EQ(head.fields.get("Content-Security-Policy"), "default-src *");
  EXPECT_EQ(head.fields.get("Permissions-Policy"), "camera=()");
}

TEST(SecurityHeaders, ReportsBadOptionsWithPaths) {
  config::Diagnostics diag("t.yaml");
  parse_security_headers(entry("{type: security_headers, overide: true, headers: {\"bad name\": x}}"), diag);
  ASSERT_EQ(diag.list().size(), 2u);
  EXPECT_EQ(diag.list()[0].path, "policies.sec.overide");
  EXPECT_NE(diag.list()[0].message.find("did you mean \"override\""), std::string::npos);
  EXPECT_EQ(diag.list()[1].path, "policies.sec.headers.bad name");
}


// Only a plain `false` turns a header off: quoted "false", and YAML 1.1's `no` or `off`, are the
// header's value (YAML 1.2 reads them as strings, and so does every other option).
TEST(SecurityHeaders, OnlyPlainFalseTurnsAHeaderOff) {
  config::Diagnostics diag("t.yaml");
  SecurityHeadersPolicy p("sec", parse_security_headers(entry(R"yaml({type: security_headers, headers: {
      X-A: false, X-B: "false", X-C: no, X-D: Off}})yaml"),
                                                        diag));
  ASSERT_TRUE(diag.empty());
  Harness h;
  http::ResponseHead head;
  head.fields.add("X-A", "kept");
  p.on_response(h.ctx, head);
  EXPECT_EQ(head.fields.get("X-A"), "kept");  // not set, so the service's own stays
  EXPECT_EQ(head.fields.count("X-A"), 1u);
  EXPECT_EQ(head.fields.get("X-B"), "false");
  EXPECT_EQ(head.fields.get("X-C"), "no");
  EXPECT_EQ(head.fields.get("X-D"), "Off");
}

}  // namespace
}  // namespace gh::policies
