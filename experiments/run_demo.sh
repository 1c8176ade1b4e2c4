#!/usr/bin/env bash
# The main job (make demo): synthetic depth hands → TFRecords → train
# synthetic_quick → evaluate → train the centre refiner (synthetic_centre) →
# export a SavedModel that finds the hand itself → centre errors → infer on
# raw frames with no centre given.
# Every step is resumable: rerunning skips finished data and resumes training.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
D=${DEMO_DIR:-runs/demo}
TRAIN_FRAMES=${TRAIN_FRAMES:-8000}
TEST_FRAMES=${TEST_FRAMES:-600}
start=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - start )) s)"; }

step "1/8 synthetic depth hands"
for split in train test; do
  frames=$TRAIN_FRAMES; seed=0
  [ "$split" = test ] && { frames=$TEST_FRAMES; seed=1; }
  [ -f "$D/raw/$split/labels.txt" ] || "$PY" -m jgr_p2o_tf.synthetic \
      --out="$D/raw/$split" --num_frames="$frames" --seed="$seed" --layout=icvl
done

step "2/8 crops to TFRecords"
# 16 training shards: training holds the last one out to choose best.keras
# (synthetic_quick.cfg's --validation_fraction). The training records also
# hold the centre refiner's crops (--refiner_crops), which pose training
# does not read.
for split in train test; do
  shards=16; refiner=--refiner_crops
  [ "$split" = test ] && { shards=1; refiner=--norefiner_crops; }
  "$PY" -m data_prep --dataset=synthetic --data_dir="$D/raw" --split="$split" \
      --out_dir="$D/records/$split" --centres=ground_truth --num_shards="$shards" \
      "$refiner"
done

step "3/8 training (experiments/synthetic_quick.cfg)"
"$PY" -m jgr_p2o_tf.train --flagfile=experiments/synthetic_quick.cfg \
    --data_dir="$D/records" --model_dir="$D/model"

step "4/8 evaluation"
"$PY" -m jgr_p2o_tf.evaluate --dataset=synthetic --model_dir="$D/model" \
    --data_dir="$D/records/test" --predictions_out="$D/eval/predictions_uvd.txt" \
    --labels_out="$D/eval/labels_uvd.txt" --plot="$D/eval/curves.png" \
    --output_json="$D/eval/report.json"

step "5/8 centre refiner training (experiments/synthetic_centre.cfg)"
"$PY" -m jgr_p2o_tf.train --flagfile=experiments/synthetic_centre.cfg \
    --data_dir="$D/records" --model_dir="$D/centre"

step "6/8 SavedModel export, the centre refiner bundled"
"$PY" -m jgr_p2o_tf.export --model_dir="$D/model" --export_dir="$D/saved_model" \
    --centre_refiner_dir="$D/centre" --overwrite

step "7/8 centre errors and the full-frame pipeline's joint error"
"$PY" -m jgr_p2o_tf.evaluate_centres --dataset=synthetic --data_dir="$D/raw" \
    --split=test --num_frames=200 --centre_refiner_dir="$D/centre" \
    --saved_model="$D/saved_model" --output_json="$D/eval/centres.json"

step "8/8 inference on raw depth frames, no centre given"
"$PY" -m jgr_p2o_tf.infer --saved_model="$D/saved_model" --dataset=synthetic \
    --output_dir="$D/infer" "$D"/raw/test/images/image_00000[0-3].png

step "done"
echo "report: $D/eval/report.json   plot: $D/eval/curves.png"
echo "SavedModel: $D/saved_model    inference: $D/infer"
