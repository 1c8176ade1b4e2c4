"""TrainConfig: everything a training run depends on, with its defaults.

The one place each training default is written: ``python -m
jgr_p2o_tf.train`` defines its flags from these fields, the trainer saves the
resolved config as ``config.json``. The number of epochs has no default here:
each dataset's is in its profile (``dataset_profiles``). The module imports
neither TensorFlow nor Keras, so that commands parse their flags quickly.

The defaults are this project's setup. The authors' (their TensorFlow 1
code) differs in the fields marked "authors:" below; the flagfiles
``experiments/{nyu,icvl,msra}.cfg`` set them, ``*_improved.cfg`` keep ours.
"""

import dataclasses
import os

from jgr_p2o_tf import geometry

STRATEGIES = ("default", "mirrored", "multi_worker")
MIXED_PRECISION = ("none", "bfloat16", "float16")
WEIGHT_DECAY_MODES = ("l2", "decoupled")
# The augmentation modes (augment) and the loss's reductions over the batch
# (losses).
AUGMENT_MODES = ("all", "authors")
# What a run trains: the pose network, or the centre refiner
# (``centre_training``) on records prepared with refiner crops.
TASKS = ("pose", "centre")
LOSS_REDUCTIONS = ("mean", "sum")
# How the learning rate falls after its warm-up (trainer.LearningRate):
# ×learning_rate_decay every epoch (the authors'), or a half cosine to zero
# over the run's epochs.
LEARNING_RATE_SCHEDULES = ("exponential", "cosine")


@dataclasses.dataclass
class TrainConfig:
  """Everything a training run depends on; saved as config.json."""
  train_dir: str
  model_dir: str
  epochs: int
  task: str = "pose"
  validation_dir: str = ""  # a prepared split that chooses best.keras
  validation_fraction: float = 0.0  # or this much of train_dir held out
  skeleton: str = ""  # "" → the skeleton named in the records' manifest
  batch_size: int = 32
  learning_rate: float = 1e-4  # authors: 2e-4 for NYU
  learning_rate_decay: float = 0.96
  learning_rate_schedule: str = "exponential"
  warmup_steps: int = 0  # authors: 100
  warmup_initial_factor: float = 1.0 / 3.0
  adam_beta1: float = 0.9  # authors: 0.5
  weight_decay: float = 5e-5
  weight_decay_mode: str = "l2"
  decay_batch_norm_scale: bool = False  # authors: True
  loss_reduction: str = "mean"  # authors: "sum"
  clip_labels: bool = False  # authors: True
  num_stacks: int = 2
  graph: str = "skeleton"
  head: str = "jgr"
  num_features: int = 128
  refiner_features: int = 16  # --task=centre: the refiner's first width
  coordinate_convention: str = "project"
  beta: float = 1e-4
  huber_delta: float = 0.01
  rotation_deg: float = 180.0
  scale_min: float = 0.9
  scale_max: float = 1.1
  translation_mm: float = 10.0
  augment: bool = True
  augment_mode: str = "all"  # authors: "authors"
  scale_sigma: float = 0.05
  farthest_depth_to_background: bool = False  # authors: True
  mixed_precision: str = "none"
  # None: XLA where TensorFlow sees a GPU or TPU, not on a CPU, where its
  # train step is slower (trainer.resolve_jit_compile).
  jit_compile: bool | None = None
  strategy: str = "default"
  test_subject: str = ""
  checkpoint_every_steps: int = 500
  max_checkpoints: int = 3
  max_steps: int = 0
  log_every_steps: int = 50
  seed: int = 0
  progress_bar: bool = True

  def validate(self):
    """Raises ValueError naming the bad setting and what is allowed."""
    choices = {"strategy": STRATEGIES, "mixed_precision": MIXED_PRECISION,
               "weight_decay_mode": WEIGHT_DECAY_MODES,
               "coordinate_convention": geometry.COORDINATE_CONVENTIONS,
               "augment_mode": AUGMENT_MODES, "task": TASKS,
               "loss_reduction": LOSS_REDUCTIONS,
               "learning_rate_schedule": LEARNING_RATE_SCHEDULES}
    for name, allowed in choices.items():
      if getattr(self, name) not in allowed:
        raise ValueError(f"--{name}={getattr(self, name)!r} is not one of "
                         f"{', '.join(allowed)}")
    for name in ("epochs", "batch_size", "checkpoint_every_steps",
                 "refiner_features"):
      if getattr(self, name) <= 0:
        raise ValueError(f"--{name} must be positive, got "
                         f"{getattr(self, name)}")
    if self.warmup_steps < 0 or not 0 < self.warmup_initial_factor <= 1:
      raise ValueError(f"--warmup_steps={self.warmup_steps} must be >= 0 and "
                       f"--warmup_initial_factor={self.warmup_initial_factor} "
                       f"in (0, 1]")
    if not 0 <= self.adam_beta1 < 1:
      raise ValueError(f"--adam_beta1={self.adam_beta1} must be in [0, 1)")
    if not os.path.isdir(self.train_dir):
      raise ValueError(f"--train_dir={self.train_dir}: no such directory")
    if self.validation_dir and not os.path.isdir(self.validation_dir):
      raise ValueError(
          f"--validation_dir={self.validation_dir}: no such directory")
    if not 0 <= self.validation_fraction < 1:
      raise ValueError(f"--validation_fraction={self.validation_fraction} "
                       f"must be in [0, 1)")

  @property
  def augment_config(self):
    from jgr_p2o_tf import augment  # pylint: disable=g-import-not-at-top
    return augment.AugmentConfig(
        rotation_deg=self.rotation_deg,
        scale_range=(self.scale_min, self.scale_max),
        translation_mm=self.translation_mm, mode=self.augment_mode,
        scale_sigma=self.scale_sigma)

  @property
  def step_config(self):
    """What the train step computes besides the model."""
    from jgr_p2o_tf import train_step  # pylint: disable=g-import-not-at-top
    return train_step.StepConfig(
        augmentation=self.augment_config if self.augment else None,
        offset_weight=self.beta, huber_delta=self.huber_delta,
        l2_weight_decay=(self.weight_decay
                         if self.weight_decay_mode == "l2" else 0.0),
        loss_reduction=self.loss_reduction,
        decay_batch_norm_scale=self.decay_batch_norm_scale,
        clip_labels=self.clip_labels,
        farthest_depth_to_background=self.farthest_depth_to_background)


# The defaults of the fields that have one, by name.
DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)
            if f.default is not dataclasses.MISSING}

# The settings a run's checkpoints and step count are made with: resuming a
# run with another value of one of them is refused. The others (learning
# rate, loss weights, augmentation, epochs, logging, strategy, ...) may
# change between the runs of one model directory.
FIXED_FOR_A_RUN = ("task", "skeleton", "num_stacks", "graph", "head",
                   "num_features", "refiner_features",
                   "coordinate_convention", "mixed_precision",
                   "weight_decay_mode", "batch_size", "test_subject")
