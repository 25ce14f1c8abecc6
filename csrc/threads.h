// How the host loops run in parallel: how many threads a call uses, decided on every call,
// and the fork-join that runs it (issue 12, item 1).
//
// How many: small loops stay on the calling thread, where starting helpers costs more than
// it saves. Large loops use at most one thread per `min_work_per_thread` items, no more than
// the CPUs in the process's affinity mask (sched_getaffinity, read on every call: taskset,
// cgroups and job schedulers change it after import), no more than its cgroup's CPU quota
// (docker --cpus, Kubernetes limits: re-read at most once a second) and no more than
// OMP_NUM_THREADS when it is set (the variable users already set to limit native threads).
// NUTRACK_THREADS=N, when set, makes every parallel loop use N threads whatever its size and
// the machine's load: for the tests (the answers must not depend on it) and for users who
// know their machine better.
//
// How: not OpenMP. libgomp's workers spin while they wait; on a machine where other processes
// keep the cores busy a spinning thread holds the core that its own preempted team-mate needs,
// and a call stalls for whole scheduler slices (measured on 2 cores under load: voxelize 300k
// points 52 ms on 2 OpenMP threads against 13 ms on 1; 12 ms with OMP_WAIT_POLICY=PASSIVE).
// The wait policy cannot be chosen per library: torch ships its own libgomp.so.1, which takes
// the place of the system one once torch is imported first. Here the helpers are std::threads
// started for the call; they take chunks from a shared counter, so a thread slowed by another
// process takes fewer of them, and the caller waits for them in join(), asleep. Starting a
// thread measured ~0.1-0.3 ms on the 2-core VM: the per-thread minimums of the ops keep it
// well under the work that makes a call parallel (one-sweep clouds stay on the caller).
#pragma once

#include <atomic>
#include <cstdint>
#include <system_error>
#include <thread>
#include <vector>

namespace nutrack {

int host_threads(int64_t work, int64_t min_work_per_thread);

// host_threads, with helpers only on CPUs idle at the call (the runnable tasks of
// /proc/loadavg, read per call, ~10 us). For loops that join their threads many times a call
// (voxelize: five passes): each join waits for a helper that shares its core with another
// process, so under a competing process two threads took longer than one (voxelize 300k:
// 22 ms against 12 ms). Loops joined once (points_in_boxes, affinity) gain from the share of
// the busy core they get and use host_threads.
int host_threads_on_idle_cpus(int64_t work, int64_t min_work_per_thread);

// Runs body(chunk, worker) for every chunk of [0, chunks) on up to `threads` threads: the
// caller (worker 0) and threads - 1 helpers (workers 1 ...), each taking the next chunk from
// a shared counter. Returns when every chunk is done. Chunks run in no particular order: a
// body must write disjoint data (or data owned by its chunk or its worker).
template <typename Body>
void parallel_chunks(int threads, int64_t chunks, Body body) {
  std::atomic<int64_t> next{0};
  auto work = [&](int worker) {
    for (int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < chunks;
         c = next.fetch_add(1, std::memory_order_relaxed)) {
      body(c, worker);
    }
  };
  std::vector<std::thread> helpers;
  const int64_t wanted = threads < chunks ? threads : chunks;
  if (wanted > 1) helpers.reserve(static_cast<size_t>(wanted - 1));
  for (int w = 1; w < wanted; ++w) {
    try {
      helpers.emplace_back(work, w);
    } catch (const std::system_error&) {  // no thread to be had: the others do the work
      break;
    }
  }
  work(0);
  for (std::thread& helper : helpers) helper.join();
}

// parallel_chunks over [0, n) in chunks of `grain` items: body(begin, end, worker).
template <typename Body>
void parallel_ranges(int threads, int64_t n, int64_t grain, Body body) {
  const int64_t chunks = (n + grain - 1) / grain;
  parallel_chunks(threads, chunks, [&](int64_t c, int worker) {
    const int64_t begin = c * grain;
    body(begin, begin + grain < n ? begin + grain : n, worker);
  });
}

}  // namespace nutrack
