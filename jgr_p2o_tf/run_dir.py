"""A training run's folder (``--model_dir``): its models and its config.

The trainer writes ``best.keras`` (lowest validation error), ``last.keras``
(latest epoch) and ``config.json`` (the resolved TrainConfig) there; the
exporter, the evaluator and the notebook open runs through this module.
"""

import glob
import json
import os
import zipfile

from jgr_p2o_tf import records_manifest
from jgr_p2o_tf import train_config

MODEL_CHOICES = ("best", "last")
CONFIG_FILE = "config.json"


def resolve_model_path(model_dir, model="best"):
  """``best``/``last`` → ``{model_dir}/{model}.keras``; else a .keras path."""
  if model in MODEL_CHOICES:
    path = os.path.join(model_dir, f"{model}.keras")
  elif model.endswith(".keras"):
    path = model
  else:
    raise ValueError(f"--model={model!r} must be best, last or a path to a "
                     f".keras file")
  if not os.path.isfile(path):
    hint = (" (train writes best.keras only when it validates)"
            if model == "best" else "")
    raise FileNotFoundError(f"{path}: no such model{hint}")
  return path


def best_or_last_model(model_dir):
  """The run's best.keras, or last.keras when it never validated."""
  for model in MODEL_CHOICES:
    path = os.path.join(model_dir, f"{model}.keras")
    if os.path.isfile(path):
      return path
  raise FileNotFoundError(f"{model_dir}: no best.keras or last.keras (has "
                          f"the trainer run?)")


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
