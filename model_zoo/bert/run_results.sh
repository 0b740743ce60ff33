#!/usr/bin/env bash
# Reproduce the results table of model_zoo/bert/README.md (CPU, OMP_NUM_THREADS=2; long runs).
# Needs ../shared/data (GLUE SST-2 and MRPC). Usage: bash model_zoo/bert/run_results.sh [mrpc|sst2]
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
PY=${PY:-.venv/bin/python}
GLUE=${GLUE:-../shared/data/glue}
OUT=${OUT:-out/results}
COMMON=(--model bert_6_384_12 --dataset-name all_minilm_l6_v2 --no-progress --log-every 50)
runs=("$@")
[ ${#runs[@]} -eq 0 ] && runs=(mrpc sst2)
for what in "${runs[@]}"; do
  case $what in
    mrpc)
      for seed in 1 2 3; do
        $PY model_zoo/bert/finetune_classifier.py --task mrpc --data-dir "$GLUE/MRPC" "${COMMON[@]}" \
          --max-len 128 --batch-size 32 --lr 1e-4 --epochs 5 --monitor f1 --seed $seed \
          --output-dir "$OUT/mrpc-seed$seed"
      done ;;
    sst2)
      $PY model_zoo/bert/finetune_classifier.py --task sst-2 --data-dir "$GLUE/SST-2" "${COMMON[@]}" \
        --max-len 64 --batch-size 32 --lr 5e-5 --epochs 3 --eval-every 500 --seed 2 \
        --output-dir "$OUT/sst2-full" ;;
    *) echo "unknown run $what" >&2; exit 2 ;;
  esac
done
$PY model_zoo/bert/collect_results.py "$OUT"/*
