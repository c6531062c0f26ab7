#include "core/cpu.h"

#include <gtest/gtest.h>

#include <thread>

namespace {

TEST(CgroupCpuMax, QuotaOverPeriodRoundedUp) {
  EXPECT_EQ(gh::parse_cgroup_cpu_max("200000 100000\n"), 2u);
  EXPECT_EQ(gh::parse_cgroup_cpu_max("150000 100000\n"), 2u);  // 1.5 CPUs: 2 workers
  EXPECT_EQ(gh::parse_cgroup_cpu_max("100001 100000"), 2u);
  EXPECT_EQ(gh::parse_cgroup_cpu_max("100000 100000"), 1u);
  EXPECT_EQ(gh::parse_cgroup_cpu_max("400000 50000"), 8u);
}

TEST(CgroupCpuMax, SmallQuotaIsStillOneCpu) {
  EXPECT_EQ(gh::parse_cgroup_cpu_max("50000 100000\n"), 1u);
  EXPECT_EQ(gh::parse_cgroup_cpu_max("1000 100000"), 1u);
}

TEST(CgroupCpuMax, MaxIsNoLimit) {
  EXPECT_EQ(gh::parse_cgroup_cpu_max("max 100000\n"), std::nullopt);
  EXPECT_EQ(gh::parse_cgroup_cpu_max("max"), std::nullopt);
}

TEST(CgroupCpuMax, MalformedTextIsNoLimit) {
  EXPECT_EQ(gh::parse_cgroup_cpu_max(""), std::nullopt);
  EXPECT_EQ(gh::parse_cgroup_cpu_max("abc 100000"), std::nullopt);
  EXPECT_EQ(gh::parse_cgroup_cpu_max("150000 0"), std::nullopt);
  EXPECT_EQ(gh::parse_cgroup_cpu_max("0 100000"), std::nullopt);
  EXPECT_EQ(gh::parse_cgroup_cpu_max("-5 100000"), std::nullopt);
  EXPECT_EQ(gh::parse_cgroup_cpu_max("150000 100000 7"), std::nullopt);
  EXPECT_EQ(gh::parse_cgroup_cpu_max("1.5 1"), std::nullopt);
}

TEST(CgroupCfsQuota, V1QuotaAndPeriod) {
  EXPECT_EQ(gh::parse_cgroup_cfs_quota("250000\n", "100000\n"), 3u);
  EXPECT_EQ(gh::parse_cgroup_cfs_quota("-1\n", "100000\n"), std::nullopt);
  EXPECT_EQ(gh::parse_cgroup_cfs_quota("x", "100000"), std::nullopt);
}

TEST(AvailableCpus, AtLeastOneAndAtMostTheMachine) {
  const unsigned n = gh::available_cpus();
  EXPECT_GE(n, 1u);
  EXPECT_LE(n, std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace
