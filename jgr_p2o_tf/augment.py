"""Online augmentation of normalized hand crops, batched and in-graph.

The paper augments with in-plane rotation in [-180°, 180°], 3D scaling in
[0.9, 1.1] and 3D translation in [-10, 10] mm. Every sample of a batch draws
its own parameters and the whole batch is transformed with ``keras.ops``, so
the augmentation runs inside the compiled train step of either backend:
``tf.function(jit_compile=True)`` under TensorFlow, ``jax.jit`` under JAX.

The forward map in normalized UVZ (ARCHITECTURE.md, "Augmentation"):

  uv' = s R(θ) (uv - 0.5) + 0.5 + t_xy / cube_xy
  z'  = s z + t_z / (cube_z / 2)

with R(θ) = [[cos θ, -sin θ], [sin θ, cos θ]] acting on (u, v). Since v points
down the image, θ > 0 turns the crop clockwise on screen: θ = 90° is
``np.rot90(crop, k=-1)``. The depth crop is warped by the same map with
nearest-neighbour sampling (hand and background depths never mix) and its
hand pixels get d' = s d + t_z / (cube_z / 2); background stays exactly 1.

Hand depths that the transform pushes out of [-1, 1] become background rather
than being clamped: the crop convention (``geometry.normalize_depth``) makes
everything outside the cube background, so the result is the crop the moved
hand would have given, whereas clamping would paint flat walls at ±1 that no
real crop contains. Joints are never clipped: a label outside the crop or the
cube keeps its true position.

Parts of the crop rotated in from beyond its edges are background, like the
rest of the world outside the cube.

Two modes (``AugmentConfig.mode``):
  * "all" (this project's): every sample is rotated, scaled and translated,
    θ ~ U(±rotation_deg), s ~ U(scale_range), each t ~ U(±translation_mm),
    its hand depths moved with it as above;
  * "authors" (the TensorFlow 1 code of Fang et al.,
    ``Model.augmentPose``): each sample gets ONE of translation, rotation,
    scaling or nothing, with probability 1/4 each; θ ~ U(±rotation_deg),
    t ~ N(0, translation_mm²) per axis clipped to ±translation_mm, and a cube
    scaled by c = |1 + N(0, scale_sigma²)| clipped to ``scale_range``, which
    shrinks the hand by s = 1/c. Their translation moves the crop's centre
    and their scaling the cube, but neither changes a depth value: the crop
    is resampled, its depths keep their values (normalized about the old
    centre by the old cube) while the labels move, z' = z/c and
    z' = z - t_z/(cube_z/2). So this mode warps the crop as above and leaves
    its depths as they are. Their recropping about a centre moved in depth
    also zooms the crop by (z_c + t_z)/z_c, at most 3% (10 mm at 350 mm), which
    is left out here, as it is in "all". The sign of t is immaterial: its
    distribution is symmetric.
"""

import dataclasses
import math

import keras
from keras import ops

from jgr_p2o_tf import train_config


MODES = train_config.AUGMENT_MODES
# The authors' transforms, one per sample, in the order of their aug_modes.
AUTHORS_TRANSFORMS = ("translation", "rotation", "scale", "none")


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
  """Ranges of the random augmentation; the defaults are the paper's.

  Attributes:
    rotation_deg: θ ~ U(-rotation_deg, rotation_deg) degrees; 0 switches
      rotation off.
    scale_range: s ~ U(scale_range); (1, 1) switches scaling off. In the
      authors' mode the range their cube factor is clipped to.
    translation_mm: each of t_x, t_y, t_z ~ U(-translation_mm,
      translation_mm) mm; 0 switches translation off. In the authors' mode
      the standard deviation of t and its clipping bound.
    mode: "all" or "authors" (see the module docstring).
    scale_sigma: the authors' mode: standard deviation of the cube factor.
  """
  rotation_deg: float = 180.0
  scale_range: tuple[float, float] = (0.9, 1.1)
  translation_mm: float = 10.0
  mode: str = "all"
  scale_sigma: float = 0.05

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f"mode must be one of {list(MODES)}, got {self.mode!r}")
    if self.scale_sigma < 0:
      raise ValueError(f"scale_sigma must be >= 0, got {self.scale_sigma}")
    if self.rotation_deg < 0:
      raise ValueError(f"rotation_deg must be >= 0, got {self.rotation_deg}")
    low, high = self.scale_range
    if not 0 < low <= high:
      raise ValueError(f"scale_range must satisfy 0 < low <= high, got "
                       f"{self.scale_range}")
    if self.translation_mm < 0:
      raise ValueError(
          f"translation_mm must be >= 0, got {self.translation_mm}")


def _uniform_draws(shape, seed):
  """U[0, 1) float32 draws, a pure function of the (2,) integer ``seed``.

  ``keras.random`` takes an explicit tensor seed only under JAX (as a PRNG
  key); under TensorFlow it wants an int or a SeedGenerator, whose state
  variable cannot be created inside a compiled, distributed step. So
  TensorFlow's own stateless op is called there, with Philox by name:
  "auto_select" may pick another generator on another device.
  """
  if keras.backend.backend() == "tensorflow":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.random.stateless_uniform(shape, seed=seed, dtype=tf.float32,
                                       alg="philox")
  return keras.random.uniform(shape, seed=ops.cast(seed, "uint32"),
                              dtype="float32")


def sample_parameters(batch_size, config, seed):
  """Draws per-sample augmentation parameters, a pure function of ``seed``.

  Args:
    batch_size: B, a Python int or scalar int tensor.
    config: AugmentConfig.
    seed: (2,) integer tensor or sequence.

  Returns:
    (theta, scale, translation_mm): (B,) rotation in radians, (B,) scale and
    (B, 3) translation in mm, all float32.

  The two backends draw different streams from the same seed. Under
  TensorFlow, ``jit_compile=True`` also has XLA generate its own Philox
  stream, so a seed gives other (equally deterministic) parameters there than
  in eager mode or a plain ``tf.function``; a run that keeps its backend and
  compile mode is reproducible.
  """
  if config.mode == "authors":
    return sample_authors_parameters(batch_size, config, seed)[1:]
  draws = _uniform_draws([batch_size, 5], seed)
  max_theta = math.radians(config.rotation_deg)
  theta = max_theta * (2.0 * draws[:, 0] - 1.0)
  low, high = config.scale_range
  scale = low + (high - low) * draws[:, 1]
  translation = config.translation_mm * (2.0 * draws[:, 2:] - 1.0)
  return theta, scale, translation


def sample_authors_parameters(batch_size, config, seed):
  """The authors' mode: one transform per sample (module docstring).

  Args:
    batch_size, config, seed: as for ``sample_parameters``.

  Returns:
    (transform, theta, scale, translation_mm): (B,) int32 index into
    ``AUTHORS_TRANSFORMS`` and the parameters as ``sample_parameters``
    gives them, identity (0, 1, 0) for the transforms not chosen.
  """
  draws = _uniform_draws([batch_size, 6], seed)
  transform = ops.minimum(ops.cast(ops.floor(4.0 * draws[:, 0]), "int32"), 3)
  max_theta = math.radians(config.rotation_deg)
  theta = max_theta * (2.0 * draws[:, 1] - 1.0)
  # Box–Muller: four standard normals from four uniforms in (0, 1].
  radius = ops.sqrt(-2.0 * ops.log(1.0 - draws[:, 2:4]))
  angle = 2.0 * math.pi * draws[:, 4:6]
  normals = ops.concatenate([radius * ops.cos(angle), radius * ops.sin(angle)],
                            axis=1)
  limit = config.translation_mm
  translation = ops.clip(limit * normals[:, :3], -limit, limit)
  low, high = config.scale_range
  cube_factor = ops.clip(ops.abs(1.0 + config.scale_sigma * normals[:, 3]),
                         low, high)
  chosen = [ops.equal(transform, k) for k in range(3)]
  translation = ops.where(chosen[0][:, None], translation, 0.0)
  theta = ops.where(chosen[1], theta, 0.0)
  scale = ops.where(chosen[2], 1.0 / cube_factor, 1.0)
  return transform, theta, scale, translation


def warp_nearest(images, inverse_affine, fill_value):
  """Nearest-neighbour affine warp, equal to ImageProjectiveTransformV3.

  XLA has no kernel for TensorFlow's ``ImageProjectiveTransformV3`` and
  ``keras.ops.image.affine_transform`` rounds differently per backend, so the
  sampling is written as a gather: output pixel (x, y) (column, row, integer
  centres) reads input pixel ``round(inverse_affine · [x, y, 1])``, rounding
  halves away from zero like the op's std::round, and gets ``fill_value``
  when that pixel lies outside the image.

  Args:
    images: (B, H, W, C) float32, H, W and C static.
    inverse_affine: (B, 2, 3) float32, output pixel → input pixel.
    fill_value: scalar for pixels sampled from outside the image.

  Returns:
    (B, H, W, C) float32.
  """
  batch = ops.shape(images)[0]
  height, width, channels = images.shape[1:]
  x = ops.arange(width, dtype="float32")[None, None, :]
  y = ops.arange(height, dtype="float32")[None, :, None]

  def coefficient(row, column):
    return inverse_affine[:, row, column, None, None]

  # Same operation order as the op, so the sampled pixels agree bit for bit.
  x_in = coefficient(0, 0) * x + coefficient(0, 1) * y + coefficient(0, 2)
  y_in = coefficient(1, 0) * x + coefficient(1, 1) * y + coefficient(1, 2)
  column = ops.cast(_round_half_away_from_zero(x_in), "int32")
  row = ops.cast(_round_half_away_from_zero(y_in), "int32")
  inside = (column >= 0) & (column < width) & (row >= 0) & (row < height)
  # Clamping keeps the gather in bounds; the outside reads are replaced below.
  index = ((ops.arange(batch, dtype="int32")[:, None, None] * height
            + ops.clip(row, 0, height - 1)) * width
           + ops.clip(column, 0, width - 1))
  warped = ops.take(ops.reshape(images, (-1, channels)), index, axis=0)
  return ops.where(inside[..., None], warped,
                   ops.cast(fill_value, warped.dtype))


def _round_half_away_from_zero(x):
  """std::round; ops.round would round halves to even."""
  magnitude = ops.abs(x)
  whole = ops.floor(magnitude)
  return ops.sign(x) * (whole + ops.cast(magnitude - whole >= 0.5, x.dtype))


def transform_batch(depth, joints_uvz, cube, theta, scale, translation_mm,
                    *, move_depths=True):
  """Applies given rotations, scales and translations to a batch.

  θ = 0, s = 1, t = 0 returns the inputs bit for bit: the joints are moved
  by ``(s R - I)(uv - 0.5)``, which is exactly zero then, instead of being
  recentred, which would round.

  Args:
    depth: (B, S, S, 1) normalized depth crops (hand in [-1, 1], background
      exactly 1); any float dtype, S static.
    joints_uvz: (B, J, 3) normalized UVZ.
    cube: (B, 3) cube edges in mm.
    theta: (B,) in-plane rotation in radians (θ > 0 is clockwise on screen).
    scale: (B,) 3D scale about the hand centre.
    translation_mm: (B, 3) translation in mm.
    move_depths: give the hand pixels d' = s d + t_z / (cube_z / 2) (this
      project's augmentation), or keep the warped depths as they are (the
      authors').

  Returns:
    (depth', joints_uvz'): (B, S, S, 1) and (B, J, 3) float32.
  """
  depth, joints_uvz, cube, theta, scale, translation_mm = (
      ops.cast(x, "float32")
      for x in (depth, joints_uvz, cube, theta, scale, translation_mm))
  size = depth.shape[1]
  if size is None or depth.shape[2] != size:
    raise ValueError(f"depth must be (B, S, S, 1) with static S, got "
                     f"{depth.shape}")

  cos, sin = ops.cos(theta), ops.sin(theta)
  # uv per mm is 1/cube_xy; z per mm is 2/cube_z.
  shift_uv = translation_mm[:, :2] / cube[:, :2]
  shift_z = translation_mm[:, 2] / (cube[:, 2] / 2.0)

  # Joints: uv' = uv + (s R - I)(uv - 0.5) + shift.
  s_cos_m1 = (scale * cos - 1.0)[:, None]
  s_sin = (scale * sin)[:, None]
  centred_u = joints_uvz[..., 0] - 0.5
  centred_v = joints_uvz[..., 1] - 0.5
  u = joints_uvz[..., 0] + (s_cos_m1 * centred_u - s_sin * centred_v
                            + shift_uv[:, 0:1])
  v = joints_uvz[..., 1] + (s_sin * centred_u + s_cos_m1 * centred_v
                            + shift_uv[:, 1:2])
  z = scale[:, None] * joints_uvz[..., 2] + shift_z[:, None]
  joints_out = ops.stack([u, v, z], axis=-1)

  # Crop pixels p = uv S - 0.5 map as p' = s R (p - c) + c + shift S with
  # c = (S - 1)/2; the warp needs the inverse, output pixel → input pixel:
  # p = R(-θ)/s (p' - c - shift S) + c.
  centre = (size - 1) / 2.0
  a, b = cos / scale, sin / scale
  origin_x = centre + shift_uv[:, 0] * size
  origin_y = centre + shift_uv[:, 1] * size
  inverse = ops.reshape(ops.stack([
      a, b, centre - a * origin_x - b * origin_y,
      -b, a, centre + b * origin_x - a * origin_y], axis=-1), (-1, 2, 3))
  warped = warp_nearest(depth, inverse, 1.0)
  if not move_depths:
    return warped, joints_out

  moved = scale[:, None, None, None] * warped + shift_z[:, None, None, None]
  keep = (warped < 1.0) & (ops.abs(moved) <= 1.0)
  depth_out = ops.where(keep, moved, ops.ones_like(moved))
  return depth_out, joints_out


def augment_batch(depth, joints_uvz, cube, config, seed):
  """Random rotation, 3D scale and 3D translation of a batch of crops.

  All three for every sample (``config.mode`` "all"), or one of them per
  sample with the depths left as they are ("authors").

  Args:
    depth: (B, S, S, 1) normalized depth crops; any float dtype.
    joints_uvz: (B, J, 3) normalized UVZ.
    cube: (B, 3) cube edges in mm.
    config: AugmentConfig.
    seed: (2,) integer tensor; the same seed gives the same augmentation
      (the parameters are ``sample_parameters(B, config, seed)``).

  Returns:
    (depth', joints_uvz'): (B, S, S, 1) and (B, J, 3) float32.
  """
  theta, scale, translation = sample_parameters(
      ops.shape(depth)[0], config, seed)
  return transform_batch(depth, joints_uvz, cube, theta, scale, translation,
                         move_depths=config.mode == "all")
