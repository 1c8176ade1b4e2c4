"""Training speed, and the input pipeline's.

"train" times, under TensorFlow, the project's ``Trainer.train_step`` at batch
32 with augmentation on and off; under JAX a jitted ``jax.value_and_grad`` of
``losses.jgr_p2o_loss`` through Keras' stateless API. "input" times
``input_pipeline.make_dataset`` alone.
"""

import itertools
import tempfile

import keras
import numpy as np

from jgr_p2o_tf import losses
from jgr_p2o_tf import skeletons
from jgr_p2o_tf import train_config
from jgr_p2o_tf.benchmark import timing
from jgr_p2o_tf.benchmark import workload

# At batch 32, augmentation on.
TRAINING_TARGET = timing.Target("frames_per_s", "min", 60.0)
AUGMENTATION_COST_TARGET = timing.Target("percent", "max", 5.0)
JAX_TRAINING_NOTE = ("train: Trainer.train_step and its augmentation need "
                     "TensorFlow; the JAX rows time value_and_grad of "
                     "losses.jgr_p2o_loss + Adam.stateless_apply, without "
                     "augmentation or L2 penalty")


def _augmentation_cost_row(measurement, augmented, plain):
  percent = 100.0 * (augmented["median_ms"] / plain["median_ms"] - 1.0)
  row = {"part": "train", "measurement": measurement,
         "batch_size": augmented["batch_size"], "percent": percent}
  return timing.with_target(row, AUGMENTATION_COST_TARGET)


def _time_train_step(records_dir, config, settings, *, jit_compile, augment):
  """(first call s, step seconds) of a fresh Trainer's ``train_step``."""
  from jgr_p2o_tf import trainer  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as model_dir:
    training = trainer.Trainer(train_config.TrainConfig(
        train_dir=records_dir, model_dir=model_dir, epochs=1,
        batch_size=workload.TRAIN_BATCH_SIZE, num_stacks=config.num_stacks,
        num_features=config.num_features, augment=augment,
        mixed_precision=config.mixed_precision, jit_compile=jit_compile,
        progress_bar=False))
    # pylint: disable-next=protected-access
    batches = itertools.cycle(list(training._dataset(0)))
    return timing.time_calls(
        lambda: float(training.train_step(next(batches))[0]),
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
      by_augment[augment] = timing.timing_row(
          "train", measurement, workload.TRAIN_BATCH_SIZE, first_call_s,
          seconds, TRAINING_TARGET if augment else None)
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
  optimizer = keras.optimizers.Adam(workload.LEARNING_RATE)
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

  num_joints = skeletons.get_skeleton(workload.SKELETON).num_joints
  rows = []
  for batch_size in [b for b in settings.batch_sizes if b > 1]:
    measurement = "jax.jit(value_and_grad + Adam.stateless_apply), no augm."
    log(f"train: {measurement}, batch {batch_size}")
    depth = workload.random_crops(batch_size)
    joints_uvz = workload.random_joints_uvz(batch_size, num_joints)
    state = ([v.value for v in model.trainable_variables],
             [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables])

    def call():
      nonlocal state
      loss, state = train_step(state, depth, joints_uvz)
      float(loss)

    first_call_s, seconds = timing.time_calls(call, settings.train_steps,
                                              settings.warmup_runs)
    rows.append(timing.timing_row("train", measurement, batch_size,
                                  first_call_s, seconds))
  return rows


def benchmark_input(records_dir, settings, log):
  """"input": batches of 32 from ``input_pipeline.make_dataset`` alone.

  The training pipeline (interleave, shuffle, batch, parse, prefetch) runs
  one untimed epoch, then ``input_batches`` batches are read from it
  repeated; each is waited for on the host.
  """
  from jgr_p2o_tf import input_pipeline  # pylint: disable=g-import-not-at-top
  log("input: make_dataset")
  dataset = input_pipeline.make_dataset(records_dir,
                                        batch_size=workload.TRAIN_BATCH_SIZE,
                                        training=True, seed=0)
  for _ in dataset:
    pass
  batches = iter(dataset.repeat())
  call = lambda: next(batches)["depth"].numpy()
  first_call_s, seconds = timing.time_calls(call, settings.input_batches, 1)
  row = timing.timing_row("input", "tf.data make_dataset(training=True)",
                          workload.TRAIN_BATCH_SIZE, first_call_s, seconds)
  # Prefetching makes single batches uneven; the rate is over all of them.
  row["batches_per_s"] = len(seconds) / float(np.sum(seconds))
  row["frames_per_s"] = workload.TRAIN_BATCH_SIZE * row["batches_per_s"]
  return [row]
