"""The whole benchmark: the chosen parts on this backend, and its table."""

import dataclasses
import math
import os
import tempfile

import keras

from jgr_p2o_tf import flops as flops_lib
from jgr_p2o_tf import skeletons
from jgr_p2o_tf import train_config
from jgr_p2o_tf.benchmark import inference_speed as inference
from jgr_p2o_tf.benchmark import machine as machine_lib
from jgr_p2o_tf.benchmark import onnx_speed
from jgr_p2o_tf.benchmark import table as table_lib
from jgr_p2o_tf.benchmark import timing
from jgr_p2o_tf.benchmark import training_speed as training
from jgr_p2o_tf.benchmark import workload

PARTS = workload.PARTS
# The ONNX parts need TensorFlow too: tf2onnx converts the TensorFlow graph.
TENSORFLOW_PARTS = ("saved_model", "onnxruntime", "openvino", "input")
BACKENDS = ("tensorflow", "jax")


def _check_arguments(parts, config, backend):
  unknown = [p for p in parts if p not in PARTS]
  if unknown or not parts:
    raise ValueError(f"parts must be some of {', '.join(PARTS)}; got "
                     f"{', '.join(parts) or 'none'}")
  if backend not in BACKENDS:
    raise ValueError(f"KERAS_BACKEND={backend} is not supported; use one of "
                     f"{', '.join(BACKENDS)}")
  if config.mixed_precision not in train_config.MIXED_PRECISION:
    raise ValueError(f"mixed_precision={config.mixed_precision!r} is not one "
                     f"of {', '.join(train_config.MIXED_PRECISION)}")


def _int8_models(root, model, accuracy_model_dir, settings, log):
  """The timed network's ``onnx_speed.Int8Model``, and the accuracy one's."""
  from jgr_p2o_tf import exporter  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf.synthetic import writer  # pylint: disable=g-import-not-at-top
  timed = onnx_speed.Int8Model(
      model, dict(skeleton=workload.SKELETON, cube_mm=workload.DATASET.cube_mm,
                  dataset=workload.DATASET.name),
      os.path.join(root, "onnx"), settings, workload.DATASET.name,
      "the timed network (random weights)", log)
  if accuracy_model_dir is None:
    return timed, timed
  trained, arguments = exporter.load_run(accuracy_model_dir)
  dataset = arguments["dataset"]
  camera = dataset if dataset in writer.CAMERAS else "icvl"
  return timed, onnx_speed.Int8Model(
      trained, arguments, os.path.join(root, "onnx_accuracy"), settings,
      camera, accuracy_model_dir, log)


def run_benchmark(parts=PARTS, config=workload.ModelConfig(),
                  settings=workload.Settings(), log=print,
                  accuracy_model_dir=None):
  """Runs the chosen parts of the benchmark on the current Keras backend.

  Args:
    parts: names from ``PARTS``.
    config: ModelConfig of the timed network.
    settings: Settings (iterations, batch sizes).
    log: called with a line before each measurement.
    accuracy_model_dir: a training run on synthetic frames (the demo's
      runs/demo/model) whose int8 accuracy the ONNX parts report; None: the
      timed network's (random weights, so only the change means something).

  Returns:
    The report, a JSON-serialisable dict: "machine", "model" (parameters,
    FLOPs), "settings", "results" (one row per measurement: part,
    measurement, batch_size, runs, median_ms, p90_ms, frames_per_s,
    first_call_s, target, target_met, reference; SavedModel and ONNX rows
    name their signature, and ONNX rows have their speedup over the
    SavedModel's; train rows their backend, precision, jit_compile and
    augmentation, or JAX's step time over TensorFlow's as "ratio"; cost
    rows have percent instead of times, int8 accuracy rows mm (the change),
    float32_mm and int8_mm), "skipped" (part, reason)
    and "notes" (lines on how to read the rows).

  Raises:
    ValueError: an unknown part, backend or mixed precision, or settings out
      of range.
  """
  backend = keras.backend.backend()
  _check_arguments(parts, config, backend)
  parts = [p for p in PARTS if p in parts]
  settings.validate()
  machine = machine_lib.machine_info()
  previous_policy = keras.config.dtype_policy()
  try:
    model = workload.build_benchmark_model(config)
    flops = flops_lib.count_flops(model)
    results, skipped, notes = [], [], [timing.TIMING_NOTE]
    with tempfile.TemporaryDirectory() as root:
      records_dir = None
      if backend == "tensorflow" and "input" in parts:
        log(f"preparing {settings.record_frames} synthetic records")
        from jgr_p2o_tf import data_preparation  # pylint: disable=g-import-not-at-top
        records_dir = data_preparation.prepare_synthetic_split(
            root, "train", settings.record_frames, seed=0,
            layout=workload.SKELETON, camera=workload.DATASET.name)
      int8_models = None
      for part in parts:
        if backend == "jax" and part in TENSORFLOW_PARTS:
          skipped.append({"part": part, "reason": "needs TensorFlow; skipped "
                                                  "under KERAS_BACKEND=jax"})
        elif part in onnx_speed.RUNTIMES and config.mixed_precision != "none":
          skipped.append({"part": part, "reason": "the ONNX export is "
                                                  "float32; skipped under "
                                                  "--mixed_precision"})
        elif part in onnx_speed.RUNTIMES and onnx_speed.missing_packages():
          missing = ", ".join(onnx_speed.missing_packages())
          skipped.append({"part": part, "reason": f"needs {missing} (pip "
                                                  f"install .[onnx])"})
        elif part in onnx_speed.RUNTIMES:
          if int8_models is None:
            int8_models = _int8_models(root, model, accuracy_model_dir,
                                       settings, log)
            notes.append(onnx_speed.int8_note(*int8_models))
          results += onnx_speed.benchmark_runtime(part, *int8_models,
                                                  settings, log)
        elif part == "model":
          results += inference.benchmark_eager(model, settings, log)
          if backend == "tensorflow":
            results += inference.benchmark_tf_graph(model, settings, log)
        elif part == "xla":
          results += (inference.benchmark_tf_xla if backend == "tensorflow"
                      else inference.benchmark_jax_jit)(model, settings, log)
        elif part == "saved_model":
          results += inference.benchmark_saved_model(model, settings, log)
        elif part == "train":
          results += training.benchmark_training(config, settings, log)
          notes.append(training.TRAINING_NOTE)
        else:
          results += training.benchmark_input(records_dir, settings, log)
  finally:
    keras.config.set_dtype_policy(previous_policy)
  onnx_speed.add_speedups(results)
  machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
  return {
      "benchmark": "jgr_p2o_tf.bench",
      "machine": machine,
      "model": {
          "skeleton": workload.SKELETON,
          "num_joints": skeletons.get_skeleton(workload.SKELETON).num_joints,
          "input_size": workload.CROP_SIZE,
          **dataclasses.asdict(config),
          "dtype_policy": config.dtype_policy,
          "parameters": int(model.count_params()),
          "trainable_parameters": int(sum(
              math.prod(v.shape) for v in model.trainable_variables)),
          "flops_per_frame": flops["total"],
          "flops_breakdown": {k: v for k, v in flops.items() if k != "total"},
          "flops_method": "analytic, count_flops: 2 × multiply-accumulates "
                          "of convolutions, dense layers and matrix "
                          "products; elementwise ops not counted",
      },
      "settings": {"parts": parts, **dataclasses.asdict(settings)},
      "results": results,
      "skipped": skipped,
      "notes": notes,
  }


def format_report(report):
  """The report as text: machine, model, a table of the rows, notes."""
  machine, model = report["machine"], report["model"]
  lines = [
      f"{machine['date']}  {machine['cpu_model']}, {machine['cpu_cores']} "
      f"cores ({machine['cpu_cores_usable']} usable), "
      f"{machine['memory_gib']} GiB; accelerators: "
      f"{', '.join(machine['accelerators']) or 'none'}",
      f"backend {machine['backend']}, keras {machine['keras']}, tensorflow "
      f"{machine['tensorflow']}, jax {machine['jax']}, onnxruntime "
      f"{machine['onnxruntime']}, openvino {machine['openvino']}, tf2onnx "
      f"{machine['tf2onnx']}, python {machine['python']}; load average "
      f"{' '.join(map(str, machine['load_average']))} at start, "
      f"{' '.join(map(str, machine['load_average_end']))} at end",
      f"JGR-P2O, {model['num_stacks']} stacks, {model['num_features']} "
      f"features, {model['num_joints']} joints ({model['skeleton']}), "
      f"{model['input_size']}×{model['input_size']} crop, "
      f"{model['dtype_policy']}: {model['parameters']:,} parameters "
      f"({model['trainable_parameters']:,} trainable), "
      f"{model['flops_per_frame'] / 1e9:.3f} GFLOPs per frame "
      f"({model['flops_method']})",
      "",
  ]
  header = table_lib.HEADER
  table = [header] + [table_lib.row_cells(row) for row in report["results"]]
  widths = [max(len(r[i]) for r in table) for i in range(len(header))]
  numeric = {2, 3, 4, 5, 6}
  for r in table:
    lines.append("  ".join(
        (cell.rjust(w) if i in numeric else cell.ljust(w))
        for i, (cell, w) in enumerate(zip(r, widths))).rstrip())
  lines += [f"note: {skip['part']}: {skip['reason']}"
            for skip in report["skipped"]]
  lines += [f"note: {note}" for note in report["notes"]]
  return "\n".join(lines)
