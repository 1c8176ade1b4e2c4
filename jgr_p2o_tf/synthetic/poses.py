"""Sampling of natural hand poses and of the hand's place before the camera.

Articulation comes from a mixture of gestures (open, relaxed, fist, pointing,
victory, counting, thumbs up, pinch, grasp, free), each setting a curl per
finger and an opposition and curl for the thumb; the joint angles follow from
these with the couplings of a real hand (the DIP follows the PIP, a curled
finger cannot spread) plus per-joint noise. Uniform noise over the joint
limits would almost never give a fist or a pinch.
"""

import numpy as np

from jgr_p2o_tf.synthetic import hand_model

# Relative frequencies of the gestures.
GESTURES = {
    "open": 2.0, "relaxed": 3.0, "fist": 2.0, "point": 1.5, "victory": 1.0,
    "count": 2.0, "thumbs_up": 1.0, "pinch": 1.5, "grasp": 1.5, "free": 2.0,
}
_GESTURE_NAMES = tuple(GESTURES)
_GESTURE_P = np.array([GESTURES[g] for g in _GESTURE_NAMES])
_GESTURE_P /= _GESTURE_P.sum()

# Flexion (MCP, PIP, DIP) of a fully curled finger, degrees.
_FIST_FLEXION = np.array([85.0, 100.0, 65.0])
# Abduction (radial positive) of each finger when fully spread, degrees.
_SPREAD = np.array([16.0, 4.0, -10.0, -20.0])
# Thumb angles (CMC flexion, MCP, IP; CMC abduction) of full opposition and of
# a full curl; they add up.
_THUMB_OPPOSITION = np.array([40.0, 10.0, 0.0, 35.0])
_THUMB_CURL = np.array([10.0, 50.0, 65.0, -10.0])
# Thumb and index that meet tip to tip: (thumb opposition, thumb curl, index
# curl) of the pinch gesture.
_PINCH = np.array([0.55, 0.25, 0.45])

_NOISE_DEG = 6.0


def _gesture_curls(gesture, rng):
  """(finger curls (4,), spread, thumb opposition, thumb curl) in [0, 1]."""
  u = rng.uniform
  if gesture == "open":
    return u(0.0, 0.1, 4), u(0.5, 1.0), u(0.0, 0.3), u(0.0, 0.2)
  if gesture == "relaxed":
    # A resting hand curls more towards the little finger.
    return (u(0.05, 0.3) + np.arange(4) * u(0.0, 0.08) + u(0, 0.1, 4),
            u(0.0, 0.5), u(0.2, 0.5), u(0.1, 0.4))
  if gesture == "fist":
    return u(0.85, 1.0, 4), 0.0, u(0.3, 0.7), u(0.5, 0.9)
  if gesture == "point":
    curls = np.concatenate([u(0.0, 0.15, 1), u(0.8, 1.0, 3)])
    return curls, u(0.0, 0.3), u(0.2, 0.7), u(0.2, 0.8)
  if gesture == "victory":
    curls = np.concatenate([u(0.0, 0.15, 2), u(0.8, 1.0, 2)])
    return curls, u(0.5, 1.0), u(0.5, 0.8), u(0.5, 0.8)
  if gesture == "count":
    extended = rng.random(4) < 0.5
    curls = np.where(extended, u(0.0, 0.15, 4), u(0.75, 1.0, 4))
    thumb_out = rng.random() < 0.5
    return (curls, u(0.2, 0.8), u(0.0, 0.3) if thumb_out else u(0.5, 0.8),
            u(0.0, 0.2) if thumb_out else u(0.5, 0.8))
  if gesture == "thumbs_up":
    return u(0.85, 1.0, 4), 0.0, u(0.0, 0.15), u(0.0, 0.1)
  if gesture == "pinch":
    # The other fingers either stay out (an "OK" sign) or curl along.
    others = u(0.0, 0.2, 3) if rng.random() < 0.5 else u(0.4, 0.9, 3)
    curls = np.concatenate([[_PINCH[2]], others]) + rng.normal(0, 0.04, 4)
    return (curls, u(0.0, 0.3), _PINCH[0] + rng.normal(0, 0.05),
            _PINCH[1] + rng.normal(0, 0.05))
  if gesture == "grasp":
    # Holding a ball or a bottle: all fingers alike, thumb opposed.
    return (u(0.3, 0.6) + u(-0.05, 0.05, 4), u(0.0, 0.6), u(0.6, 1.0),
            u(0.1, 0.4))
  if gesture == "free":
    # Neighbouring fingers move together: the tendons of ring and little
    # finger, and of middle and ring, are linked.
    common = u(0.0, 1.0)
    own = u(0.0, 1.0, 4)
    return (0.5 * common + 0.5 * own, u(0.0, 1.0), u(0.0, 1.0), u(0.0, 1.0))
  raise ValueError(f"unknown gesture {gesture!r}")


def pose_from_curls(curls, spread, opposition, thumb_curl, rng=None):
  """Joint angles from a gesture's curls; with ``rng``, varied naturally.

  Args:
    curls: (4,) curl of index, middle, ring, pinky; 0 straight, 1 a fist.
    spread: 0 fingers together … 1 spread wide (curled fingers spread less).
    opposition: 0 thumb beside the palm … 1 opposed to the fingers.
    thumb_curl: 0 straight … 1 curled.
    rng: adds per-joint noise and a random share of MCP against PIP flexion
      (a hook against a flat bend) when given.

  Returns:
    HandPose, clipped to the joint limits.
  """
  curls = np.clip(np.asarray(curls, np.float64), 0.0, 1.0)
  finger_flexion = curls[:, None] * _FIST_FLEXION
  if rng is not None:
    hook = rng.normal(0.0, 0.2, 4)
    finger_flexion[:, 0] *= 1.0 - hook
    finger_flexion[:, 1:] *= (1.0 + hook)[:, None]
  thumb = opposition * _THUMB_OPPOSITION + thumb_curl * _THUMB_CURL
  flexion = np.concatenate([thumb[None, :3], finger_flexion])
  abduction = np.concatenate(
      [thumb[3:], spread * (1.0 - curls) * _SPREAD])
  wrist = np.zeros(2)
  if rng is not None:
    flexion = flexion + rng.normal(0.0, _NOISE_DEG, flexion.shape)
    abduction = abduction + rng.normal(0.0, _NOISE_DEG / 2, 5)
    wrist = rng.normal(0.0, [20.0, 10.0])
  return hand_model.HandPose(flexion=flexion, abduction=abduction,
                             wrist=wrist).clipped()


def sample_pose(rng, gesture=None):
  """A natural HandPose; ``gesture`` (a GESTURES key) or a random one."""
  if gesture is None:
    gesture = _GESTURE_NAMES[rng.choice(len(_GESTURE_NAMES), p=_GESTURE_P)]
  return pose_from_curls(*_gesture_curls(gesture, rng), rng=rng)


# Hand frame → camera frame with the palm facing the camera, fingers up in the
# image (camera: x right, y down, z forward): radial stays x, distal becomes
# -y, palmar becomes -z.
PALM_TO_CAMERA = np.diag([1.0, -1.0, -1.0])


def sample_rotation(rng, max_tilt_deg=60.0):
  """Camera-from-hand rotation: any in-plane angle, the palm tilted ≤ max.

  The palm's normal is uniform on the spherical cap of half-angle
  ``max_tilt_deg`` about the view axis.
  """
  cos_tilt = rng.uniform(np.cos(np.radians(max_tilt_deg)), 1.0)
  tilt = np.degrees(np.arccos(cos_tilt))
  tilt_axis = rng.uniform(0.0, 360.0)
  in_plane = rng.uniform(0.0, 360.0)
  tilt_rotation = (hand_model.rotation_z(tilt_axis) @
                   hand_model.rotation_x(tilt) @
                   hand_model.rotation_z(-tilt_axis))
  return hand_model.rotation_z(in_plane) @ tilt_rotation @ PALM_TO_CAMERA


def sample_translation(rng, points, camera, depth_range=(250.0, 600.0),
                       margin_px=2.0, max_tries=100):
  """A translation putting every point inside the image.

  For a depth drawn from ``depth_range``, the constraint that each point
  projects at least ``margin_px`` inside the image is linear in the x and y
  translation, so the feasible interval is found exactly and sampled
  uniformly; a depth at which the points cannot fit is drawn again.

  Args:
    rng: numpy Generator.
    points: (N, 3) points in camera orientation, about the origin, mm.
    camera: geometry.Camera with positive fx and fy (the physical camera).
    depth_range: (low, high) depth of the origin, mm.
    margin_px: the points' least distance from the image border.
    max_tries: depths to try before giving up.

  Returns:
    (3,) translation, mm.

  Raises:
    ValueError: the points fit at no depth tried.
  """
  for _ in range(max_tries):
    tz = rng.uniform(*depth_range)
    depth = points[:, 2] + tz
    if np.any(depth <= 0):
      continue
    txy = []
    for axis, focal, centre, size in ((0, camera.fx, camera.cx, camera.width),
                                      (1, camera.fy, camera.cy,
                                       camera.height)):
      low = (margin_px - centre) * depth / focal - points[:, axis]
      high = (size - 1 - margin_px - centre) * depth / focal - points[:, axis]
      if low.max() > high.min():
        break
      txy.append(rng.uniform(low.max(), high.min()))
    else:
      return np.array([txy[0], txy[1], tz])
  raise ValueError(f"points of extent {np.ptp(points, axis=0)} mm fit in no "
                   f"{camera.width}×{camera.height} image at depths "
                   f"{depth_range} mm")
