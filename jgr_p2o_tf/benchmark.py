"""How fast the network, its SavedModel, training and the input pipeline run.

``run_benchmark`` is what ``python -m jgr_p2o_tf.bench`` calls. It measures,
on a randomly initialised model of the NYU layout (14 joints, 96×96 crops):

  * "model": the Keras model called as users call it,
    ``model(x, training=False)`` (eager), and, under TensorFlow, the same call
    in a ``tf.function`` without XLA;
  * "xla": the same call compiled: ``tf.function(jit_compile=True)``, or
    under JAX ``jax.jit`` of ``model.stateless_call``;
  * "saved_model": the model exported by ``exporter.export_saved_model`` and
    loaded back: its "crop" signature and its full-frame
    "serving_default" signature, whose crop (640×480 NYU frame) runs in the
    graph;
  * "train": under TensorFlow the project's ``Trainer.train_step`` at batch
    32, augmentation on and off, XLA on and off; under JAX a jitted
    ``jax.value_and_grad`` of ``losses.jgr_p2o_loss`` through Keras'
    stateless API with ``keras.optimizers.Adam.stateless_apply``;
  * "input": batches per second of ``input_pipeline.make_dataset`` alone.

Inference rows give the median and 90th percentile wall time of one call at
each batch size and frames/s = batch size / median. Inputs are NumPy arrays
built once, so each call includes handing them to the backend, as a server
does. A call counts as finished when its last output is on the host.

"train" (TensorFlow) and "input" read synthetic NYU-layout records that
``data_preparation.prepare_synthetic_split`` renders and prepares in a
temporary folder.
Under JAX, what needs TensorFlow ("saved_model", "input") is skipped with a
note in the report, and TensorFlow is never imported.

FLOPs are counted analytically from the Keras model's layers
(``count_flops``), not with TensorFlow's profiler, which sees neither the
einsums of the JGR module nor anything under JAX.
"""

import collections
import dataclasses
import datetime
import importlib.metadata
import itertools
import math
import os
import platform
import tempfile
import time

import keras
import numpy as np

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import losses
from jgr_p2o_tf import model as model_lib
from jgr_p2o_tf import skeletons
from jgr_p2o_tf.layers.differentiable_heatmap import DifferentiableHeatmap
from jgr_p2o_tf.layers.joint_graph_reasoning import JointGraphReasoning
from jgr_p2o_tf.layers.pixel_to_offset import PixelToOffset

PARTS = ("model", "xla", "saved_model", "train", "input")
TENSORFLOW_PARTS = ("saved_model", "input")
BACKENDS = ("tensorflow", "jax")
MIXED_PRECISION = ("none", "bfloat16", "float16")
# The paper's headline model: NYU's 14 joints, 1.4M parameters.
DATASET = dataset_profiles.NYU
SKELETON = DATASET.skeleton
CROP_SIZE = geometry.CROP_SIZE
TRAIN_BATCH_SIZE = 32
LEARNING_RATE = 1e-4

# The paper's figures on a GTX 1080 Ti: 7.0 ms for the network and 2.0 ms for
# reading and preprocessing a frame, 111.2 frames/s in all.
PAPER_NETWORK_MS = 7.0
PAPER_FRAMES_PER_S = 111.2


@dataclasses.dataclass(frozen=True)
class Target:
  """A figure a row should reach: ``row[metric]`` at most or at least limit."""
  metric: str  # "median_ms", "frames_per_s" or "percent"
  bound: str  # "max" or "min"
  limit: float

  def text(self):
    unit = {"median_ms": " ms", "frames_per_s": " frames/s",
            "percent": "%"}[self.metric]
    return f"{'≤' if self.bound == 'max' else '≥'} {self.limit:g}{unit}"

  def met(self, value):
    return value <= self.limit if self.bound == "max" else value >= self.limit


CROP_LATENCY_TARGET = Target("median_ms", "max", 9.0)
FULL_FRAME_LATENCY_TARGET = Target("median_ms", "max", 11.0)
INFERENCE_TARGET = Target("frames_per_s", "min", 250.0)  # at batch 32
TRAINING_TARGET = Target("frames_per_s", "min", 60.0)  # batch 32, augmented
AUGMENTATION_COST_TARGET = Target("percent", "max", 5.0)
INFERENCE_TARGET_BATCH = 32
TIMING_NOTE = ("median and p90 of the wall time of one call after warm-up; "
               "frames/s = batch / median; inputs are NumPy arrays handed to "
               "the backend at each call (training: batches in memory); "
               "targets are information, not assertions")
JAX_TRAINING_NOTE = ("train: Trainer.train_step and its augmentation need "
                     "TensorFlow; the JAX rows time value_and_grad of "
                     "losses.jgr_p2o_loss + Adam.stateless_apply, without "
                     "augmentation or L2 penalty")
NETWORK_REFERENCE = f"paper {PAPER_NETWORK_MS:.1f} ms (1080 Ti)"
FULL_FRAME_REFERENCE = (f"paper {1e3 / PAPER_FRAMES_PER_S:.1f} ms = "
                        f"{PAPER_FRAMES_PER_S:g} fps (1080 Ti)")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """The network that is timed."""
  num_stacks: int = 2
  num_features: int = 128
  mixed_precision: str = "none"

  @property
  def dtype_policy(self):
    if self.mixed_precision == "none":
      return "float32"
    return f"mixed_{self.mixed_precision}"


@dataclasses.dataclass(frozen=True)
class Settings:
  """How long to measure.

  Attributes:
    batch_sizes: inference batch sizes; batch 1 is timed ``latency_runs``
      times, the others ``throughput_runs`` times. Under JAX the ones above 1
      are also the training batch sizes.
    latency_runs: timed calls at batch 1.
    throughput_runs: timed calls at larger batches.
    warmup_runs: untimed calls before timing (the first one traces and
      compiles).
    train_steps: timed training steps per configuration.
    train_jit_compile: the XLA settings ``Trainer.train_step`` is timed with
      (TensorFlow).
    input_batches: batches read from the input pipeline.
    record_frames: synthetic frames prepared for "train" and "input".
  """
  batch_sizes: tuple = (1, 32, 256)
  latency_runs: int = 100
  throughput_runs: int = 10
  warmup_runs: int = 3
  train_steps: int = 20
  train_jit_compile: tuple = (True, False)
  input_batches: int = 100
  record_frames: int = 256

  @classmethod
  def quick(cls, latency_runs=None, batch_sizes=(1, 32, 256)):
    """Few iterations: checks that everything runs, figures are rough."""
    return cls(batch_sizes=tuple(batch_sizes),
               latency_runs=10 if latency_runs is None else latency_runs,
               throughput_runs=2,
               warmup_runs=1, train_steps=3, input_batches=10,
               record_frames=64)

  def validate(self):
    """Raises ValueError naming a setting out of range."""
    if not self.batch_sizes or min(self.batch_sizes) < 1:
      raise ValueError(f"batch sizes must be positive, got "
                       f"{list(self.batch_sizes)}")
    for name in ("latency_runs", "throughput_runs", "warmup_runs",
                 "train_steps", "input_batches"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be at least 1, got "
                         f"{getattr(self, name)}")
    if self.record_frames < TRAIN_BATCH_SIZE:
      raise ValueError(f"record_frames must be at least one training batch "
                       f"({TRAIN_BATCH_SIZE}), got {self.record_frames}")


# FLOPs ----------------------------------------------------------------------


def _conv2d_flops(conv, output_height, output_width):
  """2 · k_h · k_w · C_in/groups · C_out per output pixel."""
  kernel_h, kernel_w, inputs_per_group, filters = conv.kernel.shape
  return (2 * kernel_h * kernel_w * inputs_per_group * filters *
          output_height * output_width)


def _dense_flops(dense, rows):
  """2 · C_in · units for each of ``rows`` input vectors."""
  units_in, units = dense.kernel.shape
  return 2 * rows * units_in * units


def _jgr_flops(layer, features_shape):
  """The JGR module's convolutions, dense layers and contractions."""
  height, width, channels = features_shape
  pixels, joints = height * width, layer.num_joints
  convolutions = sum(
      _conv2d_flops(conv, height, width) for conv in (
          layer.voting_conv, layer.pixel_transform, layer.context_conv,
          layer.fusion_conv))
  dense = _dense_flops(layer.graph_transform, joints)
  # Voting (Eq. 2) and mapping back (Eq. 4): (P × N) by (P × C) products;
  # the graph's A^e F^e W^e (Eq. 3): an (N × N) by (N × C) product.
  contractions = 2 * (2 * pixels * joints * channels) + (
      2 * joints * joints * channels)
  if layer.graph == "feature_similarity":
    dense += (_dense_flops(layer.similarity_nu, joints) +
              _dense_flops(layer.similarity_psi, joints))
    contractions += 2 * joints * joints * channels
  return {"conv2d": convolutions, "dense": dense,
          "contractions": contractions}


def _p2o_flops(layer, features_shape):
  """The offset convolution and Eq. 6's weighted sum of the votes."""
  height, width = features_shape[:2]
  return {"conv2d": _conv2d_flops(layer.offset_conv, height, width),
          "contractions": 2 * height * width * layer.num_joints * 3}


def _dhm_flops(layer, features_shape):
  """Heat-map and depth convolutions; soft-argmax and depth sums."""
  height, width = features_shape[:2]
  pixels = height * width
  return {"conv2d": (_conv2d_flops(layer.heatmap_conv, height, width) +
                     _conv2d_flops(layer.depth_conv, height, width)),
          "contractions": 2 * pixels * layer.num_joints * 3}


def count_flops(model):
  """Floating-point operations of one example's forward pass.

  Counted analytically, layer by layer: 2 × the multiply-accumulates of
  every convolution (``2·k·k·C_in·C_out·H_out·W_out``), dense layer and
  matrix product (the JGR module's voting, graph and mapping products, the
  P2O module's weighted sum). Elementwise work (biases, batch normalization,
  activations, softmaxes, pooling, additions) is left out: it is O(activations)
  rather than O(activations × channels), under 1% of the total here.

  Args:
    model: a functional Keras model with a batch dimension first, whose
      layers are each called once.

  Returns:
    dict: "total" and its parts "conv2d", "dense", "contractions".

  Raises:
    ValueError: a layer with weights that has no formula here.
  """
  counts = collections.Counter(conv2d=0, dense=0, contractions=0)
  for layer in model.layers:
    if isinstance(layer, keras.layers.InputLayer):
      continue
    inputs = [tuple(t.shape[1:]) for t in keras.tree.flatten(layer.input)]
    if isinstance(layer, keras.layers.Conv2D):
      height, width = layer.output.shape[1:3]
      counts["conv2d"] += _conv2d_flops(layer, height, width)
    elif isinstance(layer, keras.layers.Dense):
      counts["dense"] += _dense_flops(layer, math.prod(inputs[0][:-1]))
    elif isinstance(layer, JointGraphReasoning):
      counts.update(_jgr_flops(layer, inputs[0]))
    elif isinstance(layer, PixelToOffset):
      counts.update(_p2o_flops(layer, inputs[0]))
    elif isinstance(layer, DifferentiableHeatmap):
      counts.update(_dhm_flops(layer, inputs[0]))
    elif layer.weights and not isinstance(
        layer, keras.layers.BatchNormalization):
      raise ValueError(f"No FLOP formula for layer {layer.name!r} "
                       f"({type(layer).__name__})")
  return {"total": sum(counts.values()), **counts}


# The machine ----------------------------------------------------------------


def _cpu_model():
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _memory_gib():
  try:
    with open("/proc/meminfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("MemTotal:"):
          return round(int(line.split()[1]) / 2**20, 1)
  except OSError:
    pass
  return None


def _version(*distributions):
  """The installed version of the first of ``distributions`` found."""
  for name in distributions:
    try:
      return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      continue
  return None


def _accelerators():
  """Names of the accelerators the backend sees (empty on a CPU)."""
  if keras.backend.backend() == "jax":
    import jax  # pylint: disable=g-import-not-at-top
    return [f"{d.platform}: {d.device_kind}" for d in jax.devices()
            if d.platform != "cpu"]
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return [tf.config.experimental.get_device_details(d).get("device_name",
                                                           d.name)
          for d in tf.config.list_physical_devices("GPU")]


def machine_info():
  """The machine and software the figures were taken on."""
  return {
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"),
      "cpu_model": _cpu_model(),
      "cpu_cores": os.cpu_count(),
      "cpu_cores_usable": len(os.sched_getaffinity(0)),
      "memory_gib": _memory_gib(),
      "load_average": [round(x, 2) for x in os.getloadavg()],
      "accelerators": _accelerators(),
      "backend": keras.backend.backend(),
      "keras": keras.__version__,
      "tensorflow": _version("tensorflow", "tensorflow-cpu"),
      "jax": _version("jax"),
      "python": platform.python_version(),
      "platform": platform.platform(),
  }


# Timing ---------------------------------------------------------------------


def time_calls(call, runs, warmup_runs):
  """Wall times of ``runs`` calls after ``warmup_runs`` untimed ones.

  Args:
    call: a function of no arguments that returns when its work is done.
    runs: timed calls.
    warmup_runs: untimed calls first, at least 1; the first one, which
      traces and compiles, is timed on its own.

  Returns:
    (seconds of the first call, (runs,) float64 seconds of the timed calls).
  """
  start = time.perf_counter()
  call()
  first_call_s = time.perf_counter() - start
  for _ in range(warmup_runs - 1):
    call()
  seconds = np.empty(runs)
  for i in range(runs):
    start = time.perf_counter()
    call()
    seconds[i] = time.perf_counter() - start
  return first_call_s, seconds


def _finished(tensor):
  """Waits for ``tensor`` by copying it to the host."""
  keras.ops.convert_to_numpy(tensor)


def _with_target(row, target, reference=None):
  row["reference"] = reference
  row["target"] = None if target is None else target.text()
  row["target_met"] = None if target is None else bool(
      target.met(row[target.metric]))
  return row


def timing_row(part, measurement, batch_size, first_call_s, seconds,
               target=None, reference=None):
  """A result row from the wall times of calls on ``batch_size`` frames."""
  median = float(np.median(seconds))
  row = {"part": part, "measurement": measurement, "batch_size": batch_size,
         "runs": len(seconds), "median_ms": 1e3 * median,
         "p90_ms": 1e3 * float(np.percentile(seconds, 90)),
         "frames_per_s": batch_size / median,
         "first_call_s": first_call_s}
  return _with_target(row, target, reference)


def _inference_rows(part, measurement, make_call, settings, log,
                    latency_target=None, reference=None):
  """Rows of one way of running the network, one per batch size.

  ``make_call(batch_size)`` returns the call to time: it runs the network on
  a batch and waits for the result.
  """
  rows = []
  for batch_size in settings.batch_sizes:
    log(f"{part}: {measurement}, batch {batch_size}")
    runs = (settings.latency_runs if batch_size == 1
            else settings.throughput_runs)
    first_call_s, seconds = time_calls(make_call(batch_size), runs,
                                       settings.warmup_runs)
    target, row_reference = None, None
    if batch_size == 1:
      target, row_reference = latency_target, reference
    elif batch_size == INFERENCE_TARGET_BATCH:
      target = INFERENCE_TARGET
    rows.append(timing_row(part, measurement, batch_size, first_call_s,
                           seconds, target, row_reference))
  return rows


def random_crops(batch_size, seed=0):
  """(B, S, S, 1) float32 normalized crops: a disc of hand, background 1."""
  rng = np.random.default_rng(seed)
  crops = np.ones((batch_size, CROP_SIZE, CROP_SIZE, 1), np.float32)
  yy, xx = np.mgrid[:CROP_SIZE, :CROP_SIZE]
  hand = (yy - CROP_SIZE / 2) ** 2 + (xx - CROP_SIZE / 2) ** 2 < (
      0.35 * CROP_SIZE) ** 2
  crops[:, hand] = rng.uniform(-0.8, 0.8, (batch_size, hand.sum(), 1))
  return crops


def random_joints_uvz(batch_size, num_joints, seed=0):
  """(B, N, 3) float32 normalized UVZ inside the crop."""
  rng = np.random.default_rng(seed)
  joints = rng.uniform(0.2, 0.8, (batch_size, num_joints, 3))
  joints[..., 2] = 2 * joints[..., 2] - 1
  return joints.astype(np.float32)


def full_frames(batch_size, camera=DATASET.camera, hand_z_mm=500.0):
  """Frames with a hand-sized blob at the principal point, and its centre.

  Returns:
    (depth (B, H, W) float32 mm, centre_xyz (B, 3), intrinsics (B, 4)).
  """
  yy, xx = np.mgrid[:camera.height, :camera.width]
  radius = 0.5 * 150.0 * camera.fx / hand_z_mm  # a 150 mm wide blob
  frame = np.where((yy - camera.cy) ** 2 + (xx - camera.cx) ** 2 < radius ** 2,
                   hand_z_mm, 0.0).astype(np.float32)
  depth = np.broadcast_to(frame, (batch_size,) + frame.shape).copy()
  centre = np.tile(np.float32([0.0, 0.0, hand_z_mm]), (batch_size, 1))
  intrinsics = np.tile(camera.intrinsics, (batch_size, 1))
  return depth, centre, intrinsics


def build_benchmark_model(config):
  """A randomly initialised JGR-P2O of the NYU layout under the config."""
  keras.config.set_dtype_policy(config.dtype_policy)
  return model_lib.build_model(
      skeletons.get_skeleton(SKELETON).num_joints,
      num_stacks=config.num_stacks, num_features=config.num_features,
      skeleton=SKELETON)


# Inference ------------------------------------------------------------------


def benchmark_eager(model, settings, log):
  """"model": ``model(x, training=False)`` eagerly (op by op)."""
  def make_call(batch_size):
    crops = random_crops(batch_size)
    return lambda: _finished(model(crops, training=False)[-1]["joints_uvz"])
  return _inference_rows("model", "eager model(x, training=False)", make_call,
                         settings, log, reference=NETWORK_REFERENCE)


def _tf_function_rows(model, part, measurement, jit_compile, settings, log):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def predict(depth_crop):
    outputs = model(depth_crop, training=False)[-1]
    return outputs["joints_uvz"], outputs["voting_maps"]

  function = tf.function(predict, jit_compile=jit_compile, autograph=False)

  def make_call(batch_size):
    crops = random_crops(batch_size)
    return lambda: _finished(function(crops)[0])
  return _inference_rows(part, measurement, make_call, settings, log,
                         reference=NETWORK_REFERENCE)


def benchmark_tf_graph(model, settings, log):
  """"model": the call in a ``tf.function`` without XLA."""
  return _tf_function_rows(model, "model", "tf.function, no XLA", False,
                           settings, log)


def benchmark_tf_xla(model, settings, log):
  """"xla": the call in a ``tf.function(jit_compile=True)``."""
  return _tf_function_rows(model, "xla", "tf.function(jit_compile=True)",
                           True, settings, log)


def benchmark_jax_jit(model, settings, log):
  """"xla": ``jax.jit`` of the model's inference ``stateless_call``."""
  import jax  # pylint: disable=g-import-not-at-top
  trainable = [v.value for v in model.trainable_variables]
  non_trainable = [v.value for v in model.non_trainable_variables]

  @jax.jit
  def predict(trainable, non_trainable, depth_crop):
    outputs, _ = model.stateless_call(trainable, non_trainable, depth_crop,
                                      training=False)
    return outputs[-1]["joints_uvz"], outputs[-1]["voting_maps"]

  def make_call(batch_size):
    crops = random_crops(batch_size)
    return lambda: _finished(predict(trainable, non_trainable, crops)[0])
  return _inference_rows("xla", "jax.jit(model.stateless_call)", make_call,
                         settings, log, reference=NETWORK_REFERENCE)


def benchmark_saved_model(model, settings, log):
  """"saved_model": the exported crop and full-frame signatures.

  The model is exported (BN folded, XLA, as ``export`` does) to a temporary
  folder and loaded back with ``tf.saved_model.load``.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import exporter  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as root:
    log("saved_model: exporting")
    export_dir = os.path.join(root, "saved_model")
    exporter.export_saved_model(model, export_dir, skeleton=SKELETON,
                                cube_mm=DATASET.cube_mm,
                                dataset=DATASET.name)
    loaded = tf.saved_model.load(export_dir)
    crop = loaded.signatures[exporter.SIGNATURE_CROP]
    full_frame = loaded.signatures[exporter.SIGNATURE_FULL_FRAME]

    def make_crop_call(batch_size):
      crops = random_crops(batch_size)
      return lambda: _finished(crop(depth_crop=crops)["joints_uvz"])

    def make_full_frame_call(batch_size):
      depth, centre, intrinsics = full_frames(batch_size)
      return lambda: _finished(full_frame(
          depth=depth, centre_xyz=centre, intrinsics=intrinsics)["joints_xyz"])

    camera = DATASET.camera
    return (
        _inference_rows("saved_model", f"'{exporter.SIGNATURE_CROP}' "
                        f"signature, {CROP_SIZE}×{CROP_SIZE} crop",
                        make_crop_call, settings, log, CROP_LATENCY_TARGET,
                        NETWORK_REFERENCE) +
        _inference_rows("saved_model", f"'{exporter.SIGNATURE_FULL_FRAME}', "
                        f"{camera.width}×{camera.height} frame + crop",
                        make_full_frame_call, settings, log,
                        FULL_FRAME_LATENCY_TARGET, FULL_FRAME_REFERENCE))


# Training -------------------------------------------------------------------


def _augmentation_cost_row(measurement, augmented, plain):
  percent = 100.0 * (augmented["median_ms"] / plain["median_ms"] - 1.0)
  row = {"part": "train", "measurement": measurement,
         "batch_size": augmented["batch_size"], "percent": percent}
  return _with_target(row, AUGMENTATION_COST_TARGET)


def _time_train_step(records_dir, config, settings, *, jit_compile, augment):
  """(first call s, step seconds) of a fresh Trainer's ``train_step``."""
  from jgr_p2o_tf import trainer  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as model_dir:
    training = trainer.Trainer(trainer.TrainConfig(
        train_dir=records_dir, model_dir=model_dir,
        batch_size=TRAIN_BATCH_SIZE, num_stacks=config.num_stacks,
        num_features=config.num_features, augment=augment,
        mixed_precision=config.mixed_precision, jit_compile=jit_compile,
        progress_bar=False))
    # pylint: disable-next=protected-access
    batches = itertools.cycle(list(training._dataset(0)))
    return time_calls(lambda: float(training.train_step(next(batches))[0]),
                      settings.train_steps, settings.warmup_runs)


def benchmark_tf_training(records_dir, config, settings, log):
  """"train": ``Trainer.train_step`` at batch 32, augmentation on and off.

  Each configuration gets its own Trainer (the project's optimizer, L2
  penalty, loss and augmentation) over the prepared records; its batches are
  read into memory first, so the rows time the step alone ("input" times
  the pipeline). Every step waits for its loss, as ``trainer.train`` does.
  """
  rows = []
  for jit_compile in settings.train_jit_compile:
    compiled = "XLA" if jit_compile else "no XLA"
    by_augment = {}
    for augment in (True, False):
      measurement = (f"Trainer.train_step, {compiled}, augmentation "
                     f"{'on' if augment else 'off'}")
      log(f"train: {measurement}")
      first_call_s, seconds = _time_train_step(
          records_dir, config, settings, jit_compile=jit_compile,
          augment=augment)
      by_augment[augment] = timing_row(
          "train", measurement, TRAIN_BATCH_SIZE, first_call_s, seconds,
          TRAINING_TARGET if augment else None)
      rows.append(by_augment[augment])
    rows.append(_augmentation_cost_row(f"augmentation cost, {compiled}",
                                       by_augment[True], by_augment[False]))
  return rows


def benchmark_jax_training(model, settings, log):
  """"train" under JAX: a jitted step through Keras' stateless API.

  ``jax.value_and_grad`` of ``losses.jgr_p2o_loss`` (Eq. 9, default β and
  δ) on ``model.stateless_call(training=True)`` (BN statistics updated), and
  ``keras.optimizers.Adam.stateless_apply``, all in one ``jax.jit``. Unlike
  ``Trainer.train_step`` it has no augmentation (TensorFlow ops) and no L2
  penalty (a sum of squares over the weights, negligible). One batch per
  size is made once and fed as NumPy arrays every step.
  """
  import jax  # pylint: disable=g-import-not-at-top
  optimizer = keras.optimizers.Adam(LEARNING_RATE)
  optimizer.build(model.trainable_variables)

  def loss_fn(trainable, non_trainable, depth, joints_uvz):
    outputs, non_trainable = model.stateless_call(
        trainable, non_trainable, depth, training=True)
    total, _ = losses.jgr_p2o_loss(outputs, joints_uvz, depth)
    return total, non_trainable

  gradient_fn = jax.value_and_grad(loss_fn, has_aux=True)

  @jax.jit
  def train_step(state, depth, joints_uvz):
    trainable, non_trainable, optimizer_variables = state
    (loss, non_trainable), gradients = gradient_fn(
        trainable, non_trainable, depth, joints_uvz)
    trainable, optimizer_variables = optimizer.stateless_apply(
        optimizer_variables, gradients, trainable)
    return loss, (trainable, non_trainable, optimizer_variables)

  num_joints = skeletons.get_skeleton(SKELETON).num_joints
  rows = []
  for batch_size in [b for b in settings.batch_sizes if b > 1]:
    measurement = "jax.jit(value_and_grad + Adam.stateless_apply), no augm."
    log(f"train: {measurement}, batch {batch_size}")
    depth = random_crops(batch_size)
    joints_uvz = random_joints_uvz(batch_size, num_joints)
    state = ([v.value for v in model.trainable_variables],
             [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables])

    def call():
      nonlocal state
      loss, state = train_step(state, depth, joints_uvz)
      float(loss)

    first_call_s, seconds = time_calls(call, settings.train_steps,
                                       settings.warmup_runs)
    rows.append(timing_row("train", measurement, batch_size, first_call_s,
                           seconds))
  return rows


# Input pipeline -------------------------------------------------------------


def benchmark_input(records_dir, settings, log):
  """"input": batches of 32 from ``input_pipeline.make_dataset`` alone.

  The training pipeline (interleave, shuffle, batch, parse, prefetch) runs
  one untimed epoch, then ``input_batches`` batches are read from it
  repeated; each is waited for on the host.
  """
  from jgr_p2o_tf import input_pipeline  # pylint: disable=g-import-not-at-top
  log("input: make_dataset")
  dataset = input_pipeline.make_dataset(records_dir,
                                        batch_size=TRAIN_BATCH_SIZE,
                                        training=True, seed=0)
  for _ in dataset:
    pass
  batches = iter(dataset.repeat())
  call = lambda: next(batches)["depth"].numpy()
  first_call_s, seconds = time_calls(call, settings.input_batches, 1)
  row = timing_row("input", "tf.data make_dataset(training=True)",
                   TRAIN_BATCH_SIZE, first_call_s, seconds)
  # Prefetching makes single batches uneven; the rate is over all of them.
  row["batches_per_s"] = len(seconds) / float(np.sum(seconds))
  row["frames_per_s"] = TRAIN_BATCH_SIZE * row["batches_per_s"]
  return [row]


# The whole benchmark --------------------------------------------------------


def _check_arguments(parts, config, backend):
  unknown = [p for p in parts if p not in PARTS]
  if unknown or not parts:
    raise ValueError(f"parts must be some of {', '.join(PARTS)}; got "
                     f"{', '.join(parts) or 'none'}")
  if backend not in BACKENDS:
    raise ValueError(f"KERAS_BACKEND={backend} is not supported; use one of "
                     f"{', '.join(BACKENDS)}")
  if config.mixed_precision not in MIXED_PRECISION:
    raise ValueError(f"mixed_precision={config.mixed_precision!r} is not one "
                     f"of {', '.join(MIXED_PRECISION)}")
  if (backend == "jax" and "train" in parts and
      config.mixed_precision == "float16"):
    raise ValueError("float16 training needs loss scaling, which the JAX "
                     "training step does not do; use bfloat16 or none")


def run_benchmark(parts=PARTS, config=ModelConfig(), settings=Settings(),
                  log=print):
  """Runs the chosen parts of the benchmark on the current Keras backend.

  Args:
    parts: names from ``PARTS``.
    config: ModelConfig of the timed network.
    settings: Settings (iterations, batch sizes).
    log: called with a line before each measurement.

  Returns:
    The report, a JSON-serialisable dict: "machine", "model" (parameters,
    FLOPs), "settings", "results" (one row per measurement: part,
    measurement, batch_size, runs, median_ms, p90_ms, frames_per_s,
    first_call_s, target, target_met, reference; augmentation cost rows
    have percent instead of times), "skipped" (part, reason) and "notes"
    (lines on how to read the rows).

  Raises:
    ValueError: an unknown part, backend or mixed precision, or settings out
      of range.
  """
  backend = keras.backend.backend()
  _check_arguments(parts, config, backend)
  parts = [p for p in PARTS if p in parts]
  settings.validate()
  machine = machine_info()
  previous_policy = keras.config.dtype_policy()
  try:
    model = build_benchmark_model(config)
    flops = count_flops(model)
    results, skipped, notes = [], [], [TIMING_NOTE]
    with tempfile.TemporaryDirectory() as root:
      records_dir = None
      if backend == "tensorflow" and {"train", "input"} & set(parts):
        log(f"preparing {settings.record_frames} synthetic records")
        from jgr_p2o_tf import data_preparation  # pylint: disable=g-import-not-at-top
        records_dir = data_preparation.prepare_synthetic_split(
            root, "train", settings.record_frames, seed=0, layout=SKELETON,
            camera=DATASET.name)
      for part in parts:
        if backend == "jax" and part in TENSORFLOW_PARTS:
          skipped.append({"part": part, "reason": "needs TensorFlow; skipped "
                                                  "under KERAS_BACKEND=jax"})
        elif part == "model":
          results += benchmark_eager(model, settings, log)
          if backend == "tensorflow":
            results += benchmark_tf_graph(model, settings, log)
        elif part == "xla":
          results += (benchmark_tf_xla if backend == "tensorflow"
                      else benchmark_jax_jit)(model, settings, log)
        elif part == "saved_model":
          results += benchmark_saved_model(model, settings, log)
        elif part == "train" and backend == "tensorflow":
          results += benchmark_tf_training(records_dir, config, settings, log)
        elif part == "train":
          results += benchmark_jax_training(model, settings, log)
          notes.append(JAX_TRAINING_NOTE)
        else:
          results += benchmark_input(records_dir, settings, log)
  finally:
    keras.config.set_dtype_policy(previous_policy)
  machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
  return {
      "benchmark": "jgr_p2o_tf.bench",
      "machine": machine,
      "model": {
          "skeleton": SKELETON,
          "num_joints": skeletons.get_skeleton(SKELETON).num_joints,
          "input_size": CROP_SIZE,
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


# The printed table ----------------------------------------------------------


def _number(value, digits):
  return "" if value is None else f"{value:.{digits}f}"


def format_report(report):
  """The report as text: machine, model, a table of the rows, notes."""
  machine, model = report["machine"], report["model"]
  lines = [
      f"{machine['date']}  {machine['cpu_model']}, {machine['cpu_cores']} "
      f"cores ({machine['cpu_cores_usable']} usable), "
      f"{machine['memory_gib']} GiB; accelerators: "
      f"{', '.join(machine['accelerators']) or 'none'}",
      f"backend {machine['backend']}, keras {machine['keras']}, tensorflow "
      f"{machine['tensorflow']}, jax {machine['jax']}, python "
      f"{machine['python']}; load average "
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
  header = ("part", "measurement", "batch", "median ms", "p90 ms",
            "frames/s", "other", "target", "met")
  table = [header]
  for row in report["results"]:
    other = ""
    if "percent" in row:
      other = f"{row['percent']:+.1f}%"
    elif "batches_per_s" in row:
      other = f"{row['batches_per_s']:.1f} batches/s"
    target = "; ".join(t for t in (row["target"], row["reference"]) if t)
    met = {None: "", True: "pass", False: "miss"}[row["target_met"]]
    table.append((row["part"], row["measurement"], str(row["batch_size"]),
                  _number(row.get("median_ms"), 2),
                  _number(row.get("p90_ms"), 2),
                  _number(row.get("frames_per_s"), 1), other, target, met))
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
