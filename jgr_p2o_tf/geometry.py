"""Camera geometry, 3D-cube hand crops and coordinate normalization.

Every projection, crop and normalization in the project goes through this
module (see ARCHITECTURE.md, "Conventions"). The point functions accept NumPy
arrays (data preparation, evaluation) or backend tensors (augmentation, the
exported serving graph) and dispatch to ``numpy`` or ``keras.ops``.

Coordinates:
  * uvd: full-frame pixel column and row (integer pixel centres) and depth mm.
  * xyz: camera space in mm, ``x = (u - cx) d / fx``, ``y = (v - cy) d / fy``,
    ``z = d``.
  * normalized UVZ: ``uv = (M [u, v, 1] + 0.5) / S`` in [0, 1] of the S×S crop
    and ``z = (d - zc) / (cube_z / 2)`` in [-1, 1], where M is the 2×3 crop
    affine and zc the depth of the hand centre.

Coordinate conventions (``COORDINATE_CONVENTIONS``): how a pixel index p of
an n-pixel axis becomes a normalized coordinate, on the crop (the joints'
uv) and on the network's output grid (its cells' uv, ``layers/output_grid``).
  * "project" (this project's, the default): ``(p + 0.5) / n``, 0 and 1 are
    the outer edges of the first and last pixels;
  * "authors" (the TensorFlow 1 code of Fang et al., which trained the
    released models): ``p / (n - 1)``, 0 and 1 are the centres of the first
    and last pixels (crop pixel 95·u, output cell j at j/23).
A model computes in its own convention; records, metrics, figures and the
exported signatures use the project's, and ``convert_uvz`` goes between them.
"""

import dataclasses

import numpy as np

CROP_SIZE = 96
COORDINATE_CONVENTIONS = ("project", "authors")
# How a hand crop is cut (``crop_depth``, ``crop_depth_authors``).
CROP_METHODS = ("project", "authors")
# The depths DeepPrior's hand detector, which the authors' importers crop
# with, keeps: anything nearer or farther counts as no depth.
AUTHORS_DEPTH_RANGE_MM = (10.0, 1500.0)


@dataclasses.dataclass(frozen=True)
class Camera:
  """Pinhole intrinsics in pixels and the image size.

  Each dataset's camera is defined by its reader (``datasets/``) and found
  by the dataset's name in ``dataset_profiles``.
  """
  fx: float
  fy: float
  cx: float
  cy: float
  width: int
  height: int

  @property
  def intrinsics(self):
    """(4,) float32 array (fx, fy, cx, cy), the form the graph functions take."""
    return np.array([self.fx, self.fy, self.cx, self.cy], np.float32)


def cube_vector(cube_mm):
  """A scalar cube edge or (3,) edges → (3,) float32 edges in mm."""
  cube = np.broadcast_to(np.asarray(cube_mm, np.float32), (3,))
  if np.any(cube <= 0):
    raise ValueError(f"cube edges must be positive, got {cube_mm!r}")
  return cube.copy()


def _ops(*arrays):
  """numpy for NumPy inputs, keras.ops for backend tensors."""
  if all(isinstance(a, (np.ndarray, np.generic, float, int, list, tuple))
         for a in arrays):
    return np
  import keras  # pylint: disable=g-import-not-at-top
  return keras.ops


def _split_intrinsics(camera):
  """Camera or (..., 4) intrinsics → fx, fy, cx, cy broadcastable to (...)."""
  if isinstance(camera, Camera):
    return camera.fx, camera.fy, camera.cx, camera.cy
  return camera[..., 0], camera[..., 1], camera[..., 2], camera[..., 3]


def uvd_to_xyz(uvd, camera):
  """(..., 3) uvd → (..., 3) xyz mm. ``camera``: Camera or (..., 4) intrinsics."""
  ops = _ops(uvd)
  fx, fy, cx, cy = _split_intrinsics(camera)
  u, v, d = uvd[..., 0], uvd[..., 1], uvd[..., 2]
  return ops.stack([(u - cx) * d / fx, (v - cy) * d / fy, d], axis=-1)


def xyz_to_uvd(xyz, camera):
  """(..., 3) xyz mm → (..., 3) uvd. ``camera``: Camera or (..., 4) intrinsics."""
  ops = _ops(xyz)
  fx, fy, cx, cy = _split_intrinsics(camera)
  x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
  return ops.stack([x * fx / z + cx, y * fy / z + cy, z], axis=-1)


def crop_affine(centre_uvd, cube_mm, camera, crop_size=CROP_SIZE):
  """The 2×3 affine M mapping full-frame pixels to crop pixels.

  The square of side cube_x × cube_y mm at the centre's depth, centred on it,
  fills the crop exactly: its edges land on the crop's outer pixel edges.

  Args:
    centre_uvd: (..., 3) hand centre in uvd.
    cube_mm: (3,) cube edges in mm (see ``cube_vector``) or (..., 3).
    camera: Camera or (..., 4) intrinsics.
    crop_size: S, the crop's side in pixels.

  Returns:
    (..., 2, 3) affine.
  """
  ops = _ops(centre_uvd, cube_mm)
  fx, fy, _, _ = _split_intrinsics(camera)
  u_c, v_c, z_c = centre_uvd[..., 0], centre_uvd[..., 1], centre_uvd[..., 2]
  s_u = crop_size * z_c / (cube_mm[..., 0] * ops.abs(fx))
  s_v = crop_size * z_c / (cube_mm[..., 1] * ops.abs(fy))
  half = crop_size / 2.0 - 0.5
  zero = ops.zeros_like(s_u)
  row_u = ops.stack([s_u, zero, half - s_u * u_c], axis=-1)
  row_v = ops.stack([zero, s_v, half - s_v * v_c], axis=-1)
  return ops.stack([row_u, row_v], axis=-2)


def invert_affine(affine):
  """Inverse of a (..., 2, 3) affine, as a (..., 2, 3) affine."""
  ops = _ops(affine)
  a, b, c = affine[..., 0, 0], affine[..., 0, 1], affine[..., 0, 2]
  d, e, f = affine[..., 1, 0], affine[..., 1, 1], affine[..., 1, 2]
  det = a * e - b * d
  ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
  row0 = ops.stack([ia, ib, -(ia * c + ib * f)], axis=-1)
  row1 = ops.stack([id_, ie, -(id_ * c + ie * f)], axis=-1)
  return ops.stack([row0, row1], axis=-2)


def apply_affine(affine, uv):
  """Applies (..., 2, 3) affines to (..., J, 2) points."""
  ops = _ops(affine, uv)
  linear = affine[..., :2]
  offset = affine[..., 2]
  # A matrix product rather than an einsum with "...": tf2onnx's einsum
  # optimizer cannot read ellipses (the ONNX export converts this graph).
  return ops.matmul(uv, ops.swapaxes(linear, -1, -2)) + offset[..., None, :]


def check_convention(convention):
  """Raises ValueError unless ``convention`` is one of COORDINATE_CONVENTIONS."""
  if convention not in COORDINATE_CONVENTIONS:
    raise ValueError(f"Unknown coordinate convention {convention!r}; expected "
                     f"one of {list(COORDINATE_CONVENTIONS)}.")
  return convention


def pixel_to_normalized(pixels, size, convention="project"):
  """Pixel coordinates along an axis of ``size`` pixels → normalized.

  "project": ``(p + 0.5) / size``; "authors": ``p / (size - 1)`` (see the
  module docstring). Works on NumPy arrays and backend tensors.
  """
  if check_convention(convention) == "authors":
    return pixels / (size - 1.0)
  return (pixels + 0.5) / size


def normalized_to_pixel(normalized, size, convention="project"):
  """Inverse of ``pixel_to_normalized``."""
  if check_convention(convention) == "authors":
    return normalized * (size - 1.0)
  return normalized * size - 0.5


def convert_uvz(uvz, crop_size, source, target="project"):
  """(..., 3) normalized UVZ of an S×S crop from one convention to another.

  Only u and v change (through the crop pixel they denote); z is the same
  in both conventions.
  """
  if check_convention(source) == check_convention(target):
    return uvz
  ops = _ops(uvz)
  uv = pixel_to_normalized(
      normalized_to_pixel(uvz[..., :2], crop_size, source), crop_size, target)
  return ops.concatenate([uv, uvz[..., 2:]], axis=-1)


def uvd_to_normalized(uvd, affine, centre_z, cube_mm, crop_size=CROP_SIZE,
                      convention="project"):
  """(..., J, 3) full-frame uvd → normalized UVZ of the crop.

  Args:
    uvd: (..., J, 3) joints.
    affine: (..., 2, 3) crop affine from ``crop_affine``.
    centre_z: (...) depth of the hand centre in mm.
    cube_mm: (3,) or (..., 3) cube edges in mm.
    crop_size: S.
    convention: one of ``COORDINATE_CONVENTIONS``.
  """
  ops = _ops(uvd, affine)
  uv = pixel_to_normalized(apply_affine(affine, uvd[..., :2]), crop_size,
                           convention)
  z = (uvd[..., 2] - ops.expand_dims(centre_z, -1)) / (cube_mm[..., 2:3] / 2.0)
  return ops.concatenate([uv, z[..., None]], axis=-1)


def normalized_to_uvd(uvz, affine, centre_z, cube_mm, crop_size=CROP_SIZE,
                      convention="project"):
  """Inverse of ``uvd_to_normalized``: normalized UVZ → full-frame uvd."""
  ops = _ops(uvz, affine)
  uv = apply_affine(invert_affine(affine),
                    normalized_to_pixel(uvz[..., :2], crop_size, convention))
  d = uvz[..., 2] * (cube_mm[..., 2:3] / 2.0) + ops.expand_dims(centre_z, -1)
  return ops.concatenate([uv, d[..., None]], axis=-1)


def normalized_to_xyz(uvz, affine, centre_z, cube_mm, camera,
                      crop_size=CROP_SIZE, convention="project"):
  """Normalized UVZ → full-frame xyz in mm."""
  return uvd_to_xyz(
      normalized_to_uvd(uvz, affine, centre_z, cube_mm, crop_size,
                        convention), camera)


def normalize_depth(depth_mm, centre_z, cube_z):
  """Depth in mm → [-1, 1] about the centre; holes and outside the cube → 1.

  Args:
    depth_mm: (..., H, W) or (..., H, W, 1) depth, 0 where there is none.
    centre_z: depth of the hand centre, broadcastable to depth_mm.
    cube_z: depth extent of the cube in mm, broadcastable.
  """
  ops = _ops(depth_mm, centre_z)
  normalized = (depth_mm - centre_z) / (cube_z / 2.0)
  inside = (depth_mm > 0) & (ops.abs(normalized) <= 1.0)
  return ops.where(inside, normalized, ops.ones_like(normalized))


def crop_depth(depth_mm, centre_xyz, cube_mm, camera, crop_size=CROP_SIZE):
  """Crops the hand cube out of one full depth frame (NumPy, OpenCV).

  Args:
    depth_mm: (H, W) float32 depth in mm, 0 for holes.
    centre_xyz: (3,) hand centre in mm.
    cube_mm: scalar or (3,) cube edges in mm.
    camera: Camera.
    crop_size: S.

  Returns:
    (crop, affine): (S, S) float32 normalized depth and the (2, 3) float32
    affine from full-frame to crop pixels.
  """
  import cv2  # pylint: disable=g-import-not-at-top
  cube = cube_vector(cube_mm)
  centre_xyz = np.asarray(centre_xyz, np.float32)
  centre_uvd = xyz_to_uvd(centre_xyz, camera)
  affine = crop_affine(centre_uvd, cube, camera, crop_size).astype(np.float32)
  # Nearest neighbour: interpolating would invent depths between the hand and
  # the background at its silhouette.
  crop = cv2.warpAffine(
      np.ascontiguousarray(depth_mm, np.float32), affine.astype(np.float64),
      (crop_size, crop_size), flags=cv2.INTER_NEAREST,
      borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
  return normalize_depth(crop, centre_xyz[2], cube[2]).astype(np.float32), affine


def crop_depth_authors(depth_mm, centre_xyz, cube_mm, camera,
                       crop_size=CROP_SIZE):
  """The crop of the authors' code: DeepPrior++'s, cut at whole pixels.

  What Fang et al.'s importers do to a frame (their ``util/handdetector.py``
  and ``util/preprocess.py``), as opposed to ``crop_depth``'s continuous
  warp:

  1. depths outside ``AUTHORS_DEPTH_RANGE_MM`` count as no depth (0);
  2. the cube's square at the centre's depth is projected to a window of
     whole pixels, each edge rounded to the nearest integer:
     ``x0 = floor(u - fx cube_x / (2 d) + 0.5)``, ``x1`` likewise with
     ``+``, rows with |fy| and cube_y; pixels beyond the frame are no depth;
  3. inside the window, depths nearer than the cube's front face are set to
     it and depths beyond its back face to no depth;
  4. the window is resized with OpenCV's nearest neighbour (output pixel i
     reads window pixel ``floor(i · w / w')``) to S pixels along its longer
     side, the other side ``int(S · shorter / longer)``, and pasted at
     ``floor(S/2 - size/2)`` into an S×S crop of no depth;
  5. depths are normalized as ``(d - zc) / (cube_z / 2)``, no depth
     becoming 1: the hand lies in [-1, 1], anything nearer than the cube is
     -1 and anything farther, or missing, is 1.

  The affine maps a full-frame pixel p to ``s (p - p0) + offset`` with
  ``s = S / max(w, h)``, the map their joints go through. (At training time
  their code also turns the crop's farthest depth into background:
  ``train_step``'s ``farthest_depth_to_background``.)

  Args:
    depth_mm: (H, W) depth in mm, 0 for holes.
    centre_xyz: (3,) hand centre in mm (in front of the camera).
    cube_mm: scalar or (3,) cube edges in mm.
    camera: Camera.
    crop_size: S.

  Returns:
    (crop, affine): (S, S) float32 normalized depth and the (2, 3) float32
    affine from full-frame to crop pixels.
  """
  import cv2  # pylint: disable=g-import-not-at-top
  cube = cube_vector(cube_mm).astype(np.float64)
  u, v, d = xyz_to_uvd(np.asarray(centre_xyz, np.float64), camera)
  half_u = cube[0] / 2.0 * abs(camera.fx) / d
  half_v = cube[1] / 2.0 * abs(camera.fy) / d
  x0, x1 = (int(np.floor(u + sign * half_u + 0.5)) for sign in (-1, 1))
  y0, y1 = (int(np.floor(v + sign * half_v + 0.5)) for sign in (-1, 1))
  depth = np.asarray(depth_mm, np.float32)
  near_limit, far_limit = AUTHORS_DEPTH_RANGE_MM
  depth = np.where((depth < near_limit) | (depth > far_limit), 0.0, depth)
  height, width = depth.shape
  window = np.zeros((y1 - y0, x1 - x0), np.float32)
  rows = slice(max(y0, 0), min(y1, height))
  columns = slice(max(x0, 0), min(x1, width))
  window[rows.start - y0:rows.stop - y0, columns.start - x0:
         columns.stop - x0] = depth[rows, columns]
  front, back = d - cube[2] / 2.0, d + cube[2] / 2.0
  window[(window > 0) & (window < front)] = front
  window[window > back] = 0.0
  longer = max(x1 - x0, y1 - y0)
  resized_w = crop_size * (x1 - x0) // longer
  resized_h = crop_size * (y1 - y0) // longer
  resized = cv2.resize(window, (resized_w, resized_h),
                       interpolation=cv2.INTER_NEAREST)
  off_x = int(np.floor(crop_size / 2.0 - resized_w / 2.0))
  off_y = int(np.floor(crop_size / 2.0 - resized_h / 2.0))
  crop_mm = np.zeros((crop_size, crop_size), np.float32)
  crop_mm[off_y:off_y + resized_h, off_x:off_x + resized_w] = resized
  crop = np.where(crop_mm > 0, (crop_mm - d) / (cube[2] / 2.0), 1.0)
  s = crop_size / longer
  affine = np.array([[s, 0.0, off_x - s * x0], [0.0, s, off_y - s * y0]])
  return crop.astype(np.float32), affine.astype(np.float32)


def crop_depth_in_graph(depth_mm, affine, centre_z, cube_z,
                        crop_size=CROP_SIZE):
  """``crop_depth`` for a batch inside a TensorFlow graph (exported model).

  Args:
    depth_mm: (B, H, W, 1) float32 depth frames in mm.
    affine: (B, 2, 3) crop affines (full frame → crop pixels).
    centre_z: (B,) centre depths in mm.
    cube_z: (B,) cube depth extents in mm.
    crop_size: S.

  Returns:
    (B, S, S, 1) float32 normalized crops, identical to ``crop_depth``
    except where a sample position falls on a rounding tie (OpenCV rounds in
    1/1024-pixel fixed point, TensorFlow in float32; both are nearest
    neighbours).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  inverse = invert_affine(affine)
  batch = tf.shape(depth_mm)[0]
  transforms = tf.concat(
      [tf.reshape(inverse, [batch, 6]), tf.zeros([batch, 2], tf.float32)],
      axis=1)
  crop = tf.raw_ops.ImageProjectiveTransformV3(
      images=depth_mm, transforms=transforms,
      output_shape=tf.constant([crop_size, crop_size], tf.int32),
      fill_value=tf.constant(0.0, tf.float32), interpolation="NEAREST",
      fill_mode="CONSTANT")
  return normalize_depth(crop, centre_z[:, None, None, None],
                         cube_z[:, None, None, None])


def crop_depth_by_gather(depth_mm, affine, centre_z, cube_z, crop_size):
  """``crop_depth_in_graph`` in ops that XLA compiles (gathers).

  ``ImageProjectiveTransformV3`` has no XLA kernel; this picks the same
  pixels as its nearest-neighbour mode: each crop pixel's position in the
  frame under the inverse affine, computed in the same order in float32,
  rounded half away from zero as that kernel rounds, and 0 outside the
  frame. The exported graph's hand finding (``exporter.find_hand``) crops
  with it, so that its steps compile into one XLA computation. Arguments
  and result as for ``crop_depth_in_graph``.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  inverse = invert_affine(affine)[:, :, None, None, :]  # (B, 2, 1, 1, 3)
  pixels = tf.range(crop_size, dtype=tf.float32)
  rows, columns = tf.meshgrid(pixels, pixels, indexing="ij")
  position = (inverse[..., 0] * columns + inverse[..., 1] * rows +
              inverse[..., 2])  # (B, 2, S, S): frame x, y
  index = tf.cast(tf.sign(position) * tf.floor(tf.abs(position) + 0.5),
                  tf.int32)
  height, width = tf.shape(depth_mm)[1], tf.shape(depth_mm)[2]
  x, y = index[:, 0], index[:, 1]
  inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
  picked = tf.gather_nd(
      depth_mm[..., 0],
      tf.stack([tf.clip_by_value(y, 0, height - 1),
                tf.clip_by_value(x, 0, width - 1)], axis=-1), batch_dims=1)
  crop = tf.where(inside, picked, tf.zeros_like(picked))[..., None]
  return normalize_depth(crop, centre_z[:, None, None, None],
                         cube_z[:, None, None, None])


def refiner_cube(pose_cube_mm, factor):
  """(3,) float32 refiner cube edges: ``factor`` times the pose cube's.

  A centre refiner's crop (``centre_refiner``) is the pose crop's geometry
  with its own cube and image size (``records_manifest.RefinerCrops``).
  """
  return cube_vector(pose_cube_mm) * np.float32(factor)


def crop_axis_signs(intrinsics):
  """(..., 3) signs turning camera axes into the crop's (u right, v down, z).

  A crop is cut with ``|fx|`` and ``|fy|`` (``crop_affine``): its u
  axis points along x times the sign of fx, its v axis along y times the
  sign of fy (NYU's fy is negative). The refiner sees and predicts offsets in
  the crop's axes. ``intrinsics``: (..., 4) NumPy array or backend tensor.
  """
  ops = _ops(intrinsics)
  signs = ops.sign(intrinsics[..., :2])
  return ops.concatenate([signs, ops.ones_like(signs[..., :1])], axis=-1)


def normalized_offset(rough_xyz, target_xyz, cube_mm, intrinsics):
  """(..., 3) training target: ``(target − rough) / (cube/2)``, crop axes."""
  intrinsics = np.asarray(intrinsics, np.float32)
  return ((np.asarray(target_xyz, np.float32) -
           np.asarray(rough_xyz, np.float32)) /
          (cube_vector(cube_mm) / 2.0) * crop_axis_signs(intrinsics))


def apply_offset(rough_xyz, offset, cube_mm, intrinsics):
  """Inverse of ``normalized_offset``: the refined (..., 3) centre in mm.

  Works on NumPy arrays and backend tensors (the exported graph).
  """
  return rough_xyz + offset * crop_axis_signs(intrinsics) * (
      np.asarray(cube_mm, np.float32) / 2.0)


def refiner_crop(depth_mm, centre_xyz, cube_mm, camera, crop_size):
  """(S, S, 1) float32 refiner input around ``centre_xyz`` (NumPy)."""
  crop, _ = crop_depth(depth_mm, centre_xyz, cube_mm, camera, crop_size)
  return crop[..., None]
