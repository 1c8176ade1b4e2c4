"""Tests of the loss of Eq. 7–9 and of the ground-truth offset maps."""

import keras
import numpy as np
import pytest
from keras import ops

from jgr_p2o_tf.layers import offsets_to_joints
from jgr_p2o_tf.layers import pixel_uvz
from jgr_p2o_tf.losses import HUBER_DELTA
from jgr_p2o_tf.losses import OFFSET_LOSS_WEIGHT
from jgr_p2o_tf.losses import ground_truth_offset_maps
from jgr_p2o_tf.losses import huber
from jgr_p2o_tf.losses import jgr_p2o_loss

BATCH, JOINTS, SIZE = 2, 4, 32
GRID = SIZE // 4


def _numpy(x):
  return ops.convert_to_numpy(x)


@pytest.fixture(name="sample")
def _sample():
  rng = np.random.default_rng(0)
  depth = rng.uniform(-1, 1, size=(BATCH, SIZE, SIZE, 1)).astype(np.float32)
  joints = rng.uniform([0, 0, -1], [1, 1, 1],
                       size=(BATCH, JOINTS, 3)).astype(np.float32)
  return depth, joints


def _outputs_at_ground_truth(depth, joints, num_stacks=2):
  offset_maps = _numpy(ground_truth_offset_maps(joints, depth))
  return [{"joints_uvz": joints.copy(), "offset_maps": offset_maps.copy()}
          for _ in range(num_stacks)]


def test_huber_is_quadratic_then_linear():
  delta = HUBER_DELTA
  small = np.array([1e-4, 1e-3, 5e-3, delta], np.float32)
  np.testing.assert_allclose(_numpy(huber(small)), small**2 / 2, rtol=1e-5)
  np.testing.assert_allclose(_numpy(huber(-small)), small**2 / 2, rtol=1e-5)
  large = np.array([0.02, 0.1, 1.0, 3.0], np.float32)
  np.testing.assert_allclose(_numpy(huber(large)),
                             delta * large - delta**2 / 2, rtol=1e-5)
  # Doubling a small error quadruples the loss; beyond δ every further unit
  # of error costs δ.
  assert _numpy(huber(np.float32(2e-3))) / _numpy(
      huber(np.float32(1e-3))) == pytest.approx(4, rel=1e-4)
  assert _numpy(huber(np.float32(0.5)) - huber(np.float32(0.3))) == (
      pytest.approx(0.2 * delta, rel=1e-4))
  assert _numpy(huber(np.float32(1.0), delta=0.5)) == pytest.approx(0.375)


@pytest.mark.parametrize("delta", [HUBER_DELTA, 0.5])
def test_huber_gradient_is_the_error_clipped_to_delta(delta):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  x = np.concatenate([np.linspace(-3 * delta, 3 * delta, 61),
                      [-5.0, -delta, 0.0, delta, 5.0]]).astype(np.float32)
  weight = np.random.default_rng(0).uniform(0.5, 2.0, x.shape).astype(
      np.float32)
  x_tensor = tf.constant(x)
  with tf.GradientTape() as tape:
    tape.watch(x_tensor)
    value = tf.reduce_sum(weight * huber(x_tensor, delta))
  gradient = tape.gradient(value, x_tensor).numpy()
  np.testing.assert_allclose(gradient, weight * np.clip(x, -delta, delta),
                             rtol=1e-6)
  # The slope of the loss itself, away from the kink at ±δ: central
  # differences in float64 of the piecewise definition.
  def piecewise(t):
    return np.where(np.abs(t) <= delta, t * t / 2,
                    delta * (np.abs(t) - delta / 2))
  step = 1e-4 * delta
  away = np.abs(np.abs(x) - delta) > 2 * step
  numeric = (piecewise(x.astype(np.float64) + step) -
             piecewise(x.astype(np.float64) - step)) / (2 * step)
  np.testing.assert_allclose(gradient[away], (weight * numeric)[away],
                             rtol=1e-4, atol=1e-7)


def test_loss_is_zero_at_the_ground_truth(sample):
  depth, joints = sample
  total, parts = jgr_p2o_loss(_outputs_at_ground_truth(depth, joints),
                              joints, depth)
  assert float(_numpy(total)) == pytest.approx(0.0, abs=1e-10)
  assert len(parts) == 2
  for part in parts:
    for value in part.values():
      assert float(_numpy(value)) == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("error", [1e-4, 1e-3, 4e-3, 0.05, 0.2])
def test_coordinate_loss_grows_quadratically_then_linearly(sample, error):
  depth, joints = sample
  outputs = _outputs_at_ground_truth(depth, joints)
  outputs[0]["joints_uvz"] = joints + np.float32(error)
  total, parts = jgr_p2o_loss(outputs, joints, depth)
  if error <= HUBER_DELTA:
    per_coordinate = error**2 / 2
  else:
    per_coordinate = HUBER_DELTA * (error - HUBER_DELTA / 2)
  # Summed over joints and coordinates, averaged over the batch.
  expected = JOINTS * 3 * per_coordinate
  assert float(_numpy(parts[0]["coordinate"])) == pytest.approx(
      expected, rel=1e-3)
  assert float(_numpy(parts[1]["total"])) == pytest.approx(0.0, abs=1e-10)
  assert float(_numpy(total)) == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("error", [2e-3, 0.1])
def test_offset_loss_is_summed_over_pixels_and_weighted_by_beta(sample, error):
  depth, joints = sample
  outputs = _outputs_at_ground_truth(depth, joints)
  outputs[1]["offset_maps"] = outputs[1]["offset_maps"] - np.float32(error)
  total, parts = jgr_p2o_loss(outputs, joints, depth)
  per_value = float(_numpy(huber(np.float32(error))))
  expected_offset = GRID * GRID * JOINTS * 3 * per_value
  assert float(_numpy(parts[1]["offset"])) == pytest.approx(expected_offset,
                                                            rel=1e-3)
  assert float(_numpy(parts[1]["coordinate"])) == pytest.approx(0.0,
                                                                abs=1e-10)
  assert float(_numpy(total)) == pytest.approx(
      OFFSET_LOSS_WEIGHT * expected_offset, rel=1e-3)
  total, _ = jgr_p2o_loss(outputs, joints, depth, offset_weight=1.0)
  assert float(_numpy(total)) == pytest.approx(expected_offset, rel=1e-3)


def test_loss_is_the_batch_mean_of_the_per_sample_losses(sample):
  depth, joints = sample
  rng = np.random.default_rng(1)
  outputs = [{
      "joints_uvz": joints + rng.normal(scale=0.02, size=joints.shape),
      "offset_maps": rng.normal(scale=0.05, size=(BATCH, GRID, GRID, JOINTS,
                                                  3)),
  }]
  outputs = [{k: v.astype(np.float32) for k, v in outputs[0].items()}]
  total, _ = jgr_p2o_loss(outputs, joints, depth)
  per_sample = [
      float(_numpy(jgr_p2o_loss(
          [{k: v[i:i + 1] for k, v in outputs[0].items()}],
          joints[i:i + 1], depth[i:i + 1])[0])) for i in range(BATCH)]
  assert float(_numpy(total)) == pytest.approx(np.mean(per_sample), rel=1e-5)
  # A single dict is one stack.
  single, parts = jgr_p2o_loss(outputs[0], joints, depth)
  assert len(parts) == 1 and float(_numpy(single)) == float(_numpy(total))


def test_ground_truth_offsets_are_measured_from_the_pixel_grid(sample):
  depth, joints = sample
  offset_maps = _numpy(ground_truth_offset_maps(joints, depth))
  grid = _numpy(pixel_uvz(depth))
  assert offset_maps.shape == (BATCH, GRID, GRID, JOINTS, 3)
  np.testing.assert_allclose(offset_maps[1, 2, 5, 3], joints[1, 3] -
                             grid[1, 2, 5], atol=1e-7)
  uniform = np.full((BATCH, GRID, GRID, JOINTS), 1 / GRID**2, np.float32)
  np.testing.assert_allclose(
      _numpy(offsets_to_joints(uniform, offset_maps, grid)), joints,
      atol=1e-5)


def test_heads_without_offset_maps_have_no_offset_term(sample):
  depth, joints = sample
  outputs = [{"joints_uvz": joints + np.float32(0.5),
              "voting_maps": np.zeros((BATCH, GRID, GRID, JOINTS))}]
  total, parts = jgr_p2o_loss(outputs, joints, depth)
  assert float(_numpy(parts[0]["offset"])) == 0.0
  assert float(_numpy(total)) == pytest.approx(
      JOINTS * 3 * HUBER_DELTA * (0.5 - HUBER_DELTA / 2), rel=1e-4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_loss_is_float32_for_half_precision_outputs(sample, dtype):
  depth, joints = sample
  outputs = _outputs_at_ground_truth(depth, joints)
  half = [{k: ops.cast(v + np.float32(1e-3), dtype) for k, v in o.items()}
          for o in outputs]
  total, parts = jgr_p2o_loss(half, joints, depth)
  assert keras.backend.standardize_dtype(total.dtype) == "float32"
  assert all(keras.backend.standardize_dtype(v.dtype) == "float32"
             for part in parts for v in part.values())
  assert np.isfinite(float(_numpy(total))) and float(_numpy(total)) > 0


def test_sum_reduction_is_the_batch_size_times_the_mean(sample):
  depth, joints = sample
  rng = np.random.default_rng(2)
  outputs = [{
      "joints_uvz": (joints + rng.normal(scale=0.03, size=joints.shape)
                     ).astype(np.float32),
      "offset_maps": rng.normal(scale=0.05, size=(BATCH, GRID, GRID, JOINTS,
                                                  3)).astype(np.float32),
  }] * 2
  mean, mean_parts = jgr_p2o_loss(outputs, joints, depth)
  summed, sum_parts = jgr_p2o_loss(outputs, joints, depth, reduction="sum")
  per_sample = [float(_numpy(jgr_p2o_loss(
      [{k: v[i:i + 1] for k, v in o.items()} for o in outputs],
      joints[i:i + 1], depth[i:i + 1])[0])) for i in range(BATCH)]
  assert float(_numpy(summed)) == pytest.approx(sum(per_sample), rel=1e-5)
  assert float(_numpy(summed)) == pytest.approx(
      BATCH * float(_numpy(mean)), rel=1e-5)
  for m, s in zip(mean_parts, sum_parts):
    for name in ("coordinate", "offset", "total"):
      assert float(_numpy(s[name])) == pytest.approx(
          BATCH * float(_numpy(m[name])), rel=1e-5)
  with pytest.raises(ValueError, match="reduction"):
    jgr_p2o_loss(outputs, joints, depth, reduction="max")
