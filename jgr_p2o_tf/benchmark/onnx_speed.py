"""Inference speed of the ONNX export on onnxruntime and OpenVINO, and int8.

"onnxruntime" and "openvino" time the network exported by
``onnx_export.export_onnx`` (batch norms folded) and loaded by
``inference.Predictor``, with the settings users get (``inference``'s
runtime classes): its crop graph and its full-frame graph (a 640×480 NYU
frame, the crop in the graph) at each batch size, in float32, then the crop
graph quantized to int8 (``onnx_export.quantize_crop_graph``) and calibrated
on crops of synthetic training frames. Each runtime adds the full-frame
graph's cost over the crop graph's at batch 1 (percent), and int8's
accuracy: the mean joint error in mm of the float32 and the int8 crop graph
on synthetic test frames (``evaluation.predict_records``), and the change.
Where the "saved_model" part ran too, each row has its ``speedup`` over the
SavedModel's signature at the same batch size, a figure that carries over
to other CPUs better than times do.

The accuracy is that of the timed, randomly initialised network unless an
``accuracy_model`` (a training run, e.g. the demo's) is given: a random
network's error means nothing, and only a trained one tells what int8 costs.
"""

import os

from jgr_p2o_tf import onnx_contract
from jgr_p2o_tf.benchmark import timing
from jgr_p2o_tf.benchmark import workload

RUNTIMES = ("onnxruntime", "openvino")
# The targets for the best runtime on a 2-core Ice Lake Xeon.
CROP_LATENCY_TARGET = timing.Target("median_ms", "max", 5.0)
THROUGHPUT_TARGET = timing.Target("frames_per_s", "min", 350.0)
THROUGHPUT_TARGET_BATCH = 32
FULL_FRAME_COST_TARGET = timing.Target("percent", "max", 30.0)
INT8_ERROR_TARGET = timing.Target("mm", "max", 0.3)


def missing_packages():
  """The Python packages of the ONNX parts that are not installed."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  return [name for name in ("onnx", "tf2onnx", "onnxruntime", "openvino")
          if importlib.util.find_spec(name) is None]


def _crop_rows(part, measurement, predictor, settings, log):
  """Rows of the crop graph, one per batch size."""
  rows = []
  for batch_size in settings.batch_sizes:
    log(f"{part}: {measurement}, batch {batch_size}")
    crops = workload.random_crops(batch_size)
    runs = (settings.latency_runs if batch_size == 1
            else settings.throughput_runs)
    first_call_s, seconds = timing.time_calls(
        lambda: predictor.predict_crop(crops), runs, settings.warmup_runs)
    target = {1: CROP_LATENCY_TARGET,
              THROUGHPUT_TARGET_BATCH: THROUGHPUT_TARGET}.get(batch_size)
    rows.append(timing.timing_row(part, measurement, batch_size,
                                  first_call_s, seconds, target))
    rows[-1]["signature"] = onnx_contract.SIGNATURES[onnx_contract.CROP_FILE]
  return rows


def _full_frame_rows(part, measurement, predictor, settings, log):
  """Rows of the full-frame graph, one per batch size."""
  rows = []
  for batch_size in settings.batch_sizes:
    log(f"{part}: {measurement}, batch {batch_size}")
    depth, centre, intrinsics = workload.full_frames(batch_size)
    runs = (settings.latency_runs if batch_size == 1
            else settings.throughput_runs)
    first_call_s, seconds = timing.time_calls(
        lambda: predictor.predict(depth, centre, intrinsics), runs,
        settings.warmup_runs)
    rows.append(timing.timing_row(part, measurement, batch_size,
                                  first_call_s, seconds))
    rows[-1]["signature"] = onnx_contract.SIGNATURES[
        onnx_contract.FULL_FRAME_FILE]
  return rows


def _cost_row(part, measurement, slower, faster):
  percent = 100.0 * (slower["median_ms"] / faster["median_ms"] - 1.0)
  row = {"part": part, "measurement": measurement,
         "batch_size": slower["batch_size"], "percent": percent}
  return timing.with_target(row, FULL_FRAME_COST_TARGET)


def _records_crops(records_dir, num_frames):
  """The first ``num_frames`` crops of prepared records, (N, S, S, 1)."""
  from jgr_p2o_tf import input_pipeline  # pylint: disable=g-import-not-at-top
  dataset = input_pipeline.make_dataset(records_dir, batch_size=num_frames,
                                        training=False)
  return next(iter(dataset))["depth"].numpy()


class Int8Model:
  """A network exported to ONNX, its int8 crop graph, and their frames.

  Args:
    keras_model: the float32 network.
    export_arguments: ``skeleton``, ``cube_mm`` and the other metadata
      arguments of ``onnx_export.export_onnx``.
    root: a folder for the exports and the synthetic frames.
    settings: ``workload.Settings`` (frame counts).
    camera: the dataset whose camera the synthetic frames imitate.
    name: the model's name in the rows.
    log: called with a line before each step.
  """

  def __init__(self, keras_model, export_arguments, root, settings, camera,
               name, log):
    from jgr_p2o_tf import data_preparation  # pylint: disable=g-import-not-at-top
    from jgr_p2o_tf import onnx_export  # pylint: disable=g-import-not-at-top
    self.name = name
    skeleton = export_arguments["skeleton"]
    log(f"onnx: exporting {name}")
    self.float32_dir = os.path.join(root, "float32")
    onnx_export.export_onnx(keras_model, self.float32_dir, **export_arguments)
    log(f"onnx: {settings.calibration_frames} calibration and "
        f"{settings.accuracy_frames} test frames ({skeleton} layout)")
    frames = os.path.join(root, "frames")
    calibration = data_preparation.prepare_synthetic_split(
        frames, "calibration", settings.calibration_frames, seed=0,
        layout=skeleton, camera=camera)
    self.test_dir = data_preparation.prepare_synthetic_split(
        frames, "test", settings.accuracy_frames, seed=1, layout=skeleton,
        camera=camera)
    log(f"onnx: quantizing {name} to int8")
    self.int8_dir = os.path.join(root, "int8")
    os.makedirs(self.int8_dir)
    onnx_export.quantize_crop_graph(
        os.path.join(self.float32_dir, onnx_contract.CROP_FILE),
        os.path.join(self.int8_dir, onnx_contract.CROP_FILE),
        _records_crops(calibration, settings.calibration_frames))

  def accuracy_row(self, part, runtime, settings, log):
    """float32's and int8's mean error on the test frames, and the change."""
    from jgr_p2o_tf import evaluation  # pylint: disable=g-import-not-at-top
    from jgr_p2o_tf import inference  # pylint: disable=g-import-not-at-top
    from jgr_p2o_tf import metrics  # pylint: disable=g-import-not-at-top
    log(f"{part}: int8 accuracy of {self.name}")
    errors = {}
    for precision, model_dir in (("float32", self.float32_dir),
                                 ("int8", self.int8_dir)):
      model = inference.CropModel(inference.Predictor(model_dir, runtime))
      predictions = evaluation.predict_records(model, self.test_dir)
      errors[precision] = metrics.mean_error(metrics.joint_errors(
          predictions["pred_xyz"], predictions["gt_xyz"]))
    row = {"part": part,
           "measurement": f"int8 − float32 mean error, "
                          f"{settings.accuracy_frames} synthetic test frames, "
                          f"{self.name}",
           "batch_size": None, "mm": errors["int8"] - errors["float32"],
           "float32_mm": errors["float32"], "int8_mm": errors["int8"]}
    return timing.with_target(row, INT8_ERROR_TARGET)


def benchmark_runtime(runtime, int8_model, accuracy_model, settings, log):
  """Rows of one runtime: float32 crop and full frame, int8 crop, accuracy.

  Args:
    runtime: "onnxruntime" or "openvino".
    int8_model: the timed network's ``Int8Model``.
    accuracy_model: the ``Int8Model`` whose accuracy is reported.
    settings: ``workload.Settings``.
    log: called with a line before each measurement.
  """
  from jgr_p2o_tf import inference  # pylint: disable=g-import-not-at-top
  float32 = inference.Predictor(int8_model.float32_dir, runtime)
  size = workload.CROP_SIZE
  camera = workload.DATASET.camera
  crop = _crop_rows(runtime, f"{onnx_contract.CROP_FILE}, float32, "
                             f"{size}×{size} crop", float32, settings, log)
  full_frame = _full_frame_rows(
      runtime, f"{onnx_contract.FULL_FRAME_FILE}, float32, "
               f"{camera.width}×{camera.height} frame + crop",
      float32, settings, log)
  rows = crop + full_frame + [_cost_row(
      runtime, "full-frame graph over crop graph, float32", full_frame[0],
      crop[0])]
  int8 = inference.Predictor(int8_model.int8_dir, runtime)
  rows += _crop_rows(runtime, f"{onnx_contract.CROP_FILE}, int8 "
                              f"(quantize_crop_graph), {size}×{size} crop",
                     int8, settings, log)
  rows.append(accuracy_model.accuracy_row(runtime, runtime, settings, log))
  return rows


def add_speedups(rows):
  """Gives each ONNX row its speed over the SavedModel's (``speedup``).

  The SavedModel row of the same signature and batch size, when the
  "saved_model" part ran: median time of the SavedModel / the row's. (The
  SavedModel rows of the export finding the hand name no signature: they
  are not the full-frame graph's counterpart.)
  """
  saved_model = {(r["signature"], r["batch_size"]): r["median_ms"]
                 for r in rows
                 if r["part"] == "saved_model" and "signature" in r}
  for row in rows:
    key = (row.get("signature"), row["batch_size"])
    if row["part"] in RUNTIMES and key in saved_model:
      row["speedup"] = saved_model[key] / row["median_ms"]


def int8_note(int8_model, accuracy_model):
  """How the int8 rows were made, for the report's notes."""
  return (f"int8: {onnx_contract.CROP_FILE} quantized by onnxruntime's "
          f"quantize_static (QDQ; per-channel int8 weights of the "
          f"convolutions, uint8 activations, MinMax over synthetic crops); "
          f"accuracy of {accuracy_model.name}, speed of {int8_model.name}")
