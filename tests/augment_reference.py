"""References for the augmentation tests.

``sample_parameters`` and ``transform_batch`` are the TensorFlow
implementation that ``jgr_p2o_tf.augment`` replaced, moved here with the
same operations in the same order, except that the warp is TensorFlow's own
``ImageProjectiveTransformV3`` (nearest neighbour), which its gather was
bit-exact with. ``sampling_points``
finds where float32 rounding may legitimately pick another pixel.
"""

import math

import numpy as np
import tensorflow as tf


def sample_parameters(batch_size, config, seed):
  """(θ, s, t mm) per sample, from TensorFlow's Philox stream."""
  draws = tf.random.stateless_uniform(
      tf.stack([batch_size, 5]), seed=seed, dtype=tf.float32, alg="philox")
  max_theta = math.radians(config.rotation_deg)
  theta = max_theta * (2.0 * draws[:, 0] - 1.0)
  low, high = config.scale_range
  scale = low + (high - low) * draws[:, 1]
  translation = config.translation_mm * (2.0 * draws[:, 2:] - 1.0)
  return theta, scale, translation


def warp_nearest(images, inverse_affine, fill_value):
  """ImageProjectiveTransformV3, nearest neighbour, constant fill."""
  batch = images.shape[0]
  transforms = tf.concat([tf.reshape(inverse_affine, [batch, 6]),
                          tf.zeros([batch, 2], tf.float32)], axis=1)
  return tf.raw_ops.ImageProjectiveTransformV3(
      images=images, transforms=transforms,
      output_shape=tf.constant(images.shape[1:3], tf.int32),
      fill_value=tf.constant(fill_value, tf.float32), interpolation="NEAREST",
      fill_mode="CONSTANT")


def transform_batch(depth, joints_uvz, cube, theta, scale, translation_mm):
  """The augmentation's forward map in TensorFlow (eager only)."""
  depth = tf.cast(depth, tf.float32)
  joints_uvz = tf.cast(joints_uvz, tf.float32)
  cube = tf.cast(cube, tf.float32)
  theta = tf.cast(theta, tf.float32)
  scale = tf.cast(scale, tf.float32)
  translation_mm = tf.cast(translation_mm, tf.float32)
  size = depth.shape[1]

  cos, sin = tf.cos(theta), tf.sin(theta)
  shift_uv = translation_mm[:, :2] / cube[:, :2]
  shift_z = translation_mm[:, 2] / (cube[:, 2] / 2.0)

  s_cos_m1 = (scale * cos - 1.0)[:, None]
  s_sin = (scale * sin)[:, None]
  centred_u = joints_uvz[..., 0] - 0.5
  centred_v = joints_uvz[..., 1] - 0.5
  u = joints_uvz[..., 0] + (s_cos_m1 * centred_u - s_sin * centred_v
                            + shift_uv[:, 0:1])
  v = joints_uvz[..., 1] + (s_sin * centred_u + s_cos_m1 * centred_v
                            + shift_uv[:, 1:2])
  z = scale[:, None] * joints_uvz[..., 2] + shift_z[:, None]
  joints_out = tf.stack([u, v, z], axis=-1)

  centre = (size - 1) / 2.0
  a, b = cos / scale, sin / scale
  origin_x = centre + shift_uv[:, 0] * size
  origin_y = centre + shift_uv[:, 1] * size
  inverse = tf.reshape(tf.stack([
      a, b, centre - a * origin_x - b * origin_y,
      -b, a, centre + b * origin_x - a * origin_y], axis=-1), [-1, 2, 3])
  warped = warp_nearest(depth, inverse, 1.0)

  moved = scale[:, None, None, None] * warped + shift_z[:, None, None, None]
  keep = (warped < 1.0) & (tf.abs(moved) <= 1.0)
  depth_out = tf.where(keep, moved, tf.ones_like(moved))
  return depth_out, joints_out


def augment_batch(depth, joints_uvz, cube, config, seed):
  theta, scale, translation = sample_parameters(depth.shape[0], config, seed)
  return transform_batch(depth, joints_uvz, cube, theta, scale, translation)


def sampling_points(cube, theta, scale, translation_mm, size):
  """Input pixel (x, y) each output pixel samples, in float64.

  Returns:
    (x, y): (B, size, size) column and row of the point sampled by each
    output pixel (row, column), from the float32 parameters.
  """
  cube, theta, scale, translation_mm = (
      np.asarray(a, np.float32).astype(np.float64)
      for a in (cube, theta, scale, translation_mm))
  centre = (size - 1) / 2.0
  a = (np.cos(theta) / scale)[:, None, None]
  b = (np.sin(theta) / scale)[:, None, None]
  rows, columns = np.mgrid[0:size, 0:size].astype(np.float64)
  origin_x = centre + translation_mm[:, 0] / cube[:, 0] * size
  origin_y = centre + translation_mm[:, 1] / cube[:, 1] * size
  dx = columns - origin_x[:, None, None]
  dy = rows - origin_y[:, None, None]
  return a * dx + b * dy + centre, -b * dx + a * dy + centre


def ambiguous_pixels(cube, theta, scale, translation_mm, size, margin=1e-4):
  """(B, size, size) bool: output pixels whose sample point lies within
  ``margin`` px of a rounding boundary (half-integer), where computing the
  same float32 map in another operation order (XLA's fused multiply-adds,
  another backend's sin and cos) may round to the neighbouring pixel."""
  x, y = sampling_points(cube, theta, scale, translation_mm, size)
  return ((np.abs(x - np.floor(x) - 0.5) < margin) |
          (np.abs(y - np.floor(y) - 0.5) < margin))
