#!/usr/bin/env bash
# The main job (make demo): synthetic depth hands → TFRecords → train
# synthetic_quick → evaluate → train the coarse and fine centre refiners
# (synthetic_centre, synthetic_centre_fine) → export a SavedModel that finds
# the hand itself → centre errors → infer on raw frames with no centre given.
# Every step is resumable: rerunning skips finished data and resumes training.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
D=${DEMO_DIR:-runs/demo}
TRAIN_FRAMES=${TRAIN_FRAMES:-8000}
TEST_FRAMES=${TEST_FRAMES:-600}
start=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - start )) s)"; }

step "1/9 synthetic depth hands"
for split in train test; do
  frames=$TRAIN_FRAMES; seed=0
  [ "$split" = test ] && { frames=$TEST_FRAMES; seed=1; }
  [ -f "$D/raw/$split/labels.txt" ] || "$PY" -m jgr_p2o_tf.synthetic \
      --out="$D/raw/$split" --num_frames="$frames" --seed="$seed" --layout=icvl
done

step "2/9 crops to TFRecords"
# 16 training shards: training holds the last one out to choose best.keras
# (synthetic_quick.cfg's --validation_fraction). The training records also
# hold the coarse centre refiner's crops (--refiner_crops), which pose
# training does not read; records_fine, the fine refiner's.
for split in train test; do
  shards=16; refiner=--refiner_crops
  [ "$split" = test ] && { shards=1; refiner=--norefiner_crops; }
  "$PY" -m data_prep --dataset=synthetic --data_dir="$D/raw" --split="$split" \
      --out_dir="$D/records/$split" --centres=ground_truth --num_shards="$shards" \
      "$refiner"
done
"$PY" -m data_prep --dataset=synthetic --data_dir="$D/raw" --split=train \
    --out_dir="$D/records_fine/train" --centres=ground_truth --num_shards=16 \
    --refiner_crops --refiner_stage=fine

step "3/9 training (experiments/synthetic_quick.cfg)"
"$PY" -m jgr_p2o_tf.train --flagfile=experiments/synthetic_quick.cfg \
    --data_dir="$D/records" --model_dir="$D/model"

step "4/9 evaluation"
"$PY" -m jgr_p2o_tf.evaluate --dataset=synthetic --model_dir="$D/model" \
    --data_dir="$D/records/test" --predictions_out="$D/eval/predictions_uvd.txt" \
    --labels_out="$D/eval/labels_uvd.txt" --plot="$D/eval/curves.png" \
    --output_json="$D/eval/report.json"

step "5/9 coarse centre refiner training (experiments/synthetic_centre.cfg)"
"$PY" -m jgr_p2o_tf.train --flagfile=experiments/synthetic_centre.cfg \
    --data_dir="$D/records" --model_dir="$D/centre"

step "6/9 fine centre refiner training (experiments/synthetic_centre_fine.cfg)"
"$PY" -m jgr_p2o_tf.train --flagfile=experiments/synthetic_centre_fine.cfg \
    --data_dir="$D/records_fine" --model_dir="$D/centre_fine"

step "7/9 SavedModel export, the centre refiners bundled"
"$PY" -m jgr_p2o_tf.export --model_dir="$D/model" --export_dir="$D/saved_model" \
    --centre_refiner_dir="$D/centre,$D/centre_fine" --overwrite

step "8/9 centre errors and the full-frame pipeline's joint error"
"$PY" -m jgr_p2o_tf.evaluate_centres --dataset=synthetic --data_dir="$D/raw" \
    --split=test --num_frames=200 --centre_refiner_dir="$D/centre,$D/centre_fine" \
    --saved_model="$D/saved_model" --output_json="$D/eval/centres.json"

step "9/9 inference on raw depth frames, no centre given"
"$PY" -m jgr_p2o_tf.infer --saved_model="$D/saved_model" --dataset=synthetic \
    --output_dir="$D/infer" "$D"/raw/test/images/image_00000[0-3].png

step "done"
echo "report: $D/eval/report.json   plot: $D/eval/curves.png"
echo "SavedModel: $D/saved_model    inference: $D/infer"
