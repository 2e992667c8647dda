#!/bin/bash
# Behaviour check for refactors: a fast-profile teacher and a KDAS distillation with fixed seeds, their
# history.csv and steps.csv without the timing columns, written to OUT/teacher.csv and OUT/kdas.csv.
# Run it from two checkouts (e.g. a `git worktree` of the old commit) and compare with `cmp`:
#   (cd ../old && scripts/same_history.sh /tmp/old) && scripts/same_history.sh /tmp/new &&
#   cmp /tmp/old/teacher.csv /tmp/new/teacher.csv && cmp /tmp/old/kdas.csv /tmp/new/kdas.csv
set -euo pipefail
OUT=$1
PY=${PY:-.venv/bin/python}
rm -rf "$OUT" && mkdir -p "$OUT"
export OMP_NUM_THREADS=1 KDAS_FAST=1
$PY -c "from kdas_lab.data import build_synthetic; build_synthetic('$OUT/data', n_train=24, n_test=8, size=64, seed=0)" >/dev/null
COMMON=(--profile fast --data "$OUT/data" --device cpu --seed 0 --quiet --set teacher=polyp_pvt_b0)
$PY -m kdas_lab train-teacher "${COMMON[@]}" --model polyp_pvt_b0 --out "$OUT/teacher" >/dev/null
$PY -m kdas_lab distill "${COMMON[@]}" --teacher "$OUT/teacher/best.pt" --method kdas --out "$OUT/kdas" >/dev/null
for run in teacher kdas; do
  $PY - "$OUT/$run" > "$OUT/$run.csv" <<'PYEOF'
import sys
import pandas as pd
for name in ("history.csv", "steps.csv"):
    df = pd.read_csv(f"{sys.argv[1]}/{name}")
    print(df.drop(columns=[c for c in df.columns if any(w in c for w in ("time", "sec", "per_s"))]).to_csv(index=False))
PYEOF
done
echo "wrote $OUT/teacher.csv and $OUT/kdas.csv"
