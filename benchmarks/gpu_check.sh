#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU, PyTorch (and optionally CuPy), build the
# extension, run the CUDA tests (cuda vs numba, bit for bit) and the GPU benchmarks, and print
# a short table. Needs no network and no nuscenes-devkit. Finishes in well under 8 minutes.
#   bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0

echo "== device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"

echo "== build (CUDA archs: ${NUTRACK_CUDA_ARCH:-default})"
start=$(date +%s)
NUTRACK_CUDA=1 CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$PY" setup.py -q build_ext --inplace >/tmp/nutrack_build.log 2>&1 \
  || { tail -40 /tmp/nutrack_build.log; echo "BUILD FAILED"; exit 1; }
echo "built in $(( $(date +%s) - start )) s"
"$PY" -c "import nutrack.ops as o; print('backends:', o.available_backends())"

echo "== CUDA tests (cuda vs numba)"
tests=$(ls tests/test_points_in_boxes.py tests/test_voxelize.py tests/test_affinity.py 2>/dev/null)
"$PY" -m pytest -q -p no:cacheprovider --noconftest -m cuda $tests || status=1

echo "== GPU benchmarks"
"$PY" -m pytest -q -p no:cacheprovider benchmarks --benchmark -k "gpu or cuda" \
  --benchmark-columns=median,min,rounds --benchmark-sort=name 2>&1 \
  | sed -n '/nutrack benchmark summary/,/^$/p;/passed\|failed\|error/p' || status=1
exit $status
