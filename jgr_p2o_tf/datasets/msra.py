"""MSRA Hand Gesture 2015 dataset (Sun et al. 2015) reader.

On disk, for subjects P0..P8 and 17 gestures each::

  {data_dir}/P{s}/{gesture}/joint.txt          first line: frame count N;
                                               then N lines of 21 × (x y z)
  {data_dir}/P{s}/{gesture}/{i:06d}_depth.bin  six int32 (image width,
                                               height, box left, top, right,
                                               bottom), then float32 depth of
                                               the box, row-major

MSRA's joint.txt has y pointing up and z negative; frames carry (x, −y, −z),
the camera convention of the project (``CAMERA``, z > 0). MSRA
has no train/test split: the reader reads the subjects it is given and
``subject(index)`` tells them apart for leave-one-subject-out.
"""

import os

import numpy as np

from jgr_p2o_tf import geometry
from jgr_p2o_tf import skeletons
from jgr_p2o_tf.datasets import frame as frame_lib

CAMERA = geometry.Camera(241.42, 241.42, 160.0, 120.0, 320, 240)
SUBJECTS = tuple(f"P{i}" for i in range(9))
GESTURES = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "I", "IP", "L", "MP",
            "RP", "T", "TIP", "Y")
# joint.txt axes → ours: y down, z away from the camera.
_AXIS_SIGNS = np.array([1.0, -1.0, -1.0], np.float32)
_HEADER = np.dtype("<i4")
_DEPTH = np.dtype("<f4")
_HEADER_BYTES = 6 * _HEADER.itemsize


class MsraReader(frame_lib.Reader):
  """The frames of some MSRA subjects, subject by subject, gesture by gesture.

  A joint.txt whose frame count disagrees with its lines, or a line with the
  wrong number of values, does not stop the construction: reading the frames
  concerned raises DatasetError, so that data preparation can skip them.

  Args:
    data_dir: the dataset root, holding P0..P8.
    split: "all", the only split of MSRA.
    subjects: the subjects to read ("P0".."P8"), by default all nine.

  Raises:
    DatasetError: a subject's gesture folder or joint.txt is missing, or a
      joint.txt's first line is not a frame count.
  """

  def __init__(self, data_dir, split="all", subjects=None):
    if split != "all":
      raise ValueError(f"MSRA has no {split!r} split: use split 'all' and "
                       "choose subjects=[...] (leave one subject out)")
    self.data_dir = os.fspath(data_dir)
    self.split = split
    if subjects is None:
      subjects = SUBJECTS
    elif isinstance(subjects, str):
      subjects = [subjects]
    self.subjects = tuple(subjects)
    unknown = sorted(set(self.subjects) - set(SUBJECTS))
    if unknown or not self.subjects:
      raise ValueError(f"MSRA subjects must be some of {list(SUBJECTS)}, "
                       f"got {list(self.subjects)}")
    self.skeleton = skeletons.MSRA
    self.camera = CAMERA
    self.frame_ids = []
    self._subject_of = []
    joints = []
    self._errors = {}  # index → (joint.txt, message)
    for subject in self.subjects:
      for gesture in GESTURES:
        path = os.path.join(self.data_dir, subject, gesture, "joint.txt")
        gesture_joints, errors = _load_joint_file(path,
                                                  self.skeleton.num_joints)
        first = len(self.frame_ids)
        self._errors.update({first + i: (path, message)
                             for i, message in errors.items()})
        self.frame_ids += [f"{subject}/{gesture}/{i:06d}"
                           for i in range(len(gesture_joints))]
        self._subject_of += [subject] * len(gesture_joints)
        joints.append(gesture_joints)
    self._joints_xyz = (np.concatenate(joints) * _AXIS_SIGNS).astype(
        np.float32)

  def subject(self, index):
    return self._subject_of[self.check_index(index)]

  def read(self, index):
    index = self.check_index(index)
    frame_id = self.frame_ids[index]
    if index in self._errors:
      path, message = self._errors[index]
      raise frame_lib.DatasetError(message, path=path, frame=frame_id)
    path = os.path.join(self.data_dir, frame_id + "_depth.bin")
    joints_xyz = self._joints_xyz[index].copy()
    return frame_lib.Frame(
        frame_id=frame_id,
        depth_mm=read_depth_bin(path, frame_id, self.camera),
        joints_uvd=geometry.xyz_to_uvd(joints_xyz, self.camera),
        joints_xyz=joints_xyz, camera=self.camera)


def read_depth_bin(path, frame, camera):
  """The full (H, W) float32 depth frame of an MSRA .bin file.

  Args:
    path: the .bin file.
    frame: the frame id, for error messages.
    camera: the header's image size must be the camera's.

  Raises:
    DatasetError: missing file, or a header or size that does not fit.
  """
  try:
    data = np.fromfile(path, np.uint8)
  except FileNotFoundError:
    raise frame_lib.DatasetError(
        "missing file, expected a 24-byte header and float32 depth", path=path,
        frame=frame) from None
  except OSError as e:
    raise frame_lib.DatasetError(f"cannot read ({e})", path=path,
                                 frame=frame) from None
  if data.size < _HEADER_BYTES:
    raise frame_lib.DatasetError(
        f"{data.size} bytes, shorter than the {_HEADER_BYTES}-byte header of "
        "six int32 (width, height, left, top, right, bottom)", path=path,
        frame=frame)
  width, height, left, top, right, bottom = (
      int(v) for v in data[:_HEADER_BYTES].view(_HEADER))
  if (width, height) != (camera.width, camera.height):
    raise frame_lib.DatasetError(
        f"header says a {width}×{height} image, expected "
        f"{camera.width}×{camera.height}", path=path, frame=frame)
  if not (0 <= left < right <= width and 0 <= top < bottom <= height):
    raise frame_lib.DatasetError(
        f"header box left {left}, top {top}, right {right}, bottom {bottom} "
        f"is empty or outside the {width}×{height} image", path=path,
        frame=frame)
  box_height, box_width = bottom - top, right - left
  expected_bytes = _HEADER_BYTES + box_height * box_width * _DEPTH.itemsize
  if data.size != expected_bytes:
    raise frame_lib.DatasetError(
        f"{data.size} bytes, expected {expected_bytes}: the header and "
        f"float32 depth of its {box_width}×{box_height} box", path=path,
        frame=frame)
  depth = np.zeros((height, width), np.float32)
  depth[top:bottom, left:right] = data[_HEADER_BYTES:].view(_DEPTH).reshape(
      box_height, box_width)
  return depth


def _load_joint_file(path, num_joints):
  """(N, J, 3) float32 joints of a joint.txt in its own axes, and errors.

  Args:
    path: the joint.txt.
    num_joints: J.

  Returns:
    The joints of the N frames its first line announces (NaN where unusable)
    and {frame: message} for the frames that cannot be read.

  Raises:
    DatasetError: the file is missing or its first line is not a count.
  """
  expected = (f"a frame count N on the first line, then N lines of "
              f"{num_joints} × (x y z)")
  try:
    with open(path, encoding="utf-8") as f:
      lines = [(number, line.split())
               for number, line in enumerate(f, start=1) if line.strip()]
  except FileNotFoundError:
    raise frame_lib.DatasetError(f"missing file, expected {expected}",
                                 path=path, frame="all") from None
  except (OSError, UnicodeDecodeError) as e:
    raise frame_lib.DatasetError(f"cannot read ({e}), expected {expected}",
                                 path=path, frame="all") from None
  header = lines[0][1] if lines else []
  if len(header) != 1 or not header[0].isdigit():
    raise frame_lib.DatasetError(
        f"first line {' '.join(header)!r} is not a frame count, expected "
        f"{expected}", path=path, frame="all")
  count = int(header[0])
  joints = np.full((count, num_joints, 3), np.nan, np.float32)
  rows = lines[1:]
  if len(rows) != count:
    message = (f"first line announces {count} frames but {len(rows)} joint "
               f"lines follow, expected {expected}")
    return joints, {i: message for i in range(count)}
  errors = {}
  for i, (number, values) in enumerate(rows):
    if len(values) != 3 * num_joints:
      errors[i] = (f"line {number} has {len(values)} values, expected "
                   f"{3 * num_joints} ({num_joints} × x y z)")
      continue
    try:
      joints[i] = np.array([float(v) for v in values],
                           np.float32).reshape(num_joints, 3)
    except ValueError as e:
      errors[i] = (f"line {number}: {e}, expected {3 * num_joints} numbers "
                   f"({num_joints} × x y z)")
  return joints, errors
