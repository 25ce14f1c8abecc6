#include "threads.h"

#include <cstdio>
#include <cstdlib>

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
