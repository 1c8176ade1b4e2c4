"""Tests of jgr_p2o_tf.train_step: one step is the same under TF and JAX.

A tiny model keeps the JAX subprocess, which builds and compiles it, short.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import augment_reference
import one_train_step
from jgr_p2o_tf import augment
from jgr_p2o_tf.model import build_model

REPO = pathlib.Path(__file__).resolve().parents[1]
SIZE, BATCH, JOINTS = 32, 4, 14
# One stack of 16 features on 32×32 crops. With 8, the batch norms of the
# innermost hourglass levels see too few values for gradients to agree to
# 1e-3 between any two float32 summation orders.
TINY = {"num_stacks": 1, "num_features": 16, "input_size": SIZE,
        "skeleton": "nyu"}


def _batch_and_parameters():
  """A batch of hand-like crops and augmentation parameters for it.

  The parameters are drawn over the paper's ranges, keeping samples whose
  warp samples no point within 1e-4 px of a rounding boundary: there the two
  backends' float32 rounding could pick neighbouring pixels and feed the
  networks different crops.
  """
  rng = np.random.default_rng(0)
  depth = np.ones((BATCH, SIZE, SIZE, 1), np.float32)
  hand = slice(SIZE // 4, 3 * SIZE // 4)
  depth[:, hand, hand] = rng.uniform(-0.6, 0.6, depth[:, hand, hand].shape)
  joints_uvz = rng.uniform([0.3, 0.3, -0.5], [0.7, 0.7, 0.5],
                           (BATCH, JOINTS, 3)).astype(np.float32)
  cube = np.full((BATCH, 3), 250.0, np.float32)
  candidates = 8 * BATCH
  theta = rng.uniform(-np.pi, np.pi, candidates).astype(np.float32)
  scale = rng.uniform(0.9, 1.1, candidates).astype(np.float32)
  translation = rng.uniform(-10, 10, (candidates, 3)).astype(np.float32)
  ambiguous = augment_reference.ambiguous_pixels(
      np.full((candidates, 3), 250.0), theta, scale, translation, SIZE)
  keep = np.flatnonzero(~ambiguous.any(axis=(1, 2)))[:BATCH]
  assert len(keep) == BATCH
  batch = {"depth": depth, "joints_uvz": joints_uvz, "cube": cube}
  return batch, (theta[keep], scale[keep], translation[keep])


_JAX_SCRIPT = """
import json, sys
import jax
import keras
import numpy as np
from jgr_p2o_tf import augment
from jgr_p2o_tf.model import build_model
from one_train_step import one_step
assert keras.backend.backend() == "jax", keras.backend.backend()
kwargs, folder = json.loads(sys.argv[1]), sys.argv[2]
inputs = dict(np.load(f"{folder}/inputs.npz"))
model = build_model(int(inputs["joints"]), **kwargs)
for i, v in enumerate(model.trainable_variables):
  v.assign(inputs[f"trainable{i}"])
for i, v in enumerate(model.non_trainable_variables):
  v.assign(inputs[f"non_trainable{i}"])
batch = {key: inputs[key] for key in ("depth", "joints_uvz", "cube")}
parameters = [inputs[key] for key in ("theta", "scale", "translation")]
results = one_step(model, batch, parameters, jax.jit(augment.transform_batch))
np.savez(f"{folder}/jax.npz", **results)
# The GPU machines that train under JAX have no TensorFlow.
assert "tensorflow" not in sys.modules, "the JAX step imported TensorFlow"
"""


def _random_weights(model, seed):
  """Random weights and positive variances, so every part matters."""
  rng = np.random.default_rng(seed)
  for variable in model.weights:
    shape = tuple(variable.shape)
    if variable.path.endswith("variance"):
      variable.assign(rng.uniform(0.5, 1.5, shape))
    else:
      variable.assign(rng.normal(0.0, 0.2, shape))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="compares the TensorFlow backend with JAX")
def test_one_step_is_the_same_under_tensorflow_and_jax(tmp_path):
  """Same weights and batch: same loss, gradients and batch-norm update."""
  keras.utils.set_random_seed(0)
  model = build_model(JOINTS, **TINY)
  _random_weights(model, seed=1)
  batch, parameters = _batch_and_parameters()
  inputs = dict(batch, joints=JOINTS, theta=parameters[0],
                scale=parameters[1], translation=parameters[2])
  inputs.update({f"trainable{i}": keras.ops.convert_to_numpy(v)
                 for i, v in enumerate(model.trainable_variables)})
  inputs.update({f"non_trainable{i}": keras.ops.convert_to_numpy(v)
                 for i, v in enumerate(model.non_trainable_variables)})
  np.savez(tmp_path / "inputs.npz", **inputs)
  # JAX builds and compiles while TensorFlow runs its step.
  jax_process = subprocess.Popen(
      [sys.executable, "-c", _JAX_SCRIPT, json.dumps(TINY), str(tmp_path)],
      env=dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")])),
      cwd=REPO, stderr=subprocess.PIPE, text=True)
  try:
    expected = one_train_step.one_step(model, batch, parameters,
                                       augment.transform_batch)
    _, stderr = jax_process.communicate(timeout=300)
  finally:
    jax_process.kill()
  assert jax_process.returncode == 0, stderr[-3000:]
  actual = dict(np.load(tmp_path / "jax.npz"))
  assert actual.keys() == expected.keys()

  for key in ("depth", "joints_uvz"):
    np.testing.assert_allclose(actual[key], expected[key], atol=1e-5,
                               rtol=0, err_msg=key)
  for key in ("loss", "coordinate", "offset"):
    np.testing.assert_allclose(actual[key], expected[key], rtol=1e-4,
                               err_msg=key)
  gradients = [k for k in expected if k.startswith("gradient")]
  assert len(gradients) == len(model.trainable_variables)
  # Relative to each weight's largest gradient: elements near zero carry
  # float32 noise. A few gradients are zero in exact arithmetic (a BN's β
  # whose shift the next training-mode BN removes, when the ReLU between
  # them is active everywhere) and hold only that noise: those are compared
  # on the scale of the largest gradient of all.
  largest = max(np.abs(expected[key]).max() for key in gradients)
  assert largest > 0
  for key in gradients:
    scale = max(np.abs(expected[key]).max(), 1e-5 * largest)
    np.testing.assert_allclose(actual[key], expected[key], rtol=1e-3,
                               atol=1e-3 * scale, err_msg=key)
  for key in (k for k in expected if k.startswith("non_trainable")):
    np.testing.assert_allclose(actual[key], expected[key], rtol=1e-4,
                               atol=1e-6, err_msg=key)
  # Adam's first step (ε negligible) moves every weight with a gradient by
  # the learning rate: the update was applied and, under JAX, written back
  # to the model.
  for results in (expected, actual):
    for i in range(len(gradients)):
      moved = results[f"gradient{i}"] != 0
      change = np.abs(results[f"change{i}"])
      np.testing.assert_allclose(change[moved], one_train_step.LEARNING_RATE,
                                 rtol=5e-4, err_msg=f"change{i}")
      np.testing.assert_array_equal(change[~moved], 0, err_msg=f"change{i}")


def test_the_authors_decay_set_labels_and_farthest_depth():
  from jgr_p2o_tf import train_step  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import losses  # pylint: disable=g-import-not-at-top
  model = build_model(JOINTS, **TINY)
  names = lambda indices: {model.trainable_variables[i].path.rsplit("/", 1)[1]
                           for i in indices}
  assert names(train_step.decayed_indices(model)) == {"kernel"}
  assert names(train_step.decayed_indices(model, batch_norm_scale=True)) == {
      "kernel", "gamma"}

  # The farthest depth below the background becomes background, per crop.
  depth = np.ones((2, SIZE, SIZE, 1), np.float32)
  depth[0, 3:5, 3:5] = 0.4
  depth[0, 8, 8] = -0.2
  depth[1, 1, 1] = 0.9
  out = np.asarray(train_step.farthest_depth_to_background(depth))
  expected = depth.copy()
  expected[0, 3:5, 3:5] = 1.0
  expected[1, 1, 1] = 1.0
  np.testing.assert_array_equal(out, expected)
  np.testing.assert_array_equal(
      np.asarray(train_step.farthest_depth_to_background(np.ones_like(depth))),
      1.0)

  # Labels beyond [-1, 1] are clipped before the loss: the loss of clipped
  # labels, not of the raw ones.
  rng = np.random.default_rng(3)
  crops = rng.uniform(-0.5, 0.5, (BATCH, SIZE, SIZE, 1)).astype(np.float32)
  joints = rng.uniform(0.2, 0.8, (BATCH, JOINTS, 3)).astype(np.float32)
  joints[:, 0, 2] = 1.7
  trainable = [v.value for v in model.trainable_variables]
  non_trainable = [v.value for v in model.non_trainable_variables]
  config = train_step.StepConfig(augmentation=None, l2_weight_decay=0.0,
                                 clip_labels=True)
  loss, _ = train_step.objective(model, trainable, non_trainable, crops,
                                 joints, config)
  outputs = model(crops, training=True)
  clipped = np.clip(joints, -1, 1)
  for labels, same in ((clipped, True), (joints, False)):
    reference, _ = losses.jgr_p2o_loss(outputs, labels, crops)
    assert (abs(float(loss) - float(reference)) < 1e-5 * float(loss)) == same
