#include "proxy/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "proxy/request_context.h"
#include "proxy/worker.h"

namespace gh::proxy {

namespace {
constexpr std::size_t kFlushBytes = 32 * 1024;

// A field that may not apply: its JSON string, or null when empty.
void append_or_null(std::string& out, std::string_view s) {
  if (s.empty()) out += "null";
  else append_json_string(out, s);
}
}  // namespace

std::shared_ptr<AccessLogSink> AccessLogSink::open(const std::string& target, std::string& error) {
  auto s = std::make_shared<AccessLogSink>();
  if (target == "off") return s;
  if (target == "stdout") {
    s->fd_ = STDOUT_FILENO;
  } else if (target == "stderr") {
    s->fd_ = STDERR_FILENO;
  } else {
    s->fd_ = ::open(target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (s->fd_ < 0) {
      error = "cannot open access log " + target + ": " + std::strerror(errno);
      return nullptr;
    }
    s->owns_ = true;
    s->path_ = target;
  }
  return s;
}

bool AccessLogSink::reopen(std::string& error) {
  if (!owns_) return true;
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = "cannot reopen access log " + path_ + ": " + std::strerror(errno);
    return false;
  }
  std::lock_guard lock(mu_);
  // The descriptor number stays the same: a writer never sees a closed one.
  int rc = ::dup3(fd, fd_, O_CLOEXEC);
  int dup_errno = errno;
  ::close(fd);
  if (rc < 0) {
    error = "cannot reopen access log " + path_ + ": " + std::strerror(dup_errno);
    return false;
  }
  return true;
}

AccessLogSink::~AccessLogSink() {
  if (owns_ && fd_ >= 0) ::close(fd_);
}

void AccessLogSink::write(const std::string& data) {
  std::lock_guard lock(mu_);
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd_, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // a broken log target must not stop the gateway
    }
    off += static_cast<std::size_t>(n);
  }
}

void AccessLog::record(const RequestContext& ctx) {
  if (!enabled()) return;
  using namespace std::chrono;
  auto wall = ctx.start_wall;
  std::time_t secs = system_clock::to_time_t(wall);
  auto ms = duration_cast<milliseconds>(wall.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  const auto& req = ctx.request();
  double total_ms = duration<double, std::milli>(ctx.worker().clock().now() - ctx.start).count();

  buf_ += "{\"time\":\"";
  buf_ += ts;
  buf_ += "\",\"request_id\":";
  append_json_string(buf_, ctx.request_id());
  buf_ += ",\"client_ip\":";
  append_json_string(buf_, ctx.client_ip());
  buf_ += ",\"method\":";
  append_json_string(buf_, req.method);
  buf_ += ",\"host\":";
  append_or_null(buf_, req.host);
  buf_ += ",\"path\":";
  append_json_string(buf_, ctx.logged_target.empty() ? req.target : ctx.logged_target);
  buf_ += ",\"route\":";
  if (ctx.route()) append_json_string(buf_, ctx.route()->config->name);
  else buf_ += "null";
  buf_ += ",\"service\":";
  if (ctx.route() && ctx.endpoint) append_json_string(buf_, ctx.route()->service->name());
  else if (ctx.route() && ctx.upstream_ms >= 0) append_json_string(buf_, ctx.route()->service->name());
  else buf_ += "null";
  buf_ += ",\"instance\":";
  if (ctx.endpoint) append_json_string(buf_, ctx.endpoint->url);
  else buf_ += "null";
  fmt::format_to(std::back_inserter(buf_), ",\"status\":{},\"reason\":", ctx.status);
  append_or_null(buf_, ctx.reply_reason);  // set for the gateway's own replies only
  buf_ += ",\"consumer\":";
  append_or_null(buf_, ctx.principal ? std::string_view(ctx.principal->subject) : std::string_view());
  buf_ += ",\"user_agent\":";
  append_or_null(buf_, req.fields.get("user-agent"));
  fmt::format_to(std::back_inserter(buf_), ",\"bytes_in\":{},\"bytes_out\":{},\"upstream_ms\":", ctx.bytes_in,
                 ctx.bytes_out);
  if (ctx.upstream_ms >= 0) fmt::format_to(std::back_inserter(buf_), "{:.3f}", ctx.upstream_ms);
  else buf_ += "null";
  fmt::format_to(std::back_inserter(buf_), ",\"total_ms\":{:.3f}}}\n", total_ms);
  if (buf_.size() >= kFlushBytes) flush();
}

void AccessLog::flush() {
  if (buf_.empty() || !sink_) return;
  sink_->write(buf_);
  buf_.clear();
}

}  // namespace gh::proxy
