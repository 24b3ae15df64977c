#!/usr/bin/env bash
# One prepared run on a GPU machine (the device tool): GPU tests, probe overhead, calibration.
# Usage there: bash benchmarks/gpu_check.sh   (writes logs under $OUT when set)
set -uo pipefail
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/resdiag-gpu}"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, typer, rich; print('torch', torch.__version__, 'typer', typer.__version__)"
echo "== GPU tests"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$OUT/gpu_tests.log" | tail -15
echo "== CLI on CUDA"
timeout 60 python3 -m resdiag grad-flow --arch resnet110 --device cuda --rows 6 --json "$OUT/resnet110_gf.json" 2>&1 | tail -12
echo "== probe overhead"
timeout 120 python3 benchmarks/bench_probe.py --device cuda 2>&1 | tee "$OUT/bench_probe.log"
echo "== calibration"
timeout "${CAL_TIMEOUT:-300}" python3 benchmarks/calibrate.py --device cuda --seeds 2 --out "$OUT/calibration.md" 2>&1 | tee "$OUT/calibration.log"
