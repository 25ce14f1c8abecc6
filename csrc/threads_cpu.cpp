#include "threads.h"

#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif
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

}  // namespace

int host_threads(int64_t work, int64_t min_work_per_thread) {
#ifdef _OPENMP
  const int64_t by_work = min_work_per_thread > 0 ? work / min_work_per_thread : work;
  if (by_work < 2) return 1;  // before the system call: most calls of the trackers end here
  int64_t threads = cpus_available();
  const int omp_limit = omp_get_max_threads();
  if (omp_limit < threads) threads = omp_limit;
  if (by_work < threads) threads = by_work;
  return threads > 1 ? static_cast<int>(threads) : 1;
#else
  (void)work;
  (void)min_work_per_thread;
  return 1;
#endif
}

int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

int team_threads() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

}  // namespace nutrack
