"""What the benchmark times: the parts, the network, its inputs, how long.

Imports neither Keras nor TensorFlow, so that the command's flags take their
defaults from here.
"""

import dataclasses

import numpy as np

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import skeletons
from jgr_p2o_tf import train_config

PARTS = ("model", "xla", "saved_model", "onnxruntime", "openvino", "train",
         "input")

# The paper's headline model: NYU's 14 joints, 1.4M parameters, trained as
# the trainer does by default.
DATASET = dataset_profiles.NYU
SKELETON = DATASET.skeleton
CROP_SIZE = geometry.CROP_SIZE
TRAIN_BATCH_SIZE = train_config.DEFAULTS["batch_size"]
LEARNING_RATE = train_config.DEFAULTS["learning_rate"]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """The network that is timed."""
  num_stacks: int = train_config.DEFAULTS["num_stacks"]
  num_features: int = train_config.DEFAULTS["num_features"]
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
    train_batch_sizes: batch sizes of the timed train steps.
    train_precisions: mixed precisions of the timed train steps ("none":
      float32).
    train_backends: the Keras backends whose train steps are timed (others
      than the current one in child processes).
    train_jit_compile: the XLA settings of the TensorFlow train step (JAX's
      is always compiled).
    input_batches: batches read from the input pipeline.
    record_frames: synthetic frames prepared for "train" and "input".
    calibration_frames: synthetic frames whose crops calibrate int8
      ("onnxruntime", "openvino").
    accuracy_frames: synthetic test frames of int8's accuracy.
  """
  batch_sizes: tuple = (1, 32, 256)
  latency_runs: int = 100
  throughput_runs: int = 10
  warmup_runs: int = 3
  train_steps: int = 20
  train_batch_sizes: tuple = (TRAIN_BATCH_SIZE,)
  train_precisions: tuple = ("none", "bfloat16")
  train_backends: tuple = ("tensorflow", "jax")
  train_jit_compile: tuple = (True, False)
  input_batches: int = 100
  record_frames: int = 256
  # 64 crops calibrated the batch-32 demo model to +0.14 mm but the batch-64
  # one to +1.20 mm (MinMax ranges from too few crops); 256: +0.07 mm.
  calibration_frames: int = 256
  accuracy_frames: int = 200

  @classmethod
  def quick(cls, latency_runs=None, batch_sizes=None, **train):
    """Few iterations: checks that everything runs, figures are rough.

    ``train``: the train_* settings, when not the defaults.
    """
    return cls(batch_sizes=tuple(batch_sizes or cls.batch_sizes), **train,
               latency_runs=10 if latency_runs is None else latency_runs,
               throughput_runs=2,
               warmup_runs=1, train_steps=3, input_batches=10,
               record_frames=64, calibration_frames=8, accuracy_frames=16)

  def validate(self):
    """Raises ValueError naming a setting out of range."""
    if not self.batch_sizes or min(self.batch_sizes) < 1:
      raise ValueError(f"batch sizes must be positive, got "
                       f"{list(self.batch_sizes)}")
    for name in ("latency_runs", "throughput_runs", "warmup_runs",
                 "train_steps", "input_batches", "calibration_frames",
                 "accuracy_frames"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be at least 1, got "
                         f"{getattr(self, name)}")
    if not self.train_batch_sizes or min(self.train_batch_sizes) < 1:
      raise ValueError(f"train batch sizes must be positive, got "
                       f"{list(self.train_batch_sizes)}")
    for precision in self.train_precisions:
      if precision not in train_config.MIXED_PRECISION:
        raise ValueError(f"train precision {precision!r} is not one of "
                         f"{', '.join(train_config.MIXED_PRECISION)}")
    if "float16" in self.train_precisions:
      raise ValueError("float16 training needs loss scaling, which the "
                       "benchmark's train step does not do; use bfloat16 or "
                       "none")
    unknown = set(self.train_backends) - {"tensorflow", "jax"}
    if unknown:
      raise ValueError(f"train backends must be tensorflow or jax, got "
                       f"{', '.join(sorted(unknown))}")
    if self.record_frames < TRAIN_BATCH_SIZE:
      raise ValueError(f"record_frames must be at least one training batch "
                       f"({TRAIN_BATCH_SIZE}), got {self.record_frames}")


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
  import keras  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import model as model_lib  # pylint: disable=g-import-not-at-top
  keras.config.set_dtype_policy(config.dtype_policy)
  return model_lib.build_model(
      skeletons.get_skeleton(SKELETON).num_joints,
      num_stacks=config.num_stacks, num_features=config.num_features,
      skeleton=SKELETON)
