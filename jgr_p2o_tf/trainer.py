"""Training library: the compiled train step, checkpoints, validation, logs.

``train(config)`` is what ``python -m jgr_p2o_tf.train`` calls. It is
restartable at any moment: every checkpoint stores the model, the optimizer,
the global step and the epoch's loss so far; on start the latest checkpoint
is restored and the interrupted epoch resumes at the batch after the last
checkpointed step (each epoch's shuffle order is a function of the seed and
the epoch number, so the remaining batches are the ones the killed run would
have seen). The end of an epoch (validation, best.keras, last.keras, then its
history record) is redone whole when a kill interrupted it.

Before anything is written: a restart with other settings than the run's
(``train_config.FIXED_FOR_A_RUN``) is refused, every shard of the records is
checked against its manifest, and the temporary files of a killed run are
removed. A non-finite loss, weight or validation error stops the run
(``TrainingDiverged``) before that step's checkpoint, models or history.

Files in ``model_dir``:
  * ``config.json``: the resolved ``train_config.TrainConfig`` (the CLI also
    writes flags.txt).
  * ``checkpoints/``: tf.train.Checkpoint files, the newest few kept.
  * ``last.keras``: the latest epoch's model, the final model once training
    ends; with a validation split (``validation_split``) also ``best.keras``,
    the model with the lowest error on it, and ``best.json`` with its epoch,
    error and the split that chose it. ``run_dir`` says which one commands
    use.
  * ``history.json``: per-epoch training loss and validation error.
  * ``train/``, ``validation/``: TensorBoard event files.

Coordinate convention: the records hold the joints in the project's
normalized UVZ and are augmented in it (rotation about the crop centre,
translation in cube units); a model in the authors' convention
(``coordinate_convention="authors"``) gets its labels converted after the
augmentation, inside the compiled step (``train_step.objective``), and is
validated and drawn through ``geometry.convert_uvz`` back to the project's.

Weight decay: the authors' TensorFlow 1 code adds an L2 penalty
``weight_decay/2 · Σ‖w‖²`` on convolution and dense kernels and
batch-norm scales to the loss (``decay_batch_norm_scale`` adds the scales)
and optimises with Adam (``weight_decay_mode="l2"``, the default here); AdamW's
decoupled decay is available as ``weight_decay_mode="decoupled"``.

Optimiser (``make_optimizer``, ``make_learning_rate``): Adam with
β1 = ``adam_beta1`` (the authors: 0.5) and the learning rate of
``LearningRate``: ×``learning_rate_decay`` every epoch, after a linear
warm-up over the first ``warmup_steps`` steps (the authors: 100 steps from a
third of the rate).
"""

import dataclasses
import glob
import json
import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from jgr_p2o_tf import geometry
from jgr_p2o_tf import input_pipeline
from jgr_p2o_tf import metrics
from jgr_p2o_tf import model as model_lib
from jgr_p2o_tf import progress
from jgr_p2o_tf import records_manifest
from jgr_p2o_tf import run_dir
from jgr_p2o_tf import skeletons
from jgr_p2o_tf import train_config
from jgr_p2o_tf import train_step as train_step_lib
from jgr_p2o_tf import validation_split


def make_strategy(name):
  """The tf.distribute strategy for ``--strategy``."""
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  return tf.distribute.get_strategy()


def resolve_jit_compile(jit_compile):
  """``--jit_compile``, its default (None) resolved for this machine.

  XLA where TensorFlow sees a GPU or TPU, as it was everywhere before; not
  on a CPU, where XLA's train step took 1.7× the time of TensorFlow's own
  kernels (oneDNN) on a 2-core AMD EPYC (README, "Training on NYU, ICVL and
  MSRA").
  """
  if jit_compile is not None:
    return jit_compile
  return any(tf.config.list_logical_devices(kind) for kind in ("GPU", "TPU"))


def set_mixed_precision(name):
  """Sets Keras' global dtype policy for ``--mixed_precision``."""
  keras.mixed_precision.set_global_policy(
      "float32" if name == "none" else f"mixed_{name}")


def build_model_from_config(config, num_joints):
  return model_lib.build_model(
      num_joints, num_stacks=config.num_stacks, graph=config.graph,
      head=config.head, num_features=config.num_features,
      skeleton=config.skeleton,
      coordinate_convention=config.coordinate_convention)


@keras.saving.register_keras_serializable(package="jgr_p2o_tf")
class LearningRate(keras.optimizers.schedules.LearningRateSchedule):
  """The learning rate at an optimiser step: a decay after a linear warm-up.

  At optimiser step k (0 for the first update), ``schedule`` "exponential"
  gives ``rate(k) = initial · decay^floor(k / steps_per_epoch)``, and
  "cosine" ``rate(k) = initial · (1 + cos(π · min(k, total_steps) /
  total_steps)) / 2``, from ``initial`` at the first step to 0 after
  ``total_steps`` (the run's). Either is multiplied by
  ``f0 + (1 - f0)(k + 1)/warmup_steps`` while k < warmup_steps within the
  first epoch. That is the authors' warm-up: their step k < 100 of epoch 0
  runs at ``(1 - (1 - (k + 1)/100)(1 - 1/3)) · initial``, so f0 = 1/3 and
  the rate reaches ``initial`` at step 99.
  """

  def __init__(self, initial, decay, steps_per_epoch, warmup_steps=0,
               warmup_initial_factor=1.0 / 3.0, schedule="exponential",
               total_steps=0):
    if schedule not in train_config.LEARNING_RATE_SCHEDULES:
      raise ValueError(f"learning rate schedule {schedule!r} is not one of "
                       f"{', '.join(train_config.LEARNING_RATE_SCHEDULES)}")
    if schedule == "cosine" and total_steps <= 0:
      raise ValueError("the cosine learning rate needs total_steps > 0")
    self.initial = float(initial)
    self.decay = float(decay)
    self.steps_per_epoch = int(steps_per_epoch)
    self.warmup_steps = int(warmup_steps)
    self.warmup_initial_factor = float(warmup_initial_factor)
    self.schedule = schedule
    self.total_steps = int(total_steps)

  def __call__(self, step):
    step = keras.ops.cast(step, "float32")
    if self.schedule == "cosine":
      done = keras.ops.minimum(step, self.total_steps) / self.total_steps
      rate = self.initial * 0.5 * (1.0 + keras.ops.cos(math.pi * done))
    else:
      rate = self.initial * keras.ops.power(
          self.decay, keras.ops.floor(step / self.steps_per_epoch))
    if not self.warmup_steps:
      return rate
    start = self.warmup_initial_factor
    factor = start + (1.0 - start) * (step + 1.0) / self.warmup_steps
    warming = step < min(self.warmup_steps, self.steps_per_epoch)
    return keras.ops.where(warming, factor * rate, rate)

  def get_config(self):
    return {"initial": self.initial, "decay": self.decay,
            "steps_per_epoch": self.steps_per_epoch,
            "warmup_steps": self.warmup_steps,
            "warmup_initial_factor": self.warmup_initial_factor,
            "schedule": self.schedule, "total_steps": self.total_steps}


def make_learning_rate(config, steps_per_epoch):
  """The LearningRate schedule of ``config`` for ``config.epochs`` epochs."""
  return LearningRate(config.learning_rate, config.learning_rate_decay,
                      steps_per_epoch, config.warmup_steps,
                      config.warmup_initial_factor,
                      config.learning_rate_schedule,
                      config.epochs * steps_per_epoch)


def describe_learning_rate(config):
  """The schedule of ``config`` in words, for the start summaries."""
  if config.learning_rate_schedule == "cosine":
    text = f"learning rate {config.learning_rate:g}, cosine to 0"
  else:
    text = (f"learning rate {config.learning_rate:g}, "
            f"×{config.learning_rate_decay:g} per epoch")
  if config.warmup_steps:
    text += f" after {config.warmup_steps} warm-up steps"
  return text


def make_optimizer(config, learning_rate):
  """The optimiser of ``config``: Adam or AdamW, β1 = ``adam_beta1``."""
  if config.weight_decay_mode == "decoupled":
    optimizer = keras.optimizers.AdamW(
        learning_rate, weight_decay=config.weight_decay,
        beta_1=config.adam_beta1)
  else:
    optimizer = keras.optimizers.Adam(learning_rate, beta_1=config.adam_beta1)
  if config.mixed_precision == "float16":
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer


def _atomic_write_text(path, text):
  # open(), not tempfile: the file gets the umask's mode, as every other
  # file of the run (tempfile's are 0600). Only the chief writes these.
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(text)
  os.replace(tmp, path)


def write_config(config):
  """The resolved TrainConfig as the run's config.json."""
  _atomic_write_text(os.path.join(config.model_dir, "config.json"),
                     json.dumps(dataclasses.asdict(config), indent=2))


def save_model_atomically(model, path):
  """model.save to a temporary name, then rename: a kill never corrupts it."""
  tmp = path + ".tmp.keras"
  model.save(tmp)
  os.replace(tmp, path)


class Trainer:
  """Owns the model, optimizer, checkpoint and compiled steps of one run."""

  def __init__(self, config):
    config.validate()
    self.config = config
    self.strategy = make_strategy(config.strategy)
    config.jit_compile = resolve_jit_compile(config.jit_compile)
    replicas = self.strategy.num_replicas_in_sync
    if config.batch_size % replicas:
      raise ValueError(f"--batch_size={config.batch_size} is not divisible by "
                       f"the {replicas} replicas of --strategy="
                       f"{config.strategy}")
    set_mixed_precision(config.mixed_precision)
    keras.utils.set_random_seed(config.seed)
    manifest = records_manifest.read_manifest(config.train_dir)
    self.num_joints = manifest["num_joints"]
    if not config.skeleton:
      config.skeleton = manifest["skeleton"]
    self.training, self.validation = validation_split.resolve(config)
    self.steps_per_epoch = self.training.crops // config.batch_size
    if self.steps_per_epoch == 0:
      raise ValueError(f"--train_dir={config.train_dir} holds fewer frames "
                       f"than one batch of {config.batch_size}")
    with self.strategy.scope():
      self.model = build_model_from_config(config, self.num_joints)
      self.learning_rate = make_learning_rate(config, self.steps_per_epoch)
      self.optimizer = make_optimizer(config, self.learning_rate)
      self.optimizer.build(self.model.trainable_variables)
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
      # The sum and count of this epoch's step losses at the checkpoint, so
      # that a resumed epoch reports the mean over all its steps.
      self.epoch_loss = tf.Variable([0.0, 0.0], dtype=tf.float64,
                                    trainable=False, name="epoch_loss")
    self.checkpoint = tf.train.Checkpoint(
        model=self.model, optimizer=self.optimizer, step=self.step,
        epoch_loss=self.epoch_loss)
    self._saved_step = None
    # Every worker takes part in saving; only the chief's copy is kept.
    self.checkpoint_dir = os.path.join(config.model_dir, "checkpoints")
    checkpoint_dir = self.checkpoint_dir
    if not self.is_chief:
      checkpoint_dir = os.path.join(
          config.model_dir, "worker_tmp",
          str(self.strategy.cluster_resolver.task_id))
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, checkpoint_dir, max_to_keep=config.max_checkpoints)
    self.step_config = dataclasses.replace(
        config.step_config, replicas=self.strategy.num_replicas_in_sync)
    # Without AutoGraph: the step has no Python control flow on tensors, and
    # converting it took 2 of the first step's 10 s.
    self._train_step = tf.function(self._replica_train_step,
                                   jit_compile=config.jit_compile,
                                   autograph=False)

  @property
  def is_chief(self):
    resolver = self.strategy.cluster_resolver
    return resolver is None or resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0)

  def _dataset(self, epoch):
    """Epoch ``epoch``'s batches, distributed; order fixed by (seed, epoch)."""
    config = self.config
    dataset = input_pipeline.make_dataset(
        config.train_dir, batch_size=config.batch_size, training=True,
        seed=config.seed * 100003 + epoch, shards=self.training.shards)
    # Every worker reads every shard and keeps its share of the batches:
    # shards are few and unevenly filled, so sharding by file would starve
    # some workers.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return dataset.with_options(options)

  def _replica_train_step(self, batch, seed):
    # Each replica augments its own slice with its own seed.
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    depth, joints_uvz = train_step_lib.augmented_inputs(
        batch, self.step_config, seed + tf.cast(replica, seed.dtype) * 7919)
    # Each replica's loss is over its slice of the global batch (a sum
    # counted once per replica, see StepConfig.replicas); dividing by the
    # replicas makes the cross-replica sum the loss of the global batch.
    replicas = self.strategy.num_replicas_in_sync
    loss, parts = train_step_lib.apply_step(
        self.model, self.optimizer, depth, joints_uvz, self.step_config,
        scale_loss=lambda loss: self.optimizer.scale_loss(loss / replicas))
    parts = [{name: value / replicas for name, value in part.items()}
             for part in parts]
    return loss / replicas, parts

  def train_step(self, batch):
    seed = tf.stack([tf.constant(self.config.seed, tf.int64), self.step])
    # Only what the step reads: XLA takes no string tensors such as frame_id.
    batch = {k: batch[k] for k in ("depth", "joints_uvz", "cube")}
    loss, parts = self.strategy.run(self._train_step, args=(batch, seed))
    reduce = lambda x: self.strategy.reduce("SUM", x, axis=None)
    self.step.assign_add(1)
    return reduce(loss), tf.nest.map_structure(reduce, parts)

  def validate(self, selection):
    """Mean 3D error in mm and the (N, J) errors on a Selection of records."""
    from jgr_p2o_tf import evaluation  # pylint: disable=g-import-not-at-top
    predictions = evaluation.predict_records(
        self.model, selection.records_dir, batch_size=self.config.batch_size,
        shards=selection.shards)
    errors = metrics.joint_errors(predictions["pred_xyz"],
                                  predictions["gt_xyz"])
    return float(errors.mean()), errors

  def restore(self):
    """Restores the latest checkpoint; returns the global step it holds."""
    path = tf.train.latest_checkpoint(self.checkpoint_dir)
    if path:
      self.checkpoint.restore(path).assert_existing_objects_matched()
      self._saved_step = int(self.step.numpy())
    return int(self.step.numpy())

  def save_checkpoint(self, loss_sum, loss_steps):
    """Checkpoints this step once, with the epoch's loss so far.

    Raises:
      TrainingDiverged: the weights are not all finite; nothing is written,
        so the rotation never drops a good checkpoint for a broken one.
    """
    step = int(self.step.numpy())
    if step == self._saved_step:
      return
    if not all(np.all(np.isfinite(w)) for w in self.model.get_weights()):
      raise TrainingDiverged(step, "weights are not all finite",
                             self.checkpoint_dir)
    self.epoch_loss.assign([loss_sum, loss_steps])
    self.manager.save(checkpoint_number=step)
    self._saved_step = step

  def epoch_loss_so_far(self):
    """(sum, steps) of the current epoch's losses at the restored step."""
    loss_sum, loss_steps = self.epoch_loss.numpy()
    return float(loss_sum), int(loss_steps)


class TrainingDiverged(ValueError):
  """A non-finite loss, weight or validation error; the run stopped.

  Raised before anything of that step is written: the latest checkpoint,
  best.keras, last.keras and history.json hold the run as it was at the
  last checkpoint.
  """

  def __init__(self, step, what, checkpoint_dir):
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    kept = (f"{latest} is the last checkpoint, and best.keras, last.keras and "
            "history.json are as they were" if latest
            else "there is no checkpoint yet")
    super().__init__(
        f"training diverged at step {step}: {what}; stopped before writing "
        f"it: {kept}; rerun with a lower --learning_rate")


def train(config, log=print):
  """Trains (or resumes) a model as ``config`` says; returns the history.

  Raises:
    ValueError: bad settings, records or a resume with settings other than
      the run's (nothing written then).
    TrainingDiverged: a non-finite loss, weight or validation error; nothing
      of the diverged steps is written.
  """
  run_dir.check_resumable(config)
  _verify_records(config)
  trainer = Trainer(config)
  os.makedirs(config.model_dir, exist_ok=True)
  if trainer.is_chief:
    _remove_leftovers(config.model_dir, trainer.checkpoint_dir)
    write_config(config)
  history_path = os.path.join(config.model_dir, "history.json")
  history = _read_json(history_path, default=[])
  best = _read_json(os.path.join(config.model_dir, run_dir.BEST_RECORD),
                    default={"mean_error_mm": math.inf})
  start = trainer.restore()
  if trainer.is_chief:
    for line in start_summary(trainer):
      log(line)
  if start:
    log(f"Resumed from {tf.train.latest_checkpoint(trainer.checkpoint_dir)} "
        f"at step {start}.")
  total_steps = trainer.steps_per_epoch * config.epochs
  if config.max_steps:
    total_steps = min(total_steps, config.max_steps)
  writers = _summary_writers(config.model_dir, trainer.is_chief)

  step = start
  started = time.monotonic()
  if _epoch_left_unfinished(step, trainer.steps_per_epoch, total_steps,
                            history):
    history, best = _finish_epoch(
        trainer, (step - 1) // trainer.steps_per_epoch, step,
        trainer.epoch_loss_so_far(), history, best, writers, log)
  while step < total_steps:
    epoch, skip = divmod(step, trainer.steps_per_epoch)
    steps_this_epoch = min(trainer.steps_per_epoch, total_steps - epoch *
                           trainer.steps_per_epoch) - skip
    dataset = trainer.strategy.experimental_distribute_dataset(
        trainer._dataset(epoch).skip(skip).take(steps_this_epoch))
    loss_sum, loss_steps = trainer.epoch_loss_so_far() if skip else (0.0, 0)
    bar = progress.progress(
        steps_this_epoch, f"epoch {epoch + 1}/{config.epochs}", "step",
        disable=not (config.progress_bar and trainer.is_chief))
    for batch in input_pipeline.batches(dataset, config.train_dir):
      loss, parts = trainer.train_step(batch)
      step += 1
      loss = _finite_loss(loss, step, trainer)
      loss_sum += loss
      loss_steps += 1
      # One redraw per step: the postfix waits for the update.
      bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
      bar.update(1)
      if step % config.log_every_steps == 0:
        _log_scalars(writers["train"], step, loss, parts,
                     trainer.learning_rate(step), config.beta)
      if step % config.checkpoint_every_steps == 0:
        trainer.save_checkpoint(loss_sum, loss_steps)
    bar.close()
    trainer.save_checkpoint(loss_sum, loss_steps)
    history, best = _finish_epoch(trainer, epoch, step, (loss_sum, loss_steps),
                                  history, best, writers, log)
  if trainer.is_chief:
    for line in end_summary(config, history, best,
                            time.monotonic() - started):
      log(line)
  return history


def start_summary(trainer):
  """Lines saying what a run trains: model, size, data, schedule, outputs."""
  from jgr_p2o_tf import flops  # pylint: disable=g-import-not-at-top
  config = trainer.config
  manifest = records_manifest.read_manifest(config.train_dir)
  frame_flops = flops.count_flops(trainer.model)["total"]
  training = trainer.training
  validation = ("none: the final model (last.keras) is the run's model"
                if trainer.validation is None else
                f"{trainer.validation.crops} crops of "
                f"{trainer.validation.records_dir} "
                f"({len(trainer.validation.shards)} shards) choose best.keras")
  total_steps = trainer.steps_per_epoch * config.epochs
  if config.max_steps:
    total_steps = min(total_steps, config.max_steps)
  return [
      f"model: JGR-P2O, head {config.head}, {config.num_stacks} stacks of "
      f"{config.num_features} features, graph {config.graph}, "
      f"{trainer.num_joints} joints ({config.skeleton}); "
      f"{trainer.model.count_params():,} parameters, "
      f"{frame_flops / 1e9:.3g} GFLOPs per frame",
      f"data: {manifest.get('dataset')} records {config.train_dir}: "
      f"{training.crops} training crops in {len(training.shards)} shards; "
      f"validation: {validation}",
      f"schedule: {config.epochs} epochs of {trainer.steps_per_epoch} steps "
      f"of batch {config.batch_size} ({total_steps} steps); "
      f"{describe_learning_rate(config)}; "
      f"offset loss β {config.beta:g}; augmentation "
      f"{config.augment_mode if config.augment else 'off'}; train step "
      f"{'with' if config.jit_compile else 'without'} XLA",
      f"output: {config.model_dir} (TensorBoard: tensorboard "
      f"--logdir={config.model_dir})",
  ]


def end_summary(config, history, best, seconds):
  """Lines saying how a run ended: time, loss, error, the models written."""
  if not history:
    return ["done: nothing trained"]
  last = history[-1]
  minutes, secs = divmod(round(seconds), 60)
  loss = last.get("train_loss")
  lines = [f"done: epoch {last['epoch']}, step {last['step']}; "
           f"{minutes} min {secs} s in this run; final training loss "
           + ("?" if loss is None else f"{loss:.4f}")]
  error = last.get("validation_mean_error_mm")
  if error is not None:
    lines.append(f"validation mean error: {error:.2f} mm at the last epoch, "
                 f"{best['mean_error_mm']:.2f} mm at epoch {best['epoch']} "
                 f"({run_dir.BEST_MODEL})")
  lines.append(f"the run's model: {run_dir.default_model(config.model_dir)}")
  return lines


def _verify_records(config):
  """Every shard to be read whole, before hours of training depend on it."""
  for split_dir in dict.fromkeys(filter(None, (config.train_dir,
                                               config.validation_dir))):
    records_manifest.verify_shards(split_dir)


def _finite_loss(loss, step, trainer):
  """The step's loss as a float; TrainingDiverged if it is not finite."""
  loss = float(loss)
  if not math.isfinite(loss):
    raise TrainingDiverged(step, f"the training loss is {loss}",
                           trainer.checkpoint_dir)
  return loss


def _epoch_left_unfinished(step, steps_per_epoch, total_steps, history):
  """Whether the run stopped between an epoch's last checkpoint and its record.

  A kill during the epoch's validation or model saves leaves the checkpoint
  of its last step but no history record of that step: the rerun finishes
  the epoch before it goes on.
  """
  at_epoch_end = step > 0 and (step % steps_per_epoch == 0 or
                               step == total_steps)
  return at_epoch_end and not any(h["step"] == step for h in history)


def _finish_epoch(trainer, epoch, step, epoch_loss, history, best, writers,
                  log):
  """Validation, best/last models and the history record of an ended epoch.

  Runs after the epoch's last checkpoint; history.json is written last, so
  a run killed in here finishes the epoch whole when rerun.

  Args:
    trainer: the Trainer.
    epoch: the epoch's index (0-based).
    step: the global step it ended at.
    epoch_loss: (sum, steps) of its step losses.
    history: the history so far; ``best``: best.json's contents.
    writers: the TensorBoard writers; ``log``: prints a line.

  Returns:
    (history, best), updated.
  """
  config = trainer.config
  validation = trainer.validation
  history_path = os.path.join(config.model_dir, "history.json")
  loss_sum, loss_steps = epoch_loss
  # Checkpoints of earlier versions do not hold the epoch's loss.
  train_loss = loss_sum / loss_steps if loss_steps else None
  record = {"epoch": epoch + 1, "step": step, "train_loss": train_loss}
  loss_text = "?" if train_loss is None else f"{train_loss:.4f}"
  if validation:
    error, _ = trainer.validate(validation)
    if not math.isfinite(error):
      raise TrainingDiverged(step, f"the validation error is {error} mm",
                             trainer.checkpoint_dir)
    record["validation_mean_error_mm"] = error
    _log_validation(writers["validation"], step, error, trainer, validation)
    log(f"epoch {epoch + 1}: loss {loss_text}, validation "
        f"mean error {error:.2f} mm")
    if trainer.is_chief and error < best["mean_error_mm"]:
      best = {"epoch": epoch + 1, "step": step, "mean_error_mm": error,
              "validation": validation.describe()}
      save_model_atomically(
          trainer.model, os.path.join(config.model_dir, run_dir.BEST_MODEL))
      _atomic_write_text(
          os.path.join(config.model_dir, run_dir.BEST_RECORD),
          json.dumps(best, indent=2, allow_nan=False))
  else:
    log(f"epoch {epoch + 1}: loss {loss_text}")
  if trainer.is_chief:
    save_model_atomically(trainer.model,
                          os.path.join(config.model_dir, run_dir.LAST_MODEL))
    history = [h for h in history if h["epoch"] != epoch + 1] + [record]
    _atomic_write_text(history_path,
                       json.dumps(history, indent=2, allow_nan=False))
  return history, best


def _remove_leftovers(model_dir, checkpoint_dir):
  """Temporary files of a killed run: checkpoint ``_temp`` folders, models.

  Each is rewritten whole by the step or epoch that made it.
  """
  for path in glob.glob(os.path.join(checkpoint_dir, "*_temp")):
    shutil.rmtree(path, ignore_errors=True)
  for path in glob.glob(os.path.join(model_dir, "*.tmp")) + glob.glob(
      os.path.join(model_dir, "*.tmp.keras")):
    os.remove(path)


def _read_json(path, default):
  if not os.path.exists(path):
    return default
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _summary_writers(model_dir, is_chief):
  if not is_chief:
    return {"train": tf.summary.create_noop_writer(),
            "validation": tf.summary.create_noop_writer()}
  return {name: tf.summary.create_file_writer(os.path.join(model_dir, name))
          for name in ("train", "validation")}


# TensorBoard's tags: groups are the tags' prefixes, listed alphabetically,
# so the key figure's group, "error", comes first.
VALIDATION_ERROR_TAG = "error/validation_mean_3d_mm"


def _log_scalars(writer, step, loss, parts, learning_rate, beta):
  """The step's loss, its parts per stack (the offset loss raw and × β)."""
  with writer.as_default(step=step):
    tf.summary.scalar(
        "loss/total", loss,
        description="The step's objective: Σ over stacks of coordinate + β "
        "× offset loss (Eq. 9), plus the L2 weight penalty when "
        "weight_decay_mode=l2.")
    for s, part in enumerate(parts, start=1):
      tf.summary.scalar(
          f"loss/stack{s}_coordinate", part["coordinate"],
          description=f"Stack {s}: Huber loss of the normalized joint "
          "coordinates (Eq. 7).")
      tf.summary.scalar(
          f"loss/stack{s}_offset", part["offset"],
          description=f"Stack {s}: Huber loss of the pixel-to-joint offsets "
          f"(Eq. 8), summed over every pixel of the grid, before its weight "
          f"β = {beta:g}; it enters the objective as stack{s}_offset_x_beta.")
      tf.summary.scalar(
          f"loss/stack{s}_offset_x_beta", beta * part["offset"],
          description=f"Stack {s}: β × offset loss, its share of the "
          "objective.")
      tf.summary.scalar(
          f"loss/stack{s}_total", part["total"],
          description=f"Stack {s}: coordinate + β × offset loss.")
    tf.summary.scalar("learning_rate", learning_rate,
                      description="Adam's learning rate at this step.")


def _log_validation(writer, step, error, trainer, validation):
  """Mean error, and one crop with its predicted joints and voting maps."""
  from jgr_p2o_tf import visualize  # pylint: disable=g-import-not-at-top
  batch = next(iter(input_pipeline.make_dataset(
      validation.records_dir, batch_size=1, training=False,
      shards=validation.shards)))
  outputs = trainer.model(batch["depth"], training=False)[-1]
  depth = batch["depth"][0, ..., 0].numpy()
  # Trainer resolved config.skeleton from the manifest: a known layout.
  skeleton = skeletons.get_skeleton(trainer.config.skeleton)
  joints_uvz = geometry.convert_uvz(
      np.asarray(outputs["joints_uvz"][0]), depth.shape[0],
      trainer.config.coordinate_convention)
  gt_uvz = batch["joints_uvz"][0].numpy()
  joints = visualize.figure_to_array(visualize.plot_crop_with_joints(
      depth, joints_uvz, skeleton, gt_uvz=gt_uvz))
  voting = visualize.figure_to_array(visualize.plot_voting_maps(
      depth, np.asarray(outputs["voting_maps"][0]), skeleton.joint_names,
      joints_uvz=joints_uvz, gt_uvz=gt_uvz, panel_inches=3.0))
  with writer.as_default(step=step):
    tf.summary.scalar(
        VALIDATION_ERROR_TAG, error,
        description="Mean 3D distance (mm) between predicted and true "
        "joints over the validation split's frames; its lowest epoch is "
        "best.keras.")
    tf.summary.image(
        "crop_with_joints", joints[None],
        description="The first validation crop: predicted joints (red), "
        "ground truth (green, dashed).")
    tf.summary.image(
        "voting_maps", voting[None],
        description="The last stack's voting map of each joint on the "
        "first validation crop: predicted joint ×, true joint ○.")
  writer.flush()
