#!/usr/bin/env bash
# The benchmark under JAX on a GPU machine that has JAX (and PyTorch) but no
# TensorFlow and no network.
#
# 1. On a machine with network, in this repository:
#      make wheels WHEELS_PYTHON=3.X   # X.Y: the GPU machine's Python
#    writes wheels/: our package (pure Python) and Keras with its required
#    dependencies (absl-py, h5py, namex, optree, packaging, rich,
#    markdown-it-py, mdurl, pygments, and ml-dtypes, numpy, typing-extensions
#    should JAX not have brought them). Carry the repository with wheels/.
# 2. On the GPU machine, in the repository:
#      bash benchmarks/accelerator.sh [WHEELS_DIR] [extra bench flags...]
#    installs those wheels beside the machine's JAX (pip --no-index; what
#    JAX already installed is kept), then times, under KERAS_BACKEND=jax:
#    batch-1 latency and batch-256 inference throughput (jax.jit) in float32
#    and mixed bfloat16, and the whole train step (augmentation, forward,
#    backward, Adam) at batch 32 and 256 in float32 and mixed bfloat16.
#    Writes $OUT/bench_float32.json (inference float32, all training rows)
#    and $OUT/bench_bfloat16.json (inference bfloat16), and their tables
#    beside them (.txt).
#
# Environment: PYTHON (the Python that has JAX; default python3), OUT (the
# output folder; default runs/accelerator), PIP_FLAGS (e.g. --user, or
# --break-system-packages). Extra arguments after WHEELS_DIR go to every
# bench run (e.g. --quick --num_features=16 for a check on a CPU). TensorFlow,
# tf2onnx, OpenCV and onnxruntime are never imported on this path.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=${1:-wheels}
shift || true
OUT=${OUT:-runs/accelerator}
mkdir -p "$OUT"

"$PY" -c "import jax; print('jax', jax.__version__, 'devices:', jax.devices())"
"$PY" -m pip install --no-index --find-links="$WHEELS" ${PIP_FLAGS:-} \
    keras absl-py
"$PY" -m pip install --no-index --no-deps --find-links="$WHEELS" \
    ${PIP_FLAGS:-} --force-reinstall jgr_p2o_tf

export KERAS_BACKEND=jax
# Outside the repository, so that the installed package is the one run.
ROOT=$(pwd)
cd "$OUT"
"$PY" -m jgr_p2o_tf.bench --parts=xla,train --batch_sizes=1,256 \
    --train_batch_sizes=32,256 --train_precisions=none,bfloat16 \
    --train_backends=jax --output_json=bench_float32.json "$@" \
    | tee bench_float32.txt
"$PY" -m jgr_p2o_tf.bench --parts=xla --batch_sizes=1,256 \
    --mixed_precision=bfloat16 --output_json=bench_bfloat16.json "$@" \
    | tee bench_bfloat16.txt
cd "$ROOT"
echo "written: $OUT/bench_float32.json $OUT/bench_bfloat16.json"
