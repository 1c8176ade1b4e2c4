"""One synthetic frame: a random hand in a random pose and place, rendered.

Frame ``index`` of seed ``seed`` draws everything from
``np.random.default_rng([seed, index])``, so a frame does not depend on the
frames before it or on how they are spread over worker processes.
"""

import dataclasses

import numpy as np

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import skeletons
from jgr_p2o_tf.synthetic import hand_model
from jgr_p2o_tf.synthetic import poses
from jgr_p2o_tf.synthetic import renderer

# The forearm is cut short where it would come closer to the camera than this
# (its far end is off the image then anyway).
_NEAREST_FOREARM_MM = 100.0
_PALM_JOINTS = [0, 5, 9, 13, 17]  # Wrist and finger MCPs.


@dataclasses.dataclass(frozen=True)
class FrameOptions:
  """How frames are made.

  Attributes:
    camera: geometry.Camera; a negative fy (NYU's y-up convention) only
      changes the sign of labels' y, the image is that of the physical camera.
    layout: joints that must project inside the image besides the 21 of the
      hand: the layout written out (its joints may be extrapolated).
    noise_mm: standard deviation of the depth noise.
    edge_dropout: chance a silhouette-edge pixel has no depth.
    background_plane: whether a plane (wall or table) lies behind the hand.
    depth_range: depth of the palm centre, mm.
    max_tilt_deg: largest out-of-plane tilt of the palm from facing the
      camera.
  """
  camera: geometry.Camera = dataset_profiles.SYNTHETIC.camera
  layout: str = "synthetic"
  noise_mm: float = 1.0
  edge_dropout: float = 0.3
  background_plane: bool = False
  depth_range: tuple = (250.0, 600.0)
  max_tilt_deg: float = 60.0


@dataclasses.dataclass(frozen=True)
class SyntheticFrame:
  """A rendered frame.

  Attributes:
    depth: (H, W) uint16 depth in mm, 0 for none.
    joints_xyz: (21, 3) joints of the synthetic hand in the physical camera
      frame (y down), mm.
    body: the hand_model.Body rendered, in the same frame.
  """
  depth: np.ndarray
  joints_xyz: np.ndarray
  body: hand_model.Body


def physical_camera(camera):
  """The camera with positive focal lengths: the one the image is taken by."""
  return dataclasses.replace(camera, fx=abs(camera.fx), fy=abs(camera.fy))


def sample_background(rng, body, max_tilt_deg=30.0):
  """A plane (normal, offset) behind every part of ``body``, facing the camera.

  Its normal is tilted up to ``max_tilt_deg`` from the view axis; it lies 20
  to 300 mm behind the body's furthest point along that normal.
  """
  rotation = (hand_model.rotation_z(rng.uniform(0.0, 360.0)) @
              hand_model.rotation_x(rng.uniform(0.0, max_tilt_deg)))
  normal = rotation @ np.array([0.0, 0.0, 1.0])
  ends = np.concatenate([body.capsule_start, body.capsule_end])
  radii = np.concatenate([body.capsule_radius, body.capsule_radius])
  furthest = np.max(ends @ normal + radii)
  return normal, furthest + rng.uniform(20.0, 300.0)


def _shorten_forearm(body):
  """The body with its forearm (last capsule) ending before the near limit."""
  start, end = body.capsule_start[-1], body.capsule_end[-1]
  radius = body.capsule_radius[-1]
  length = np.linalg.norm(end - start)
  direction = (end - start) / length
  if direction[2] < 0:
    reach = (start[2] - radius - _NEAREST_FOREARM_MM) / -direction[2]
    length = np.clip(reach, 0.0, length)
  ends = body.capsule_end.copy()
  ends[-1] = start + length * direction
  return dataclasses.replace(body, capsule_end=ends)


def sample_frame(rng, options):
  """A SyntheticFrame drawn from ``rng``."""
  camera = physical_camera(options.camera)
  shape = hand_model.sample_shape(rng)
  pose = poses.sample_pose(rng)
  hand = hand_model.body(shape, pose)
  rotation = poses.sample_rotation(rng, options.max_tilt_deg)
  pivot = hand.joints[_PALM_JOINTS].mean(axis=0)
  centred = hand.transformed(rotation, -rotation @ pivot)
  layout_matrix = skeletons.synthetic_to_layout(options.layout)
  must_show = np.concatenate([centred.joints, layout_matrix @ centred.joints])
  translation = poses.sample_translation(rng, must_show, camera,
                                         options.depth_range)
  placed = _shorten_forearm(centred.transformed(np.eye(3), translation))
  background = (sample_background(rng, placed)
                if options.background_plane else None)
  depth = renderer.render_depth(camera, placed, background)
  depth = renderer.apply_sensor_effects(depth, rng, options.noise_mm,
                                        options.edge_dropout)
  return SyntheticFrame(depth=depth, joints_xyz=placed.joints, body=placed)


def render_frame(seed, index, options):
  """Frame ``index`` of the dataset of ``seed``."""
  return sample_frame(np.random.default_rng([seed, index]), options)
