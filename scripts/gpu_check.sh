#!/usr/bin/env bash
# One prepared check for a lent CUDA machine (H100/H200); installs nothing.
#   bash scripts/gpu_check.sh [all|bench|train] [--cpu-smoke]
# bench: device facts, CUDA tests, `kdas-lab bench` on CUDA (10 warm-up + 30 timed steps per variant,
#        eager and torch.compile training steps, FLOPs / TFLOP/s, paper_recipe_minutes_projected).
# train: the paper-profile teacher (B2, random init, 352 px, scales 256/352/448, batch 16) trained
#        from scratch for as many epochs as fit in TEACHER_BUDGET_S seconds (default 480, Config
#        time_budget_s), then a summary of images/s, epoch times and the validation curve
#        ($OUT/teacher_summary.json, $OUT/history_teacher.csv).
# A lent machine allows 10 minutes per command: run the two stages as two commands.
# --cpu-smoke runs the same commands on the CPU at toy size (synthetic 64 px data, B0 teacher, a few
# steps), so everything but CUDA is tested here (tests/test_gpu_check.py).
# Needs: a Python with torch, timm, torchvision, pandas, scipy, tifffile, tqdm, pyyaml (PY=..., default
# python3); the repo root as cwd. Real data for `train`, first found of:
#   gpu_data/pranet352  (a carried PraNet-layout copy, never committed)
#   ../shared/data      (Kvasir-SEG.zip + CVC-ClinicDB.zip, built into $OUT/pranet with `kdas-lab data pranet`)
# Everything goes under $OUT (default runs/gpu_check); the full log is $OUT/gpu_check.log.
set -u
STAGE=all SMOKE=0
for arg in "$@"; do
  case "$arg" in
    all|bench|train) STAGE=$arg ;;
    --cpu-smoke) SMOKE=1 ;;
    *) echo "usage: bash scripts/gpu_check.sh [all|bench|train] [--cpu-smoke]"; exit 2 ;;
  esac
done
OUT=${OUT:-runs/gpu_check}; mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
log() { echo "== $* ($(date +%T), ${SECONDS}s, load $(cut -d' ' -f1-3 /proc/loadavg))"; }

if [ "$SMOKE" = 1 ]; then
  DEV=cpu; BUDGET=${TEACHER_BUDGET_S:-60}
  BENCH=(--device cpu --size 64 --infer-size 64 --batch 2 --steps 2 --warmup 1
         --variants published_distill,kdas_lab_distill_cached,teacher_train,student_train)
  TRAIN=(--model polyp_pvt_b0 --image-size 64 --batch-size 2 --epochs 3 --set max_steps_per_epoch=2
         --set num_workers=0 --set device_data=true --set compile=false)
else
  DEV=cuda; BUDGET=${TEACHER_BUDGET_S:-480}
  BENCH=(--device cuda --models --steps 30 --warmup 10)
  TRAIN=(--epochs 99 --set num_workers=12 --set amp=true)  # bf16 autocast; compile, device_data: CUDA defaults (on)
fi

if [ "$STAGE" != train ]; then
  log "device"
  if [ "$DEV" = cuda ]; then nvidia-smi; fi
  $PY -c 'import torch, timm; print("torch", torch.__version__, "timm", timm.__version__, "cuda", torch.version.cuda,
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")'
  if [ "$DEV" = cuda ]; then
    log "CUDA tests (models, bf16 + channels_last training and resume, compiled vs eager, device data, bench variants)"
    timeout 200 $PY -m pytest -q -p no:cacheprovider tests/test_train_cuda.py tests/test_models.py -k "cuda" 2>&1 | tail -8
  fi
  log "benchmark: steps of kdas_lab vs published, eager vs compiled, FLOPs, paper-recipe projection"
  timeout 330 $PY -m kdas_lab bench "${BENCH[@]}" --json "$OUT/bench_$DEV.json" 2>&1 | tail -30
fi

if [ "$STAGE" != bench ]; then
  DATA=""
  if [ "$SMOKE" = 1 ]; then
    $PY -m kdas_lab data synthetic --out "$OUT/synthetic" --train 12 --test 2 --size 64 --quiet --overwrite \
      && DATA="$OUT/synthetic"
  elif [ -d gpu_data/pranet352/TrainDataset ]; then
    DATA=gpu_data/pranet352
  elif [ -f ../shared/data/Kvasir-SEG.zip ] && [ -f ../shared/data/CVC-ClinicDB.zip ]; then
    log "building PraNet layout from ../shared/data"
    timeout 150 $PY -m kdas_lab data pranet --kvasir ../shared/data/Kvasir-SEG.zip \
        --clinicdb ../shared/data/CVC-ClinicDB.zip --out "$OUT/pranet" --workers 16 --quiet 2>&1 | tail -3
    [ -d "$OUT/pranet/TrainDataset" ] && DATA="$OUT/pranet"
  fi
  if [ -n "$DATA" ]; then
    log "teacher from scratch ($DATA, paper profile, $DEV), time budget ${BUDGET}s"
    timeout $((BUDGET + 120)) $PY -m kdas_lab train-teacher --data "$DATA" --out "$OUT/teacher" --profile paper \
        --device "$DEV" --quiet --overwrite-run --set time_budget_s="$BUDGET" "${TRAIN[@]}" 2>&1 | tail -12
    log "teacher run: images/s, epoch times, validation curve"
    $PY -m kdas_lab.bench.training_run "$OUT/teacher" --json "$OUT/teacher_summary.json"
    cp "$OUT/teacher/history.csv" "$OUT/history_teacher.csv" 2>/dev/null
    rm -f "$OUT/teacher"/*.pt  # checkpoints are large: keep histories and summaries only
    rm -rf "$OUT/pranet"
  else
    log "no real data found: skipped the teacher run"
  fi
fi
log "done"
