#!/usr/bin/env bash
# One prepared check for a lent CUDA machine (H100/H200), at most ~8.5 minutes of commands (typically
# ~6); installs nothing. Measured on an H200 (2026-11-26): tests 40 s, bench ~120 s, one paper-profile
# teacher epoch on the 600-pair pranet352 copy 45 s (val mDice 0.32 from random init).
# Needs: a Python with torch (CUDA), timm, torchvision, pandas, scipy, tifffile, tqdm, pyyaml (a carried
# venv via PY=..., or the device image's python3); the repo root as cwd. Real data, first found of:
#   gpu_data/pranet352  (a carried PraNet-layout copy, never committed)
#   ../shared/data      (Kvasir-SEG.zip + CVC-ClinicDB.zip, built into $OUT/pranet with `kdas-lab data pranet`)
# Everything goes under $OUT (default runs/gpu_check); the full log is $OUT/gpu_check.log.
set -u
OUT=${OUT:-runs/gpu_check}; mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
log() { echo "== $* ($(date +%T), ${SECONDS}s)"; }

log "device"
nvidia-smi
$PY -c 'import torch, timm; print("torch", torch.__version__, "timm", timm.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'

log "CUDA tests (models on cuda, bf16 + channels_last training and resume, distillation-step variants)"
timeout 75 $PY -m pytest -q -p no:cacheprovider tests/test_train_cuda.py tests/test_models.py -k "cuda" 2>&1 | tail -8

log "benchmark: kdas_lab vs published distillation step, bf16 autocast on CUDA, batch 16 at 352"
timeout 170 $PY -m kdas_lab bench --device cuda --json "$OUT/bench_cuda.json" --models --steps 5 --warmup 2 2>&1 | tail -25

DATA=""
if [ -d gpu_data/pranet352/TrainDataset ]; then
  DATA=gpu_data/pranet352
elif [ -f ../shared/data/Kvasir-SEG.zip ] && [ -f ../shared/data/CVC-ClinicDB.zip ]; then
  log "building PraNet layout from ../shared/data"
  timeout 150 $PY -m kdas_lab data pranet --kvasir ../shared/data/Kvasir-SEG.zip \
      --clinicdb ../shared/data/CVC-ClinicDB.zip --out "$OUT/pranet" --workers 16 --quiet 2>&1 | tail -3
  [ -d "$OUT/pranet/TrainDataset" ] && DATA="$OUT/pranet"
fi
if [ -n "$DATA" ]; then
  COMMON=(--data "$DATA" --profile paper --epochs 1 --device cuda --quiet --set num_workers=12)
  log "real data ($DATA): teacher polyp_pvt_b2, random init, 352 px, multi-scale 256/352/448, bf16"
  timeout 110 $PY -m kdas_lab train-teacher --out "$OUT/teacher" "${COMMON[@]}" 2>&1 | tail -6
  log "real data: KDAS student polyp_pvt_b0 from that teacher"
  timeout 90 $PY -m kdas_lab distill --teacher "$OUT/teacher/best.pt" --method kdas --out "$OUT/kdas" \
      "${COMMON[@]}" 2>&1 | tail -6
  for run in teacher kdas; do
    [ -f "$OUT/$run/best.pt" ] || continue
    log "evaluate $run (test sets, matlab protocol)"
    timeout 35 $PY -m kdas_lab evaluate --checkpoint "$OUT/$run/best.pt" --data "$DATA" \
        --device cuda --csv "$OUT/eval_$run.csv" 2>&1 | tail -5
    cp "$OUT/$run/history.csv" "$OUT/history_$run.csv" 2>/dev/null
    rm -f "$OUT/$run"/*.pt  # checkpoints are large: keep histories and CSVs only
  done
  rm -rf "$OUT/pranet"
else
  log "no real data found: skipped the real-data run"
fi
log "done"
