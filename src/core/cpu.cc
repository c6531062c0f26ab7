#include "core/cpu.h"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace gh {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

std::optional<long long> whole_number(std::string_view s) {
  s = trim(s);
  long long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<unsigned> cpus_of(long long quota, long long period) {
  if (quota <= 0 || period <= 0) return std::nullopt;
  long long n = quota / period + (quota % period != 0 ? 1 : 0);
  return static_cast<unsigned>(std::clamp<long long>(n, 1, 1 << 20));
}

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The directories from DIR up to ROOT, DIR first.
std::vector<std::string> self_and_ancestors(const std::string& root, std::string_view path) {
  std::vector<std::string> out;
  std::string p(trim(path));
  while (!p.empty() && p.back() == '/') p.pop_back();
  for (;;) {
    out.push_back(root + p);
    if (p.empty()) break;
    p.erase(p.rfind('/') == std::string::npos ? 0 : p.rfind('/'));
  }
  return out;
}

// The tightest cgroup quota that applies to this process, per /proc/self/cgroup.
std::optional<unsigned> cgroup_limit() {
  auto self = read_text("/proc/self/cgroup");
  if (!self) return std::nullopt;
  std::optional<unsigned> limit;
  auto tighten = [&](std::optional<unsigned> n) {
    if (n && (!limit || *n < *limit)) limit = n;
  };
  std::istringstream lines(*self);
  for (std::string line; std::getline(lines, line);) {
    // "ID:CONTROLLERS:PATH"; cgroup v2 is "0::PATH".
    auto a = line.find(':');
    auto b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    if (controllers.empty()) {
      for (const auto& dir : self_and_ancestors("/sys/fs/cgroup", path))
        if (auto text = read_text(dir + "/cpu.max")) tighten(parse_cgroup_cpu_max(*text));
      continue;
    }
    std::string list = "," + controllers + ",";
    if (list.find(",cpu,") == std::string::npos) continue;
    for (const char* mount : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuacct,cpu"}) {
      for (const auto& dir : self_and_ancestors(mount, path)) {
        auto quota = read_text(dir + "/cpu.cfs_quota_us");
        auto period = read_text(dir + "/cpu.cfs_period_us");
        if (quota && period) tighten(parse_cgroup_cfs_quota(*quota, *period));
      }
    }
  }
  return limit;
}

}  // namespace

std::optional<unsigned> parse_cgroup_cpu_max(std::string_view text) {
  text = trim(text);
  auto space = text.find(' ');
  std::string_view quota = text.substr(0, space);
  std::string_view period = space == std::string_view::npos ? std::string_view("100000") : text.substr(space + 1);
  if (period.find(' ') != std::string_view::npos) return std::nullopt;
  auto p = whole_number(period);
  if (!p || *p <= 0) return std::nullopt;
  if (quota == "max") return std::nullopt;
  auto q = whole_number(quota);
  if (!q) return std::nullopt;
  return cpus_of(*q, *p);
}

std::optional<unsigned> parse_cgroup_cfs_quota(std::string_view quota, std::string_view period) {
  auto q = whole_number(quota);
  auto p = whole_number(period);
  if (!q || !p) return std::nullopt;
  return cpus_of(*q, *p);
}

unsigned available_cpus() {
  unsigned n = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = static_cast<unsigned>(CPU_COUNT(&set));
  if (n == 0) n = std::thread::hardware_concurrency();
  if (auto limit = cgroup_limit(); limit && *limit < n) n = *limit;
  return std::max(n, 1u);
}

}  // namespace gh
