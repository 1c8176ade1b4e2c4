"""A training run's folder (``--model_dir``): its models and its config.

The trainer writes ``last.keras`` (the latest epoch: the final model once
training ends) and ``config.json`` (the resolved TrainConfig) there, and,
when the run has a validation split (``validation_split``), ``best.keras``
(the lowest error on it) with ``best.json`` (its epoch, error and the
validation split). ``import_checkpoint`` writes ``last.keras`` and
``config.json``: the authors' released models are their final epochs.

The one rule for which model a command uses (``resolve_model_path``):
unless told otherwise, ``best.keras`` when ``best.json`` records the
validation split that chose it, and the final ``last.keras`` otherwise.
A model chosen on some frames is never scored on them: ``check_not_chosen_on``
refuses it, and the trainer refuses a validation split prepared from a test
split. Evaluate, export, the notebook (and infer, through export) find their
model here.
"""

import glob
import json
import os
import zipfile

from jgr_p2o_tf import records_manifest
from jgr_p2o_tf import train_config
from jgr_p2o_tf import validation_split

MODEL_CHOICES = ("best", "last")
BEST_MODEL = "best.keras"
LAST_MODEL = "last.keras"
BEST_RECORD = "best.json"
CONFIG_FILE = "config.json"


def best_record(model_dir):
  """``best.json`` of a run as a dict, or None when there is none."""
  path = os.path.join(model_dir, BEST_RECORD)
  if not os.path.isfile(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"{path}: cannot read it ({e})") from None


def _chosen_on(model_dir):
  """The validation split best.keras was chosen on, if a valid one.

  Its record in best.json; None if there is no best.json, it records no
  split (a run that may have validated on the test split) or the split it
  records is a test split.
  """
  chosen_on = (best_record(model_dir) or {}).get("validation")
  if chosen_on and chosen_on["source"]["split"] != validation_split.TEST_SPLIT:
    return chosen_on
  return None


def default_model(model_dir):
  """The model a command uses when not told: see the module docstring."""
  best = os.path.join(model_dir, BEST_MODEL)
  if _chosen_on(model_dir) and os.path.isfile(best):
    return best
  last = os.path.join(model_dir, LAST_MODEL)
  if not os.path.isfile(last):
    raise FileNotFoundError(f"{model_dir}: no {LAST_MODEL} (has the trainer "
                            f"finished an epoch?)")
  return last


def resolve_model_path(model_dir, model=None):
  """The .keras file of ``model`` in a run; FileNotFoundError if absent.

  Args:
    model_dir: a training run's (or imported model's) folder.
    model: None for the run's default (``default_model``); "best" (only
      with the record of the validation split that chose it, not a test
      split) or "last"; or the path of a .keras file.
  """
  if model is None:
    return default_model(model_dir)
  if model in MODEL_CHOICES:
    path = os.path.join(model_dir, f"{model}.keras")
  elif model.endswith(".keras"):
    path = model
  else:
    raise ValueError(f"--model={model!r} must be best, last or a path to a "
                     f".keras file")
  if not os.path.isfile(path):
    hint = (" (train writes best.keras only with a validation split)"
            if model == "best" else "")
    raise FileNotFoundError(f"{path}: no such model{hint}")
  if model == "best" and not _chosen_on(model_dir):
    raise ValueError(
        f"{path}: {BEST_RECORD} does not record a validation split that is "
        f"not a test split, so it may have been chosen on the test split; "
        f"use --model=last")
  return path


def check_not_chosen_on(model_path, records_dir, subjects=None):
  """Refuses to score a ``best.keras`` on frames of the split that chose it.

  Args:
    model_path: the .keras file about to be evaluated.
    records_dir: the prepared split it is to be evaluated on.
    subjects: the subjects of it to be evaluated (MSRA), or None for all.

  Raises:
    ValueError: the model is a run's best.keras and its validation split
      (``best.json``) shares frames with those, or ``best.json`` does not
      record the split.
  """
  model_dir = os.path.dirname(os.path.abspath(model_path))
  if os.path.basename(model_path) != BEST_MODEL:
    return
  if best_record(model_dir) is None:
    return
  chosen_on = _chosen_on(model_dir)
  if not chosen_on:
    raise ValueError(
        f"{model_path}: {BEST_RECORD} does not record a validation split that "
        f"is not a test split, so it may have been chosen on these frames; "
        f"evaluate {os.path.join(model_dir, LAST_MODEL)} instead")
  manifest = records_manifest.read_manifest(records_dir)
  entries = [e for e in manifest["shards"]
             if subjects is None or e.get("subject") in subjects]
  evaluated = validation_split.select(records_dir, manifest, entries)
  shared = validation_split.shared_frames(chosen_on, evaluated.source,
                                          evaluated.frames)
  if shared:
    raise ValueError(
        f"{model_path} was chosen on {shared} of these frames (its validation "
        f"split, {BEST_RECORD}): a model is not scored on the frames that "
        f"chose it; evaluate {os.path.join(model_dir, LAST_MODEL)} "
        f"(--model=last) or validate on held-out training data")


def read_train_config(model_dir):
  """The training run's config.json as a dict."""
  path = os.path.join(model_dir, CONFIG_FILE)
  try:
    with open(path, encoding="utf-8") as f:
      config = json.load(f)
  except FileNotFoundError:
    raise FileNotFoundError(f"{path} not found: --model_dir must be the "
                            f"--model_dir of a training run") from None
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"{path}: cannot read the training config ({e})") from None
  if not isinstance(config, dict):
    raise ValueError(f"{path}: not a training config (a JSON object)")
  return config


def check_resumable(config):
  """ValueError if ``config.model_dir`` holds a run made with other settings.

  Called before anything is written there: a run that has a checkpoint or a
  model keeps its config.json, flags.txt and checkpoints when it is
  restarted with another value of a ``train_config.FIXED_FOR_A_RUN``
  setting (another skeleton or width would not restore).

  Args:
    config: the TrainConfig of the restart; an empty skeleton stands for
      its records' (as the trainer resolves it).
  """
  model_dir = config.model_dir
  trained = (glob.glob(os.path.join(model_dir, "checkpoints", "ckpt-*")) or
             any(os.path.exists(os.path.join(model_dir, f"{m}.keras"))
                 for m in MODEL_CHOICES))
  if not trained or not os.path.exists(os.path.join(model_dir, CONFIG_FILE)):
    return
  saved = read_train_config(model_dir)
  wanted = dict(vars(config))
  if not wanted["skeleton"]:
    wanted["skeleton"] = records_manifest.read_manifest(
        config.train_dir)["skeleton"]
  differing = [name for name in train_config.FIXED_FOR_A_RUN
               if name in saved and saved[name] != wanted[name]]
  if not differing:
    return

  def setting(name):
    if name == "skeleton" and not config.skeleton:  # no flag: the records'
      return f"skeleton {wanted[name]} of the records in {config.train_dir}"
    return f"--{name}={wanted[name]}"

  raise ValueError(
      f"{model_dir} holds a run trained with other settings: " + ", ".join(
          f"{setting(name)} (the run's: {saved[name]})"
          for name in differing) +
      f"; restart it with its own flags (--flagfile={model_dir}/flags.txt) "
      "or choose another --model_dir")


def training_manifest(config):
  """The dataset facts of a run (cube, camera, dataset, skeleton), or None.

  Those of the manifest of the run's training records, or None if they are
  gone; a model directory written by ``import_checkpoint`` has no records and
  its config.json holds them itself.
  """
  if config.get("source_checkpoint"):
    return config
  try:
    return records_manifest.read_manifest(config.get("train_dir", ""),
                                          require_complete=False)
  except FileNotFoundError:
    return None


def read_model_config(path):
  """The build arguments of the model in a .keras file, without loading it.

  Reads the file's config.json (no TensorFlow needed) after checking the
  archive whole: every member's CRC.

  Raises:
    FileNotFoundError: no such file.
    ValueError: naming the file, when it is truncated, corrupt or not a
      .keras archive.
  """
  try:
    with zipfile.ZipFile(path) as archive:
      corrupt = archive.testzip()
      config = json.loads(archive.read("config.json"))
  except FileNotFoundError:
    raise FileNotFoundError(f"{path}: no such model file") from None
  except (OSError, EOFError, KeyError, UnicodeDecodeError, zipfile.BadZipFile,
          json.JSONDecodeError) as e:
    raise ValueError(f"{path}: truncated, corrupt or not a .keras file "
                     f"({e})") from None
  if corrupt is not None:
    raise ValueError(f"{path}: corrupt .keras file ({corrupt} fails its "
                     f"checksum)")
  if not isinstance(config, dict) or not isinstance(config.get("config"),
                                                    dict):
    raise ValueError(f"{path}: not a .keras model file (no model config)")
  return config["config"]


def load_keras_model(path, mixed_precision="none"):
  """Loads a saved .keras model, optionally as a mixed precision copy.

  Args:
    path: the .keras file.
    mixed_precision: "none", "bfloat16" or "float16": the copy computes in
      that dtype with float32 weights (Keras' ``mixed_*`` policies).

  Returns:
    keras.Model.
  """
  import keras  # pylint: disable=g-import-not-at-top
  # Registers the project's Keras classes, which the file names.
  from jgr_p2o_tf import model as model_lib  # pylint: disable=g-import-not-at-top
  if mixed_precision not in train_config.MIXED_PRECISION:
    raise ValueError(f"mixed_precision={mixed_precision!r} is not one of "
                     f"{', '.join(train_config.MIXED_PRECISION)}")
  read_model_config(path)
  try:
    model = keras.saving.load_model(path, compile=False)
  except (OSError, ValueError) as e:
    raise ValueError(f"{path}: cannot load the Keras model ({e})") from None
  if mixed_precision == "none":
    return model
  # The model carries its build arguments: the copy is the same network
  # built under the mixed policy.
  mixed = model_lib.JGRP2OModel.from_config(
      {**model.get_config(), "dtype": f"mixed_{mixed_precision}"})
  mixed.set_weights(model.get_weights())
  return mixed


def check_output_dir(path, flag, marker, kind, overwrite):
  """The absolute ``path`` if a command may write its output there.

  A folder that is not empty may only be overwritten (``--overwrite``), and
  only if it holds an output of this kind: its ``marker`` file (a run's
  config.json, a SavedModel's saved_model.pb), so that a mistyped path never
  deletes something else.

  Args:
    path: the folder to write.
    flag: the flag that named it, for messages ("model_dir").
    marker: a file every output of this kind holds.
    kind: what the output is called in messages.
    overwrite: whether an existing output may be replaced.

  Raises:
    ValueError: naming the folder and why it may not be written.
  """
  path = os.path.abspath(path)
  if os.path.exists(path):
    if not os.path.isdir(path):
      raise ValueError(f"{path} exists and is not a directory")
    if os.listdir(path):
      if not overwrite:
        raise ValueError(f"{path} is not empty; choose another {flag} or "
                         f"overwrite it (--overwrite)")
      if not os.path.exists(os.path.join(path, marker)):
        raise ValueError(f"{path} is not empty and holds no {kind}; "
                         "refusing to overwrite it")
  return path
