"""Tests of jgr_p2o_tf.augment: in-graph rotation, scaling and translation.

They run under TensorFlow, and ``test_jax_backend_gives_the_same_augmentation``
repeats the sphere test and the comparison with the TensorFlow reference
under JAX in a subprocess.
"""

import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import augment_reference
from jgr_p2o_tf import augment

REPO = pathlib.Path(__file__).resolve().parents[1]

S = 96
PAPER = augment.AugmentConfig()
OFF = augment.AugmentConfig(rotation_deg=0.0, scale_range=(1.0, 1.0),
                            translation_mm=0.0)


def _random_crops(rng, batch, joints=5):
  """Hand-like crops: random depths in (-0.9, 0.9), background 1 elsewhere."""
  depth = rng.uniform(-0.9, 0.9, (batch, S, S, 1)).astype(np.float32)
  depth[rng.random(depth.shape) < 0.3] = 1.0
  joints_uvz = rng.uniform([0.1, 0.1, -0.8], [0.9, 0.9, 0.8],
                           (batch, joints, 3)).astype(np.float32)
  return depth, joints_uvz


def _cube(batch, edge=250.0):
  return np.full((batch, 3), edge, np.float32)


def _expected_joints(joints_uvz, cube, theta, scale, translation_mm):
  """The documented forward map, in float64 NumPy."""
  theta, scale = np.float64(theta), np.float64(scale)
  translation_mm, cube = np.float64(translation_mm), np.float64(cube)
  cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
  s = scale[:, None]
  cu = joints_uvz[..., 0] - 0.5
  cv = joints_uvz[..., 1] - 0.5
  shift = translation_mm / np.stack(
      [cube[:, 0], cube[:, 1], cube[:, 2] / 2], axis=-1)
  u = s * (cos * cu - sin * cv) + 0.5 + shift[:, 0:1]
  v = s * (sin * cu + cos * cv) + 0.5 + shift[:, 1:2]
  z = s * joints_uvz[..., 2] + shift[:, 2:3]
  return np.stack([u, v, z], axis=-1)


def _render_spheres(joints_uvz, cube, radius_mm):
  """Spheres of radius_mm centred on the joints, as normalized depth crops.

  A crop pixel within r px of a joint's uv (r = radius_mm S / cube_x) sees
  the sphere's front surface at z - sqrt(r_mm² - ρ_mm²) / (cube_z / 2).
  """
  batch = joints_uvz.shape[0]
  depth = np.ones((batch, S, S), np.float64)
  rows, cols = np.mgrid[0:S, 0:S].astype(np.float64)
  for b in range(batch):
    mm_per_px = cube[b, 0] / S
    for u, v, z in joints_uvz[b]:
      rho_mm = np.hypot(cols - (u * S - 0.5), rows - (v * S - 0.5)) * mm_per_px
      inside = rho_mm < radius_mm
      front = z - np.sqrt(radius_mm ** 2 - rho_mm[inside] ** 2) / (
          cube[b, 2] / 2)
      depth[b][inside] = np.minimum(depth[b][inside], front)
  return depth[..., None].astype(np.float32)


def _sphere_batch():
  """Spheres of 15 mm on 5 joints a crop: one at the centre, four 30 px away.

  After scaling by up to 1.1 and moving 10 mm they stay inside the crop and
  far apart. Returns (depth, joints_uvz, cube, radius_mm).
  """
  rng = np.random.default_rng(3)
  batch, radius_mm = 8, 15.0
  edges = np.array([200.0, 250.0, 300.0, 250.0, 200.0, 300.0, 220.0, 280.0])
  cube = np.repeat(edges[:, None], 3, axis=1).astype(np.float32)
  angles = rng.uniform(0, 2 * np.pi, (batch, 1)) + np.arange(4) * np.pi / 2
  centre = np.full((batch, 1), 0.5)
  u = np.concatenate([centre, 0.5 + 30 / S * np.cos(angles)], axis=1)
  v = np.concatenate([centre, 0.5 + 30 / S * np.sin(angles)], axis=1)
  z = rng.uniform(-0.4, 0.4, (batch, 5))
  joints_uvz = np.stack([u, v, z], axis=-1).astype(np.float32)
  return (_render_spheres(joints_uvz, cube, radius_mm), joints_uvz, cube,
          radius_mm)


def _check_spheres_follow_their_joints(out_depth, out_joints, theta, scale,
                                       translation):
  """Each warped sphere sits on its transformed joint, at its scaled size."""
  _, joints_uvz, cube, radius_mm = _sphere_batch()
  assert np.ptp(theta) > 1.0 and np.ptp(scale) > 0.05
  expected = _expected_joints(joints_uvz, cube, theta, scale, translation)
  np.testing.assert_allclose(out_joints, expected, atol=1e-6)

  out_depth = out_depth[..., 0]
  rows, cols = np.mgrid[0:S, 0:S]
  for b in range(len(out_depth)):
    r_px = scale[b] * radius_mm * S / cube[b, 0]
    half_z = cube[b, 2] / 2
    hand = out_depth[b] < 1
    claimed = np.zeros_like(hand)
    for j in range(5):
      centre = expected[b, j, :2] * S - 0.5
      near = np.hypot(cols - centre[0], rows - centre[1]) < r_px + 3
      mine = hand & near
      claimed |= mine
      centroid = np.array([cols[mine].mean(), rows[mine].mean()])
      assert np.linalg.norm(centroid - centre) <= 0.5, (b, j)
      assert abs(math.sqrt(mine.sum() / math.pi) - r_px) <= 0.5, (b, j)
      # The sphere scales with s: its front is s r in front of the centre.
      front_mm = out_depth[b][mine].min() * half_z
      expected_mm = expected[b, j, 2] * half_z - scale[b] * radius_mm
      assert abs(front_mm - expected_mm) <= 1.0, (b, j)
    # Every hand pixel belongs to one sphere: nothing smeared or stray.
    np.testing.assert_array_equal(claimed, hand)


def test_spheres_follow_their_joints():
  depth, joints_uvz, cube, _ = _sphere_batch()
  seed = tf.constant([7, 11])
  out_depth, out_joints = augment.augment_batch(depth, joints_uvz, cube,
                                                PAPER, seed)
  parameters = augment.sample_parameters(len(depth), PAPER, seed)
  _check_spheres_follow_their_joints(
      out_depth.numpy(), out_joints.numpy(), *(p.numpy() for p in parameters))


def _random_parameters(rng, batch):
  """(θ, s, t mm) per sample over the paper's ranges."""
  return (rng.uniform(-np.pi, np.pi, batch).astype(np.float32),
          rng.uniform(0.9, 1.1, batch).astype(np.float32),
          rng.uniform(-10, 10, (batch, 3)).astype(np.float32))


def _random_cubes(rng, batch):
  """Cube edges in mm, each of its own size."""
  return rng.uniform(200, 300, (batch, 3)).astype(np.float32)


def _assert_matches_reference(out_depth, out_joints, depth, joints_uvz, cube,
                              parameters, exact):
  """Same joints and warp as the TensorFlow reference, to 1e-5.

  With ``exact`` every pixel must agree; otherwise pixels sampled within
  1e-4 px of a rounding boundary may take their neighbour's value.
  """
  want_depth, want_joints = augment_reference.transform_batch(
      depth, joints_uvz, cube, *parameters)
  np.testing.assert_allclose(out_joints, want_joints.numpy(), rtol=0,
                             atol=1e-5)
  agree = np.abs(out_depth - want_depth.numpy())[..., 0] <= 1e-5
  if exact:
    assert agree.all()
  else:
    ambiguous = augment_reference.ambiguous_pixels(cube, *parameters, S)
    assert ambiguous.mean() < 1e-3
    assert (agree | ambiguous).all(), np.argwhere(~agree)


def test_matches_the_tensorflow_reference():
  """The keras.ops augmentation is today's TensorFlow one, XLA included."""
  rng = np.random.default_rng(9)
  batch = 16
  depth, joints_uvz = _random_crops(rng, batch)
  cube = _random_cubes(rng, batch)
  parameters = _random_parameters(rng, batch)
  out = augment.transform_batch(depth, joints_uvz, cube, *parameters)
  _assert_matches_reference(*(o.numpy() for o in out), depth, joints_uvz,
                            cube, parameters, exact=True)
  xla = tf.function(augment.transform_batch, jit_compile=True)
  out = xla(depth, joints_uvz, cube, *parameters)
  _assert_matches_reference(*(o.numpy() for o in out), depth, joints_uvz,
                            cube, parameters, exact=False)
  # The same seed draws the same parameters as before.
  seed = tf.constant([5, 6])
  for got, want in zip(
      augment.augment_batch(depth, joints_uvz, cube, PAPER, seed),
      augment_reference.augment_batch(depth, joints_uvz, cube, PAPER, seed)):
    np.testing.assert_array_equal(got.numpy(), want.numpy())


_JAX_SCRIPT = """
import sys
import jax
import keras
import numpy as np
from jgr_p2o_tf import augment
assert keras.backend.backend() == "jax", keras.backend.backend()
folder = sys.argv[1]
config = augment.AugmentConfig()
inputs = dict(np.load(f"{folder}/inputs.npz"))
batch = len(inputs["sphere_depth"])
augment_spheres = jax.jit(
    lambda d, j, c, s: augment.augment_batch(d, j, c, config, s))
sphere_depth, sphere_joints = augment_spheres(
    inputs["sphere_depth"], inputs["sphere_joints"], inputs["sphere_cube"],
    inputs["seed"])
theta, scale, translation = jax.jit(
    lambda s: augment.sample_parameters(batch, config, s))(inputs["seed"])
depth, joints_uvz = jax.jit(augment.transform_batch)(
    inputs["depth"], inputs["joints_uvz"], inputs["cube"], inputs["theta"],
    inputs["scale"], inputs["translation"])
warped = jax.jit(augment.warp_nearest, static_argnums=2)(
    inputs["images"], inputs["inverse"], 1.0)
np.savez(f"{folder}/outputs.npz", sphere_depth=sphere_depth,
         sphere_joints=sphere_joints, theta=theta, scale=scale,
         translation=translation, depth=depth, joints_uvz=joints_uvz,
         warped=warped)
"""


def test_jax_backend_gives_the_same_augmentation(tmp_path):
  """Under jax.jit: the sphere test, and the reference's warps and joints."""
  sphere_depth, sphere_joints, sphere_cube, _ = _sphere_batch()
  rng = np.random.default_rng(10)
  batch = 16
  depth, joints_uvz = _random_crops(rng, batch)
  cube = _random_cubes(rng, batch)
  parameters = _random_parameters(rng, batch)
  images, inverse = _warp_case()
  np.savez(tmp_path / "inputs.npz", sphere_depth=sphere_depth,
           sphere_joints=sphere_joints, sphere_cube=sphere_cube,
           seed=np.array([7, 11], np.int32), depth=depth,
           joints_uvz=joints_uvz, cube=cube, theta=parameters[0],
           scale=parameters[1], translation=parameters[2], images=images,
           inverse=inverse)
  env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(REPO),
             TF_CPP_MIN_LOG_LEVEL="3")
  subprocess.run([sys.executable, "-c", _JAX_SCRIPT, str(tmp_path)],
                 check=True, env=env, cwd=REPO, timeout=300)
  out = np.load(tmp_path / "outputs.npz")
  _check_spheres_follow_their_joints(out["sphere_depth"], out["sphere_joints"],
                                     out["theta"], out["scale"],
                                     out["translation"])
  _assert_matches_reference(out["depth"], out["joints_uvz"], depth,
                            joints_uvz, cube, parameters, exact=False)
  reference = augment_reference.warp_nearest(tf.constant(images),
                                             tf.constant(inverse), 1.0)
  np.testing.assert_array_equal(out["warped"], reference.numpy())


@pytest.mark.parametrize("theta, k", [(math.pi / 2, -1), (-math.pi / 2, 1),
                                      (math.pi, 2)])
def test_quarter_turns_are_rot90(theta, k):
  """θ > 0 is clockwise on screen (v points down): θ = 90° is rot90(k=-1)."""
  rng = np.random.default_rng(0)
  depth, joints_uvz = _random_crops(rng, 2)
  # Joints on pixel centres, so each lands on the pixel its value moved to.
  pixels = rng.integers(10, S - 10, (2, 5, 2))
  joints_uvz[..., :2] = (pixels + 0.5) / S
  out_depth, out_joints = augment.transform_batch(
      depth, joints_uvz, _cube(2), tf.fill([2], theta), tf.ones([2]),
      tf.zeros([2, 3]))
  np.testing.assert_array_equal(out_depth.numpy(),
                                np.rot90(depth, k=k, axes=(1, 2)))
  out_px = out_joints.numpy()[..., :2] * S - 0.5
  np.testing.assert_allclose(out_px, np.round(out_px), atol=1e-4)
  out_px = np.round(out_px).astype(int)
  for b in range(2):
    for j in range(5):
      assert (out_depth[b, out_px[b, j, 1], out_px[b, j, 0], 0] ==
              depth[b, pixels[b, j, 1], pixels[b, j, 0], 0])
  np.testing.assert_array_equal(out_joints[..., 2], joints_uvz[..., 2])


def test_identity_parameters_are_bit_exact():
  rng = np.random.default_rng(1)
  depth, joints_uvz = _random_crops(rng, 4)
  args = (depth, joints_uvz, _cube(4), tf.zeros([4]), tf.ones([4]),
          tf.zeros([4, 3]))
  for transform in (augment.transform_batch,
                    tf.function(augment.transform_batch)):
    out_depth, out_joints = transform(*args)
    np.testing.assert_array_equal(out_depth.numpy(), depth)
    np.testing.assert_array_equal(out_joints.numpy(), joints_uvz)


def test_one_pixel_translation_shifts_one_pixel():
  rng = np.random.default_rng(2)
  depth, joints_uvz = _random_crops(rng, 3)
  cube = np.array([[250.0] * 3, [300.0] * 3, [200.0] * 3], np.float32)
  px_mm = cube[:, 0] / S
  translation = np.array([[px_mm[0], 0, 0], [0, px_mm[1], 0],
                          [-px_mm[2], 0, 0]], np.float32)
  out_depth, out_joints = augment.transform_batch(
      depth, joints_uvz, cube, tf.zeros([3]), tf.ones([3]), translation)
  out_depth = out_depth.numpy()
  # Sample 0 moves right, sample 1 down, sample 2 left; background comes in.
  np.testing.assert_array_equal(out_depth[0, :, 1:], depth[0, :, :-1])
  np.testing.assert_array_equal(out_depth[0, :, 0], 1.0)
  np.testing.assert_array_equal(out_depth[1, 1:], depth[1, :-1])
  np.testing.assert_array_equal(out_depth[1, 0], 1.0)
  np.testing.assert_array_equal(out_depth[2, :, :-1], depth[2, :, 1:])
  np.testing.assert_array_equal(out_depth[2, :, -1], 1.0)
  shift = np.array([[1, 0, 0], [0, 1, 0], [-1, 0, 0]]) / S
  np.testing.assert_allclose(out_joints.numpy() - joints_uvz,
                             np.broadcast_to(shift[:, None], (3, 5, 3)),
                             atol=1e-6)


def test_depth_scales_and_moves_hand_only():
  """d' = s d + t_z/(cube_z/2); what leaves [-1, 1] becomes background."""
  depth = np.ones((2, S, S, 1), np.float32)
  depth[:, 40:56, 40:56] = 0.5
  depth[:, 45:50, 45:50] = 0.95
  depth[:, 42:44, 42:44] = -0.95
  # The 16 px square stays within the crop, so only depths change.
  cube = np.array([[250.0] * 3, [200.0] * 3], np.float32)
  translation = np.array([[0, 0, 12.5], [0, 0, 0]], np.float32)
  out_depth, _ = augment.transform_batch(
      depth, np.zeros((2, 1, 3), np.float32), cube, tf.zeros([2]),
      tf.constant([1.0, 1.1]), translation)
  out_depth = out_depth.numpy()
  # Sample 0: +12.5 mm is +0.1; 0.95 leaves the cube, -0.95 stays.
  np.testing.assert_allclose(out_depth[0, 40:42, 40:56], 0.6)
  np.testing.assert_allclose(out_depth[0, 42:44, 42:44], -0.85)
  np.testing.assert_array_equal(out_depth[0, 45:50, 45:50], 1.0)
  # Sample 1: 1.1 × ±0.95 leaves the cube at both ends.
  assert np.all(out_depth[1][(out_depth[1] < 1)] == np.float32(1.1 * 0.5))
  assert np.sum(out_depth[1] < 1) > 100
  np.testing.assert_array_equal(out_depth[0][depth[0] == 1], 1.0)


def _warp_case():
  """Images and inverse affines: random ones, and two at exact half pixels."""
  rng = np.random.default_rng(4)
  batch = 6
  images = rng.uniform(-1, 1, (batch, S, S, 1)).astype(np.float32)
  theta = rng.uniform(-np.pi, np.pi, batch)
  scale = rng.uniform(0.8, 1.2, batch)
  inverse = np.zeros((batch, 2, 3), np.float32)
  inverse[:, 0, 0] = inverse[:, 1, 1] = np.cos(theta) / scale
  inverse[:, 0, 1] = np.sin(theta) / scale
  inverse[:, 1, 0] = -np.sin(theta) / scale
  inverse[:, :, 2] = rng.uniform(-20, 20, (batch, 2))
  # Half-pixel shifts put every sample exactly halfway between two pixels.
  inverse[-2:] = [[1, 0, 0.5], [0, 1, -0.5]]
  inverse[-1, :, 2] = [-2.5, 3.5]
  return images, inverse


def test_warp_matches_image_projective_transform_v3():
  """Same pixels as the TF op (which XLA cannot compile), halves included."""
  images, inverse = _warp_case()
  ours = augment.warp_nearest(tf.constant(images), tf.constant(inverse), 1.0)
  reference = augment_reference.warp_nearest(tf.constant(images),
                                             tf.constant(inverse), 1.0)
  np.testing.assert_array_equal(ours.numpy(), reference.numpy())


def test_everything_off_returns_inputs():
  rng = np.random.default_rng(5)
  depth, joints_uvz = _random_crops(rng, 4)
  out_depth, out_joints = augment.augment_batch(
      depth, joints_uvz, _cube(4), OFF, tf.constant([3, 4]))
  np.testing.assert_array_equal(out_depth.numpy(), depth)
  np.testing.assert_array_equal(out_joints.numpy(), joints_uvz)


def test_seeds_decide_the_augmentation():
  rng = np.random.default_rng(6)
  depth, joints_uvz = _random_crops(rng, 4)
  cube = _cube(4)

  def run(seed):
    return [t.numpy() for t in augment.augment_batch(
        depth, joints_uvz, cube, PAPER, tf.constant(seed, tf.int64))]

  first, again, other = run([1, 2]), run([1, 2]), run([1, 3])
  for a, b, c in zip(first, again, other):
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_parameters_stay_in_their_ranges():
  config = augment.AugmentConfig(rotation_deg=30.0, scale_range=(0.8, 1.2),
                                 translation_mm=5.0)
  theta, scale, translation = (t.numpy() for t in augment.sample_parameters(
      512, config, tf.constant([0, 1])))
  assert theta.shape == scale.shape == (512,) and translation.shape == (512, 3)
  for values, low, high in [(theta, -math.radians(30), math.radians(30)),
                            (scale, 0.8, 1.2), (translation, -5.0, 5.0)]:
    assert values.min() >= low and values.max() <= high
    # Uniform draws fill the range.
    assert values.min() < low + 0.1 * (high - low)
    assert values.max() > high - 0.1 * (high - low)


def test_config_rejects_bad_ranges():
  with pytest.raises(ValueError):
    augment.AugmentConfig(rotation_deg=-1.0)
  with pytest.raises(ValueError):
    augment.AugmentConfig(scale_range=(1.1, 0.9))
  with pytest.raises(ValueError):
    augment.AugmentConfig(translation_mm=-1.0)


def test_half_precision_inputs_give_float32():
  rng = np.random.default_rng(7)
  depth, joints_uvz = _random_crops(rng, 2)
  seed = tf.constant([5, 5])
  out = augment.augment_batch(tf.cast(depth, tf.bfloat16),
                              tf.cast(joints_uvz, tf.float16), _cube(2),
                              PAPER, seed)
  reference = augment.augment_batch(
      tf.cast(tf.cast(depth, tf.bfloat16), tf.float32),
      tf.cast(tf.cast(joints_uvz, tf.float16), tf.float32), _cube(2), PAPER,
      seed)
  for got, want in zip(out, reference):
    assert got.dtype == tf.float32
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_compiles_in_tf_function_and_xla():
  rng = np.random.default_rng(8)
  batch = 8
  depth, joints_uvz = _random_crops(rng, batch)
  cube = _cube(batch)
  seed = tf.constant([9, 10])
  signature = [tf.TensorSpec([None, S, S, 1], tf.float32),
               tf.TensorSpec([None, 5, 3], tf.float32),
               tf.TensorSpec([None, 3], tf.float32),
               tf.TensorSpec([2], tf.int32)]

  def step(d, j, c, s):
    return augment.augment_batch(d, j, c, PAPER, s)

  graph = tf.function(step, input_signature=signature)
  xla = tf.function(step, input_signature=signature, jit_compile=True)
  eager_out = [t.numpy() for t in step(depth, joints_uvz, cube, seed)]
  for got, want in zip(graph(depth, joints_uvz, cube, seed), eager_out):
    np.testing.assert_allclose(got.numpy(), want, atol=1e-6)

  # XLA draws its own Philox stream, so compare with the parameters it drew;
  # its fused multiply-adds move values by an ulp but no pixel.
  xla_out = [t.numpy() for t in xla(depth, joints_uvz, cube, seed)]
  params = tf.function(lambda s: augment.sample_parameters(batch, PAPER, s),
                       jit_compile=True)(seed)
  want = augment.transform_batch(depth, joints_uvz, cube, *params)
  np.testing.assert_array_equal(xla_out[0] == 1, want[0].numpy() == 1)
  for got, expected in zip(xla_out, want):
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-6)
  again = xla(depth, joints_uvz, cube, seed)
  for got, expected in zip(again, xla_out):
    np.testing.assert_array_equal(got.numpy(), expected)


AUTHORS = augment.AugmentConfig(mode="authors")


def test_authors_mode_transforms_one_way_each_a_quarter_of_the_time():
  n = 8000
  transform, theta, scale, translation = (
      t.numpy() for t in augment.sample_authors_parameters(
          n, AUTHORS, tf.constant([3, 4])))
  changed = np.stack([np.any(translation != 0, axis=1), theta != 0,
                      scale != 1], axis=1)
  # Exactly the transform drawn, and nothing else.
  np.testing.assert_array_equal(
      changed, np.arange(3)[None, :] == transform[:, None])
  counts = np.bincount(transform, minlength=4)
  # Binomial(n, 1/4): within 4.5 standard deviations of n/4.
  assert np.all(np.abs(counts - n / 4) < 4.5 * math.sqrt(n * 3 / 16)), counts
  # Their distributions: t ~ N(0, 10) clipped to ±10 mm, θ ~ U(±180°),
  # cube factor |1 + N(0, 0.05)| clipped to [0.9, 1.1], the hand scaled by
  # its inverse.
  t = translation[transform == 0].ravel()
  assert np.abs(t).max() == pytest.approx(10.0)
  clipped = np.mean(np.abs(t) == 10.0)
  assert abs(clipped - 0.3173) < 0.03  # P(|N(0, 1)| >= 1)
  inside = t[np.abs(t) < 10.0]
  assert abs(inside.std() - 5.39) < 0.3  # std of N(0, 10) within ±1 sd
  th = theta[transform == 1]
  assert th.min() > -math.pi and th.max() < math.pi
  assert abs(np.mean(th > 0) - 0.5) < 0.05
  factor = 1.0 / scale[transform == 2]
  assert factor.min() >= 0.9 - 1e-6 and factor.max() <= 1.1 + 1e-6
  assert abs(np.std(factor) - 0.05) < 0.01
  assert abs(np.mean(factor == np.float32(1.1)) - 0.0228) < 0.015  # P(N > 2)


def test_authors_mode_keeps_depth_values():
  rng = np.random.default_rng(11)
  depth, joints_uvz = _random_crops(rng, 64)
  out_depth, out_joints = (t.numpy() for t in augment.augment_batch(
      depth, joints_uvz, _cube(64), AUTHORS, tf.constant([2, 9])))
  transform, theta, scale, translation = (
      t.numpy() for t in augment.sample_authors_parameters(
          64, AUTHORS, tf.constant([2, 9])))
  for i in range(64):
    # Every depth of the output is a depth of the input, unchanged.
    assert set(np.unique(out_depth[i])) <= set(np.unique(depth[i])) | {1.0}
  np.testing.assert_allclose(
      out_joints,
      _expected_joints(joints_uvz, _cube(64), theta, scale, translation),
      atol=1e-5)
  none = transform == 3
  np.testing.assert_array_equal(out_depth[none], depth[none])
