#!/usr/bin/env bash
# One prepared session on a GPU machine (the H200 device of this project's workplace, or any
# NVIDIA machine with numba-cuda installed): the GPU tests, the GPU benchmark and the CPU
# scaling table, each with a time limit; logs go to $OUT (default ./gpu_run).
#   bash benchmarks/run_on_gpu.sh [quick]   the 2-D backend (~4-9 min)
#   bash benchmarks/run_on_gpu.sh tomo      the tomography GPU test and bench_tomo.py only
#                                           (128³ and 256³, CPU and GPU columns; ~3-6 min)
set -u
OUT=${OUT:-gpu_run}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=/tmp/fusedem-numba-cache
PY=${PY:-python3}
{
  date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  $PY -c "import numba, numpy, scipy; print('numba', numba.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__)"
  $PY -c "import importlib.metadata as m; print('numba-cuda', m.version('numba-cuda'))"
  nproc
} 2>&1 | tee "$OUT/env.txt"
if [ "${1:-}" = tomo ]; then
  timeout 180 $PY -m pytest -q -p no:warnings -p no:cacheprovider tests/test_cuda_tomo.py \
    -k "not simulated" 2>&1 | tee "$OUT/tests_gpu_tomo.txt"
  timeout 380 $PY benchmarks/bench_tomo.py 128 256 --n-iter 4 --skip-spmm 2>&1 | tee "$OUT/bench_tomo.txt"
  exit 0
fi
timeout 120 $PY -m pytest -q -p no:warnings -p no:cacheprovider tests/test_cuda_backend.py \
  -k "not simulated" 2>&1 | tee "$OUT/tests_gpu.txt"
timeout 90 $PY -m pytest -q -p no:warnings -p no:cacheprovider tests/test_solver_api.py \
  tests/test_autotune.py 2>&1 | tail -15 | tee "$OUT/tests_cpu16_and_autotune_on_gpu.txt"
if [ "${1:-}" = quick ]; then
  timeout 200 $PY benchmarks/bench_gpu.py --quick --repeats 3 2>&1 | tee "$OUT/bench_gpu.txt"
else
  timeout 230 $PY benchmarks/bench_gpu.py --repeats 5 2>&1 | tee "$OUT/bench_gpu.txt"
  timeout 60 $PY benchmarks/bench_threads.py --sizes 512 --bands 1 2 4 --repeats 5 2>&1 | tee "$OUT/bench_threads.txt"
  timeout 60 $PY benchmarks/bench_threads.py --sizes 2048 --repeats 3 2>&1 | tee -a "$OUT/bench_threads.txt"
fi
