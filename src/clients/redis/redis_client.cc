#include "clients/redis/redis_client.h"

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <deque>
#include <optional>
#include <unordered_map>

#include "clients/tls_connect.h"
#include "core/check.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/url.h"
#include "net/stream.h"

namespace gh::clients::redis {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

Result<RedisUrl> RedisUrl::parse(std::string_view text) {
  std::string why;
  auto a = parse_redis_url(text, &why);
  if (!a)
    return Error{ErrorCode::InvalidConfig, Source::Config, false,
                 fmt::format("redis URL: {}; expected redis://[user:pass@]host:port[/db]", why)};
  RedisUrl u;
  u.tls = a->tls;
  u.host = std::move(a->host);
  u.port = a->port;
  u.db = a->db;
  u.user = std::move(a->user);
  u.password = std::move(a->password);
  return u;
}

std::string RedisUrl::endpoint() const {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

struct RedisClient::Shared {
  RedisUrl url;
  ClientOptions opts;
  std::shared_ptr<const TlsTarget> tls;  // rediss://: made with the client; null: plain
  std::string tls_error;                 // rediss:// without a usable context: why
};

namespace {

Error unavailable(std::string why) { return Error::upstream(ErrorCode::StoreUnavailable, std::move(why)); }

// Deadlines are armed on steady_timers, so they are read from the real monotonic clock.
using Clock = core::Clock;
Clock::Monotonic monotonic_now() noexcept { return core::Clock::real().now(); }
// The handler of a co_await on command(): held by the call's Pending entry and invoked in
// place when the reply is read, so a call costs no type erasure and no extra dispatch.
using Handler = asio::async_result<asio::use_awaitable_t<>, void(Result<Reply>)>::handler_type;

// One connection on one loop. Touched only by that loop's thread.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& io, std::shared_ptr<const RedisClient::Shared> shared)
      : io_(io), shared_(std::move(shared)), stream_(io.get_executor()), resolver_(io), deadline_(io),
        backoff_(shared_->opts.backoff_min) {}

  // Queues `resp` and completes `handler` with its reply, or with an Error by its deadline.
  void start(const std::string& resp, Handler handler) {
    const auto now = monotonic_now();
    if (state_ == State::Idle) {
      if (now < retry_at_) {
        // Not from inside the initiation: the waiter has not suspended yet.
        asio::post(io_, asio::append(std::move(handler),
                                     Result<Reply>(unavailable(fmt::format(
                                         "redis {} unavailable: {}; next attempt in {}ms", shared_->url.endpoint(),
                                         last_error_,
                                         std::chrono::ceil<std::chrono::milliseconds>(retry_at_ - now).count())))));
        return;
      }
      start_connect(now);
    }
    out_ += resp;
    fifo_.push_back(Pending{std::move(handler), now + shared_->opts.timeout});
    arm_deadline();
    kick_writer();
  }

  // The loop is being torn down: stop. The waiters' handlers go with this object, when the
  // loop destroys the operations that hold it (the waiters' frames go with them).
  void shutdown() {
    shut_ = true;
    ++gen_;
    stream_.close();
    resolver_.cancel();
    deadline_.cancel();
  }

 private:
  enum class State { Idle, Connecting, Ready };

  struct Pending {
    std::optional<Handler> handler;   // empty for a connect step
    Clock::Monotonic deadline;       // nondecreasing along the FIFO
    const char* step = nullptr;       // a connect step (AUTH, SELECT, ...): its name
    bool last_step = false;
  };

  // Resumes the waiter at once, on this thread; it runs until it next suspends. Called only
  // from handlers of this loop, never from inside start().
  static void complete(std::optional<Handler>& handler, Result<Reply> result) {
    Handler h = std::move(*handler);
    handler.reset();
    std::move(h)(std::move(result));
  }

  void start_connect(Clock::Monotonic now) {
    state_ = State::Connecting;
    const RedisUrl& u = shared_->url;
    const auto deadline = now + shared_->opts.timeout;
    auto step = [&](const char* name, std::initializer_list<std::string_view> args) {
      out_ += Command(args).resp();
      fifo_.push_back(Pending{std::nullopt, deadline, name});
    };
    if (!u.password.empty()) {
      if (u.user.empty()) step("AUTH", {"AUTH", u.password});
      else step("AUTH", {"AUTH", u.user, u.password});
    }
    const std::string db = std::to_string(u.db);
    if (u.db != 0) step("SELECT", {"SELECT", db});
    for (const auto& s : shared_->opts.scripts) step("SCRIPT LOAD", {"SCRIPT", "LOAD", s});
    step("PING", {"PING"});
    fifo_.back().last_step = true;
    asio::co_spawn(io_, connect(shared_from_this(), gen_), asio::detached);
  }

  static asio::awaitable<void> connect(std::shared_ptr<Connection> self, std::uint64_t gen) {
    const RedisUrl& u = self->shared_->url;
    std::vector<tcp::endpoint> endpoints;
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(u.host, ec);
    if (!ec) {
      endpoints.emplace_back(addr, u.port);
    } else {
      auto [rec, results] = co_await self->resolver_.async_resolve(u.host, std::to_string(u.port), kTuple);
      if (gen != self->gen_) co_return;
      if (rec) {
        self->fail("resolve " + u.host + ": " + rec.message());
        co_return;
      }
      for (const auto& r : results) endpoints.push_back(r.endpoint());
    }
    auto [cec, ep] = co_await asio::async_connect(self->stream_.socket(), endpoints, kTuple);
    if (gen != self->gen_) co_return;
    if (cec) {
      self->fail("connect: " + cec.message());
      co_return;
    }
    self->stream_.socket().set_option(tcp::no_delay(true), ec);
    self->stream_.socket().non_blocking(true, ec);  // flush() writes without waiting
    if (u.tls) {
      // The connect steps' deadline covers the handshake: it closes the stream if it lasts.
      if (!self->shared_->tls) {
        self->fail("TLS: " + self->shared_->tls_error);
        co_return;
      }
      Result<void> shaken = co_await tls_handshake(self->stream_, *self->shared_->tls, u.endpoint());
      if (gen != self->gen_) co_return;
      if (!shaken) {
        self->fail(shaken.error().context);
        co_return;
      }
    }
    self->state_ = State::Ready;
    self->kick_writer();
    asio::co_spawn(self->io_, read_loop(self, gen), asio::detached);
  }

  // One timer for every pending call: armed for the oldest call's deadline, which is the
  // nearest, and moved on as replies come in.
  void arm_deadline() {
    if (deadline_armed_ || fifo_.empty()) return;
    deadline_armed_ = true;
    deadline_.expires_at(fifo_.front().deadline);
    deadline_.async_wait([self = shared_from_this()](boost::system::error_code) {
      self->deadline_armed_ = false;
      if (self->shut_ || self->fifo_.empty()) return;
      if (self->fifo_.front().deadline <= monotonic_now()) {
        // Replies are matched by order, so a late one cannot be told apart: the connection goes.
        self->fail(fmt::format("no reply within {}ms", self->shared_->opts.timeout.count()), ErrorCode::Timeout);
        return;
      }
      self->arm_deadline();
    });
  }

  // Writes what is queued once per turn of the loop: every call made in the meantime goes in
  // the same system call.
  void kick_writer() {
    if (state_ != State::Ready || writing_ || flush_posted_ || out_.empty()) return;
    flush_posted_ = true;
    asio::post(io_, [self = shared_from_this(), gen = gen_] {
      if (gen != self->gen_) return;
      self->flush_posted_ = false;
      self->flush();
    });
  }

  void flush() {
    if (state_ != State::Ready || writing_ || out_.empty()) return;
    boost::system::error_code ec;
    std::size_t n = 0;
    // Plain: one non-blocking send now. TLS: through the stream's own write, which waits as
    // OpenSSL asks.
    if (stream_.is_tls()) ec = asio::error::would_block;
    else n = stream_.socket().write_some(asio::buffer(out_), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec.clear();
      n = 0;
    }
    if (ec) {
      fail("write: " + ec.message());
      return;
    }
    out_.erase(0, n);
    if (out_.empty()) return;
    // The socket's buffer is full: the rest goes when it drains; calls meanwhile queue in out_.
    writing_ = true;
    sending_.swap(out_);
    asio::async_write(stream_, asio::buffer(sending_),
                      [self = shared_from_this(), gen = gen_](boost::system::error_code wec, std::size_t) {
                        if (gen != self->gen_) return;
                        if (wec) {
                          self->fail("write: " + wec.message());
                          return;
                        }
                        self->writing_ = false;
                        self->sending_.clear();
                        self->kick_writer();
                      });
  }

  static asio::awaitable<void> read_loop(std::shared_ptr<Connection> self, std::uint64_t gen) {
    std::array<char, 16 * 1024> buf;
    for (;;) {
      auto [ec, n] = co_await self->stream_.async_read_some(asio::buffer(buf), kTuple);
      if (gen != self->gen_) co_return;
      if (ec) {
        self->fail(ec == asio::error::eof ? std::string("closed by the server") : "read: " + ec.message());
        co_return;
      }
      self->reader_.feed(buf.data(), n);
      for (;;) {
        Result<std::optional<Reply>> next = self->reader_.next();
        if (!next) {
          self->fail(next.error().context);
          co_return;
        }
        if (!*next) break;
        Reply reply = std::move(**next);
        if (self->fifo_.empty()) {
          self->fail("a reply nobody asked for");
          co_return;
        }
        Pending p = std::move(self->fifo_.front());
        self->fifo_.pop_front();
        if (p.step) {
          if (reply.is_error()) {
            self->fail(std::string(p.step) + ": " + reply.str);
            co_return;
          }
          if (p.last_step) {
            if (self->logged_down_)
              log::info("redis {}: connected again", self->shared_->url.endpoint());
            self->logged_down_ = false;
            self->backoff_ = self->shared_->opts.backoff_min;
          }
          continue;
        }
        complete(p.handler, std::move(reply));
        if (gen != self->gen_) co_return;  // the resumed waiter's work closed the connection
      }
    }
  }

  // Fails every pending call, closes, and backs off before the next connect.
  void fail(const std::string& why, ErrorCode code = ErrorCode::StoreUnavailable) {
    ++gen_;
    state_ = State::Idle;
    stream_.close();
    resolver_.cancel();
    reader_.reset();
    out_.clear();
    sending_.clear();
    writing_ = false;
    flush_posted_ = false;
    last_error_ = why;
    retry_at_ = monotonic_now() + backoff_;
    if (!logged_down_)
      log::warn("redis {}: {}; retrying in {}ms", shared_->url.endpoint(), why, backoff_.count());
    logged_down_ = true;
    backoff_ = std::min(backoff_ * 2, shared_->opts.backoff_max);
    std::deque<Pending> pending;
    pending.swap(fifo_);
    const std::string msg = fmt::format("redis {}: {}", shared_->url.endpoint(), why);
    for (auto& p : pending)
      if (p.handler) complete(p.handler, Error::upstream(code, msg));
  }

  asio::io_context& io_;
  std::shared_ptr<const RedisClient::Shared> shared_;
  net::Stream stream_;  // plain, or TLS for rediss://
  tcp::resolver resolver_;
  asio::steady_timer deadline_;
  ReplyReader reader_;
  std::deque<Pending> fifo_;  // replies owed, in the order sent
  std::string out_;           // commands not yet handed to the socket
  std::string sending_;       // handed to an async_write that has not finished
  bool writing_ = false;      // an async_write is in progress
  bool flush_posted_ = false;
  bool deadline_armed_ = false;
  bool shut_ = false;  // the loop is being torn down
  State state_ = State::Idle;
  std::uint64_t gen_ = 0;  // bumped by every close; loops of an older generation stop
  Clock::Monotonic retry_at_{};
  std::chrono::milliseconds backoff_;
  std::string last_error_;
  bool logged_down_ = false;  // the outage was logged; the next success logs the recovery
};

// The connections of one io_context, by client id. Shut down with the loop.
class Registry : public asio::execution_context::service {
 public:
  using key_type = Registry;
  static inline asio::execution_context::id id;
  explicit Registry(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}
  std::unordered_map<std::uint64_t, std::shared_ptr<Connection>> connections;

 private:
  void shutdown() override {
    for (auto& [id, c] : connections) c->shutdown();
    connections.clear();
  }
};

std::atomic<std::uint64_t> next_client_id{1};

}  // namespace

namespace {

std::shared_ptr<const RedisClient::Shared> make_shared_state(RedisUrl url, ClientOptions opts) {
  auto s = std::make_shared<RedisClient::Shared>();
  if (url.tls) {
    // rediss://: the system's CAs (SSL_CERT_FILE / SSL_CERT_DIR for a private CA), the host
    // name checked; the host is the SNI when it is a name.
    if (auto ctx = net::TlsClientContext::system(s->tls_error))
      s->tls = TlsTarget::make(std::move(ctx), url.host, {}, "system");
  }
  s->url = std::move(url);
  s->opts = std::move(opts);
  return s;
}

}  // namespace

RedisClient::RedisClient(RedisUrl url, ClientOptions opts)
    : id_(next_client_id.fetch_add(1, std::memory_order_relaxed)),
      shared_(make_shared_state(std::move(url), std::move(opts))) {}

const RedisUrl& RedisClient::url() const noexcept { return shared_->url; }
const ClientOptions& RedisClient::options() const noexcept { return shared_->opts; }

asio::awaitable<Result<Reply>> RedisClient::command(asio::io_context& io, Command cmd) const {
  GH_CHECK(cmd.complete());
  std::shared_ptr<Connection>& slot = asio::use_service<Registry>(io).connections[id_];
  if (!slot) slot = std::make_shared<Connection>(io, shared_);
  return asio::async_initiate<const asio::use_awaitable_t<>, void(Result<Reply>)>(
      [](Handler handler, std::shared_ptr<Connection> conn, Command cmd) {
        conn->start(cmd.resp(), std::move(handler));
      },
      asio::use_awaitable, slot, std::move(cmd));
}

Command::Command(std::size_t argc, std::size_t reserve) : left_(argc) {
  buf_.reserve(reserve);
  buf_ += '*';
  buf_ += fmt::format_int(argc).c_str();
  buf_ += "\r\n";
}

Command::Command(std::initializer_list<std::string_view> args) : Command(args.size()) {
  for (std::string_view a : args) arg(a);
}

void Command::length(std::size_t n) {
  GH_CHECK(left_ > 0);
  --left_;
  buf_ += '$';
  buf_ += fmt::format_int(n).c_str();
  buf_ += "\r\n";
}

Command& Command::arg(std::string_view a) {
  length(a.size());
  buf_ += a;
  buf_ += "\r\n";
  return *this;
}

Command& Command::arg_parts(std::initializer_list<std::string_view> parts) {
  std::size_t n = 0;
  for (std::string_view p : parts) n += p.size();
  length(n);
  for (std::string_view p : parts) buf_ += p;
  buf_ += "\r\n";
  return *this;
}

Command& Command::arg(std::uint64_t n) {
  const fmt::format_int text(n);
  return arg(std::string_view(text.data(), text.size()));
}

}  // namespace gh::clients::redis
