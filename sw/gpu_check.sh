#!/usr/bin/env bash
# GPU check of the torch backend, for a machine with a CUDA GPU and a CUDA build of torch 2.13.0:
# the exactness tests on CUDA (the same tests the CPU runs, device-parametrised), then
# `niti-hw bench --device cuda`. Everything lands in one folder (default gpu-check/):
#   env.txt (GPU, driver, torch), tests.txt (pytest log), bench_gemm.csv, bench_train.csv,
#   bench.png, bench.txt (the printed tables). Under 5 minutes on a current GPU. The golden
#   backend (CPU only) is left out of the bench here: sw/bench_train.py measures it.
#
#   bash sw/gpu_check.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-check}"
mkdir -p "$out"
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python=python3
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
  "$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'available', torch.cuda.is_available()); print(torch.cuda.get_device_name(0))"
} | tee "$out/env.txt"

# Only the cuda cases (the CPU ones are the ordinary test run); -rs lists any skip.
NITI_TEST_DEVICES=cuda timeout 150 "$python" -m pytest -q -rs -p no:cacheprovider \
  tests/test_golden_namespace.py tests/test_torch_backend.py 2>&1 | tee "$out/tests.txt"

timeout 150 "$python" -m niti_hw.cli bench --device cuda --sizes 1024 2048 4096 8192 \
  --models lenet5 vgg-small-7 --backends torch --batches 5 --out "$out" 2>&1 | tee "$out/bench.txt"
echo "results in $out/"
