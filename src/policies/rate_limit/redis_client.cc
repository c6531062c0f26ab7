#include "policies/rate_limit/redis_client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <deque>
#include <optional>
#include <unordered_map>

namespace gh::policies::redis {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

Result<RedisUrl> RedisUrl::parse(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Error{ErrorCode::InvalidConfig, Source::Config, false,
                 fmt::format("redis URL: {}; expected redis://[user:pass@]host:port[/db]", why)};
  };
  constexpr std::string_view kScheme = "redis://";
  if (!text.starts_with(kScheme)) return bad("no redis:// scheme");
  std::string_view rest = text.substr(kScheme.size());
  RedisUrl u;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (auto colon = cred.find(':'); colon != std::string_view::npos) {
      u.user = cred.substr(0, colon);
      u.password = cred.substr(colon + 1);
    } else {
      u.password = cred;  // redis://secret@host: a password without a user
    }
  }
  std::string_view hostport = rest, db;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    db = rest.substr(slash + 1);
  }
  std::string_view port;
  if (!hostport.empty() && hostport.front() == '[') {  // [::1]:6379
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return bad("unclosed [");
    u.host = hostport.substr(1, close - 1);
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty() && after.front() != ':') return bad("junk after ]");
    if (!after.empty()) port = after.substr(1);
  } else {
    auto colon = hostport.rfind(':');
    u.host = hostport.substr(0, colon);
    if (colon != std::string_view::npos) port = hostport.substr(colon + 1);
  }
  if (u.host.empty()) return bad("no host");
  if (!port.empty() || hostport.ends_with(':')) {
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535)
      return bad("bad port");
    u.port = static_cast<std::uint16_t>(p);
  }
  if (!db.empty()) {
    auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), u.db);
    if (ec != std::errc() || end != db.data() + db.size() || u.db < 0) return bad("bad db number");
  }
  return u;
}

std::string RedisUrl::endpoint() const {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

struct RedisClient::Shared {
  RedisUrl url;
  ClientOptions opts;
};

namespace {

Reply convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STATUS: out.type = Reply::Type::Status; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: out.type = Reply::Type::Error; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STRING: out.type = Reply::Type::String; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_INTEGER: out.type = Reply::Type::Integer; out.integer = r->integer; break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::Array;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default: out.type = Reply::Type::Nil; break;
  }
  return out;
}

// Appends one command in RESP to `out`.
void append_command(std::string& out, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  int n = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), argv.data(), lens.data());
  if (n > 0 && cmd) out.append(cmd, static_cast<std::size_t>(n));
  if (cmd) redisFreeCommand(cmd);
}

Error unavailable(std::string why) { return Error::upstream(ErrorCode::StoreUnavailable, std::move(why)); }

// One connection on one loop. Touched only by that loop's thread.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& io, std::shared_ptr<const RedisClient::Shared> shared)
      : io_(io), shared_(std::move(shared)), socket_(io), resolver_(io), reader_(redisReaderCreate()),
        backoff_(shared_->opts.backoff_min) {}
  ~Connection() {
    if (reader_) redisReaderFree(reader_);
  }

  asio::awaitable<Result<Reply>> command(std::vector<std::string> args) {
    const auto now = std::chrono::steady_clock::now();
    if (state_ == State::Idle) {
      if (now < retry_at_)
        co_return unavailable(fmt::format("redis {} unavailable: {}; next attempt in {}ms", shared_->url.endpoint(),
                                          last_error_,
                                          std::chrono::ceil<std::chrono::milliseconds>(retry_at_ - now).count()));
      start_connect();
    }
    auto p = std::make_shared<Pending>(io_);
    p->timer.expires_after(shared_->opts.timeout);
    append_command(out_, args);
    fifo_.push_back(p);
    kick_writer();
    auto [ec] = co_await p->timer.async_wait(kTuple);
    if (p->result) co_return std::move(*p->result);
    p->abandoned = true;
    if (!ec) {  // the deadline passed; replies are matched by order, so the connection goes
      std::string why = fmt::format("no reply within {}ms", shared_->opts.timeout.count());
      fail(why);
      co_return Error::upstream(ErrorCode::Timeout, fmt::format("redis {}: {}", shared_->url.endpoint(), why));
    }
    co_return unavailable("redis call cancelled");
  }

  // The loop is being torn down: close without touching the waiters (their frames go too).
  void shutdown() {
    ++gen_;
    boost::system::error_code ignore;
    socket_.close(ignore);
    resolver_.cancel();
    fifo_.clear();
  }

 private:
  enum class State { Idle, Connecting, Ready };
  struct Pending {
    explicit Pending(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;           // the deadline; cancelled to wake the waiter
    std::optional<Result<Reply>> result;
    bool abandoned = false;             // the waiter is gone: drop the reply
    std::string handshake;              // non-empty: a connect step (AUTH, SELECT, ...)
    bool last_handshake = false;
  };

  void start_connect() {
    state_ = State::Connecting;
    writing_ = true;  // held until connected, so commands queue behind the handshake
    const RedisUrl& u = shared_->url;
    auto step = [&](std::string name, const std::vector<std::string>& args) {
      append_command(out_, args);
      auto p = std::make_shared<Pending>(io_);
      p->handshake = std::move(name);
      fifo_.push_back(std::move(p));
    };
    if (!u.password.empty()) {
      if (u.user.empty()) step("AUTH", {"AUTH", u.password});
      else step("AUTH", {"AUTH", u.user, u.password});
    }
    if (u.db != 0) step("SELECT", {"SELECT", std::to_string(u.db)});
    for (const auto& s : shared_->opts.scripts) step("SCRIPT LOAD", {"SCRIPT", "LOAD", s});
    step("PING", {"PING"});
    fifo_.back()->last_handshake = true;
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
    auto [cec, ep] = co_await asio::async_connect(self->socket_, endpoints, kTuple);
    if (gen != self->gen_) co_return;
    if (cec) {
      self->fail("connect: " + cec.message());
      co_return;
    }
    self->socket_.set_option(tcp::no_delay(true), ec);
    self->state_ = State::Ready;
    self->writing_ = false;
    self->kick_writer();
    asio::co_spawn(self->io_, read_loop(self, gen), asio::detached);
  }

  void kick_writer() {
    if (state_ != State::Ready || writing_ || out_.empty()) return;
    writing_ = true;
    asio::co_spawn(io_, write_loop(shared_from_this(), gen_), asio::detached);
  }

  static asio::awaitable<void> write_loop(std::shared_ptr<Connection> self, std::uint64_t gen) {
    std::string buf;
    while (gen == self->gen_ && !self->out_.empty()) {
      buf.clear();
      buf.swap(self->out_);
      auto [ec, n] = co_await asio::async_write(self->socket_, asio::buffer(buf), kTuple);
      if (gen != self->gen_) co_return;
      if (ec) {
        self->fail("write: " + ec.message());
        co_return;
      }
    }
    if (gen == self->gen_) self->writing_ = false;
  }

  static asio::awaitable<void> read_loop(std::shared_ptr<Connection> self, std::uint64_t gen) {
    std::array<char, 16 * 1024> buf;
    for (;;) {
      auto [ec, n] = co_await self->socket_.async_read_some(asio::buffer(buf), kTuple);
      if (gen != self->gen_) co_return;
      if (ec) {
        self->fail(ec == asio::error::eof ? std::string("closed by the server") : "read: " + ec.message());
        co_return;
      }
      if (redisReaderFeed(self->reader_, buf.data(), n) != REDIS_OK) {
        self->fail("unreadable reply");
        co_return;
      }
      for (;;) {
        void* r = nullptr;
        if (redisReaderGetReply(self->reader_, &r) != REDIS_OK) {
          self->fail(std::string("protocol error: ") + self->reader_->errstr);
          co_return;
        }
        if (!r) break;
        Reply reply = convert(static_cast<redisReply*>(r));
        freeReplyObject(r);
        if (self->fifo_.empty()) {
          self->fail("a reply nobody asked for");
          co_return;
        }
        std::shared_ptr<Pending> p = std::move(self->fifo_.front());
        self->fifo_.pop_front();
        if (!p->handshake.empty()) {
          if (reply.is_error()) {
            self->fail(p->handshake + ": " + reply.str);
            co_return;
          }
          if (p->last_handshake) {
            if (self->logged_down_)
              fmt::print(stderr, "gatehouse: redis {}: connected again\n", self->shared_->url.endpoint());
            self->logged_down_ = false;
            self->backoff_ = self->shared_->opts.backoff_min;
          }
          continue;
        }
        if (p->abandoned) continue;
        p->result = std::move(reply);
        p->timer.cancel();
      }
    }
  }

  // Fails every pending call, closes, and backs off before the next connect.
  void fail(const std::string& why) {
    ++gen_;
    state_ = State::Idle;
    boost::system::error_code ignore;
    socket_.close(ignore);
    resolver_.cancel();
    redisReaderFree(reader_);
    reader_ = redisReaderCreate();
    out_.clear();
    writing_ = false;
    last_error_ = why;
    retry_at_ = std::chrono::steady_clock::now() + backoff_;
    if (!logged_down_)
      fmt::print(stderr, "gatehouse: redis {}: {}; retrying in {}ms\n", shared_->url.endpoint(), why,
                 backoff_.count());
    logged_down_ = true;
    backoff_ = std::min(backoff_ * 2, shared_->opts.backoff_max);
    std::deque<std::shared_ptr<Pending>> pending;
    pending.swap(fifo_);
    const std::string msg = fmt::format("redis {}: {}", shared_->url.endpoint(), why);
    for (auto& p : pending) {
      if (p->abandoned || !p->handshake.empty()) continue;
      p->result = unavailable(msg);
      p->timer.cancel();
    }
  }

  asio::io_context& io_;
  std::shared_ptr<const RedisClient::Shared> shared_;
  tcp::socket socket_;
  tcp::resolver resolver_;
  redisReader* reader_;
  std::deque<std::shared_ptr<Pending>> fifo_;  // replies owed, in the order sent
  std::string out_;                            // commands not yet handed to the socket
  bool writing_ = false;
  State state_ = State::Idle;
  std::uint64_t gen_ = 0;  // bumped by every close; loops of an older generation stop
  std::chrono::steady_clock::time_point retry_at_{};
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

RedisClient::RedisClient(RedisUrl url, ClientOptions opts)
    : id_(next_client_id.fetch_add(1, std::memory_order_relaxed)),
      shared_(std::make_shared<const Shared>(Shared{std::move(url), std::move(opts)})) {}

const RedisUrl& RedisClient::url() const noexcept { return shared_->url; }
const ClientOptions& RedisClient::options() const noexcept { return shared_->opts; }

asio::awaitable<Result<Reply>> RedisClient::command(asio::io_context& io, std::vector<std::string> args) const {
  std::shared_ptr<Connection>& slot = asio::use_service<Registry>(io).connections[id_];
  if (!slot) slot = std::make_shared<Connection>(io, shared_);
  std::shared_ptr<Connection> conn = slot;
  co_return co_await conn->command(std::move(args));
}

}  // namespace gh::policies::redis
