r"""Times the network on every runtime, training and the input pipeline.

  python -m jgr_p2o_tf.bench [--output_json=bench.json] [--num_stacks=2] \
      [--runs=100] [--quick] \
      [--parts=model,xla,saved_model,onnxruntime,openvino,train,input] \
      [--batch_sizes=1,32,256] [--mixed_precision=none] [--num_features=128] \
      [--train_batch_sizes=32] [--train_precisions=none,bfloat16] \
      [--train_backends=tensorflow,jax] [--accuracy_model=runs/demo/model] \
      [--update_readme=README.md]
  python -m jgr_p2o_tf.bench --from_json=docs/bench_cpu.json \
      --update_readme=README.md

Prints the machine, the parameters and FLOPs of a randomly initialised
JGR-P2O (NYU layout) and a table of batch-1 latencies, batch-32/256
throughputs on TensorFlow (Keras, XLA, SavedModel), onnxruntime and OpenVINO
(ONNX export, float32 and int8, with int8's accuracy change in mm), the
whole train step on each backend of --train_backends (the current one in
this process, the other in a child process) and the input pipeline's speed,
with the paper's figures and the project's targets beside them
(information, not assertions); the same report goes to ``--output_json``,
and ``--update_readme`` renders it into the README's results block
(``benchmark.table``; ``make bench``). With ``KERAS_BACKEND=jax`` and
``--train_backends=jax`` TensorFlow is never imported and the
TensorFlow-only parts are skipped (a GPU machine without TensorFlow:
benchmarks/accelerator.sh). See ``jgr_p2o_tf.benchmark`` for what each row
measures.
"""

import json
import os
import sys

from absl import flags

from jgr_p2o_tf import cli
from jgr_p2o_tf import train_config
from jgr_p2o_tf.benchmark import table
from jgr_p2o_tf.benchmark import workload

_OUTPUT_JSON = flags.DEFINE_string("output_json", None,
                                   "Also write the report to this JSON file.")
_NUM_STACKS = flags.DEFINE_integer(
    "num_stacks", workload.ModelConfig.num_stacks, "Stacked hourglasses.")
_NUM_FEATURES = flags.DEFINE_integer(
    "num_features", workload.ModelConfig.num_features, "Feature channels.")
_RUNS = flags.DEFINE_integer(
    "runs", workload.Settings.latency_runs, "Timed calls at batch 1 "
    "(latency); larger batches get a tenth of them, at least 3. --quick: 10 "
    "unless given.")
_QUICK = flags.DEFINE_boolean(
    "quick", False, "Few iterations and 64 records: checks that everything "
    "runs; the figures are rough.")
_PARTS = flags.DEFINE_list(
    "parts", list(workload.PARTS),
    "What to time: model (eager Keras call), xla (compiled call), "
    "saved_model (exported signatures), onnxruntime and openvino (ONNX "
    "export, float32 and int8), train (training step), input (tf.data "
    "pipeline).")
_BATCH_SIZES = flags.DEFINE_list(
    "batch_sizes", [str(b) for b in workload.Settings.batch_sizes],
    "Inference batch sizes.")
_TRAIN_BATCH_SIZES = flags.DEFINE_list(
    "train_batch_sizes", [str(b) for b in workload.Settings.train_batch_sizes],
    "Batch sizes of the timed train steps.")
_TRAIN_PRECISIONS = flags.DEFINE_list(
    "train_precisions", list(workload.Settings.train_precisions),
    "Mixed precisions of the timed train steps: none (float32) or "
    "bfloat16.")
_TRAIN_BACKENDS = flags.DEFINE_list(
    "train_backends", list(workload.Settings.train_backends),
    "Keras backends whose train steps are timed; each other than "
    "KERAS_BACKEND runs in a child process.")
_MIXED_PRECISION = flags.DEFINE_enum(
    "mixed_precision", "none", train_config.MIXED_PRECISION,
    "Compute dtype of the network; variables stay float32.")
_UPDATE_README = flags.DEFINE_string(
    "update_readme", None, "Rewrite this README's results block (between "
    "<!-- bench:begin --> and <!-- bench:end -->) from the report written "
    "to --output_json (make bench).")
_FROM_JSON = flags.DEFINE_string(
    "from_json", None, "Time nothing: render this JSON report of an earlier "
    "run into --update_readme's README.")
_ACCURACY_MODEL = flags.DEFINE_string(
    "accuracy_model", None, "A training run on synthetic frames (e.g. "
    "runs/demo/model) whose int8 accuracy change the onnxruntime and "
    "openvino parts report; default: the timed network's (random weights).")


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments {argv[1:]}")
  if _UPDATE_README.value and not (_OUTPUT_JSON.value or _FROM_JSON.value):
    raise ValueError("--update_readme renders the report of --output_json "
                     "or --from_json; give one")
  if _FROM_JSON.value:
    if not _UPDATE_README.value:
      raise ValueError("--from_json needs --update_readme")
    table.update_readme_file(_UPDATE_README.value, _FROM_JSON.value)
    print(f"{_UPDATE_README.value}: results block from {_FROM_JSON.value}")
    return
  # Keras and the backend load here: flag errors need none of them.
  from jgr_p2o_tf.benchmark import report as reporting  # pylint: disable=g-import-not-at-top
  batch_sizes = tuple(cli.numbers(_BATCH_SIZES, kind=int, positive=True))
  train = dict(
      train_batch_sizes=tuple(cli.numbers(_TRAIN_BATCH_SIZES, kind=int,
                                          positive=True)),
      train_precisions=tuple(_TRAIN_PRECISIONS.value),
      train_backends=tuple(_TRAIN_BACKENDS.value))
  if _QUICK.value:
    settings = workload.Settings.quick(
        _RUNS.value if flags.FLAGS["runs"].present else None, batch_sizes,
        **train)
  else:
    settings = workload.Settings(
        batch_sizes=batch_sizes, latency_runs=_RUNS.value,
        throughput_runs=max(3, _RUNS.value // 10), **train)
  config = workload.ModelConfig(num_stacks=_NUM_STACKS.value,
                                num_features=_NUM_FEATURES.value,
                                mixed_precision=_MIXED_PRECISION.value)
  report = reporting.run_benchmark(
      _PARTS.value, config, settings,
      log=lambda line: print(f"[bench] {line}", file=sys.stderr, flush=True),
      accuracy_model_dir=_ACCURACY_MODEL.value)
  print(reporting.format_report(report))
  if _OUTPUT_JSON.value:
    directory = os.path.dirname(_OUTPUT_JSON.value)
    if directory:
      os.makedirs(directory, exist_ok=True)
    with open(_OUTPUT_JSON.value, "w", encoding="utf-8") as f:
      json.dump(report, f, indent=2)
      f.write("\n")
  if _UPDATE_README.value:
    table.update_readme_file(_UPDATE_README.value, _OUTPUT_JSON.value)


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
