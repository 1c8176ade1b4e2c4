"""Pose-estimation metrics and the community text format of predictions.

The two metrics of the paper (Section 4.1):
  * the mean 3D distance error in mm over all joints and all frames, and
  * the fraction of "success frames" whose worst joint error is at most a
    threshold, for thresholds 0–80 mm (the paper's Figure 4).

The same curve over each frame's mean joint error is provided too.

Text format (the one of the community evaluation toolkit): one test frame per
line in the order of the test list, J joints × ``u v d`` separated by spaces,
u and v full-frame pixels, d depth in mm. Predictions and ground truth are
compared in xyz mm after ``geometry.uvd_to_xyz`` with the dataset's
evaluation intrinsics (``evaluation_camera``).
"""

import os

import numpy as np

from jgr_p2o_tf import dataset_profiles

# Thresholds of the success-frame curves, 0 to 80 mm in 1 mm steps.
DEFAULT_THRESHOLDS_MM = np.arange(0.0, 81.0, 1.0)


class PredictionFileError(ValueError):
  """A prediction or label file that is malformed or does not match."""


def evaluation_camera(dataset):
  """The Camera whose intrinsics convert ``dataset``'s uvd files to xyz.

  The evaluation toolkit's intrinsics (ICVL's differ from the camera its
  crops are made with), or the dataset's camera where it has no toolkit.
  """
  profile = dataset_profiles.get_profile(dataset)
  return profile.evaluation_camera or profile.camera


def joint_errors(pred_xyz, gt_xyz):
  """(N, J) Euclidean distances between (N, J, 3) predicted and true joints."""
  pred_xyz = np.asarray(pred_xyz, np.float64)
  gt_xyz = np.asarray(gt_xyz, np.float64)
  if pred_xyz.shape != gt_xyz.shape or pred_xyz.ndim != 3 or (
      pred_xyz.shape[-1] != 3):
    raise ValueError(f"expected two (N, J, 3) arrays of the same shape, got "
                     f"{pred_xyz.shape} and {gt_xyz.shape}")
  return np.linalg.norm(pred_xyz - gt_xyz, axis=-1)


def mean_error(errors):
  """Mean of (N, J) joint errors over all joints and frames."""
  return float(np.mean(errors))


def per_joint_errors(errors):
  """(J,) mean error of each joint over the frames of (N, J) errors."""
  return np.mean(errors, axis=0)


def max_joint_errors(errors):
  """(N,) worst joint error of each frame."""
  return np.max(errors, axis=1)


def mean_joint_errors(errors):
  """(N,) mean joint error of each frame."""
  return np.mean(errors, axis=1)


def success_curve(frame_errors, thresholds=DEFAULT_THRESHOLDS_MM):
  """Fraction of frames whose error is at most each threshold.

  Args:
    frame_errors: (N,) one error per frame, e.g. ``max_joint_errors``.
    thresholds: (T,) thresholds in the errors' unit.

  Returns:
    (T,) fractions in [0, 1], non-decreasing in the threshold.
  """
  sorted_errors = np.sort(np.asarray(frame_errors, np.float64))
  # side="right" counts the frames equal to a threshold as successes (≤ t).
  counts = np.searchsorted(sorted_errors, np.asarray(thresholds), side="right")
  return counts / float(len(sorted_errors))


def worst_joint_success_curve(errors, thresholds=DEFAULT_THRESHOLDS_MM):
  """The paper's Figure 4: fraction of frames with worst joint error ≤ t."""
  return success_curve(max_joint_errors(errors), thresholds)


def mean_joint_success_curve(errors, thresholds=DEFAULT_THRESHOLDS_MM):
  """Fraction of frames whose mean joint error is ≤ t."""
  return success_curve(mean_joint_errors(errors), thresholds)


def worst_frames(frame_errors, k):
  """Indices of the k frames with the largest errors, largest first.

  Args:
    frame_errors: (N,) one error per frame.
    k: how many; all frames when k exceeds N.
  """
  frame_errors = np.asarray(frame_errors)
  # A stable sort keeps equal errors in frame order, so the answer is
  # reproducible.
  order = np.argsort(-frame_errors, kind="stable")
  return order[:k]


def read_uvd_file(path, num_joints=None):
  """Reads a file of the community text format.

  Args:
    path: the file, one frame per line, J × ``u v d``.
    num_joints: J expected; when None it is taken from the first line.

  Returns:
    (N, J, 3) float64 uvd.

  Raises:
    PredictionFileError: naming the file and line, when a line has a wrong
      number of values or a value that is not a finite number, or the file
      has no frames or is not text.
    OSError: when the file cannot be read.
  """
  try:
    with open(path, encoding="utf-8") as f:
      lines = f.read().rstrip().splitlines()
  except UnicodeDecodeError as e:
    raise PredictionFileError(f"{path}: not a text file ({e})") from None
  if not lines:
    raise PredictionFileError(f"{path}: no frames")
  expected = None if num_joints is None else 3 * num_joints
  frames = []
  for line_number, line in enumerate(lines, start=1):
    fields = line.split()
    if expected is None:
      if not fields or len(fields) % 3:
        raise PredictionFileError(
            f"{path}:{line_number}: {len(fields)} values, not a whole number "
            f"of joints (u v d each)")
      expected = len(fields)
    if len(fields) != expected:
      raise PredictionFileError(
          f"{path}:{line_number}: {len(fields)} values, expected {expected} "
          f"({expected // 3} joints × u v d)")
    try:
      values = [float(field) for field in fields]
    except ValueError:
      bad = next(field for field in fields if not _is_float(field))
      raise PredictionFileError(
          f"{path}:{line_number}: {bad!r} is not a number") from None
    if not np.all(np.isfinite(values)):
      raise PredictionFileError(
          f"{path}:{line_number}: values must be finite numbers")
    frames.append(values)
  return np.asarray(frames, np.float64).reshape(len(frames), -1, 3)


def _is_float(text):
  try:
    float(text)
  except ValueError:
    return False
  return True


def write_uvd_file(path, uvd):
  """Writes (N, J, 3) uvd in the community text format with ``%.3f``."""
  uvd = np.asarray(uvd, np.float64)
  if uvd.ndim != 3 or uvd.shape[-1] != 3:
    raise ValueError(f"expected (N, J, 3) uvd, got shape {uvd.shape}")
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  np.savetxt(path, uvd.reshape(len(uvd), -1), fmt="%.3f", delimiter=" ")
