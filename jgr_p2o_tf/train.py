r"""Trains JGR-P2O on prepared TFRecords.

  python -m jgr_p2o_tf.train --flagfile=experiments/nyu.cfg \
      --data_dir=/data/nyu_records --model_dir=runs/nyu

``--data_dir`` holds the prepared training split ``train/`` (MSRA: one
split ``all/``, less ``--test_subject``). Training never reads the test
split: the model it ends with (``last.keras``) is what every command uses,
unless a validation split (``--validation_fraction`` of the training
records, held out by whole shards or subjects, or ``--validation_dir``)
chooses ``best.keras`` (``validation_split``, ``run_dir``). Rerunning the
same command resumes from the latest checkpoint. See ``jgr_p2o_tf.trainer``
for what lands in ``--model_dir``.

The flags of the TrainConfig fields take their defaults from it
(``train_config``); ``--epochs`` defaults to the dataset's
(``dataset_profiles``).
"""

import dataclasses
import os

from absl import flags

from jgr_p2o_tf import cli
from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import records_manifest
from jgr_p2o_tf import run_dir
from jgr_p2o_tf import train_config

_DATASET = flags.DEFINE_enum("dataset", None, dataset_profiles.NAMES,
                             "Dataset the records were prepared from.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Prepared records: train/ (MSRA: all/).")
_MODEL_DIR = flags.DEFINE_string("model_dir", None,
                                 "Checkpoints, logs and saved models.")
_EPOCHS = flags.DEFINE_integer(
    "epochs", None, "Epochs; default the dataset's: " + ", ".join(
        f"{p.epochs} for {p.name}" for p in dataset_profiles.PROFILES.values())
    + ".")

# The TrainConfig fields set by a flag of the same name: its help, and the
# values it takes for a str field with choices.
_FIELD_FLAGS = {
    "task": ("pose: the JGR-P2O network; centre: the centre refiner "
             "(centre_training), on records prepared with --refiner_crops.",
             train_config.TASKS),
    "refiner_features": "--task=centre: channels of the refiner's first "
                        "convolution.",
    "validation_fraction": (
        "Hold this fraction of the training records out, by whole shards "
        "(MSRA: subjects) from their end, to choose best.keras; 0: none, "
        "every command then uses the final model."),
    "validation_dir": (
        "A prepared split, not the test split, that chooses best.keras."),
    "batch_size": "Global batch size.",
    "learning_rate": "Initial rate.",
    "learning_rate_decay": "--learning_rate_schedule=exponential: factor "
                           "applied to the rate every epoch.",
    "learning_rate_schedule": (
        "exponential: ×--learning_rate_decay every epoch (the authors' "
        "code); cosine: a half cosine from --learning_rate to 0 over "
        "--epochs, step by step (resuming with other --epochs reshapes "
        "what is left of it).", train_config.LEARNING_RATE_SCHEDULES),
    "warmup_steps": "Steps of linear learning-rate warm-up at the start "
                    "(the authors' code: 100).",
    "warmup_initial_factor": "Fraction of the rate the warm-up starts from "
                             "(the authors' code: 1/3).",
    "adam_beta1": "Adam's beta_1 (the authors' code: 0.5).",
    "weight_decay": "Weight decay.",
    "weight_decay_mode": (
        "l2: penalty in the loss with Adam (the authors' code); decoupled: "
        "AdamW.", train_config.WEIGHT_DECAY_MODES),
    "decay_batch_norm_scale": "The L2 penalty covers the batch norms' "
                              "scales too (the authors' code).",
    "loss_reduction": (
        "The loss over the batch: its mean (ours) or its sum (the authors' "
        "code).", train_config.LOSS_REDUCTIONS),
    "clip_labels": "Clip the normalized labels to [-1, 1] (the authors' "
                   "code).",
    "num_stacks": "Stacked hourglasses.",
    "graph": ("Graph structure of the JGR module (Table 1).",
              ("skeleton", "feature_similarity", "parameterized")),
    "head": ("Head: JGR-P2O or an ablation (Tables 2 and 4).",
             ("jgr", "p2o", "attention", "dhm")),
    "num_features": "Feature channels.",
    "coordinate_convention": (
        "Normalized UVZ and output grid of the model: this project's, or "
        "those of the authors' TF1 code (geometry.COORDINATE_CONVENTIONS).",
        geometry.COORDINATE_CONVENTIONS),
    "beta": "Weight of the offset loss (Eq. 9); 0 disables it.",
    "huber_delta": "Huber delta on normalized coordinates.",
    "augment": "Online augmentation.",
    "augment_mode": (
        "all: rotation, 3D scale and translation of every sample, depths "
        "moved with the hand (ours); authors: one of them or none per "
        "sample, depths unchanged (the authors' code).",
        train_config.AUGMENT_MODES),
    "scale_sigma": "--augment_mode=authors: standard deviation of the "
                   "cube's scale factor.",
    "farthest_depth_to_background": "Make the farthest depth of every "
                                    "training crop background (the "
                                    "authors' code).",
    "rotation_deg": "In-plane rotation range ± degrees.",
    "scale_min": "Smallest 3D scale.",
    "scale_max": "Largest 3D scale.",
    "translation_mm": "3D translation range ± mm.",
    "mixed_precision": (
        "Compute dtype; variables, softmaxes and the loss stay float32.",
        train_config.MIXED_PRECISION),
    "jit_compile": "Compile the train step with XLA; default: where "
                   "TensorFlow sees a GPU or TPU (on a CPU, XLA's train step "
                   "is the slower).",
    "strategy": (
        "tf.distribute: one device, all local GPUs, or workers from "
        "TF_CONFIG.", train_config.STRATEGIES),
    "test_subject": "MSRA: the test subject, left out of training (P0..P8).",
    "checkpoint_every_steps": "Checkpoint interval within an epoch.",
    "max_steps": "Stop after this many steps (0: no limit).",
    "log_every_steps": "TensorBoard scalar interval.",
    "seed": "Seed of data order and augmentation.",
    "progress_bar": "Show progress.",
}


_FIELD_TYPES = {field.name: field.type
                for field in dataclasses.fields(train_config.TrainConfig)}
# A field's type → the absl flag of it; a bool | None field's None lets the
# run resolve it (jit_compile).
_DEFINE_BY_TYPE = {bool: flags.DEFINE_boolean,
                   bool | None: flags.DEFINE_boolean,
                   int: flags.DEFINE_integer, float: flags.DEFINE_float,
                   str: flags.DEFINE_string}


def _define_field_flag(name, default, help_and_choices):
  """A flag for a TrainConfig field, of the type of the field."""
  help_text, choices = (help_and_choices if isinstance(help_and_choices, tuple)
                        else (help_and_choices, None))
  if choices is not None:
    flags.DEFINE_enum(name, default, choices, help_text)
  else:
    _DEFINE_BY_TYPE[_FIELD_TYPES[name]](name, default, help_text)


for _name, _help in _FIELD_FLAGS.items():
  _define_field_flag(_name, train_config.DEFAULTS[_name], _help)

flags.mark_flags_as_required(["dataset", "data_dir", "model_dir"])


def config_from_flags():
  """TrainConfig from the parsed flags; ValueError names a bad flag."""
  data_dir = _DATA_DIR.value
  if not os.path.isdir(data_dir):
    raise ValueError(f"--data_dir={data_dir}: no such directory")
  profile = dataset_profiles.get_profile(_DATASET.value)
  test_subject = flags.FLAGS.test_subject
  if profile.subjects:
    if not test_subject:
      raise ValueError(
          f"--dataset={profile.name} needs --test_subject "
          f"({profile.subjects[0]}..{profile.subjects[-1]}) for "
          "leave-one-subject-out")
    train_dir = os.path.join(data_dir, "all")
  else:
    train_dir = os.path.join(data_dir, "train")
  if not os.path.isdir(train_dir):
    raise ValueError(f"--data_dir={data_dir} has no {os.path.basename(train_dir)}"
                     f"/ split: prepare it with python -m data_prep")
  for split_dir in filter(None, (train_dir, flags.FLAGS.validation_dir)):
    records_manifest.check_dataset(
        split_dir, records_manifest.read_manifest(split_dir), profile.name)
  values = {
      "train_dir": train_dir, "model_dir": _MODEL_DIR.value,
      "epochs": _EPOCHS.value or profile.epochs}
  for field in dataclasses.fields(train_config.TrainConfig):
    if field.name in _FIELD_FLAGS:
      values[field.name] = flags.FLAGS[field.name].value
  config = train_config.TrainConfig(**values)
  config.validate()
  return config


def main(argv):
  del argv
  config = config_from_flags()
  run_dir.check_resumable(config)
  # Imported here: TensorFlow takes seconds, and flag errors need none of it.
  from jgr_p2o_tf import trainer  # pylint: disable=g-import-not-at-top
  cli.write_flags(config.model_dir)
  if config.task == "centre":
    from jgr_p2o_tf import centre_training  # pylint: disable=g-import-not-at-top
    centre_training.train(config)
    return
  trainer.train(config)


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
