#!/usr/bin/env bash
# Reproduce the results table of model_zoo/bert/README.md (CPU, OMP_NUM_THREADS=2; long runs:
# sst2 ~50 min, sst2-4ep ~110 min, sst2-mean ~85 min, sst2-2ep-seed3 ~45 min (2,625 s), sst2-ema ~80 min, mrpc ~15 min per seed, squad ~15 min, pretrain ~12 min on a quiet 2-core machine).
# Needs ../shared/data (GLUE SST-2 and MRPC, the SQuAD subset).
# Usage: bash model_zoo/bert/run_results.sh [sst2|sst2-4ep|sst2-lr1e4-4ep|sst2-mean|sst2-2ep-seed3|sst2-ema|mrpc|mrpc5|squad|pretrain ...]
# (default: all but the sst2-* variants)
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
PY=${PY:-.venv/bin/python}
GLUE=${GLUE:-../shared/data/glue}
SQUAD=${SQUAD:-../shared/data/squad}
OUT=${OUT:-out/results}
# a rerun replaces the earlier run of the same name
MINILM=(--model bert_6_384_12 --dataset-name all_minilm_l6_v2 --no-progress --overwrite-output-dir)
runs=("$@")
[ ${#runs[@]} -eq 0 ] && runs=(sst2 mrpc mrpc5 squad pretrain)
for what in "${runs[@]}"; do
  case $what in
    sst2)
      $PY model_zoo/bert/finetune_classifier.py --task sst-2 --data-dir "$GLUE/SST-2" "${MINILM[@]}" \
        --max-len 64 --batch-size 32 --lr 1e-4 --epochs 3 --eval-every 1000 --seed 2 \
        --log-every 50 --output-dir "$OUT/sst2-full" ;;
    sst2-4ep)  # 4 epochs at lr 5e-5, evaluated every 500 steps, best dev accuracy kept
      $PY model_zoo/bert/finetune_classifier.py --task sst-2 --data-dir "$GLUE/SST-2" "${MINILM[@]}" \
        --max-len 64 --batch-size 32 --lr 5e-5 --epochs 4 --eval-every 500 --monitor accuracy \
        --seed 2 --log-every 50 --output-dir "$OUT/sst2-4ep" ;;
    sst2-lr1e4-4ep)  # 4 epochs at lr 1e-4, evaluated every 500 steps, best dev accuracy kept
      $PY model_zoo/bert/finetune_classifier.py --task sst-2 --data-dir "$GLUE/SST-2" "${MINILM[@]}" \
        --max-len 64 --batch-size 32 --lr 1e-4 --epochs 4 --eval-every 500 --monitor accuracy \
        --seed 2 --log-every 50 --output-dir "$OUT/sst2-lr1e4-4ep" ;;
    sst2-mean)  # mean pooling (how all-MiniLM-L6-v2 was trained) instead of the [CLS] pooler
      $PY model_zoo/bert/finetune_classifier.py --task sst-2 --data-dir "$GLUE/SST-2" "${MINILM[@]}" \
        --pooling mean --max-len 64 --batch-size 32 --lr 1e-4 --epochs 4 --eval-every 500 \
        --monitor accuracy --seed 2 --log-every 50 --output-dir "$OUT/sst2-mean" ;;
    sst2-2ep-seed3)  # 2 epochs at lr 1e-4, another seed, evaluated every 500 steps, best kept
      $PY model_zoo/bert/finetune_classifier.py --task sst-2 --data-dir "$GLUE/SST-2" "${MINILM[@]}" \
        --max-len 64 --batch-size 32 --lr 1e-4 --epochs 2 --eval-every 500 --monitor accuracy \
        --seed 3 --log-every 50 --output-dir "$OUT/sst2-2ep-seed3" ;;
    sst2-ema)  # sst2-lr1e4-4ep plus a weight average (decay 0.999) that is evaluated and kept
      $PY model_zoo/bert/finetune_classifier.py --task sst-2 --data-dir "$GLUE/SST-2" "${MINILM[@]}" \
        --max-len 64 --batch-size 32 --lr 1e-4 --epochs 4 --eval-every 500 --monitor accuracy \
        --ema-decay 0.999 --seed 2 --log-every 50 --output-dir "$OUT/sst2-ema" ;;
    mrpc)  # 3 epochs, best dev accuracy kept
      for seed in 1 2 3; do
        $PY model_zoo/bert/finetune_classifier.py --task mrpc --data-dir "$GLUE/MRPC" "${MINILM[@]}" \
          --max-len 128 --batch-size 32 --lr 1e-4 --epochs 3 --seed $seed --log-every 50 \
          --output-dir "$OUT/mrpc-seed$seed"
      done ;;
    mrpc5)  # 5 epochs, best dev F1 kept
      for seed in 1 2 3; do
        $PY model_zoo/bert/finetune_classifier.py --task mrpc --data-dir "$GLUE/MRPC" "${MINILM[@]}" \
          --max-len 128 --batch-size 32 --lr 1e-4 --epochs 5 --monitor f1 --seed $seed \
          --log-every 50 --output-dir "$OUT/mrpc5-seed$seed"
      done ;;
    squad)
      $PY model_zoo/bert/finetune_squad.py --train-file "$SQUAD/train-v1.1-subset.json" \
        --dev-file "$SQUAD/dev-v1.1-subset.json" "${MINILM[@]}" --max-seq-length 384 \
        --doc-stride 128 --batch-size 16 --lr 1e-4 --epochs 3 --log-every 5 \
        --output-dir "$OUT/squad-minilm" ;;
    pretrain)
      $PY model_zoo/bert/make_pretraining_corpus.py --squad "$SQUAD/train-v1.1-subset.json" \
        "$SQUAD/dev-v1.1-subset.json" --sst2 data/sst2/train.tsv --output "$OUT/corpus.txt"
      $PY model_zoo/bert/pretrain.py --data "$OUT/corpus.txt" --model bert_2_128_2 --from-scratch \
        --max-steps 400 --batch-size 32 --lr 1e-3 --log-every 10 --no-progress \
        --overwrite-output-dir --output-dir "$OUT/pretrain" ;;
    *) echo "unknown run $what" >&2; exit 2 ;;
  esac
done
shopt -s nullglob
$PY model_zoo/bert/collect_results.py "$OUT"/sst2-* "$OUT"/mrpc*-seed*
for f in "$OUT"/squad-minilm/dev_metrics.json "$OUT"/pretrain/pretrain_metrics.json; do
  [ -f "$f" ] && echo "$f:" && cat "$f"
done
