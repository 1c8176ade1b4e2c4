"""Trains the centre refiner (``centre_refiner``): ``train --task=centre``.

The refiner is small (~58 MFLOP a frame) and its data are the refiner crops
that ``data_prep --refiner_crops`` writes beside the pose crops (rough or
true centre moved at random, target the pose crop's centre; the records'
``--refiner_stage`` decides the cube, so the same command trains the coarse
and the fine refiner), so Keras' own loop serves:
``Model.fit`` over a tf.data pipeline of those records, with the run's
settings from the same ``TrainConfig`` and flags as the pose trainer
(``--batch_size``, the learning rate's flags and schedule as
``trainer.make_learning_rate`` reads them, ``--epochs``, ``--seed``,
``--progress_bar``, ``--refiner_features``).
What lands in ``--model_dir``, as for a pose run: ``config.json``,
``last.keras`` (the final refiner, written atomically), ``history.json``,
TensorBoard logs in ``logs/``, and ``checkpoints/`` (Keras'
``BackupAndRestore``: rerunning the command resumes from the last finished
epoch).

Loss: mean squared error of the normalized offset ``(target − rough) /
(cube/2)`` (a Huber loss of small delta, which acts as L1 on most offsets,
trained the refiner far more slowly). Augmentation: random
mirror images of the crop about its vertical and horizontal centre lines,
with the offset's x or y negated (the crop is centred on the rough centre,
so the mirrored crop is that of a mirrored scene around the same centre).
"""

import json
import os

import keras
import tensorflow as tf

from jgr_p2o_tf import centre_refiner
from jgr_p2o_tf import geometry
from jgr_p2o_tf import input_pipeline
from jgr_p2o_tf import progress as progress_lib
from jgr_p2o_tf import records_manifest
from jgr_p2o_tf import tfrecords

def refiner_records(train_dir):
  """The manifest of ``train_dir``; ValueError if it has no refiner crops."""
  manifest = records_manifest.read_manifest(train_dir)
  if not manifest.get("refiner"):
    raise ValueError(
        f"{train_dir}: records without refiner crops; prepare them with "
        f"python -m data_prep ... --refiner_crops")
  return manifest


def _inputs_and_targets(serialized, manifest):
  parsed = tfrecords.parse_refiner_example(
      serialized, manifest["refiner"]["crop_size"])
  offset = (parsed["centre_xyz"] - parsed["rough_centre_xyz"]) / (
      parsed["refiner_cube"] / 2.0) * geometry.crop_axis_signs(
          parsed["camera"])
  return parsed["refiner_depth"], offset


def _mirror(depth, offset, seed):
  """Random mirror images of each crop (see the module docstring)."""
  flips = tf.random.stateless_uniform(
      tf.stack([tf.shape(offset)[0], 2]), seed) < 0.5
  flip_u, flip_v = flips[:, 0], flips[:, 1]
  depth = tf.where(flip_u[:, None, None, None], tf.reverse(depth, [2]), depth)
  depth = tf.where(flip_v[:, None, None, None], tf.reverse(depth, [1]), depth)
  signs = tf.stack([tf.where(flip_u, -1.0, 1.0), tf.where(flip_v, -1.0, 1.0),
                    tf.ones_like(offset[:, 2])], axis=-1)
  return depth, offset * signs


def make_dataset(train_dir, batch_size, training, seed=0):
  """(crop, normalized offset) batches of a split's refiner crops."""
  manifest = refiner_records(train_dir)
  dataset = input_pipeline.make_dataset(
      train_dir, batch_size=batch_size, training=training, seed=seed,
      cache=True, parse=_inputs_and_targets)
  if training:
    dataset = dataset.enumerate().map(
        lambda step, batch: _mirror(*batch, tf.stack(
            [tf.constant(seed, tf.int64), step])))
  return dataset, manifest


def build_refiner(manifest, num_features):
  """A fresh CentreRefiner for the refiner crops of ``manifest``."""
  refiner = manifest["refiner"]
  cube = geometry.refiner_cube(manifest["cube_mm"],
                                     refiner["cube_factor"])
  return centre_refiner.CentreRefiner(
      input_size=refiner["crop_size"], num_features=num_features,
      cube_mm=cube)


def _finished_history(config):
  """The history of a run that trained all its epochs, else None.

  Keras' BackupAndRestore resumes an interrupted fit but forgets a finished
  one, which a rerun (``make demo`` again) would then train anew.
  """
  from jgr_p2o_tf import run_dir  # pylint: disable=g-import-not-at-top
  history_path = os.path.join(config.model_dir, "history.json")
  if not (os.path.exists(history_path) and os.path.exists(
      os.path.join(config.model_dir, run_dir.LAST_MODEL))):
    return None
  with open(history_path, encoding="utf-8") as f:
    history = json.load(f)
  return history if history and history[-1]["epoch"] >= config.epochs else None


class _EpochProgress(keras.callbacks.Callback):
  """The pose trainer's progress: a bar (or lines) per epoch, its loss."""

  def __init__(self, epochs, steps_per_epoch, disable, log):
    super().__init__()
    self._epochs, self._steps = epochs, steps_per_epoch
    self._disable, self._log = disable, log
    self._bar = None

  def on_epoch_begin(self, epoch, logs=None):
    self._bar = progress_lib.progress(
        self._steps, f"epoch {epoch + 1}/{self._epochs}", "step",
        disable=self._disable)

  def on_train_batch_end(self, batch, logs=None):
    self._bar.update(1)
    if logs and "loss" in logs:
      self._bar.set_postfix(loss=f"{float(logs['loss']):.4f}")

  def on_epoch_end(self, epoch, logs=None):
    self._bar.close()
    self._log(f"epoch {epoch + 1}: loss {float(logs['loss']):.5f}")


def train(config, log=print):
  """Trains (or resumes) the refiner of ``config``; returns the history.

  Args:
    config: a TrainConfig with ``task == "centre"``.
    log: where the per-epoch and final lines go.
  """
  from jgr_p2o_tf import run_dir  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import trainer  # pylint: disable=g-import-not-at-top
  run_dir.check_resumable(config)
  finished = _finished_history(config)
  if finished:
    log(f"centre refiner: done ({finished[-1]['epoch']} epochs); model "
        f"{os.path.join(config.model_dir, run_dir.LAST_MODEL)}")
    return finished
  dataset, manifest = make_dataset(config.train_dir, config.batch_size,
                                   training=True, seed=config.seed)
  if manifest["cube_mm"] is None:
    raise ValueError(f"{config.train_dir}: frames of cubes drawn per frame; "
                     f"the refiner needs one cube (prepare with --cube_mm)")
  if not config.skeleton:
    # Resolved as the pose trainer does, so that config.json names it and a
    # rerun's check_resumable compares like with like.
    config.skeleton = manifest["skeleton"]
  config.jit_compile = trainer.resolve_jit_compile(config.jit_compile)
  os.makedirs(config.model_dir, exist_ok=True)
  trainer.write_config(config)
  keras.utils.set_random_seed(config.seed)
  refiner = build_refiner(manifest, config.refiner_features)
  crops = sum(shard["written"] for shard in manifest["shards"])
  steps_per_epoch = crops // config.batch_size
  if steps_per_epoch == 0:
    raise ValueError(f"--train_dir={config.train_dir} holds fewer frames "
                     f"than one batch of {config.batch_size}")
  log(f"centre refiner: {refiner.input_size}×{refiner.input_size} crops of a "
      f"{float(refiner.cube_mm[0]):g} mm cube from {config.train_dir}; "
      f"{config.epochs} epochs of {steps_per_epoch} steps of batch "
      f"{config.batch_size}, {trainer.describe_learning_rate(config)}; "
      f"output {config.model_dir}")
  # The pose trainer's schedule, with Keras' Adam (β1 0.9).
  learning_rate = trainer.make_learning_rate(config, steps_per_epoch)
  refiner.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.MeanSquaredError(),
                  jit_compile=config.jit_compile)
  # Repeated, with the epoch's length given: Keras then neither warns that
  # the data ran out nor counts the steps of the first epoch as unknown.
  # The records are shuffled by the input pipeline, not by fit.
  history = refiner.fit(
      dataset.repeat(), epochs=config.epochs, steps_per_epoch=steps_per_epoch,
      shuffle=False, verbose=0,
      callbacks=[
          keras.callbacks.BackupAndRestore(
              os.path.join(config.model_dir, "checkpoints")),
          keras.callbacks.TensorBoard(os.path.join(config.model_dir, "logs")),
          _EpochProgress(config.epochs, steps_per_epoch,
                         not config.progress_bar, log)])
  last_model = os.path.join(config.model_dir, run_dir.LAST_MODEL)
  # An uncompiled copy: last.keras holds the refiner alone, as a pose run's
  # does, so loading it never needs the optimiser or its schedule
  # (trainer.LearningRate); the optimiser's state is in checkpoints/.
  final = centre_refiner.CentreRefiner.from_config(refiner.get_config())
  final.set_weights(refiner.get_weights())
  trainer.save_model_atomically(final, last_model)
  # The epochs of this call: after a resume, the ones it trained.
  epochs = [{"epoch": epoch + 1, "loss": float(loss)} for epoch, loss in
            zip(history.epoch, history.history.get("loss", []))]
  with open(os.path.join(config.model_dir, "history.json"), "w",
            encoding="utf-8") as f:
    json.dump(epochs, f, indent=2)
  if epochs:
    log(f"centre refiner: trained to epoch {epochs[-1]['epoch']}, final loss "
        f"{epochs[-1]['loss']:.5f}; model {last_model}")
  return epochs
