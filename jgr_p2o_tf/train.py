r"""Trains JGR-P2O on prepared TFRecords.

  python -m jgr_p2o_tf.train --flagfile=experiments/nyu.cfg \
      --data_dir=/data/nyu_records --model_dir=runs/nyu

``--data_dir`` holds the prepared splits (``train/`` and ``test/``, as
``python -m data_prep`` writes them; MSRA: one split ``all/`` used with
``--test_subject``). Rerunning the same command resumes from the latest
checkpoint. See ``jgr_p2o_tf.trainer`` for what lands in ``--model_dir``.
"""

import dataclasses
import os

from absl import flags

from jgr_p2o_tf import cli
from jgr_p2o_tf import geometry

EPOCHS = {"icvl": 8, "nyu": 58, "msra": 58, "synthetic": 10}

_DATASET = flags.DEFINE_enum("dataset", None, sorted(EPOCHS),
                             "Dataset the records were prepared from.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Prepared records: train/ and test/ (MSRA: all/).")
_MODEL_DIR = flags.DEFINE_string("model_dir", None,
                                 "Checkpoints, logs and saved models.")
_EPOCHS = flags.DEFINE_integer(
    "epochs", None, "Epochs; default 8 for ICVL, 58 for NYU and MSRA "
    "(the paper), 10 for synthetic.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Global batch size.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-4, "Initial rate.")
_LEARNING_RATE_DECAY = flags.DEFINE_float(
    "learning_rate_decay", 0.96, "Factor applied to the rate every epoch.")
_WEIGHT_DECAY = flags.DEFINE_float("weight_decay", 5e-5, "Weight decay.")
_WEIGHT_DECAY_MODE = flags.DEFINE_enum(
    "weight_decay_mode", "l2", ["l2", "decoupled"],
    "l2: penalty in the loss with Adam (the authors' code); decoupled: AdamW.")
_NUM_STACKS = flags.DEFINE_integer("num_stacks", 2, "Stacked hourglasses.")
_GRAPH = flags.DEFINE_enum(
    "graph", "skeleton", ["skeleton", "feature_similarity", "parameterized"],
    "Graph structure of the JGR module (Table 1).")
_HEAD = flags.DEFINE_enum("head", "jgr", ["jgr", "p2o", "attention", "dhm"],
                          "Head: JGR-P2O or an ablation (Tables 2 and 4).")
_NUM_FEATURES = flags.DEFINE_integer("num_features", 128, "Feature channels.")
_COORDINATE_CONVENTION = flags.DEFINE_enum(
    "coordinate_convention", "project", list(geometry.COORDINATE_CONVENTIONS),
    "Normalized UVZ and output grid of the model: this project's, or those "
    "of the authors' TF1 code (geometry.COORDINATE_CONVENTIONS).")
_BETA = flags.DEFINE_float("beta", 1e-4,
                           "Weight of the offset loss (Eq. 9); 0 disables it.")
_HUBER_DELTA = flags.DEFINE_float(
    "huber_delta", 0.01, "Huber delta on normalized coordinates.")
_AUGMENT = flags.DEFINE_boolean("augment", True, "Online augmentation.")
_ROTATION_DEG = flags.DEFINE_float("rotation_deg", 180.0,
                                   "In-plane rotation range ± degrees.")
_SCALE_MIN = flags.DEFINE_float("scale_min", 0.9, "Smallest 3D scale.")
_SCALE_MAX = flags.DEFINE_float("scale_max", 1.1, "Largest 3D scale.")
_TRANSLATION_MM = flags.DEFINE_float("translation_mm", 10.0,
                                     "3D translation range ± mm.")
_MIXED_PRECISION = flags.DEFINE_enum(
    "mixed_precision", "none", ["none", "float16", "bfloat16"],
    "Compute dtype; variables, softmaxes and the loss stay float32.")
_JIT_COMPILE = flags.DEFINE_boolean("jit_compile", True,
                                    "Compile the train step with XLA.")
_STRATEGY = flags.DEFINE_enum(
    "strategy", "default", ["default", "mirrored", "multi_worker"],
    "tf.distribute: one device, all local GPUs, or workers from TF_CONFIG.")
_TEST_SUBJECT = flags.DEFINE_string(
    "test_subject", "", "MSRA: the subject left out for validation (P0..P8).")
_CHECKPOINT_EVERY_STEPS = flags.DEFINE_integer(
    "checkpoint_every_steps", 500, "Checkpoint interval within an epoch.")
_MAX_STEPS = flags.DEFINE_integer("max_steps", 0,
                                  "Stop after this many steps (0: no limit).")
_LOG_EVERY_STEPS = flags.DEFINE_integer("log_every_steps", 50,
                                        "TensorBoard scalar interval.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of data order and augmentation.")
_PROGRESS_BAR = flags.DEFINE_boolean("progress_bar", True, "Show progress.")

flags.mark_flags_as_required(["dataset", "data_dir", "model_dir"])


def config_from_flags():
  """TrainConfig from the parsed flags; ValueError names a bad flag."""
  from jgr_p2o_tf import trainer  # pylint: disable=g-import-not-at-top
  data_dir = _DATA_DIR.value
  if not os.path.isdir(data_dir):
    raise ValueError(f"--data_dir={data_dir}: no such directory")
  if _DATASET.value == "msra":
    if not _TEST_SUBJECT.value:
      raise ValueError("--dataset=msra needs --test_subject (P0..P8) for "
                       "leave-one-subject-out")
    train_dir = os.path.join(data_dir, "all")
    validation_dir = ""
  else:
    train_dir = os.path.join(data_dir, "train")
    test_dir = os.path.join(data_dir, "test")
    validation_dir = test_dir if os.path.isdir(test_dir) else ""
  if not os.path.isdir(train_dir):
    raise ValueError(f"--data_dir={data_dir} has no {os.path.basename(train_dir)}"
                     f"/ split: prepare it with python -m data_prep")
  values = {
      "train_dir": train_dir, "validation_dir": validation_dir,
      "model_dir": _MODEL_DIR.value,
      "epochs": _EPOCHS.value or EPOCHS[_DATASET.value]}
  for field in dataclasses.fields(trainer.TrainConfig):
    flag = flags.FLAGS[field.name] if field.name in flags.FLAGS else None
    if field.name not in values and flag is not None:
      values[field.name] = flag.value
  return trainer.TrainConfig(**values)


def main(argv):
  del argv
  from jgr_p2o_tf import trainer  # pylint: disable=g-import-not-at-top
  config = config_from_flags()
  cli.write_flags(config.model_dir)
  history = trainer.train(config)
  if history:
    print(f"done: {history[-1]}")


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
