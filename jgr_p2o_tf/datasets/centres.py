"""Hand centres: the point each 3D cube crop is centred on.

Three sources:
  * precomputed centre files in the format of V2V-PoseNet (Moon et al. 2018),
    one line per frame, ``x y z`` in mm or the word ``invalid``
    (``load_centre_file``);
  * the depth image alone (``compute_centre``): the centre of mass of the
    nearest surface, refined as in DeepPrior++ (Oberweger & Lepetit 2017);
  * the annotation (``ground_truth_centre``), for training on synthetic data.
"""

import math

import numpy as np

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf.datasets import frame as frame_lib

# Rows and columns of a frame the exported graph's rough centre reads: every
# 4th (a 640×480 frame's centre then costs ~1/16 of all pixels'), in
# NumPy and in the graph alike (``compute_centre``'s pixel_stride).
GRAPH_PIXEL_STRIDE = 4
# Depth range behind the nearest pixel taken as the hand at first: about a
# hand's length, so the forearm and the body behind it fall outside.
NEAR_RANGE_MM = 150.0

def load_centre_file(path, num_frames=None, *, v2v_dataset=None):
  """Reads a centre file, one line per frame: ``x y z`` (mm) or ``invalid``.

  Args:
    path: the centre file.
    num_frames: if given, the number of lines the file must have.
    v2v_dataset: None if the file is in our camera convention; the dataset
      name ("nyu", "icvl", "msra") if it is one of V2V-PoseNet's precomputed
      files, whose axes are then turned into ours (the profile's
      ``v2v_axis_signs``, see ``dataset_profiles``).

  Returns:
    A list with a (3,) float32 xyz centre per frame, or None where the file
    says ``invalid``.

  Raises:
    DatasetError: missing file, a malformed line or the wrong line count.
  """
  axis_signs = {p.name: p.v2v_axis_signs
                for p in dataset_profiles.PROFILES.values()
                if p.v2v_axis_signs is not None}
  if v2v_dataset is None:
    signs = np.ones(3, np.float32)
  elif v2v_dataset in axis_signs:
    signs = np.array(axis_signs[v2v_dataset], np.float32)
  else:
    raise ValueError(f"v2v_dataset must be None or one of "
                     f"{sorted(axis_signs)}, got {v2v_dataset!r}")
  try:
    with open(path, encoding="utf-8") as f:
      lines = f.read().splitlines()
  except FileNotFoundError:
    raise frame_lib.DatasetError(
        "missing centre file, expected lines 'x y z' or 'invalid'", path=path,
        frame="all") from None
  except (OSError, UnicodeDecodeError) as e:
    raise frame_lib.DatasetError(f"cannot read centre file ({e})", path=path,
                                 frame="all") from None
  # An editor's final newline is not a frame.
  while lines and not lines[-1].strip():
    lines.pop()
  if num_frames is not None and len(lines) != num_frames:
    raise frame_lib.DatasetError(
        f"{len(lines)} lines, expected one per frame: {num_frames}",
        path=path, frame="all")
  centres = []
  for index, line in enumerate(lines):
    tokens = line.split()
    if tokens == ["invalid"]:
      centres.append(None)
      continue
    try:
      values = [float(t) for t in tokens]
    except ValueError:
      values = []
    if len(values) != 3 or not all(map(math.isfinite, values)):
      raise frame_lib.DatasetError(
          f"line {index + 1} is {line!r}, expected three numbers 'x y z' or "
          "'invalid'", path=path, frame=index)
    centres.append(np.array(values, np.float32) * signs)
  return centres


def compute_centre(depth_mm, camera, *, near_range_mm=NEAR_RANGE_MM,
                   cube_mm=dataset_profiles.ICVL.cube_mm, max_iterations=10,
                   tolerance_mm=1.0, pixel_stride=1, frame_id=None):
  """The hand centre of a depth frame, taking the hand as the nearest object.

  First the 3D centre of mass of the pixels within ``near_range_mm`` of the
  nearest depth; then, as in DeepPrior++, repeatedly the centre of mass of
  the pixels inside the cube around the current centre, until it moves less
  than ``tolerance_mm``.

  Args:
    depth_mm: (H, W) depth in mm, 0 where there is none.
    camera: the frame's Camera.
    near_range_mm: depth range behind the nearest pixel of the first guess.
    cube_mm: scalar or (3,) cube edges in mm of the refinement.
    max_iterations: most refinement steps.
    tolerance_mm: the refinement stops once a step is shorter.
    pixel_stride: use every pixel_stride-th row and column only (the
      exported graph uses ``GRAPH_PIXEL_STRIDE``: its centre moves by ~1
      mm, its cost falls by the stride squared).
    frame_id: named in the error.

  Returns:
    (3,) float32 xyz centre in mm.

  Raises:
    DatasetError: the frame has no depth pixels.
  """
  depth = np.asarray(depth_mm, np.float32)[::pixel_stride, ::pixel_stride]
  v, u = np.nonzero((depth > 0) & np.isfinite(depth))
  if not v.size:
    raise frame_lib.DatasetError("no depth pixels to find a hand in",
                                 frame=frame_id)
  d = depth[v, u]
  points = geometry.uvd_to_xyz(
      np.stack([u * pixel_stride, v * pixel_stride, d],
               axis=-1).astype(np.float64), camera)
  # One contiguous row per axis: the cube test below is then three
  # elementwise passes, not a reduction over a length-3 axis (51 → 18 ms on
  # a 640×480 frame of depth everywhere; the same centres).
  axes = np.ascontiguousarray(points.T)
  centre = axes[:, d <= d.min() + near_range_mm].mean(axis=1)
  half_cube = geometry.cube_vector(cube_mm).astype(np.float64) / 2.0
  for _ in range(max_iterations):
    inside = np.abs(axes[0] - centre[0]) <= half_cube[0]
    for axis in (1, 2):
      inside &= np.abs(axes[axis] - centre[axis]) <= half_cube[axis]
    if not inside.any():
      break
    refined = axes[:, inside].mean(axis=1)
    step = np.linalg.norm(refined - centre)
    centre = refined
    if step < tolerance_mm:
      break
  return centre.astype(np.float32)


def ground_truth_centre(joints_xyz):
  """(3,) float32 centre of the bounding box of (J, 3) joints."""
  joints = np.asarray(joints_xyz, np.float32)
  return ((joints.min(axis=0) + joints.max(axis=0)) / 2.0).astype(np.float32)


def centre_in_frame(centre_xyz, camera):
  """Whether a centre lies in front of the camera and projects into the image.

  Args:
    centre_xyz: (3,) centre in mm.
    camera: Camera.
  """
  centre = np.asarray(centre_xyz, np.float64)
  if centre.shape != (3,) or not np.all(np.isfinite(centre)):
    return False
  if centre[2] <= 0:
    return False
  u, v, _ = geometry.xyz_to_uvd(centre, camera)
  return bool(0 <= u <= camera.width - 1 and 0 <= v <= camera.height - 1)


def compute_centre_in_graph(depth_mm, intrinsics, *,
                            near_range_mm=NEAR_RANGE_MM,
                            cube_mm=dataset_profiles.ICVL.cube_mm,
                            max_iterations=10, tolerance_mm=1.0,
                            pixel_stride=GRAPH_PIXEL_STRIDE):
  """``compute_centre`` for a batch inside a TensorFlow graph (exported model).

  The same steps on every frame of the batch at once: the refinement runs
  ``max_iterations`` steps and a frame's centre stops moving at the step
  where ``compute_centre`` would have stopped (a step under
  ``tolerance_mm``, or no pixel in the cube); the loop ends when no frame's
  centre moves any more.

  Args:
    depth_mm: (B, H, W) float32 depth in mm, 0 where there is none.
    intrinsics: (B, 4) float32 fx, fy, cx, cy.
    near_range_mm, cube_mm, max_iterations, tolerance_mm, pixel_stride: as
      for ``compute_centre``.

  Returns:
    (centre_xyz (B, 3) float32, found (B,) bool): found is False for a frame
    without depth pixels, whose centre is then 0.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  depth = tf.convert_to_tensor(depth_mm, tf.float32)[:, ::pixel_stride,
                                                     ::pixel_stride]
  shape = tf.shape(depth)
  v, u = tf.meshgrid(tf.range(shape[1], dtype=tf.float32) * pixel_stride,
                     tf.range(shape[2], dtype=tf.float32) * pixel_stride,
                     indexing="ij")
  u = tf.broadcast_to(u, shape)
  v = tf.broadcast_to(v, shape)
  valid = (depth > 0) & tf.math.is_finite(depth)
  points = geometry.uvd_to_xyz(tf.stack([u, v, depth], axis=-1),
                               intrinsics[:, None, None, :])
  points = tf.where(valid[..., None], points, tf.zeros_like(points))
  nearest = tf.reduce_min(tf.where(valid, depth, tf.fill(shape, float("inf"))),
                          axis=[1, 2])

  def mean_of(mask):
    weight = tf.cast(mask, tf.float32)[..., None]
    count = tf.reduce_sum(weight, axis=[1, 2])
    total = tf.reduce_sum(points * weight, axis=[1, 2])
    return total / tf.maximum(count, 1.0), count[:, 0] > 0

  centre, found = mean_of(valid & (depth <= nearest[:, None, None] +
                                   near_range_mm))
  half_cube = tf.constant(geometry.cube_vector(cube_mm) / 2.0, tf.float32)

  def refine(iteration, centre, moving):
    inside = valid & tf.reduce_all(
        tf.abs(points - centre[:, None, None, :]) <= half_cube, axis=-1)
    refined, any_inside = mean_of(inside)
    moving &= any_inside
    step = tf.norm(refined - centre, axis=-1)
    centre = tf.where(moving[:, None], refined, centre)
    return iteration + 1, centre, moving & (step >= tolerance_mm)

  _, centre, _ = tf.while_loop(
      lambda iteration, _, moving: (iteration < max_iterations) &
      tf.reduce_any(moving), refine, (tf.constant(0), centre, found))
  return centre, found
