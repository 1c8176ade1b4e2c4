"""NYU Hand Pose Dataset (Tompson et al. 2014) reader.

On disk, per split (``train``, ``test``)::

  {data_dir}/{split}/joint_data.mat         joint_uvd, joint_xyz indexed
                                            [kinect, frame, joint, axis]:
                                            3 kinects, N frames, 36 joints
  {data_dir}/{split}/depth_{k}_{i:07d}.png  kinect k (1-based), frame i
                                            (1-based); depth = (G << 8) | B

Frames carry the 14 evaluation joints (``skeletons.NYU_EVAL_JOINTS``). NYU's
joint_xyz has y pointing up; ``CAMERA`` has a negative fy so that its
projection of joint_xyz is joint_uvd, and the reader keeps NYU's xyz.
"""

import os

import numpy as np

from jgr_p2o_tf import geometry
from jgr_p2o_tf import skeletons
from jgr_p2o_tf.datasets import frame as frame_lib

# NYU's joint_xyz has y pointing up, so its fy is negative (as in the
# community evaluation toolkit); |fy| = 587.07.
CAMERA = geometry.Camera(588.03, -587.07, 320.0, 240.0, 640, 480)
NUM_KINECTS = 3
NUM_ANNOTATED_JOINTS = 36
# Largest median distance in pixels between NYU's joint_uvd and the projection
# of its joint_xyz that still counts as agreeing with CAMERA; a wrong sign
# or camera is off by tens of pixels.
_MAX_REPROJECTION_PX = 2.0


class NyuReader(frame_lib.Reader):
  """The frames of one NYU split, seen by one of its three Kinects.

  Args:
    data_dir: the dataset root, holding ``train/`` and ``test/``.
    split: the split's folder name, "train" or "test".
    kinect: which camera, 1 to 3; 1 is the frontal view all benchmarks use.

  Raises:
    DatasetError: joint_data.mat is missing, unreadable, lacks joint_uvd or
      joint_xyz, has other shapes, or its uvd and xyz disagree with
      CAMERA.
  """

  def __init__(self, data_dir, split, kinect=1):
    if kinect not in range(1, NUM_KINECTS + 1):
      raise ValueError(f"kinect must be 1, 2 or 3, got {kinect!r}")
    self.split = split
    self.kinect = kinect
    self.split_dir = os.path.join(data_dir, split)
    self.mat_path = os.path.join(self.split_dir, "joint_data.mat")
    self.skeleton = skeletons.NYU
    self.camera = CAMERA
    joints = _load_joint_data(self.mat_path)
    eval_joints = list(skeletons.NYU_EVAL_JOINTS)
    self._joints_uvd = joints["joint_uvd"][kinect - 1][:, eval_joints]
    self._joints_xyz = joints["joint_xyz"][kinect - 1][:, eval_joints]
    self._check_camera()
    self.frame_ids = [f"{split}/{self._file_name(i)}"
                      for i in range(len(self._joints_uvd))]

  def _file_name(self, index):
    return f"depth_{self.kinect}_{index + 1:07d}.png"

  def _check_camera(self):
    """Raises unless joint_xyz projects onto joint_uvd with CAMERA."""
    if not len(self._joints_uvd):
      return
    projected = geometry.xyz_to_uvd(self._joints_xyz, self.camera)
    error = np.median(np.linalg.norm(
        projected[..., :2] - self._joints_uvd[..., :2], axis=-1))
    if not error <= _MAX_REPROJECTION_PX:
      raise frame_lib.DatasetError(
          f"joint_xyz projected with {self.camera} lies a median {error:.1f} "
          f"px from joint_uvd, expected at most {_MAX_REPROJECTION_PX} px: "
          "not NYU's camera or axis convention", path=self.mat_path,
          frame="all")

  def read(self, index):
    index = self.check_index(index)
    frame_id = self.frame_ids[index]
    path = os.path.join(self.split_dir, self._file_name(index))
    depth = read_depth_png(path, frame_id, self.camera)
    return frame_lib.Frame(
        frame_id=frame_id, depth_mm=depth,
        joints_uvd=self._joints_uvd[index].copy(),
        joints_xyz=self._joints_xyz[index].copy(), camera=self.camera)


def _load_joint_data(path):
  """joint_uvd and joint_xyz of a joint_data.mat, float32, checked."""
  import scipy.io  # pylint: disable=g-import-not-at-top
  expected = (f"joint_uvd and joint_xyz of shape ({NUM_KINECTS}, frames, "
              f"{NUM_ANNOTATED_JOINTS}, 3)")
  if not os.path.isfile(path):
    raise frame_lib.DatasetError(f"missing file, expected a .mat with "
                                 f"{expected}", path=path, frame="all")
  try:
    contents = scipy.io.loadmat(path,
                                variable_names=("joint_uvd", "joint_xyz"))
  except (ValueError, TypeError, OSError, NotImplementedError) as e:
    raise frame_lib.DatasetError(
        f"cannot be read as a MATLAB file ({e}), expected {expected}",
        path=path, frame="all") from None
  joints = {}
  for key in ("joint_uvd", "joint_xyz"):
    if key not in contents:
      raise frame_lib.DatasetError(f"has no {key}, expected {expected}",
                                   path=path, frame="all")
    array = contents[key]
    if (array.ndim != 4 or array.shape[0] != NUM_KINECTS or
        array.shape[2:] != (NUM_ANNOTATED_JOINTS, 3) or
        not np.issubdtype(array.dtype, np.number)):
      raise frame_lib.DatasetError(
          f"{key} has shape {array.shape} and type {array.dtype}, expected "
          f"{expected}", path=path, frame="all")
    joints[key] = array.astype(np.float32)
  if joints["joint_uvd"].shape != joints["joint_xyz"].shape:
    raise frame_lib.DatasetError(
        f"joint_uvd {joints['joint_uvd'].shape} and joint_xyz "
        f"{joints['joint_xyz'].shape} differ in frame count, expected "
        f"{expected}", path=path, frame="all")
  return joints


def read_depth_png(path, frame_id, camera=CAMERA):
  """Depth in mm, (H, W) float32, from one of NYU's RGB-packed PNGs."""
  image = frame_lib.read_png(path, frame_id, dtype=np.uint8, channels=3,
                             camera=camera)
  # OpenCV decodes to BGR: NYU keeps the high byte in G, the low one in B.
  return ((image[..., 1].astype(np.uint16) << 8) |
          image[..., 0]).astype(np.float32)
