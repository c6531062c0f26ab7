// CPU count for `workers: auto`: the CPUs this process may actually run on, which in a
// container or under taskset is fewer than the machine has.
// Thread: pure functions, and available_cpus() which reads /proc and /sys (call it at startup).
#pragma once

#include <optional>
#include <string_view>

namespace gh {

// The CPU limit written in a cgroup v2 `cpu.max` file ("QUOTA PERIOD", e.g. "150000 100000"):
// QUOTA/PERIOD rounded up, at least 1. nullopt when there is no limit ("max ...") or the text is
// not a cpu.max line.
std::optional<unsigned> parse_cgroup_cpu_max(std::string_view text);

// The same for cgroup v1's `cpu.cfs_quota_us` and `cpu.cfs_period_us` contents; a quota of -1
// means no limit.
std::optional<unsigned> parse_cgroup_cfs_quota(std::string_view quota, std::string_view period);

// The smallest of: the CPUs in this thread's affinity mask (sched_getaffinity), and the CPU
// quota of its cgroup and the cgroup's ancestors (v2 cpu.max, or v1 cpu.cfs_quota_us). At least 1.
unsigned available_cpus();

}  // namespace gh
