// Gateway: the real gatehouse binary as a child process, for integration tests. Writes the
// config to a temporary directory, runs `gatehouse run -c FILE`, waits for the listener, and
// stops it with SIGTERM (SIGKILL after a deadline, so a test never hangs). The child dies with
// the test process (PR_SET_PDEATHSIG).
// Thread: a Gateway belongs to the test's main thread; port() and the readers are safe anywhere.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "harness/net.h"

namespace gh::integ {

// The gatehouse binary under test and the project's examples/ folder, from compile definitions.
std::string gatehouse_binary();
std::string examples_dir();

using Env = std::vector<std::pair<std::string, std::string>>;

// A fresh directory under the system temp directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes CONTENT to NAME inside the directory (atomically, via rename); returns its path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

std::string read_file(const std::string& path);

struct ProcessResult {
  int exit_code = -1;   // 128 + signal when killed by one
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs gatehouse with ARGS; ENV adds or replaces variables, UNSET removes them.
ProcessResult run_gatehouse(const std::vector<std::string>& args, const Env& env = {},
                            const std::vector<std::string>& unset = {}, Millis timeout = 20s);

class Gateway {
 public:
  struct Options {
    int workers = 2;
    bool access_log_file = false;  // log to a file in the temp dir (access_log_text()); else off
    Env env;
    // Prepend `listen`, `workers` and `access_log` to the YAML. Off: the YAML is written as is,
    // and may use {PORT}.
    bool add_header = true;
    std::vector<std::string> args;  // more arguments after `run -c FILE`, e.g. --log-level debug
  };

  // YAML holds everything but the header (services, routes, ...); {PORT} is replaced by the
  // gateway's port, {ACCESS_LOG} by the file access_log_text() reads.
  explicit Gateway(std::string yaml);
  Gateway(std::string yaml, Options options);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Starts the binary and waits until its port accepts; false (see error()) when it exits or
  // does not listen within TIMEOUT.
  bool start(Millis timeout = 10s);
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& error() const { return error_; }

  // Rewrites the config file in place (atomically), with the same header.
  void write_config(std::string yaml);
  const std::string& config_path() const { return config_path_; }
  const std::string& access_log_path() const { return access_log_path_; }
  bool signal(int sig) const;
  bool reload() const;

  // SIGTERM, then waits up to TIMEOUT (SIGKILL past it). Returns the exit code (128 + signal
  // when killed), or nullopt when it had to be killed.
  std::optional<int> stop(Millis timeout = 10s);
  // The exit code if the process has exited by now.
  std::optional<int> exited();
  bool alive() { return pid_ > 0 && !exited(); }

  std::string stderr_text() const;
  std::string stdout_text() const;
  std::string access_log_text() const;
  // Everything useful for a failure message.
  std::string diagnostics() const;

 private:
  std::string render(const std::string& yaml) const;

  Options options_;
  TempDir dir_;
  std::string yaml_;
  std::string config_path_;
  std::string access_log_path_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string error_;
};

}  // namespace gh::integ
