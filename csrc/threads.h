// How many OpenMP threads a host loop uses: decided on every call, from the size of the work
// and the CPUs this process may run on at that moment (issue 12, item 1).
//
// Small loops stay on the calling thread: waking a team costs more than it saves, and on a
// machine whose cores are busy with other work one descheduled worker stalls the whole call
// for a scheduler tick (measured: 0.5 ms calls taking 12 ms). Large loops use at most one
// thread per `min_work_per_thread` items, no more threads than the CPUs in the process's
// affinity mask (sched_getaffinity, read per call: taskset, cgroups and job schedulers change
// it after import), and no more than OpenMP's own limit (OMP_NUM_THREADS).
#pragma once

#include <cstdint>

namespace nutrack {

int host_threads(int64_t work, int64_t min_work_per_thread);

// The calling thread's index in its OpenMP team and the team's size (0 and 1 without OpenMP).
int thread_index();
int team_threads();

}  // namespace nutrack
