#include "threads.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#ifdef __linux__
#include <sched.h>
#endif

namespace nutrack {
namespace {

int cpus_available() {
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return count;
  }
#endif
  const unsigned count = std::thread::hardware_concurrency();
  return count > 0 ? static_cast<int>(count) : 1;
}

#ifdef __linux__
// The smallest CPU quota (in CPUs, rounded up) set on `dir` or any cgroup above it, else 0.
// v2 writes "max 100000" or "150000 100000" to cpu.max; v1 cpu.cfs_quota_us (-1: none) and
// cpu.cfs_period_us.
int64_t quota_along(const std::string& mount, std::string dir, bool v2) {
  int64_t smallest = 0;
  while (true) {
    const std::string at = mount + (dir == "/" ? "" : dir);
    long long quota = -1, period = 0;
    if (v2) {
      std::ifstream file(at + "/cpu.max");
      std::string first;
      if (file >> first >> period && first != "max") quota = std::atoll(first.c_str());
    } else {
      std::ifstream q(at + "/cpu.cfs_quota_us"), p(at + "/cpu.cfs_period_us");
      if (!(q >> quota && p >> period)) quota = -1;
    }
    if (quota > 0 && period > 0) {
      const int64_t cpus = (quota + period - 1) / period;
      if (smallest == 0 || cpus < smallest) smallest = cpus;
    }
    if (dir == "/" || dir.empty()) return smallest;
    const size_t slash = dir.find_last_of('/');
    dir = slash == 0 || slash == std::string::npos ? "/" : dir.substr(0, slash);
  }
}

// The CPUs the process's cgroup lets it use (docker --cpus, Kubernetes CPU limits), or 0 when
// no quota is set or none can be read. Containers show every CPU of the host in the affinity
// mask; threads beyond the quota are throttled, not run.
int64_t read_cgroup_cpu_limit() {
  std::ifstream self("/proc/self/cgroup");
  std::string line;
  int64_t limit = 0;
  while (std::getline(self, line)) {  // "2:cpu,cpuacct:/docker/abc" (v1), "0::/user.slice" (v2)
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = "," + line.substr(a + 1, b - a - 1) + ",";
    const std::string dir = line.substr(b + 1);
    int64_t found = 0;
    if (controllers == ",,") {
      found = quota_along("/sys/fs/cgroup", dir, true);
    } else if (controllers.find(",cpu,") != std::string::npos) {
      for (const char* mount : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct",
                                "/sys/fs/cgroup/cpuacct,cpu"}) {
        found = quota_along(mount, dir, false);
        if (found > 0) break;
      }
    }
    if (found > 0 && (limit == 0 || found < limit)) limit = found;
  }
  return limit;
}
#endif

// read_cgroup_cpu_limit, read again at most once a second (a few files; limits rarely change).
int64_t cgroup_cpu_limit() {
#ifdef __linux__
  static std::atomic<int64_t> cached{-1};
  static std::atomic<int64_t> read_at{0};
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  if (cached.load() < 0 || now - read_at.load() > 1000) {
    cached.store(read_cgroup_cpu_limit());
    read_at.store(now);
  }
  return cached.load();
#else
  return 0;
#endif
}

// The environment variable `name` as a positive number (its first entry: OpenMP reads
// OMP_NUM_THREADS="4,2" as 4), else 0.
int64_t positive_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return 0;
  char* end = nullptr;
  const long long parsed = std::strtoll(value, &end, 10);
  return end != value && parsed > 0 ? parsed : 0;
}

// The CPUs not running another task now: the CPUs minus the other runnable tasks of
// /proc/loadavg ("0.52 0.40 0.31 3/812 4242": 3 runnable, the caller among them), the
// caller's own CPU included. All of them when that cannot be read.
int64_t cpus_not_busy(int64_t cpus) {
#ifdef __linux__
  std::FILE* file = std::fopen("/proc/loadavg", "r");
  if (file == nullptr) return cpus;
  double one, five, fifteen;
  long long runnable = 0, total = 0;
  const int read = std::fscanf(file, "%lf %lf %lf %lld/%lld", &one, &five, &fifteen, &runnable,
                               &total);
  std::fclose(file);
  if (read != 5 || runnable < 1) return cpus;
  const int64_t others = runnable - 1;
  return others >= cpus ? 1 : cpus - others;
#else
  return cpus;
#endif
}

}  // namespace

int host_threads(int64_t work, int64_t min_work_per_thread) {
  const int64_t forced = positive_env("NUTRACK_THREADS");
  if (forced > 0) return static_cast<int>(forced < 1024 ? forced : 1024);
  const int64_t by_work = min_work_per_thread > 0 ? work / min_work_per_thread : work;
  if (by_work < 2) return 1;  // before any system call: most calls of the trackers end here
  int64_t threads = cpus_available();
  const int64_t quota = cgroup_cpu_limit();
  if (quota > 0 && quota < threads) threads = quota;
  const int64_t limit = positive_env("OMP_NUM_THREADS");
  if (limit > 0 && limit < threads) threads = limit;
  if (by_work < threads) threads = by_work;
  return threads > 1 ? static_cast<int>(threads) : 1;
}

int host_threads_on_idle_cpus(int64_t work, int64_t min_work_per_thread) {
  const int threads = host_threads(work, min_work_per_thread);
  if (threads == 1 || positive_env("NUTRACK_THREADS") > 0) return threads;
  const int64_t free = cpus_not_busy(cpus_available());
  return free < threads ? static_cast<int>(free) : threads;
}

}  // namespace nutrack
