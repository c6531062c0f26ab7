// Exchange: one request's life, protocol-free (STYLE §3) — snapshot pinning, client address,
// request id, the checks before routing, routing, the policy chain, the pick of an instance,
// retries, the response policies and the access-log line, exactly once. It talks to the
// client through a Downstream and to the instance through a clients::Outbound; it never sees
// a byte of either protocol.
// Thread: one exchange per request, on the worker that owns the connection.
// Failure: expected failures (an instance down, a bad body, a timeout) become answers; an
// exception is a bug, answered 500 when nothing of the response went out, the connection
// closed otherwise — and the request still gets its log line.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "clients/outbound.h"
#include "http/head_writer.h"
#include "proxy/downstream.h"
#include "proxy/policy.h"
#include "proxy/request_context.h"
#include "proxy/snapshot.h"

namespace gh::proxy {

class Worker;

// Storage an exchange borrows from its connection, so a warm connection allocates nothing
// per request: the context's strings and the heads the exchange builds.
struct ExchangeScratch {
  std::string client_ip, request_id, path;
  std::string forwarded_for;
  std::vector<http::Field> out_fields;  // what goes upstream
  http::ResponseHead reply;             // a local reply's head
  std::string reply_body;
};

// What `gatehouse route` and tests see of an exchange while it runs. Every hook has a default
// that changes nothing; the gateway runs with no observer.
class ExchangeObserver {
 public:
  virtual ~ExchangeObserver() = default;
  // The request passed the checks before routing; ctx.route() is the match, or null.
  virtual void routed(const RequestContext& /*ctx*/, int /*route_index*/) {}
  // Whether the exchange runs `policy` (index in the route's chain). false: it is skipped as
  // if it continued (`gatehouse route` describes rate limits instead of spending budget).
  virtual bool run_policy(const RequestContext& /*ctx*/, std::size_t /*index*/, const Policy& /*policy*/) {
    return true;
  }
  virtual void policy_decided(const RequestContext& /*ctx*/, std::size_t /*index*/, const Policy& /*policy*/,
                              const Verdict& /*verdict*/) {}
  // The request as it is about to go to `endpoint`.
  virtual void sending(const RequestContext& /*ctx*/, const upstream::Endpoint& /*endpoint*/,
                       const http::OutgoingRequest& /*request*/) {}
};

class Exchange {
 public:
  // REQUIRES: `down`, `up`, `scratch` and `observer` outlive the exchange; `snap` is the
  // worker's current snapshot, pinned for the request's whole life.
  Exchange(Worker& worker, std::shared_ptr<const Snapshot> snap, Downstream& down, clients::Outbound& up,
           ExchangeScratch& scratch, ExchangeObserver* observer = nullptr);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // Runs the request's life. The access-log line is written before it returns.
  boost::asio::awaitable<void> run();
  // A request whose head could not be read (400, 408, 414, 431...): no route, no policies;
  // answers `status`, logs, and the connection closes.
  boost::asio::awaitable<void> reject_head(int status, std::string_view reason);

  RequestContext& context() noexcept { return ctx_; }

 private:
  void begin();
  boost::asio::awaitable<void> route();
  boost::asio::awaitable<void> proxy();
  boost::asio::awaitable<Result<void>> send_request(const upstream::Endpoint& ep);
  boost::asio::awaitable<void> relay_response(http::ResponseHead& resp);
  // Arguments are plain values or lvalues: brace-initialized temporaries as coroutine arguments
  // are destroyed twice by GCC 12 (PR 99576).
  boost::asio::awaitable<void> local_reply(int status, std::string_view reason, bool close);
  boost::asio::awaitable<void> local_reply(LocalReply& reply, bool close);
  boost::asio::awaitable<void> health_reply();
  void build_request(const upstream::Endpoint& ep, http::OutgoingRequest& out);
  void client_cancelled();
  // arm_after(d), bounded by the gRPC deadline.
  void arm(std::chrono::milliseconds d) noexcept;
  boost::asio::awaitable<void> pump_body();
  // Ends the pump, if one runs, and waits for it: the stream to the instance is closed, and with
  // `stop_reading` the client's body too.
  boost::asio::awaitable<void> join_pump(bool stop_reading);
  void finish();
  void lend_strings() noexcept;

  Worker& worker_;
  std::shared_ptr<const Snapshot> snap_;
  Downstream& down_;
  clients::Outbound& up_;
  ExchangeScratch& sc_;
  ExchangeObserver* observer_;
  RequestContext ctx_;
  // gRPC (SPEC §7): the request's content-type says so; its grpc-timeout, as a deadline.
  bool grpc_ = false;
  std::chrono::steady_clock::time_point grpc_deadline_ = std::chrono::steady_clock::time_point::max();
  // A gRPC request body still streaming to an HTTP/2 instance while the response comes back
  // (bidirectional streaming): the pump that sends it, and how the exchange waits for its end.
  bool pump_running_ = false;
  std::unique_ptr<boost::asio::steady_timer> pump_done_;
  bool upgrade_asked_ = false;  // the request carried an Upgrade field
  bool websocket_ = false;      // ...asking for WebSocket, well formed, on a route that allows it
};

}  // namespace gh::proxy
