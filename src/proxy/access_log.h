// AccessLog: one JSON line per request (SPEC §2 access_log), buffered per worker and written
// to the shared sink when the buffer fills or at the worker's periodic flush (≤ 100 ms), so a
// request never waits on the log. Thread: AccessLog is per worker; the sink serializes writes
// from all workers (one write(2) per flush).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "core/json.h"

namespace gh::proxy {

class RequestContext;

class AccessLogSink {
 public:
  // target: "stdout", "stderr", "off", or a file path (appended). nullptr + error when it cannot open.
  static std::shared_ptr<AccessLogSink> open(const std::string& target, std::string& error);
  ~AccessLogSink();
  bool enabled() const noexcept { return fd_ >= 0; }
  void write(const std::string& data);
  // For log rotation (SIGUSR1, SIGHUP): a file target is opened again at its path, so that once
  // the old file has been renamed, lines go to a new file there. Other targets: nothing to do.
  // On failure the old file stays in use and `error` says why.
  bool reopen(std::string& error);
  bool is_file() const noexcept { return owns_; }

 private:
  int fd_ = -1;
  std::string path_;
  bool owns_ = false;
  std::mutex mu_;
};

class AccessLog {
 public:
  explicit AccessLog(std::shared_ptr<AccessLogSink> sink) : sink_(std::move(sink)) {}
  bool enabled() const noexcept { return sink_ && sink_->enabled(); }
  void record(const RequestContext& ctx);
  void flush();
  void set_sink(std::shared_ptr<AccessLogSink> sink) { flush(); sink_ = std::move(sink); }

 private:
  std::shared_ptr<AccessLogSink> sink_;
  std::string buf_;
};

using gh::append_json_string;

}  // namespace gh::proxy
