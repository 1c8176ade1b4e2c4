"""Training speed on each backend, and the input pipeline's.

"train" times the whole train step, ``train_step.step_runner``: the
augmentation, the forward and backward pass, the L2 penalty and the Adam
update, compiled (``tf.function``, with or without XLA, or ``jax.jit``), on a
batch held in memory, for every precision and batch size of the settings.
The current backend runs in this process; every other backend asked for
(KERAS_BACKEND is fixed per process) runs the same code in a child process,
``python -m jgr_p2o_tf.benchmark.training_speed``, whose rows are merged
here, and each JAX row gets its step time over TensorFlow's best at the same
precision and batch. "input" times ``input_pipeline.make_dataset`` alone.

A JAX child runs with glibc's malloc on transparent huge pages
(``JAX_CHILD_GLIBC_TUNABLES``) unless GLIBC_TUNABLES is set already. XLA's
CPU runtime allocates its buffers afresh on every call, and glibc maps and
unmaps large blocks each time, so the kernel clears every page again:
171,000 page faults a step at batch 32 on a 2-core AMD EPYC, 850–1,600 with
huge pages, and the step 935–939 → 754–762 ms (two interleaved runs each).
TensorFlow keeps its memory in its own allocator (about 300 faults a step):
huge pages did not change its step measurably.
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np

from jgr_p2o_tf import skeletons
from jgr_p2o_tf import train_step
from jgr_p2o_tf.benchmark import timing
from jgr_p2o_tf.benchmark import workload

# At batch 32 in float32, augmentation on.
TRAINING_TARGET = timing.Target("frames_per_s", "min", 60.0)
AUGMENTATION_COST_TARGET = timing.Target("percent", "max", 5.0)
# JAX's step time over TensorFlow's, same batch and precision.
JAX_OVER_TENSORFLOW_TARGET = timing.Target("ratio", "max", 1.2)
JAX_CHILD_GLIBC_TUNABLES = "glibc.malloc.hugetlb=1"
TRAINING_NOTE = ("train: train_step.step_runner, the whole step (keras.ops "
                 "augmentation, forward, backward, L2 penalty, Adam update) "
                 "on one batch held in memory, waiting for the loss; JAX is "
                 "jax.jit (XLA); 'JAX / TensorFlow' divides JAX's median step "
                 "time by TensorFlow's fastest (XLA or not) at the same batch "
                 "and precision; a JAX child process runs with GLIBC_TUNABLES="
                 f"{JAX_CHILD_GLIBC_TUNABLES} unless the variable is set")
PRECISION_NAMES = {"none": "float32", "bfloat16": "mixed bfloat16",
                   "float16": "mixed float16"}


def _compiled(backend, jit_compile):
  if backend == "jax":
    return "jax.jit"
  return "tf.function, XLA" if jit_compile else "tf.function, no XLA"


def _time_step(config, batch_size, settings, *, jit_compile, augment):
  """(first call s, step seconds) of ``step_runner`` on a fresh model."""
  model = workload.build_benchmark_model(config)
  optimizer = keras.optimizers.Adam(workload.LEARNING_RATE)
  num_joints = skeletons.get_skeleton(workload.SKELETON).num_joints
  batch = {"depth": workload.random_crops(batch_size),
           "joints_uvz": workload.random_joints_uvz(batch_size, num_joints),
           "cube": np.full((batch_size, 3), workload.DATASET.cube_mm,
                           np.float32)}
  step_config = train_step.StepConfig(
      augmentation=train_step.StepConfig.augmentation if augment else None)
  run = train_step.step_runner(model, optimizer, batch, step_config,
                               jit_compile=jit_compile)
  return timing.time_calls(run, settings.train_steps, settings.warmup_runs)


def benchmark_train_steps(config, settings, log):
  """"train" rows of the current backend, one per configuration.

  Every precision of ``settings.train_precisions`` and batch size of
  ``settings.train_batch_sizes``, under TensorFlow with each XLA setting of
  ``settings.train_jit_compile``; and at the first precision and batch size
  the step without augmentation, with the augmentation's cost. Each row
  names its backend and precision.
  """
  backend = keras.backend.backend()
  jit_settings = settings.train_jit_compile if backend == "tensorflow" else (
      True,)
  rows = []
  for p, precision in enumerate(settings.train_precisions):
    precision_config = dataclasses.replace(config, mixed_precision=precision)
    precision_name = PRECISION_NAMES[precision]
    for b, batch_size in enumerate(settings.train_batch_sizes):
      for jit_compile in jit_settings:
        compiled = _compiled(backend, jit_compile)
        timed = {}
        for augment in (True, False) if p == b == 0 else (True,):
          measurement = (f"train step ({compiled}), augmentation "
                         f"{'on' if augment else 'off'}, {precision_name}")
          log(f"train: {measurement}, batch {batch_size}")
          first_call_s, seconds = _time_step(
              precision_config, batch_size, settings,
              jit_compile=jit_compile, augment=augment)
          target = (TRAINING_TARGET if augment and precision == "none" and
                    batch_size == workload.TRAIN_BATCH_SIZE else None)
          timed[augment] = timing.timing_row("train", measurement, batch_size,
                                             first_call_s, seconds, target)
          timed[augment].update(backend=backend, precision=precision,
                                jit_compile=jit_compile, augmentation=augment)
        rows += timed.values()
        if False in timed:
          rows.append(_augmentation_cost_row(
              f"augmentation cost ({compiled}), {precision_name}",
              timed[True], timed[False]))
  return rows


def _augmentation_cost_row(measurement, augmented, plain):
  percent = 100.0 * (augmented["median_ms"] / plain["median_ms"] - 1.0)
  row = {"part": "train", "measurement": measurement,
         "batch_size": augmented["batch_size"], "percent": percent,
         "backend": augmented["backend"],
         "precision": augmented["precision"]}
  return timing.with_target(row, AUGMENTATION_COST_TARGET)


def backend_ratio_rows(rows):
  """JAX's median step time over TensorFlow's fastest, per batch/precision.

  Args:
    rows: "train" rows of both backends (``benchmark_train_steps``).

  Returns:
    One row per (precision, batch size) both backends timed with
    augmentation on: "ratio" (JAX / TensorFlow), "tensorflow_measurement"
    (the TensorFlow row divided by) and the target.
  """
  steps = [r for r in rows if r.get("augmentation") and "median_ms" in r]
  ratios = []
  for jax_row in (r for r in steps if r["backend"] == "jax"):
    same = [r for r in steps if r["backend"] == "tensorflow" and
            (r["precision"], r["batch_size"]) ==
            (jax_row["precision"], jax_row["batch_size"])]
    if not same:
      continue
    fastest = min(same, key=lambda r: r["median_ms"])
    row = {"part": "train",
           "measurement": f"JAX / TensorFlow step time, "
                          f"{PRECISION_NAMES[jax_row['precision']]}",
           "batch_size": jax_row["batch_size"],
           "ratio": jax_row["median_ms"] / fastest["median_ms"],
           "precision": jax_row["precision"],
           "tensorflow_measurement": fastest["measurement"]}
    ratios.append(timing.with_target(row, JAX_OVER_TENSORFLOW_TARGET))
  return ratios


def child_environment(backend):
  """The environment of a child that times ``backend``'s train steps."""
  environment = {**os.environ, "KERAS_BACKEND": backend}
  if backend == "jax":
    environment.setdefault("GLIBC_TUNABLES", JAX_CHILD_GLIBC_TUNABLES)
  return environment


def train_steps_in_child(backend, config, settings, log):
  """``benchmark_train_steps`` under ``backend``, in a child process.

  Raises:
    RuntimeError: the child failed (e.g. the backend is not installed);
      the message ends with its last error lines.
  """
  environment = child_environment(backend)
  tunables = environment.get("GLIBC_TUNABLES")
  log(f"train: KERAS_BACKEND={backend} in a child process"
      + (f", GLIBC_TUNABLES={tunables}" if tunables else ""))
  with tempfile.TemporaryDirectory() as root:
    output = os.path.join(root, "rows.json")
    request = json.dumps({"config": dataclasses.asdict(config),
                          "settings": dataclasses.asdict(settings)})
    result = subprocess.run(
        [sys.executable, "-m", "jgr_p2o_tf.benchmark.training_speed",
         request, output], env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        check=False)
    if result.returncode:
      last = "\n".join(result.stderr.strip().splitlines()[-5:])
      raise RuntimeError(f"the train step under KERAS_BACKEND={backend} "
                         f"failed (exit {result.returncode}):\n{last}")
    with open(output, encoding="utf-8") as f:
      return json.load(f)


def benchmark_training(config, settings, log):
  """"train" rows of every backend of ``settings.train_backends``.

  The current backend's first, then the others' (child processes), then
  JAX over TensorFlow where both ran.
  """
  backend = keras.backend.backend()
  rows = []
  if backend in settings.train_backends:
    if backend == "jax" and "GLIBC_TUNABLES" not in os.environ:
      import jax  # pylint: disable=g-import-not-at-top
      if jax.default_backend() == "cpu":
        log("train: JAX on a CPU in this process, without huge pages: start "
            f"it with GLIBC_TUNABLES={JAX_CHILD_GLIBC_TUNABLES} (README)")
    rows += benchmark_train_steps(config, settings, log)
  for other in settings.train_backends:
    if other != backend:
      rows += train_steps_in_child(other, config, settings, log)
  return rows + backend_ratio_rows(rows)


def benchmark_input(records_dir, settings, log):
  """"input": batches of 32 from ``input_pipeline.make_dataset`` alone.

  The training pipeline (interleave, shuffle, batch, parse, prefetch) runs
  one untimed epoch, then ``input_batches`` batches are read from it
  repeated; each is waited for on the host.
  """
  from jgr_p2o_tf import input_pipeline  # pylint: disable=g-import-not-at-top
  log("input: make_dataset")
  dataset = input_pipeline.make_dataset(records_dir,
                                        batch_size=workload.TRAIN_BATCH_SIZE,
                                        training=True, seed=0)
  for _ in dataset:
    pass
  batches = iter(dataset.repeat())
  call = lambda: next(batches)["depth"].numpy()
  first_call_s, seconds = timing.time_calls(call, settings.input_batches, 1)
  row = timing.timing_row("input", "tf.data make_dataset(training=True)",
                          workload.TRAIN_BATCH_SIZE, first_call_s, seconds)
  # Prefetching makes single batches uneven; the rate is over all of them.
  row["batches_per_s"] = len(seconds) / float(np.sum(seconds))
  row["frames_per_s"] = workload.TRAIN_BATCH_SIZE * row["batches_per_s"]
  return [row]


def _child_main(request_json, output_path):
  """The child of ``train_steps_in_child``: its rows as JSON."""
  request = json.loads(request_json)
  settings = request["settings"]
  settings = workload.Settings(**{
      k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})
  config = workload.ModelConfig(**request["config"])
  rows = benchmark_train_steps(
      config, settings,
      log=lambda line: print(f"[bench] {line}", file=sys.stderr, flush=True))
  with open(output_path, "w", encoding="utf-8") as f:
    json.dump(rows, f)


if __name__ == "__main__":
  _child_main(*sys.argv[1:])
