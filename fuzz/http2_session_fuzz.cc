// libFuzzer target for what an HTTP/2 client sends (src/proxy/http2_session.h). The input, after
// the connection preface, is written over a real loopback TCP connection to a real Http2Session
// on a Worker, and the client then closes its side. The worker's config routes /api to an
// HTTP/1.1 service in the same process (it answers each request once, then closes), /down to an
// instance that refuses connections, and everything else to a 404. So nghttp2's framing, HPACK
// and flow control, and gatehouse's callbacks, budgets, header checks, translation to HTTP/1.1,
// stream bodies and resets all see the bytes, and each stream runs its Exchange to the end.
// Invariants:
// - the session and its exchanges end once the client has closed (nothing left running);
// - every request head that reaches the service is one that gatehouse's own HTTP/1.1 parser
//   accepts whole: no field the client sent can break the head it is translated into.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "app/registry.h"
#include "app/runtime.h"
#include "app/snapshot_builder.h"
#include "config/config.h"
#include "core/log.h"
#include "fuzz_check.h"
#include "http/parser.h"
#include "proxy/http2_session.h"
#include "proxy/worker.h"

namespace {

using namespace gh;
namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// Every request head the service received, checked as it arrives.
std::size_t heads_seen = 0;

void check_head(std::string_view head) {
  http::ParseLimits generous;
  generous.max_uri_bytes = generous.max_header_bytes = 1 << 20;
  generous.max_headers = 10000;
  http::RequestHead req;
  const auto outcome = http::parse_request(head, generous, req);
  if (outcome.state != http::ParseState::Complete)
    std::fprintf(stderr, "service received a head its parser refuses:\n%.*s\n", static_cast<int>(head.size()),
                 head.data());
  FUZZ_CHECK(outcome.state == http::ParseState::Complete);
  ++heads_seen;
}

// The service: reads one request head, answers 200 "ok" and closes.
asio::awaitable<void> answer(tcp::socket s) {
  std::string in;
  char buf[4096];
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), nothrow);
    if (ec) co_return;
    in.append(buf, n);
    if (const auto end = in.find("\r\n\r\n"); end != std::string::npos) {
      check_head(std::string_view(in).substr(0, end + 4));
      break;
    }
    if (in.size() > (1u << 20)) co_return;
  }
  static constexpr std::string_view kAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
  co_await asio::async_write(s, asio::buffer(kAnswer), nothrow);
  // Waits for the gateway to close, then resets: neither side keeps the connection in
  // TIME_WAIT, which would use up loopback ports at thousands of inputs per second.
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), nothrow);
    if (ec) break;
  }
  boost::system::error_code ignore;
  s.set_option(asio::socket_base::linger(true, 0), ignore);
}

asio::awaitable<void> serve(tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, s] = co_await acceptor.async_accept(nothrow);
    if (ec) co_return;
    asio::co_spawn(acceptor.get_executor(), answer(std::move(s)), asio::detached);
  }
}

struct World {
  asio::io_context control;
  app::Runtime runtime{control.get_executor(), 1};
  proxy::GatewayShared shared;
  proxy::Worker worker{0, shared, nullptr};
  tcp::acceptor service{worker.io(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  tcp::acceptor gateway{worker.io(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};

  World() {
    log::setup(log::Level::Error, log::Format::Text);
    const std::string yaml = "listen: 127.0.0.1:0\n"
                             "access_log: off\n"
                             "limits: {max_body_bytes: 64KiB, max_header_bytes: 4KiB, max_headers: 20}\n"
                             "services:\n"
                             "  api:\n"
                             "    instances: [http://127.0.0.1:" +
                             std::to_string(service.local_endpoint().port()) +
                             "]\n"
                             "    timeouts: {connect: 1s, response: 2s}\n"
                             "  down:\n"
                             "    instances: [http://127.0.0.1:1]\n"
                             "routes:\n"
                             "  - {path: /api, service: api}\n"
                             "  - {path: /down, service: down}\n";
    auto loaded = config::load_string(yaml, "http2_session_fuzz.yaml", app::policy_catalog());
    if (!loaded.config) std::fprintf(stderr, "%s\n", loaded.errors.at(0).to_string().c_str());
    FUZZ_CHECK(loaded.config.has_value());
    auto built = app::build_snapshot(std::make_shared<const config::Config>(std::move(*loaded.config)), nullptr, runtime);
    FUZZ_CHECK(built.has_value());
    worker.set_snapshot(*built);
    asio::co_spawn(worker.io(), serve(service), asio::detached);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World* world = new World;  // lives for the whole run
  static const bool verbose = std::getenv("GH_FUZZ_VERBOSE") != nullptr;
  World& w = *world;
  const std::size_t heads_before = heads_seen;

  // The client closes first, so its side of each connection waits in TIME_WAIT; a source
  // address of its own for each input (127.0.0.0/8) keeps those from using up the ports.
  static std::uint32_t source = 0;
  source = source % 0xfffe + 1;
  tcp::socket client(w.worker.io());
  boost::system::error_code ec;
  client.open(tcp::v4(), ec);
  FUZZ_CHECK(!ec);
  client.bind(tcp::endpoint(asio::ip::address_v4(0x7f010000u + source), 0), ec);
  FUZZ_CHECK(!ec);
  // Without blocking calls: libFuzzer's timer signal would interrupt them.
  client.non_blocking(true);
  client.connect(w.gateway.local_endpoint(), ec);
  if (ec == asio::error::in_progress || ec == asio::error::would_block || ec == asio::error::interrupted) {
    pollfd p{client.native_handle(), POLLOUT, 0};
    while (::poll(&p, 1, 1000) < 0 && errno == EINTR) {
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(client.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len);
    ec = boost::system::error_code(err, boost::system::system_category());
  }
  if (ec) std::fprintf(stderr, "connect: %s\n", ec.message().c_str());
  FUZZ_CHECK(!ec);
  tcp::socket accepted(w.worker.io());
  do w.gateway.accept(accepted, ec);
  while (ec == asio::error::interrupted);
  if (ec) std::fprintf(stderr, "accept: %s\n", ec.message().c_str());
  FUZZ_CHECK(!ec);
  const std::string peer = "127.0.0.1";
  w.shared.open_connections.fetch_add(1);  // as the listener counts it; the session gives it back
  proxy::start_http2_session(w.worker, net::Stream(std::move(accepted)), proxy::Http2Start{nullptr, peer, {}});

  // What the client sends: the preface, then the input; then it closes its sending side and
  // reads everything the gateway answers until the gateway closes.
  std::string out(proxy::kHttp2Preface);
  out.append(reinterpret_cast<const char*>(data), size);
  std::size_t sent = 0;
  bool shut = false, eof = false;
  char sink[16384];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  while (w.worker.session_count() > 0 || !eof) {
    FUZZ_CHECK(std::chrono::steady_clock::now() < deadline);  // a session that never ends
    if (sent < out.size()) {
      const std::size_t n = client.write_some(asio::buffer(out.data() + sent, out.size() - sent), ec);
      if (!ec) sent += n;
      else if (ec != asio::error::would_block) sent = out.size();  // the gateway closed
    }
    if (sent == out.size() && !shut) {
      client.shutdown(tcp::socket::shutdown_send, ec);
      shut = true;
    }
    for (;;) {
      client.read_some(asio::buffer(sink), ec);
      if (ec == asio::error::would_block) break;
      if (ec) {
        eof = true;
        break;
      }
    }
    w.worker.io().run_one_for(std::chrono::milliseconds(5));
  }
  client.close(ec);
  // Finish what the ended session left (the service's side of its last connections).
  w.worker.io().poll();
  if (verbose)  // GH_FUZZ_VERBOSE=1 ./http2_session_fuzz SEED...: what each input reached
    std::fprintf(stderr, "%zu bytes: %zu request heads reached the service\n", size, heads_seen - heads_before);
  return 0;
}
