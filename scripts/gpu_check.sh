#!/usr/bin/env bash
# One prepared GPU check for a lent CUDA machine (H100/H200), ~5 minutes.
# Needs: a Python with torch (CUDA), timm, torchvision, pandas, tifffile, scipy, tqdm, pyyaml
# (the device image has them); the repo as cwd; optional real data in gpu_data/pranet352
# (a 352 px copy of a 600-pair PraNet training subset + the Kvasir and ClinicDB test sets,
# made from data/pranet; carried, never committed). Writes everything under $OUT.
set -u
OUT=${OUT:-runs/gpu_check}; mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
log() { echo "== $* ($(date +%T))"; }
log "device"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c 'import torch, timm; print("torch", torch.__version__, "timm", timm.__version__, torch.cuda.get_device_name(0))'

log "CUDA tests"
timeout 60 $PY -m pytest -q -p no:cacheprovider tests/test_models.py -k "cuda" 2>&1 | tail -5

log "benchmark (AMP bf16 on CUDA)"
timeout 100 $PY -m kdas_lab bench --device cuda --json "$OUT/bench_cuda.json" --models --steps 5 --warmup 2 2>&1 | tail -40

DATA=gpu_data/pranet352
if [ -d "$DATA" ]; then
  log "real data: teacher (polyp_pvt_b2, random init, 352 px, multi-scale, bf16)"
  timeout 150 $PY -m kdas_lab train-teacher --data "$DATA" --out "$OUT/teacher" --profile paper \
      --epochs 2 --device cuda --quiet --set num_workers=8 2>&1 | tail -8
  log "real data: KDAS student"
  timeout 120 $PY -m kdas_lab distill --teacher "$OUT/teacher/best.pt" --method kdas --data "$DATA" \
      --out "$OUT/kdas" --profile paper --epochs 2 --device cuda --quiet --set num_workers=8 2>&1 | tail -8
  for run in teacher kdas; do
    log "evaluate $run"
    timeout 60 $PY -m kdas_lab evaluate --checkpoint "$OUT/$run/best.pt" --data "$DATA" \
        --datasets Kvasir CVC-ClinicDB --device cuda --csv "$OUT/eval_$run.csv" 2>&1 | tail -5
    cp "$OUT/$run/history.csv" "$OUT/history_$run.csv" 2>/dev/null
    rm -rf "$OUT/$run"
  done
fi
log "done"
