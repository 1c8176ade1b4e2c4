#!/usr/bin/env bash
# The main job (make demo): synthetic depth hands → TFRecords → train
# synthetic_quick → evaluate → export a SavedModel → infer on raw frames.
# Every step is resumable: rerunning skips finished data and resumes training.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
D=${DEMO_DIR:-runs/demo}
TRAIN_FRAMES=${TRAIN_FRAMES:-8000}
TEST_FRAMES=${TEST_FRAMES:-600}
start=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - start )) s)"; }

step "1/6 synthetic depth hands"
for split in train test; do
  frames=$TRAIN_FRAMES; seed=0
  [ "$split" = test ] && { frames=$TEST_FRAMES; seed=1; }
  [ -f "$D/raw/$split/labels.txt" ] || "$PY" -m jgr_p2o_tf.synthetic \
      --out="$D/raw/$split" --num_frames="$frames" --seed="$seed" --layout=icvl
done

step "2/6 crops to TFRecords"
# 16 training shards: training holds the last one out to choose best.keras
# (synthetic_quick.cfg's --validation_fraction).
for split in train test; do
  shards=16; [ "$split" = test ] && shards=1
  "$PY" -m data_prep --dataset=synthetic --data_dir="$D/raw" --split="$split" \
      --out_dir="$D/records/$split" --centres=ground_truth --num_shards="$shards"
done

step "3/6 training (experiments/synthetic_quick.cfg)"
"$PY" -m jgr_p2o_tf.train --flagfile=experiments/synthetic_quick.cfg \
    --data_dir="$D/records" --model_dir="$D/model"

step "4/6 evaluation"
"$PY" -m jgr_p2o_tf.evaluate --dataset=synthetic --model_dir="$D/model" \
    --data_dir="$D/records/test" --predictions_out="$D/eval/predictions_uvd.txt" \
    --labels_out="$D/eval/labels_uvd.txt" --plot="$D/eval/curves.png" \
    --output_json="$D/eval/report.json"

step "5/6 SavedModel export"
"$PY" -m jgr_p2o_tf.export --model_dir="$D/model" --export_dir="$D/saved_model"

step "6/6 inference on raw depth frames"
"$PY" -m jgr_p2o_tf.infer --saved_model="$D/saved_model" --dataset=synthetic \
    --output_dir="$D/infer" "$D"/raw/test/images/image_00000[0-3].png

step "done"
echo "report: $D/eval/report.json   plot: $D/eval/curves.png"
echo "SavedModel: $D/saved_model    inference: $D/infer"
