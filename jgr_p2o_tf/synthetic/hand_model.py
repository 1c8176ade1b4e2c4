"""An articulated right hand: bone lengths and radii, joint limits, kinematics.

The hand frame (mm) has its origin at the wrist, x radial (towards the thumb),
y distal (from the wrist towards the middle knuckle) and z palmar (the way the
palm faces); for a right hand this frame is right-handed. Joints follow
``skeletons.SYNTHETIC``: wrist; thumb CMC, MCP, IP, tip; then MCP, PIP, DIP
and tip of index, middle, ring and pinky.

The body the renderer draws is a union of capsules (one per phalanx, the
outline of the palm, the forearm) and the palm slab: the palm is the set of
points within ``palm_radius`` of a flat convex polygon through the wrist and
the four finger MCPs, which is exactly a prism plus capsules along the
polygon's edges.
"""

import dataclasses

import numpy as np

from jgr_p2o_tf import skeletons

DIGITS = ("thumb", "index", "middle", "ring", "pinky")
NUM_JOINTS = skeletons.SYNTHETIC.num_joints

# Base joint of each digit at rest (thumb CMC, finger MCPs), mm. The MCPs lie
# on the knuckle arch; the thumb CMC sits at the radial base of the palm, a
# little to its palmar side.
_BASE = np.array([[19.0, 22.0, 6.0],
                  [22.0, 86.0, 0.0],
                  [3.0, 90.0, 0.0],
                  [-15.0, 86.0, 0.0],
                  [-31.0, 76.0, 0.0]])
# Phalanx lengths (thumb: metacarpal, proximal, distal; fingers: proximal,
# middle, distal), mm; the distal one ends at the tip joint, the centre of the
# fingertip's sphere.
_LENGTHS = np.array([[46.0, 32.0, 26.0],
                     [40.0, 24.0, 19.0],
                     [45.0, 25.0, 20.0],
                     [42.0, 25.0, 19.0],
                     [33.0, 19.0, 17.0]])
# Capsule radii per phalanx, tapering towards the tip; the thumb metacarpal's
# is the thenar muscle around it.
_RADII = np.array([[12.0, 10.0, 8.5],
                   [9.5, 8.5, 7.5],
                   [10.0, 9.0, 7.5],
                   [9.5, 8.5, 7.0],
                   [8.5, 7.5, 6.5]])
# The palm polygon's wrist corners (radial, ulnar), mm.
_WRIST_CORNERS = np.array([[18.0, 0.0, 0.0], [-20.0, 0.0, 0.0]])
_PALM_RADIUS = 13.0  # Half the palm's thickness.
_FOREARM_RADIUS = 22.0
_FOREARM_LENGTH = 260.0
# The forearm capsule starts this far proximal of the wrist joint, so that its
# rounded end fills the wrist without bulging over the palm.
_FOREARM_GAP = 12.0
# Rest direction of each finger in the palm plane, degrees towards radial:
# fingers of a flat hand fan out slightly.
_FINGER_SPLAY = np.array([6.0, 0.0, -6.0, -12.0])
# Thumb metacarpal direction at rest and the way its pad faces (ulnar and
# palmar): flexion of the thumb turns it towards its pad, across the palm.
_THUMB_AXIS = np.array([0.62, 0.77, 0.15])
_THUMB_PAD = np.array([-0.9, 0.0, 0.45])
# The thumb's palmar abduction swings it about the palm's long (y) axis; the
# metacarpal rolls about its own axis meanwhile (pronation, here degree for
# degree), so that the pad keeps facing the fingers and flexion brings the
# thumb to them.
_THUMB_PRONATION = 1.0

# Joint-angle limits in degrees, (low, high). Flexion per digit and joint
# (thumb CMC, MCP, IP; fingers MCP, PIP, DIP): positive bends the digit
# towards its pad. Abduction at the digit's base: for the thumb, positive moves
# it away from the palm (palmar abduction); for fingers, positive is radial.
FLEXION_LIMITS = np.array([[[-20.0, 50.0], [-10.0, 70.0], [-20.0, 85.0]],
                           [[-25.0, 90.0], [-5.0, 110.0], [-10.0, 80.0]],
                           [[-25.0, 90.0], [-5.0, 110.0], [-10.0, 80.0]],
                           [[-25.0, 90.0], [-5.0, 110.0], [-10.0, 80.0]],
                           [[-25.0, 90.0], [-5.0, 110.0], [-10.0, 80.0]]])
ABDUCTION_LIMITS = np.array([[-15.0, 70.0], [-15.0, 20.0], [-12.0, 12.0],
                             [-15.0, 10.0], [-25.0, 10.0]])
# Wrist: flexion (palm towards the forearm's front) and radial deviation.
WRIST_LIMITS = np.array([[-60.0, 60.0], [-20.0, 30.0]])


@dataclasses.dataclass(frozen=True)
class HandShape:
  """One person's hand; constant under any pose.

  Attributes:
    base: (5, 3) base joint of each digit (thumb CMC, finger MCPs), mm.
    lengths: (5, 3) phalanx lengths, mm.
    radii: (5, 3) phalanx capsule radii, mm.
    wrist_corners: (2, 3) radial and ulnar wrist corners of the palm polygon.
    palm_radius: half the palm's thickness, mm.
    forearm_radius: mm.
    forearm_length: mm.
  """
  base: np.ndarray
  lengths: np.ndarray
  radii: np.ndarray
  wrist_corners: np.ndarray
  palm_radius: float
  forearm_radius: float
  forearm_length: float


@dataclasses.dataclass(frozen=True)
class HandPose:
  """Joint angles in degrees (see the limits above for the signs).

  Attributes:
    flexion: (5, 3) per digit and joint.
    abduction: (5,) at each digit's base.
    wrist: (2,) flexion and radial deviation of the hand against the forearm.
  """
  flexion: np.ndarray
  abduction: np.ndarray
  wrist: np.ndarray

  def clipped(self):
    """The pose with every angle clipped to its limits."""
    return HandPose(
        flexion=np.clip(self.flexion, FLEXION_LIMITS[..., 0],
                        FLEXION_LIMITS[..., 1]),
        abduction=np.clip(self.abduction, ABDUCTION_LIMITS[:, 0],
                          ABDUCTION_LIMITS[:, 1]),
        wrist=np.clip(self.wrist, WRIST_LIMITS[:, 0], WRIST_LIMITS[:, 1]))


@dataclasses.dataclass(frozen=True)
class Body:
  """The solid a pose of a hand occupies, and its joints, in one frame.

  Attributes:
    joints: (21, 3) joint positions.
    capsule_start, capsule_end: (K, 3) capsule axis end points.
    capsule_radius: (K,) radii.
    palm_polygon: (P, 3) convex, planar outline of the palm, in order.
    palm_radius: the palm slab's half thickness.
  """
  joints: np.ndarray
  capsule_start: np.ndarray
  capsule_end: np.ndarray
  capsule_radius: np.ndarray
  palm_polygon: np.ndarray
  palm_radius: float

  def transformed(self, rotation, translation):
    """The body moved rigidly: ``p → rotation @ p + translation``."""
    move = lambda p: p @ rotation.T + translation
    return dataclasses.replace(
        self, joints=move(self.joints), capsule_start=move(self.capsule_start),
        capsule_end=move(self.capsule_end),
        palm_polygon=move(self.palm_polygon))


def mean_shape():
  """The average adult hand."""
  return HandShape(base=_BASE.copy(), lengths=_LENGTHS.copy(),
                   radii=_RADII.copy(), wrist_corners=_WRIST_CORNERS.copy(),
                   palm_radius=_PALM_RADIUS, forearm_radius=_FOREARM_RADIUS,
                   forearm_length=_FOREARM_LENGTH)


def sample_shape(rng):
  """A random adult hand: overall scale ±10%, width ±6%, each bone ±4%."""
  scale = rng.uniform(0.9, 1.1)
  width = rng.uniform(0.94, 1.06)
  widen = np.array([width, 1.0, 1.0])
  return HandShape(
      base=_BASE * widen * scale,
      lengths=_LENGTHS * rng.uniform(0.96, 1.04, _LENGTHS.shape) * scale,
      radii=_RADII * width * scale,
      wrist_corners=_WRIST_CORNERS * widen * scale,
      palm_radius=_PALM_RADIUS * scale,
      forearm_radius=_FOREARM_RADIUS * width * scale,
      forearm_length=_FOREARM_LENGTH * scale)


def rest_pose():
  """The flat hand: every angle zero."""
  return HandPose(flexion=np.zeros((5, 3)), abduction=np.zeros(5),
                  wrist=np.zeros(2))


def rotation_x(degrees):
  c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
  return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rotation_y(degrees):
  c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
  return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rotation_z(degrees):
  c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
  return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _thumb_frame():
  """Columns: the thumb's flexion axis, metacarpal direction and pad normal."""
  axis = _THUMB_AXIS / np.linalg.norm(_THUMB_AXIS)
  pad = _THUMB_PAD - (_THUMB_PAD @ axis) * axis
  pad /= np.linalg.norm(pad)
  return np.stack([np.cross(axis, pad), axis, pad], axis=1)


_DIGIT_FRAMES = np.stack([_thumb_frame()] +
                         [rotation_z(-splay) for splay in _FINGER_SPLAY])


def forward_kinematics(shape, pose):
  """(21, 3) joint positions of ``shape`` in ``pose``, hand frame, mm.

  Each digit is a chain: its base joint turns by the abduction (a finger
  about its pad normal, the thumb away from the palm), then every joint
  flexes about the digit's own x axis, so a digit bends in its own plane and
  bone lengths never change.
  """
  joints = np.zeros((NUM_JOINTS, 3))
  up = np.array([0.0, 1.0, 0.0])
  for digit in range(5):
    if digit == 0:
      frame = (rotation_y(-pose.abduction[0]) @ _DIGIT_FRAMES[0] @
               rotation_y(_THUMB_PRONATION * pose.abduction[0]))
    else:
      frame = _DIGIT_FRAMES[digit] @ rotation_z(-pose.abduction[digit])
    position = shape.base[digit]
    first = 1 + 4 * digit
    joints[first] = position
    for bone in range(3):
      frame = frame @ rotation_x(pose.flexion[digit, bone])
      position = position + shape.lengths[digit, bone] * (frame @ up)
      joints[first + 1 + bone] = position
  return joints


def forearm_direction(pose):
  """Unit vector from the wrist along the forearm, hand frame."""
  flexion, deviation = pose.wrist
  return rotation_z(-deviation) @ rotation_x(-flexion) @ np.array(
      [0.0, -1.0, 0.0])


def body(shape, pose):
  """The Body of ``shape`` in ``pose``, hand frame."""
  joints = forward_kinematics(shape, pose)
  starts, ends, radii = [], [], []
  for digit in range(5):
    chain = joints[1 + 4 * digit:5 + 4 * digit]
    starts.append(chain[:-1])
    ends.append(chain[1:])
    radii.append(shape.radii[digit])
  mcp = joints[[5, 9, 13, 17]]
  polygon = np.concatenate(
      [shape.wrist_corners[:1], mcp, shape.wrist_corners[1:]])
  starts.append(polygon)
  ends.append(np.roll(polygon, -1, axis=0))
  radii.append(np.full(len(polygon), shape.palm_radius))
  forearm = forearm_direction(pose)
  starts.append([_FOREARM_GAP * forearm])
  ends.append([shape.forearm_length * forearm])
  radii.append([shape.forearm_radius])
  return Body(joints=joints, capsule_start=np.concatenate(starts),
              capsule_end=np.concatenate(ends),
              capsule_radius=np.concatenate(radii).astype(np.float64),
              palm_polygon=polygon, palm_radius=shape.palm_radius)


def bone_lengths(joints):
  """(B,) lengths of ``skeletons.SYNTHETIC.bones`` for (..., 21, 3) joints."""
  bones = np.array(skeletons.SYNTHETIC.bones)
  return np.linalg.norm(
      joints[..., bones[:, 1], :] - joints[..., bones[:, 0], :], axis=-1)
