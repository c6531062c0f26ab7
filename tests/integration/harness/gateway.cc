#include "harness/gateway.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace gh::integ {

namespace fs = std::filesystem;

std::string gatehouse_binary() {
#ifdef GH_BINARY
  return GH_BINARY;
#else
  return "gatehouse";
#endif
}

std::string examples_dir() {
#ifdef GH_EXAMPLES_DIR
  return GH_EXAMPLES_DIR;
#else
  return "examples";
#endif
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "gh-integ-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  const std::string path = path_ + "/" + name;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << content;
  }
  fs::rename(tmp, path);
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

namespace {

// fork + exec with stdout/stderr to files. Everything the child needs is prepared before fork,
// so the child only makes async-signal-safe calls.
pid_t spawn(const std::vector<std::string>& args, const Env& env, const std::vector<std::string>& unset,
            const std::string& out_path, const std::string& err_path) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv = *e;
    std::string_view name = kv.substr(0, kv.find('='));
    bool drop = false;
    for (const auto& [k, v] : env) drop = drop || name == k;
    for (const auto& k : unset) drop = drop || name == k;
    if (!drop) env_strings.emplace_back(kv);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = args;
  argv_strings.insert(argv_strings.begin(), gatehouse_binary());
  std::vector<char*> argv;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(out);
  ::close(err);
  ::close(in);
  return pid;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Waits for PID up to TIMEOUT; the decoded exit status, or nullopt while it still runs.
std::optional<int> wait_exit(pid_t pid, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return decode_status(status);
    if (r < 0) return -1;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

}  // namespace

ProcessResult run_gatehouse(const std::vector<std::string>& args, const Env& env,
                            const std::vector<std::string>& unset, Millis timeout) {
  TempDir dir;
  const std::string out = dir.path() + "/stdout", err = dir.path() + "/stderr";
  ProcessResult result;
  pid_t pid = spawn(args, env, unset, out, err);
  if (pid < 0) return result;
  auto code = wait_exit(pid, timeout);
  if (!code) {
    result.timed_out = true;
    ::kill(pid, SIGKILL);
    code = wait_exit(pid, 5s);
  }
  result.exit_code = code.value_or(-1);
  result.out = read_file(out);
  result.err = read_file(err);
  return result;
}

Gateway::Gateway(std::string yaml) : Gateway(std::move(yaml), Options{}) {}

Gateway::Gateway(std::string yaml, Options options) : options_(std::move(options)), yaml_(std::move(yaml)) {
  port_ = free_port();
  access_log_path_ = dir_.path() + "/access.log";
  config_path_ = dir_.write("gatehouse.yaml", render(yaml_));
}

Gateway::~Gateway() {
  if (pid_ > 0 && !status_) stop(5s);
}

std::string Gateway::render(const std::string& yaml) const {
  std::string text = fill(yaml, {{"PORT", std::to_string(port_)}, {"ACCESS_LOG", access_log_path_}});
  if (!options_.add_header) return text;
  std::string header = "listen: \"127.0.0.1:" + std::to_string(port_) + "\"\n";
  header += "workers: " + std::to_string(options_.workers) + "\n";
  header += "access_log: " + (options_.access_log_file ? "\"" + access_log_path_ + "\"" : std::string("off")) + "\n";
  return header + text;
}

void Gateway::write_config(std::string yaml) {
  yaml_ = std::move(yaml);
  dir_.write("gatehouse.yaml", render(yaml_));
}

bool Gateway::start(Millis timeout) {
  std::vector<std::string> args{"run", "-c", config_path_};
  args.insert(args.end(), options_.args.begin(), options_.args.end());
  pid_ = spawn(args, options_.env, {}, dir_.path() + "/stdout", dir_.path() + "/stderr");
  if (pid_ < 0) {
    error_ = "fork failed";
    return false;
  }
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (auto code = exited()) {
      error_ = "gatehouse exited with " + std::to_string(*code) + " before listening\n" + diagnostics();
      return false;
    }
    int fd = connect_to(port_, 200ms);
    if (fd >= 0) {
      ::close(fd);
      return true;
    }
    if (Clock::now() >= deadline) {
      error_ = "gatehouse did not listen on port " + std::to_string(port_) + " in time\n" + diagnostics();
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
}

bool Gateway::signal(int sig) const { return pid_ > 0 && ::kill(pid_, sig) == 0; }

bool Gateway::reload() const { return signal(SIGHUP); }

std::optional<int> Gateway::exited() {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  status_ = wait_exit(pid_, 0ms);
  return status_;
}

std::optional<int> Gateway::stop(Millis timeout) {
  if (pid_ <= 0) return std::nullopt;
  if (status_) return status_;
  ::kill(pid_, SIGTERM);
  status_ = wait_exit(pid_, timeout);
  if (status_) return status_;
  ::kill(pid_, SIGKILL);
  wait_exit(pid_, 5s);
  status_ = -1;
  return std::nullopt;
}

std::string Gateway::stderr_text() const { return read_file(dir_.path() + "/stderr"); }
std::string Gateway::stdout_text() const { return read_file(dir_.path() + "/stdout"); }
std::string Gateway::access_log_text() const { return read_file(access_log_path_); }

std::string Gateway::diagnostics() const {
  std::string s = "--- config ---\n" + read_file(config_path_);
  std::string err = stderr_text();
  if (err.size() > 4000) err = "..." + err.substr(err.size() - 4000);
  s += "--- gatehouse stderr ---\n" + err;
  return s;
}

}  // namespace gh::integ
