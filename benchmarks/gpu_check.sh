#!/usr/bin/env bash
# The GPU check: the one command a session with a lent NVIDIA GPU runs. In under 8 minutes,
# with nothing to install and no network (the GPU image has Python, torch with CUDA, cupy,
# numpy, numba, pytest, pytest-benchmark, hypothesis, pybind11, cmake, ninja, compute-sanitizer;
# no nuscenes-devkit), it
#   1. builds nutrack._C with CUDA for this GPU,
#   2. runs the CUDA tests (cuda vs C++/numba, bit for bit) with torch and cupy inputs,
#   3. runs compute-sanitizer memcheck, racecheck and synccheck over the small-input CUDA tests
#      (tests/test_cuda_inputs.py),
#   4. runs the GPU benchmarks: each op against the naive one-thread-per-point kernel and a
#      vectorised torch version, the trackers, and a training step / scorer frame on the GPU,
# and prints ONE table (step, result, seconds, detail) followed by the benchmark medians.
# Every step has a time budget; a step that would pass the 8-minute mark is skipped and says so.
#   bash benchmarks/gpu_check.sh            (logs in ${LOGS:-/tmp/nutrack_gpu_check})
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOGS=${LOGS:-/tmp/nutrack_gpu_check}
mkdir -p "$LOGS"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
START=$(date +%s)
DEADLINE=$((START + ${GPU_CHECK_SECONDS:-450}))
ROWS=()
status=0

# step NAME BUDGET_S LOG CMD...: runs CMD with a timeout of min(BUDGET, time left), records a row.
step() {
  local name=$1 budget=$2 log=$3
  shift 3
  local left=$((DEADLINE - $(date +%s)))
  if ((left < 10)); then
    ROWS+=("$(printf '%-28s %-8s %6s  %s' "$name" SKIPPED "-" "no time left of the 8 minutes")")
    return
  fi
  ((budget > left)) && budget=$left
  local t0=$(date +%s)
  timeout --kill-after=10 "$budget" "$@" >"$LOGS/$log" 2>&1
  local rc=$? dt=$(($(date +%s) - t0)) result=PASS
  local detail
  detail=$(grep -E '[0-9]+ (passed|failed|skipped|deselected)|ERROR SUMMARY|RACECHECK SUMMARY' "$LOGS/$log" \
           | tail -1 | cut -c1-70)
  if ((rc == 124 || rc == 137)); then result=TIMEOUT detail="over ${budget}s; $detail"; status=1
  elif ((rc != 0)); then result=FAIL; status=1; fi
  ROWS+=("$(printf '%-28s %-8s %6s  %s' "$name" "$result" "$dt" "${detail:-see $LOGS/$log}")")
}

echo "== device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name(0))"
"$PY" -c "import cupy; print('cupy', cupy.__version__)" || echo "cupy: not importable (its cases skip)"

# 1. Build for this GPU only ("native"): the shipped default builds three architectures.
step "build (CUDA, native arch)" 240 build.log env NUTRACK_CUDA=1 \
  NUTRACK_CUDA_ARCH="${NUTRACK_CUDA_ARCH:-native}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
  "$PY" setup.py -q build_ext --inplace
"$PY" -c "import nutrack.ops as o; assert o.has_cuda(), o.why_unavailable(); print('backends:', o.available_backends())" \
  || { printf '%s\n' "${ROWS[@]}"; tail -30 "$LOGS/build.log"; echo "BUILD FAILED"; exit 1; }

# The trackers and the model import scipy (and more) that the GPU image may lack: probe once, and
# where they do not import, their tests and benchmarks are a SKIPPED row saying why.
models_missing=$("$PY" -c "import nutrack.tracking, nutrack.model" 2>&1 | tail -1)

# 2. The CUDA tests; --noconftest: tests/conftest.py's fixtures need the devkit, these do not.
CUDA_TESTS="tests/test_points_in_boxes.py tests/test_voxelize.py tests/test_affinity.py tests/test_cuda_inputs.py"
[[ -z "$models_missing" ]] && CUDA_TESTS="$CUDA_TESTS tests/test_tracking_association.py"
step "CUDA tests (torch + cupy)" 120 cuda_tests.log \
  "$PY" -m pytest -q -p no:cacheprovider --noconftest -m cuda $CUDA_TESTS

# 3. compute-sanitizer over the small-input tests. No caching allocator: every tensor is its own
# allocation, so memcheck sees an access past the end of one.
SMALL="tests/test_cuda_inputs.py"
for tool in memcheck racecheck synccheck; do
  step "compute-sanitizer $tool" 90 "sanitizer_$tool.log" env PYTORCH_NO_CUDA_MEMORY_CACHING=1 \
    compute-sanitizer --tool "$tool" --error-exitcode 3 --print-limit 20 \
    "$PY" -m pytest -q -p no:cacheprovider --noconftest -x $SMALL
done

# 4. Benchmarks: the ops on the GPU (cuda, cuda_naive / cuda_kernel, torch), then the trackers
# and the learned network (train step, scorer frame) on the GPU.
step "GPU op benchmarks" 150 bench_ops.log "$PY" -m pytest -q -p no:cacheprovider \
  benchmarks/test_bench_points.py benchmarks/test_bench_voxelize.py \
  benchmarks/test_bench_affinity.py --benchmark -k gpu --benchmark-columns=median,rounds
if [[ -z "$models_missing" ]]; then
  step "trackers + training (GPU)" 90 bench_models.log "$PY" -m pytest -q -p no:cacheprovider \
    benchmarks/test_bench_tracking.py benchmarks/test_bench_training.py --benchmark \
    -k "tracking or cuda" --benchmark-columns=median,rounds
else
  ROWS+=("$(printf '%-28s %-8s %6s  %s' "trackers + training (GPU)" SKIPPED "-" "${models_missing:0:70}")")
fi

echo
echo "== nutrack GPU check: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1), $(( $(date +%s) - START )) s"
printf '%-28s %-8s %6s  %s\n' step result s detail
printf '%s\n' "${ROWS[@]}"
for log in bench_ops.log bench_models.log; do
  [[ -f "$LOGS/$log" ]] && sed -n '/nutrack benchmark summary/,/^=/p' "$LOGS/$log" | grep -v '^='
done
exit $status
