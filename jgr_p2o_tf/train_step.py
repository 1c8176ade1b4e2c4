"""The train step, written once for TensorFlow and JAX.

One step is: augment the batch (``augment``), run the model on it, the loss
of Eq. 9 (``losses``) plus the L2 penalty of the authors' code, its
gradients, and the optimizer's update. ``StepConfig`` holds the choices
where the authors' code and this project differ: the augmentation mode, the
loss's reduction over the batch, whether batch-norm scales are decayed,
whether labels are clipped to [-1, 1] and whether the farthest depth of a
training crop becomes background. The augmentation and ``objective``
(the model through ``model.stateless_call``, whose weights go in and whose
new batch-norm statistics come out as values, and the loss) are the same
code in both backends. Two things differ:

  * the gradient call (``loss_and_gradients``): ``jax.value_and_grad``
    under JAX, ``tf.GradientTape`` under TensorFlow;
  * the update: Keras offers ``optimizer.stateless_apply`` only under JAX
    (it is incompatible with tf.distribute), so under TensorFlow the step
    applies the gradients to the variables in place (``apply_step``) and
    under JAX it computes their new values (``TrainStep``).

``TrainStep`` is the compiled step of either backend (``tf.function``, XLA
by default, or ``jax.jit``): how JAX trains, since the GPU machines have no
TensorFlow, and what ``step_runner`` hands to the benchmark. The TensorFlow
trainer (``trainer.Trainer``) calls ``apply_step`` in its tf.distribute
replica function, where ``optimizer.apply_gradients`` sums the gradients
across replicas and keeps the float16 loss scale, and the variables it
updates are those its tf.train.Checkpoint saves.

Nothing here imports TensorFlow unless TensorFlow is the backend.
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from jgr_p2o_tf import augment
from jgr_p2o_tf import geometry
from jgr_p2o_tf import losses
from jgr_p2o_tf import train_config

# The authors' L2 weight decay: weight_decay/2 · Σ‖w‖² added to the loss.
WEIGHT_DECAY = train_config.DEFAULTS["weight_decay"]


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """What a train step computes besides the model.

  The defaults are the paper's; the L2 weight decay is its code's.

  Attributes:
    augmentation: the random augmentation, or None for none.
    offset_weight: β of Eq. 9.
    huber_delta: δ of the Huber loss.
    l2_weight_decay: the coefficient of the L2 penalty on kernels; 0 for
      none (as with decoupled weight decay, which is the optimizer's).
    loss_reduction: "mean" or "sum" of the loss over the batch
      (``losses.REDUCTIONS``); the authors' code sums.
    decay_batch_norm_scale: the L2 penalty covers the batch norms' scales γ
      too, as the authors' ``gamma_regularizer`` does.
    clip_labels: clip the normalized labels, in the model's convention, to
      [-1, 1] after augmentation, as the authors' code does.
    farthest_depth_to_background: make the farthest depth of each training
      crop background (1) after augmentation, as the authors' code does
      (``farthest_depth_to_background``).
    replicas: the replicas the global batch is split over (tf.distribute):
      with "sum", each replica's sum counts this many times so that the
      replicas' mean is the sum over the global batch.
  """
  augmentation: augment.AugmentConfig | None = augment.AugmentConfig()
  offset_weight: float = losses.OFFSET_LOSS_WEIGHT
  huber_delta: float = losses.HUBER_DELTA
  l2_weight_decay: float = WEIGHT_DECAY
  loss_reduction: str = "mean"
  decay_batch_norm_scale: bool = False
  clip_labels: bool = False
  farthest_depth_to_background: bool = False
  replicas: int = 1


def decayed_indices(model, batch_norm_scale=False):
  """Positions in ``model.trainable_variables`` of the L2-penalised weights.

  Convolution and dense kernels and the learned adjacency; with
  ``batch_norm_scale`` the batch norms' γ too, which completes the authors'
  set (their regularizer is on every kernel and ``gamma``). Batch-norm
  offsets β are never penalised.
  """
  names = ("kernel", "adjacency") + (("gamma",) if batch_norm_scale else ())
  return [i for i, v in enumerate(model.trainable_variables)
          if v.path.endswith(names)]


def farthest_depth_to_background(depth):
  """Sets the farthest depth of each crop to background (1).

  The authors' training code does this to every augmented crop, before
  normalizing it: all pixels at the crop's largest depth in mm become the
  cube's back face. Background and missing depths are 0 mm there and 1 in a
  normalized crop, so that depth is the largest value below 1 here; a crop
  without one is unchanged.

  Args:
    depth: (B, S, S, 1) normalized depth crops.

  Returns:
    (B, S, S, 1) float32.
  """
  depth = ops.cast(depth, "float32")
  nearer = ops.where(depth < 1.0, depth, -np.inf)
  farthest = ops.max(nearer, axis=(1, 2, 3), keepdims=True)
  return ops.where(depth == farthest, 1.0, depth)


def augmented_inputs(batch, config, seed):
  """(depth, joints_uvz) of ``batch`` as the model is taught them.

  After ``config.augmentation``, if any, and the authors'
  ``farthest_depth_to_background`` if the config asks for it.

  Args:
    batch: dict with "depth" (B, S, S, 1), "joints_uvz" (B, J, 3) and
      "cube" (B, 3).
    config: StepConfig.
    seed: (2,) integer tensor, see ``augment.augment_batch``.
  """
  depth, joints_uvz = batch["depth"], batch["joints_uvz"]
  if config.augmentation is not None:
    depth, joints_uvz = augment.augment_batch(
        depth, joints_uvz, batch["cube"], config.augmentation, seed)
  if config.farthest_depth_to_background:
    depth = farthest_depth_to_background(depth)
  return depth, joints_uvz


def objective(model, trainable, non_trainable, depth, joints_uvz, config):
  """The training loss as a function of the weights' values.

  Args:
    model: the JGR-P2O model (``model.build_model``).
    trainable: values of ``model.trainable_variables``, in that order.
    non_trainable: values of ``model.non_trainable_variables``.
    depth: (B, S, S, 1) normalized depth crops (augmented).
    joints_uvz: (B, J, 3) their normalized ground-truth UVZ in the project's
      convention; a model in the authors' convention
      (``model.coordinate_convention``) is taught them converted to its own,
      after the augmentation, which is defined in the project's, and then
      clipped to [-1, 1] if ``config.clip_labels``.
    config: StepConfig.

  Returns:
    (loss, (parts, non_trainable')): the float32 scalar Eq. 9 + L2 penalty,
    the per-stack parts of ``losses.jgr_p2o_loss`` and the values of the
    non-trainable variables (batch-norm statistics) after the call.
  """
  outputs, non_trainable = model.stateless_call(
      trainable, non_trainable, depth, training=True)
  convention = model.coordinate_convention
  joints_uvz = geometry.convert_uvz(joints_uvz, depth.shape[1], "project",
                                    convention)
  if config.clip_labels:
    joints_uvz = ops.clip(joints_uvz, -1.0, 1.0)
  loss, parts = losses.jgr_p2o_loss(
      outputs, joints_uvz, depth, offset_weight=config.offset_weight,
      delta=config.huber_delta, convention=convention,
      reduction=config.loss_reduction)
  if config.loss_reduction == "sum" and config.replicas > 1:
    loss = loss * config.replicas
    parts = [{name: value * config.replicas for name, value in part.items()}
             for part in parts]
  if config.l2_weight_decay:
    penalty = sum(ops.sum(ops.square(ops.cast(trainable[i], "float32")))
                  for i in decayed_indices(model,
                                           config.decay_batch_norm_scale))
    loss = loss + 0.5 * config.l2_weight_decay * penalty
  return loss, (parts, non_trainable)


def loss_and_gradients(model, trainable, non_trainable, depth, joints_uvz,
                       config, scale_loss=None):
  """``objective`` and its gradients with respect to ``trainable``.

  Args:
    model, trainable, non_trainable, depth, joints_uvz, config: as for
      ``objective``.
    scale_loss: None, or a function applied to the loss before it is
      differentiated (the trainer's division by the replicas and float16
      loss scaling); the loss returned is never scaled.

  Returns:
    (loss, parts, gradients, non_trainable'): ``gradients`` is a list
    aligned with ``trainable``.
  """
  def differentiated(trainable):
    loss, aux = objective(model, trainable, non_trainable, depth, joints_uvz,
                          config)
    scaled = loss if scale_loss is None else scale_loss(loss)
    return scaled, (loss, aux)

  backend = keras.backend.backend()
  if backend == "jax":
    import jax  # pylint: disable=g-import-not-at-top
    (_, (loss, (parts, non_trainable))), gradients = jax.value_and_grad(
        differentiated, has_aux=True)(trainable)
  elif backend == "tensorflow":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    with tf.GradientTape() as tape:
      tape.watch(trainable)
      scaled, (loss, (parts, non_trainable)) = differentiated(trainable)
    gradients = tape.gradient(scaled, trainable)
  else:
    raise NotImplementedError(
        f"No train step for KERAS_BACKEND={backend}; use tensorflow or jax.")
  return loss, parts, gradients, non_trainable


def apply_step(model, optimizer, depth, joints_uvz, config, scale_loss=None):
  """One update of the model's and optimizer's variables, in place.

  ``loss_and_gradients`` on the variables' values, then
  ``optimizer.apply_gradients`` and the new batch-norm statistics written
  back. Compiles in ``tf.function`` (XLA included) and runs in tf.distribute
  replica functions; under JAX it runs eagerly only (``jax.jit`` needs the
  stateless update of ``TrainStep``).

  Args:
    model, depth, joints_uvz, config, scale_loss: as for
      ``loss_and_gradients``.
    optimizer: a built Keras optimizer of the model's trainable variables.

  Returns:
    (loss, parts), unscaled.
  """
  loss, parts, gradients, non_trainable = loss_and_gradients(
      model, [v.value for v in model.trainable_variables],
      [v.value for v in model.non_trainable_variables], depth, joints_uvz,
      config, scale_loss)
  optimizer.apply_gradients(zip(gradients, model.trainable_variables))
  for variable, value in zip(model.non_trainable_variables, non_trainable):
    variable.assign(value)
  return loss, parts


class TrainStep:
  """The compiled train step of a model and optimizer, either backend.

  ``step(batch, seed)`` augments the batch, runs the model forward and
  backward and updates the weights; it returns (loss, parts) as
  ``objective`` does. ``batch`` is a dict of "depth", "joints_uvz" and
  "cube" (see ``augmented_inputs``), ``seed`` a (2,) integer tensor that
  decides the augmentation.

  Under TensorFlow the step is ``apply_step`` in ``tf.function`` and updates
  the variables in place (Keras has no ``stateless_apply`` there). Under
  JAX it is a pure function of the weights' and optimizer's values with
  ``optimizer.stateless_apply``, in ``jax.jit``; the values live in this
  object between steps and ``sync_variables()`` writes them into the model
  and optimizer, as Keras' own JAX trainer does at the end of ``fit``.
  """

  def __init__(self, model, optimizer, config=StepConfig(), jit_compile=True):
    """Compiles nothing yet; the first step traces and compiles.

    Args:
      model: a built JGR-P2O model.
      optimizer: a Keras optimizer without loss scaling (float16 training
        needs the trainer's ``LossScaleOptimizer`` and tf.distribute).
      config: StepConfig.
      jit_compile: under TensorFlow, whether ``tf.function`` compiles with
        XLA; under JAX the step is always ``jax.jit``-compiled.
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
      raise ValueError("TrainStep takes no LossScaleOptimizer: float16 "
                       "training runs in trainer.Trainer")
    if not optimizer.built:
      optimizer.build(model.trainable_variables)
    self.model, self.optimizer, self.config = model, optimizer, config
    self._state = None
    if keras.backend.backend() == "jax":
      import jax  # pylint: disable=g-import-not-at-top
      self._state = tuple([v.value for v in variables] for variables in (
          model.trainable_variables, model.non_trainable_variables,
          optimizer.variables))
      self._step = jax.jit(self._stateless_step)
    else:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      self._step = tf.function(self._stateful_step, jit_compile=jit_compile)

  def _stateful_step(self, batch, seed):
    depth, joints_uvz = augmented_inputs(batch, self.config, seed)
    return apply_step(self.model, self.optimizer, depth, joints_uvz,
                      self.config)

  def _stateless_step(self, state, batch, seed):
    trainable, non_trainable, optimizer_variables = state
    depth, joints_uvz = augmented_inputs(batch, self.config, seed)
    loss, parts, gradients, non_trainable = loss_and_gradients(
        self.model, trainable, non_trainable, depth, joints_uvz, self.config)
    trainable, optimizer_variables = self.optimizer.stateless_apply(
        optimizer_variables, gradients, trainable)
    return (trainable, non_trainable, optimizer_variables), loss, parts

  def __call__(self, batch, seed):
    if self._state is None:
      return self._step(batch, seed)
    self._state, loss, parts = self._step(self._state, batch, seed)
    return loss, parts

  def sync_variables(self):
    """Writes the JAX step's values into the model and optimizer."""
    if self._state is None:
      return
    for variables, values in zip(
        (self.model.trainable_variables, self.model.non_trainable_variables,
         self.optimizer.variables), self._state):
      for variable, value in zip(variables, values):
        variable.assign(value)


def step_runner(model, optimizer, batch, config=StepConfig(),
                jit_compile=True):
  """A function of no arguments that runs one train step, for timing.

  Each call augments ``batch`` with a new seed, runs the model forward and
  backward, updates the weights and waits for the loss, which it returns as
  a float. The precision is the model's dtype policy ("float32",
  "mixed_bfloat16"); the batch size is the batch's.

  Args:
    model: a built JGR-P2O model.
    optimizer: a Keras optimizer without loss scaling.
    batch: dict of NumPy arrays "depth" (B, S, S, 1), "joints_uvz"
      (B, J, 3) and "cube" (B, 3).
    config: StepConfig.
    jit_compile: see ``TrainStep``.
  """
  step = TrainStep(model, optimizer, config, jit_compile)
  batch = {key: ops.convert_to_tensor(value) for key, value in batch.items()}
  count = 0

  def run():
    nonlocal count
    seed = ops.convert_to_tensor(np.array([0, count], np.int32))
    count += 1
    loss, _ = step(batch, seed)
    return float(ops.convert_to_numpy(loss))

  return run
