// HTTP/2 attacks against the real binary (SPEC §7 "HTTP/2 to clients"), with hand-built frames a
// correct client never sends: rapid reset, CONTINUATION flood, HPACK bomb, header lists over the
// limits, PING/SETTINGS/PRIORITY/empty-DATA floods, resets the client provokes, a zero-window
// reader, malformed fields, and a client's RST_STREAM cancelling the service's request. Each ends
// as SPEC says (GOAWAY, a stream error or a 431) with bounded CPU and memory, reaches no service
// or leaves no work running there, and leaves the gateway serving. h2c throughout, and a few
// over TLS (ALPN h2) to show the defences do not depend on the listener.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>

#include "harness/assertions.h"
#include "harness/h2.h"
#include "harness/tls.h"

namespace gh::integ {
namespace {

Gateway::Options raw_options() {
  Gateway::Options o;
  o.add_header = false;
  return o;
}

// An h2c gateway: /held goes to a holding service (when given), everything else to UP; TOP adds
// top-level keys (limits, ...) and SERVICE_EXTRA keys to both services.
std::string h2c_config(const Upstream& up, const HoldingService* held = nullptr, const std::string& top = "",
                       const std::string& service_extra = "") {
  std::string held_service, held_route;
  if (held) {
    held_service = fill("  held:\n    instances: [\"{H}\"]\n{X}\n", {{"H", held->url()}, {"X", service_extra}});
    held_route = "  - path: /held\n    service: held\n";
  }
  return fill(R"(listen:
  - address: "127.0.0.1:{PORT}"
    h2c: true
workers: 2
access_log: off
{TOP}
services:
  svc:
    instances: ["{U}"]
{X}
{HS}
routes:
{HR}
  - path: /
    service: svc
)",
              {{"U", up.url()}, {"X", service_extra}, {"TOP", top}, {"HS", held_service}, {"HR", held_route}});
}

// A gateway with a TLS listener (a certificate for api.test and 127.0.0.1) and WORKERS workers,
// routing everything to the one service at URL; tls() verifies it as a client would.
class TlsFront {
 public:
  TlsFront(const std::string& url, int workers) : pki_(dir_.path()) {
    CertSpec spec;
    spec.cn = "api.test";
    spec.dns = {"api.test"};
    spec.ips = {"127.0.0.1"};
    const CertFiles cert = pki_.issue("api", spec);
    gw_.emplace(fill(R"(listen:
  - address: "127.0.0.1:{PORT}"
    tls: {cert: "{C}", key: "{K}"}
workers: {W}
access_log: off
services:
  svc: {instances: ["{U}"]}
routes:
  - path: /
    service: svc
)",
                     {{"C", cert.cert}, {"K", cert.key}, {"W", std::to_string(workers)}, {"U", url}}),
                raw_options());
  }
  Gateway& gw() { return *gw_; }
  TlsOptions tls() const {
    TlsOptions t;
    t.ca_file = pki_.ca_file();
    t.sni = "api.test";
    t.verify_name = "api.test";
    return t;
  }

 private:
  TempDir dir_;
  Pki pki_;
  std::optional<Gateway> gw_;
};

std::string request_block(std::string_view method, std::string_view path) {
  return Hpack().request(method, path).bytes();
}

// Sends COUNT frames, frame I made by MAKE(I), in batches, stopping when the gateway stops taking
// them; how many were sent.
int flood(RawH2& raw, const std::function<std::string(int)>& make, int count, int batch = 500) {
  int sent = 0;
  while (sent < count) {
    std::string chunk;
    for (int i = 0; i < batch; ++i) chunk += make(sent + i);
    if (!raw.send(chunk, 5s)) break;
    sent += batch;
  }
  return sent;
}

// The gateway still answers a fresh h2c connection.
::testing::AssertionResult StillServes(const Gateway& gw, std::string_view path = "/fresh") {
  H2Client c(gw.port());
  auto r = c.get(path);
  if (r.status != 200) return ::testing::AssertionFailure() << "a fresh connection got: " << r.describe();
  return ::testing::AssertionSuccess();
}

// A GOAWAY arrived (or at least the connection closed) within TIMEOUT.
::testing::AssertionResult EndsConnection(RawH2& raw, Millis timeout = 5s) {
  auto g = raw.wait_for_goaway(timeout);
  if (g) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "no GOAWAY\n" << raw.summary();
}

// ---- rapid reset -------------------------------------------------------------------------------

// 10,000 HEADERS + RST_STREAM pairs: GOAWAY, at most 100 requests at the service at once, none of
// them left running there, bounded CPU, and the gateway serves a fresh connection afterwards.
TEST(Http2Attacks, RapidResetEndsInGoaway) {
  Upstream up("svc");
  HoldingService held(20s);
  Gateway gw(h2c_config(up, &held), raw_options());
  GH_START(gw);
  const double cpu0 = cpu_seconds(gw.pid());
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  const std::string block = request_block("GET", "/held/r");
  int pairs = 0;
  std::string batch;
  for (std::int32_t id = 1; pairs < 10000; id += 2) {
    batch += frame::headers(id, block, true) + frame::rst_stream(id, h2::CANCEL);
    ++pairs;
    if (pairs % 250 == 0) {
      if (!raw.send(batch, 5s)) break;
      batch.clear();
    }
  }
  auto g = raw.wait_for_goaway(10s);
  ASSERT_TRUE(g.has_value()) << "no GOAWAY after " << pairs << " HEADERS+RST_STREAM pairs\n" << raw.summary();
  EXPECT_NE(g->code, h2::NO_ERROR) << raw.summary();
  EXPECT_TRUE(raw.wait_closed(5s)) << raw.summary();

  // Whatever reached the service is cancelled there, never more than 100 at once.
  EXPECT_TRUE(eventually([&] { return held.in_flight() == 0; }, 5s))
      << held.in_flight() << " requests still held at the service";
  EXPECT_LE(held.max_in_flight(), 100) << held.heads() << " heads reached the service";
  EXPECT_EQ(held.answered(), 0);
  const double cpu = cpu_seconds(gw.pid()) - cpu0;
  EXPECT_LT(cpu, 5.0) << "the gateway spent " << cpu << " s of CPU on the attack";
  EXPECT_TRUE(StillServes(gw));
}

// The same defences on a TLS listener (ALPN h2): a PING flood, a CONTINUATION flood and rapid
// reset each end in GOAWAY.
TEST(Http2Attacks, DefencesHoldOverTls) {
  Upstream up("svc");
  TlsFront front(up.url(), 2);
  Gateway& gw = front.gw();
  GH_START(gw);
  const TlsOptions tls = front.tls();
  const std::string block = Hpack().request("GET", "/x", "api.test", "https").bytes();
  const std::vector<std::pair<const char*, std::function<std::string(int)>>> attacks = {
      {"ping flood", [](int) { return frame::ping("floodpin"); }},
      {"continuation flood",
       [&](int i) {
         return i == 0 ? frame::headers(1, block, true, false) : frame::continuation(1, Hpack().literal("x-pad", "v").bytes(), false);
       }},
      {"rapid reset", [&](int i) { return frame::headers(1 + 2 * i, block, true) + frame::rst_stream(1 + 2 * i, h2::CANCEL); }},
  };
  for (const auto& [name, make] : attacks) {
    SCOPED_TRACE(name);
    RawH2 raw(gw.port(), tls);
    ASSERT_TRUE(raw.ok()) << raw.error();
    ASSERT_TRUE(raw.handshake());
    flood(raw, make, 20000, 100);
    auto g = raw.wait_for_goaway(5s);
    ASSERT_TRUE(g.has_value()) << name << ": no GOAWAY\n" << raw.summary();
    EXPECT_NE(g->code, h2::NO_ERROR) << raw.summary();
    EXPECT_TRUE(raw.wait_closed(5s)) << raw.summary();
  }
  EXPECT_TRUE(ReachedNothing(up));
  H2Options o;
  o.tls = tls;
  o.authority = "api.test";
  H2Client c(gw.port(), o);
  EXPECT_EQ(c.get("/fresh").status, 200) << c.error();
}

// ---- header blocks -----------------------------------------------------------------------------

// HEADERS without END_HEADERS followed by more than 8 CONTINUATION frames: connection error,
// nothing reaches the service.
TEST(Http2Attacks, ContinuationFloodEndsInGoaway) {
  Upstream up("svc");
  Gateway gw(h2c_config(up), raw_options());
  GH_START(gw);
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  std::string bytes = frame::headers(1, request_block("GET", "/flood"), true, false);
  for (int i = 0; i < 200; ++i) {
    bytes += frame::continuation(1, Hpack().literal("x-pad-" + std::to_string(i), "v").bytes(), false);
  }
  raw.send(bytes);
  EXPECT_TRUE(EndsConnection(raw));
  if (raw.goaway()) { EXPECT_NE(raw.goaway()->code, h2::NO_ERROR) << raw.summary(); }
  EXPECT_TRUE(raw.wait_closed(5s)) << raw.summary();
  EXPECT_TRUE(ReachedNothing(up));
  EXPECT_TRUE(StillServes(gw));
}

// Empty CONTINUATION frames count as well.
TEST(Http2Attacks, EmptyContinuationFloodEndsInGoaway) {
  Upstream up("svc");
  Gateway gw(h2c_config(up), raw_options());
  GH_START(gw);
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  std::string bytes = frame::headers(1, request_block("GET", "/flood"), true, false);
  for (int i = 0; i < 1000; ++i) bytes += frame::continuation(1, "", false);
  raw.send(bytes);
  EXPECT_TRUE(EndsConnection(raw));
  EXPECT_TRUE(ReachedNothing(up));
}

// Up to 8 CONTINUATION frames are a normal request.
TEST(Http2Attacks, EightContinuationsAreFine) {
  Upstream up("svc");
  Gateway gw(h2c_config(up), raw_options());
  GH_START(gw);
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  std::string bytes = frame::headers(1, request_block("GET", "/eight"), true, false);
  for (int i = 0; i < 8; ++i) {
    bytes += frame::continuation(1, Hpack().literal("x-part-" + std::to_string(i), "v").bytes(), i == 7);
  }
  ASSERT_TRUE(raw.send(bytes));
  auto r = raw.response(1);
  EXPECT_EQ(r.status, 200) << r.describe() << "\n" << raw.summary();
  ASSERT_EQ(up.request_count(), 1u);
  EXPECT_EQ(up.requests()[0].headers.value_or("x-part-7", ""), "v");
}

// One ~4 KiB field in the dynamic table referenced thousands of times: each block is small on the
// wire and tens of MiB decoded. The stream gets a 431 (or the connection a GOAWAY), nothing
// reaches the service, and the gateway's memory stays bounded.
TEST(Http2Attacks, HpackBombIsBounded) {
  Upstream up("svc");
  Gateway gw(h2c_config(up), raw_options());
  GH_START(gw);
  const long rss0 = rss_kib(gw.pid());
  ASSERT_GT(rss0, 0);
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  Hpack bomb;
  bomb.request("GET", "/bomb").insert("x-bomb", std::string(4000, 'b'));
  for (int i = 0; i < 3000; ++i) bomb.indexed(62);  // 3000 x 4 KB = 12 MB decoded from 7 KB
  ASSERT_TRUE(raw.send(frame::headers(1, bomb.bytes(), true)));
  auto first = raw.response(1, 5s);
  const bool goaway = raw.goaway().has_value();
  EXPECT_TRUE(first.status == 431 || first.rst_code >= 0 || goaway)
      << first.describe() << "\n" << raw.summary();
  if (first.status != 0) { EXPECT_EQ(first.status, 431) << first.describe(); }
  long peak = rss_kib(gw.pid());
  // More bombs on the same connection while it lasts.
  for (std::int32_t id = 3; id <= 61 && !raw.goaway() && !raw.closed(); id += 2) {
    if (!raw.send(frame::headers(id, Hpack().request("GET", "/bomb").indexed(62).bytes() +
                                         std::string(3000, static_cast<char>(0x80 | 62)),
                                 true))) {
      break;
    }
    auto r = raw.response(id, 5s);
    if (r.status != 0) { EXPECT_EQ(r.status, 431) << "stream " << id << ": " << r.describe(); }
    peak = std::max(peak, rss_kib(gw.pid()));
  }
  EXPECT_LT(peak - rss0, 64 * 1024) << "RSS grew from " << rss0 << " KiB to " << peak << " KiB";
  EXPECT_TRUE(ReachedNothing(up));
  EXPECT_TRUE(StillServes(gw));
}

// A header list over max_header_bytes or max_headers: 431 on that stream; the connection serves
// the next stream.
TEST(Http2Attacks, HeaderListOverTheLimitsIs431OnThatStream) {
  Upstream up("svc");
  Gateway gw(h2c_config(up, nullptr, "limits: {max_header_bytes: 4096, max_headers: 20}"), raw_options());
  GH_START(gw);
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  ASSERT_TRUE(raw.send(frame::headers(1, Hpack().request("GET", "/big").literal("x-big", std::string(5000, 'x')).bytes(), true)));
  auto big = raw.response(1);
  EXPECT_EQ(big.status, 431) << big.describe() << "\n" << raw.summary();
  Hpack many;
  many.request("GET", "/many");
  for (int i = 0; i < 30; ++i) many.literal("x-h" + std::to_string(i), "v");
  ASSERT_TRUE(raw.send(frame::headers(3, many.bytes(), true)));
  auto lots = raw.response(3);
  EXPECT_EQ(lots.status, 431) << lots.describe() << "\n" << raw.summary();
  EXPECT_TRUE(ReachedNothing(up));
  ASSERT_TRUE(raw.send(frame::headers(5, Hpack().request("GET", "/fine").literal("x-small", "v").bytes(), true)));
  auto fine = raw.response(5);
  EXPECT_EQ(fine.status, 200) << fine.describe() << "\n" << raw.summary();
  EXPECT_FALSE(raw.goaway().has_value()) << raw.summary();
  EXPECT_EQ(up.request_count(), 1u);
}

// ---- floods ------------------------------------------------------------------------------------

struct FloodCase {
  const char* name;
  std::string setup;                      // frames sent once before the flood
  std::function<std::string(int)> frame;  // the Ith frame of the flood
};

class Http2Floods : public ::testing::TestWithParam<int> {};

std::vector<FloodCase> flood_cases() {
  const std::string post = frame::headers(1, request_block("POST", "/upload"), false);
  return {
      {"ping", "", [](int) { return frame::ping("floodpin"); }},
      {"settings", "", [](int) { return frame::settings({{h2::HEADER_TABLE_SIZE, 4096}}); }},
      {"empty_settings", "", [](int) { return frame::settings(); }},
      {"priority", "", [](int i) { return frame::priority(3 + 2 * (i % 1000), 0); }},
      {"empty_data", post, [](int) { return frame::data(1, "", false); }},
      {"empty_padded_data", post, [](int) { return frame::data(1, "", false, 0); }},
  };
}

// A flood of frames that each cost the gateway work but carry nothing ends in GOAWAY
// ENHANCE_YOUR_CALM, within bounded CPU, and the gateway serves a fresh connection.
TEST_P(Http2Floods, EndInGoawayEnhanceYourCalm) {
  const FloodCase c = flood_cases()[static_cast<std::size_t>(GetParam())];
  SCOPED_TRACE(c.name);
  Upstream up("svc");
  Gateway gw(h2c_config(up), raw_options());
  GH_START(gw);
  const double cpu0 = cpu_seconds(gw.pid());
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  if (!c.setup.empty()) { ASSERT_TRUE(raw.send(c.setup)); }
  const int sent = flood(raw, c.frame, 100000);
  auto g = raw.wait_for_goaway(5s);
  ASSERT_TRUE(g.has_value()) << c.name << ": no GOAWAY after " << sent << " frames\n" << raw.summary();
  EXPECT_EQ(g->code, h2::ENHANCE_YOUR_CALM) << raw.summary();
  EXPECT_TRUE(raw.wait_closed(5s)) << raw.summary();
  const double cpu = cpu_seconds(gw.pid()) - cpu0;
  EXPECT_LT(cpu, 5.0) << "the gateway spent " << cpu << " s of CPU on " << sent << " frames";
  EXPECT_TRUE(StillServes(gw));
}

INSTANTIATE_TEST_SUITE_P(Http2Attacks, Http2Floods, ::testing::Range(0, static_cast<int>(flood_cases().size())),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(flood_cases()[static_cast<std::size_t>(info.param)].name);
                         });

// Resets the client provokes with its own frames, each a stream error the gateway must answer
// (RST_STREAM, or at its choice a connection error, RFC 9113 §5.4), many times over: the budget
// for them runs out in a GOAWAY, none of those requests stays at the service, CPU stays bounded.
struct Provoker {
  const char* name;
  std::function<std::string(std::int32_t)> frames;  // for stream ID
};

std::vector<Provoker> provokers() {
  return {
      {"uppercase_field",
       [](std::int32_t id) {
         return frame::headers(id, Hpack().request("GET", "/held/p").literal("X-Bad", "v").bytes(), true);
       }},
      {"data_after_end_stream",
       [](std::int32_t id) {
         return frame::headers(id, request_block("GET", "/held/p"), true) + frame::data(id, "x", true);
       }},
      {"content_length_exceeded",
       [](std::int32_t id) {
         return frame::headers(id, Hpack().request("POST", "/held/p").literal("content-length", "1").bytes(), false) +
                frame::data(id, "too long", true);
       }},
      {"data_beyond_the_window",
       [](std::int32_t id) {
         // 80 KiB on a stream whose window is 64 KiB, without waiting for a WINDOW_UPDATE.
         std::string out = frame::headers(id, request_block("POST", "/held/p"), false);
         for (int i = 0; i < 5; ++i) out += frame::data(id, std::string(16384, 'w'), i == 4);
         return out;
       }},
      {"zero_window_update",
       [](std::int32_t id) {
         return frame::headers(id, request_block("GET", "/held/p"), true) + frame::window_update(id, 0);
       }},
  };
}

class Http2ProvokedResets : public ::testing::TestWithParam<int> {};

TEST_P(Http2ProvokedResets, EndInGoaway) {
  const Provoker p = provokers()[static_cast<std::size_t>(GetParam())];
  SCOPED_TRACE(p.name);
  Upstream up("svc");
  HoldingService held(20s);
  Gateway gw(h2c_config(up, &held), raw_options());
  GH_START(gw);
  const double cpu0 = cpu_seconds(gw.pid());
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  const int sent = flood(raw, [&](int i) { return p.frames(1 + 2 * i); }, 10000, 100);
  auto g = raw.wait_for_goaway(5s);
  ASSERT_TRUE(g.has_value()) << "no GOAWAY after " << sent << " provoked resets\n" << raw.summary();
  EXPECT_NE(g->code, h2::NO_ERROR) << raw.summary();
  EXPECT_TRUE(raw.wait_closed(5s)) << raw.summary();
  EXPECT_TRUE(eventually([&] { return held.in_flight() == 0; }, 5s)) << held.in_flight() << " still held";
  EXPECT_LE(held.max_in_flight(), 100);
  EXPECT_EQ(held.answered(), 0);
  const double cpu = cpu_seconds(gw.pid()) - cpu0;
  EXPECT_LT(cpu, 5.0) << "the gateway spent " << cpu << " s of CPU on " << sent << " provoked resets";
  EXPECT_TRUE(StillServes(gw));
}

INSTANTIATE_TEST_SUITE_P(Http2Attacks, Http2ProvokedResets, ::testing::Range(0, static_cast<int>(provokers().size())),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(provokers()[static_cast<std::size_t>(info.param)].name);
                         });

// ---- a reader that never opens its window ------------------------------------------------------

// SETTINGS_INITIAL_WINDOW_SIZE 0 and no WINDOW_UPDATE, asking for a large response: the gateway
// stops reading the service (memory bounded), then resets the stream or closes the connection
// within the service's idle timeout, and the service's request is closed.
// A small response whose every byte waits on a window the client never opens: the stream is
// reset after limits.idle_timeout (not held for ever), and the connection goes on serving.
TEST(Http2Attacks, ZeroWindowOnASmallResponseIsResetAfterTheIdleTimeout) {
  Upstream up("svc");
  up.set_handler([](const Request&) { return Reply::text("a small answer"); });
  Gateway gw(h2c_config(up, nullptr, "limits:\n  idle_timeout: 1s"), raw_options());
  GH_START(gw);
  RawH2 raw(gw.port());
  raw.auto_window_update = false;
  ASSERT_TRUE(raw.handshake({{h2::INITIAL_WINDOW_SIZE, 0}}));
  ASSERT_TRUE(raw.send(frame::headers(1, request_block("GET", "/small"), true)));
  ASSERT_TRUE(up.wait_requests(1));
  const auto t0 = Clock::now();
  bool reset = false, headers = false;
  while (Clock::now() - t0 < 6s && !reset) {
    auto f = raw.next(200ms);
    if (!f) continue;
    if (f->type == h2::DATA && !f->payload.empty()) ADD_FAILURE() << "DATA beyond a zero window: " << f->describe();
    if (f->type == h2::HEADERS && f->stream == 1) headers = true;
    if (f->type == h2::RST_STREAM && f->stream == 1) reset = true;
  }
  EXPECT_TRUE(headers) << raw.summary();
  EXPECT_TRUE(reset) << "stream 1 was not reset within 6 s\n" << raw.summary();
  EXPECT_GE(Clock::now() - t0, 900ms) << "reset before limits.idle_timeout";
  EXPECT_FALSE(raw.closed()) << raw.summary();
  EXPECT_TRUE(StillServes(gw));
}

TEST(Http2Attacks, ZeroWindowReaderIsBoundedAndCutOff) {
  Upstream up("svc");
  const std::string big(64 << 20, 'z');
  up.set_handler([&](const Request&) { return Reply::text(big); });
  Gateway gw(h2c_config(up, nullptr, "limits:\n  idle_timeout: 2s\n  http2: {idle_timeout: 2s}",
                        "    timeouts: {idle: 2s}"),
             raw_options());
  GH_START(gw);
  const long rss0 = rss_kib(gw.pid());
  RawH2 raw(gw.port());
  raw.auto_window_update = false;
  ASSERT_TRUE(raw.handshake({{h2::INITIAL_WINDOW_SIZE, 0}}));
  ASSERT_TRUE(raw.send(frame::headers(1, request_block("GET", "/big"), true)));
  ASSERT_TRUE(up.wait_requests(1));
  // The service is writing 64 MiB; the gateway may hold little of it.
  long peak = 0;
  const auto t0 = Clock::now();
  bool ended = false;
  while (Clock::now() - t0 < 9s) {
    peak = std::max(peak, rss_kib(gw.pid()));
    auto f = raw.next(200ms);
    if (f && f->type == h2::DATA && !f->payload.empty()) ADD_FAILURE() << "DATA beyond a zero window: " << f->describe();
    if (f && ((f->type == h2::RST_STREAM && f->stream == 1) || f->type == h2::GOAWAY)) {
      ended = true;
      break;
    }
    if (raw.closed()) {
      ended = true;
      break;
    }
  }
  EXPECT_TRUE(ended) << "the stalled stream was neither reset nor its connection closed within 9 s\n" << raw.summary();
  EXPECT_LT(peak - rss0, 32 * 1024) << "RSS grew from " << rss0 << " KiB to " << peak << " KiB";
  EXPECT_TRUE(eventually([&] { return up.connections_closed() >= 1; }, 5s))
      << "the service's connection for the stalled stream is still open";
  EXPECT_TRUE(StillServes(gw));
}

// ---- malformed fields --------------------------------------------------------------------------

struct Malformed {
  const char* name;
  std::string frames;  // for stream 1
  bool body_case;      // a content-length mismatch: the head may reach the service, a whole request must not
};

std::vector<Malformed> malformed_cases() {
  auto get = [](Hpack h) { return frame::headers(1, h.bytes(), true); };
  auto base = [] { return Hpack().request("GET", "/bad"); };
  auto post = [](std::string_view cl, std::string_view body) {
    return frame::headers(1, Hpack().request("POST", "/bad").literal("content-length", cl).bytes(), false) +
           frame::data(1, body, true);
  };
  return {
      {"uppercase_name", get(base().literal("X-Upper", "v")), false},
      {"connection_keep_alive", get(base().literal("connection", "keep-alive")), false},
      {"keep_alive", get(base().literal("keep-alive", "timeout=5")), false},
      {"transfer_encoding", get(base().literal("transfer-encoding", "chunked")), false},
      {"upgrade", get(base().literal("upgrade", "websocket")), false},
      {"te_gzip", get(base().literal("te", "gzip")), false},
      {"cr_in_value", get(base().literal("x-v", "a\rb")), false},
      {"lf_in_value", get(base().literal("x-v", "a\nb")), false},
      {"nul_in_value", get(base().literal("x-v", std::string("a\0b", 3))), false},
      // A control byte and DEL inside longer values.
      {"control_byte_in_long_value", get(base().literal("x-v", "0123456789abcdef\x01 and more after it")), false},
      {"del_in_long_value", get(base().literal("x-v", "0123456789abcdefghij\x7f")), false},
      {"host_disagrees", get(base().literal("host", "other.test")), false},
      {"content_length_10_data_5", post("10", "12345"), true},
      {"content_length_5_data_10", post("5", "1234567890"), true},
  };
}

class Http2Malformed : public ::testing::TestWithParam<int> {};

// Each is a stream error (RST_STREAM PROTOCOL_ERROR, or a 400) that no service sees as a
// request; the connection goes on serving.
TEST_P(Http2Malformed, IsAStreamErrorReachingNoService) {
  const Malformed m = malformed_cases()[static_cast<std::size_t>(GetParam())];
  SCOPED_TRACE(m.name);
  Upstream up("svc");
  Gateway gw(h2c_config(up), raw_options());
  GH_START(gw);
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  ASSERT_TRUE(raw.send(m.frames));
  auto r = raw.response(1);
  EXPECT_TRUE(r.rst_code == h2::PROTOCOL_ERROR || r.status == 400)
      << m.name << ": " << r.describe() << "\n" << raw.summary();
  if (m.body_case) {
    EXPECT_EQ(up.request_count(), 0u) << m.name << ": the service got a whole request";
    EXPECT_EQ(up.heads_seen(), up.bodies_aborted()) << "a head reached the service and its body was not cut off";
  } else {
    EXPECT_TRUE(ReachedNothing(up)) << m.name;
  }
  // A stream error, not a connection one: the next stream is served.
  ASSERT_TRUE(raw.send(frame::headers(3, request_block("GET", "/next"), true)));
  auto next = raw.response(3);
  EXPECT_EQ(next.status, 200) << next.describe() << "\n" << raw.summary();
}

INSTANTIATE_TEST_SUITE_P(Http2Attacks, Http2Malformed, ::testing::Range(0, static_cast<int>(malformed_cases().size())),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(malformed_cases()[static_cast<std::size_t>(info.param)].name);
                         });

// The allowed forms of the same fields go through: te: trailers, a host equal to :authority, a
// content-length that matches.
TEST(Http2Attacks, WellFormedFieldsPass) {
  Upstream up("svc");
  up.set_handler(Upstream::echo_body());
  Gateway gw(h2c_config(up), raw_options());
  GH_START(gw);
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  ASSERT_TRUE(raw.send(frame::headers(1, Hpack().request("GET", "/te").literal("te", "trailers").bytes(), true)));
  EXPECT_EQ(raw.response(1).status, 200) << raw.summary();
  ASSERT_TRUE(raw.send(frame::headers(3, Hpack().request("GET", "/host").literal("host", "gw.test").bytes(), true)));
  EXPECT_EQ(raw.response(3).status, 200) << raw.summary();
  ASSERT_TRUE(raw.send(frame::headers(5, Hpack().request("POST", "/cl").literal("content-length", "5").bytes(), false) +
                       frame::data(5, "12", false, 4) + frame::data(5, "345", true)));
  auto r = raw.response(5);
  EXPECT_EQ(r.status, 200) << r.describe() << "\n" << raw.summary();
  EXPECT_EQ(r.body, "12345");
  EXPECT_EQ(up.request_count(), 3u);
}

// ---- cancel ------------------------------------------------------------------------------------

// A client's RST_STREAM closes the service's request at once, and the connection carries on.
TEST(Http2Attacks, ClientResetCancelsTheServiceRequest) {
  Upstream up("svc");
  HoldingService held(20s);
  Gateway gw(h2c_config(up, &held), raw_options());
  GH_START(gw);
  RawH2 raw(gw.port());
  ASSERT_TRUE(raw.handshake());
  ASSERT_TRUE(raw.send(frame::headers(1, request_block("GET", "/held/get"), true)));
  ASSERT_TRUE(eventually([&] { return held.in_flight() == 1; }, 5s)) << raw.summary();
  const auto t0 = Clock::now();
  ASSERT_TRUE(raw.send(frame::rst_stream(1, h2::CANCEL)));
  EXPECT_TRUE(eventually([&] { return held.cancelled() == 1; }, 3s)) << "the service's request is still open";
  EXPECT_LT(Clock::now() - t0, 3s);

  // Mid-request: the body is still coming when the client gives up.
  ASSERT_TRUE(raw.send(frame::headers(3, Hpack().request("POST", "/held/post").literal("content-length", "100000").bytes(),
                                      false) +
                       frame::data(3, std::string(1000, 'p'), false)));
  ASSERT_TRUE(eventually([&] { return held.in_flight() == 1; }, 5s))
      << "the head of a request whose body is still coming did not reach the service\n" << raw.summary();
  ASSERT_TRUE(raw.send(frame::rst_stream(3, h2::CANCEL)));
  EXPECT_TRUE(eventually([&] { return held.cancelled() == 2; }, 3s)) << "the service's request is still open";
  EXPECT_EQ(held.answered(), 0);

  ASSERT_TRUE(raw.send(frame::headers(5, request_block("GET", "/after"), true)));
  EXPECT_EQ(raw.response(5).status, 200) << raw.summary();
  EXPECT_FALSE(raw.goaway().has_value()) << raw.summary();
}

// A client that opens its windows wide and then leaves a 5 MiB answer unread for half a
// second: the gateway's socket fills, the rest waits for room, and every byte arrives in order
// once the client reads (the first write of an answer goes from the stream's own turn,
// Http2Session::flush; what the socket does not take, from the writer).
TEST(Http2Attacks, AClientThatReadsLateGetsEveryByte) {
  Upstream up("svc");
  const std::string big = [] {
    std::string b(5 << 20, '\0');
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<char>('a' + (i * 7 + i / 4093) % 26);
    return b;
  }();
  up.set_handler([&](const Request&) { return Reply::text(big); });
  Gateway gw(h2c_config(up), raw_options());
  GH_START(gw);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    RawH2 raw(gw.port());
    ASSERT_TRUE(raw.handshake({{h2::INITIAL_WINDOW_SIZE, 0x7fffffff}}));
    ASSERT_TRUE(raw.send(frame::window_update(0, 0x7fffffff - 65535)));
    ASSERT_TRUE(raw.send(frame::headers(1, request_block("GET", "/big"), true)));
    ASSERT_TRUE(raw.send(frame::headers(3, request_block("GET", "/big-too"), true)));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto first = raw.response(1, 20s);
    EXPECT_EQ(first.status, 200) << raw.summary();
    EXPECT_TRUE(first.body == big) << first.body.size() << " bytes";
    const auto second = raw.response(3, 20s);
    EXPECT_EQ(second.status, 200) << raw.summary();
    EXPECT_TRUE(second.body == big) << second.body.size() << " bytes";
  }
}

// A TLS client that sends its request and closes at once (no close_notify, no GOAWAY), its end
// coming with the request's record or after it: the request's work at the service ends all the
// same, never left running until the service answers.
TEST(Http2Attacks, ATlsClientThatSendsAndClosesAtOnceLeavesNoWorkAtTheService) {
  HoldingService held(20s);
  TlsFront front(held.url(), 1);
  Gateway& gw = front.gw();
  GH_START(gw);
  const TlsOptions tls = front.tls();
  constexpr int kClients = 8;
  for (int i = 0; i < kClients; ++i) {
    RawH2 raw(gw.port(), tls);
    ASSERT_TRUE(raw.ok()) << raw.error();
    ASSERT_TRUE(raw.handshake());
    ASSERT_TRUE(raw.wait_for([](const Frame& f) { return f.type == h2::SETTINGS && (f.flags & 0x1); }, 5s))
        << "the SETTINGS ack\n" << raw.summary();
    // Every other client's request and end arrive in one segment, read by one receive.
    if (i % 2 == 0) raw.hold_sends();
    ASSERT_TRUE(raw.send(frame::headers(1, Hpack().request("GET", "/held/" + std::to_string(i), "api.test", "https").bytes(), true)));
    raw.close();
  }
  // Each request either never reached the service or was closed there; none is held.
  EXPECT_TRUE(eventually([&] { return held.in_flight() == 0 && held.cancelled() == held.heads(); }, 3s))
      << held.heads() << " requests reached the service, " << held.cancelled() << " closed by the gateway, "
      << held.in_flight() << " still held";
  EXPECT_EQ(held.answered(), 0);
}

}  // namespace
}  // namespace gh::integ
