"""ICVL Hand Posture Dataset (Tang et al. 2014) reader, and its file format.

The format: 16-bit single-channel PNG depth in mm, and label files with one
frame per line, ``relative/path.png u1 v1 d1 ... uJ vJ dJ``. The real dataset
lays it out as::

  {data_dir}/Training/labels.txt        images under {data_dir}/Training/Depth/
  {data_dir}/Testing/test_seq_1.txt     images under {data_dir}/Testing/Depth/
  {data_dir}/Testing/test_seq_2.txt

``LabelFileReader`` reads any label files in this format; the synthetic data
(``datasets/synthetic.py``) is written in it too.
"""

import array
import math
import os

import numpy as np

from jgr_p2o_tf import geometry
from jgr_p2o_tf import skeletons
from jgr_p2o_tf.datasets import frame as frame_lib

CAMERA = geometry.Camera(241.42, 241.42, 160.0, 120.0, 320, 240)
# The intrinsics the ICVL evaluation toolkits use to turn uvd into xyz.
EVALUATION_CAMERA = geometry.Camera(240.99, 240.96, 160.0, 120.0, 320, 240)

# The split → (label files, image folder) of the real dataset, relative to
# data_dir.
ICVL_SPLITS = {
    "train": (("Training/labels.txt",), "Training/Depth"),
    "test": (("Testing/test_seq_1.txt", "Testing/test_seq_2.txt"),
             "Testing/Depth"),
}

# Layouts label files may carry, told apart by their joint count.
LAYOUTS_BY_JOINT_COUNT = {14: "nyu", 16: "icvl", 21: "synthetic"}


class LabelFileReader(frame_lib.Reader):
  """Frames listed in ICVL-format label files.

  A label line with the wrong number of values or a non-number does not stop
  the construction: reading that frame raises DatasetError, so that data
  preparation can skip it.

  Args:
    label_paths: label files, read in order.
    image_dir: the folder image paths in the label files are relative to.
    camera: the depth camera; PNGs must have its size.
    skeleton: the joint layout, a Skeleton or its name; None takes it from the
      value count of the first label line that has one of
      ``LAYOUTS_BY_JOINT_COUNT``'s (the malformed lines before it are bad
      frames like any other).

  Raises:
    DatasetError: a label file is missing or unreadable, or (skeleton None)
      no line's joint count matches a layout.
  """

  def __init__(self, label_paths, image_dir, camera, skeleton=None):
    self.image_dir = os.fspath(image_dir)
    self.camera = camera
    label_paths = [os.fspath(p) for p in label_paths]
    self.skeleton = (None if skeleton is None
                     else skeletons.get_skeleton(skeleton))
    self.frame_ids = []
    self._line_errors = {}  # index → (label file, message)
    # A flat float32 buffer: ICVL's training labels hold 331k frames.
    values = array.array("f")
    # Lines read before one names the layout: (label file, number, tokens).
    waiting = []
    for path in label_paths:
      for number, tokens in _label_lines(path):
        if self.skeleton is None:
          layout = _layout_of(tokens)
          if layout is None:
            waiting.append((path, number, tokens))
            continue
          self.skeleton = skeletons.get_skeleton(layout)
        for line in waiting + [(path, number, tokens)]:
          self._add_line(values, *line)
        waiting = []
    if self.skeleton is None:
      if not waiting:
        raise frame_lib.DatasetError(
            "no label lines to tell the joint layout from",
            path=", ".join(label_paths), frame="all")
      path, number, tokens = waiting[0]
      raise frame_lib.DatasetError(
          f"no label line has the values of 3 × one of "
          f"{sorted(LAYOUTS_BY_JOINT_COUNT)} joints to tell the layout from; "
          f"line {number} has {len(tokens) - 1} after the image path",
          path=path, frame=tokens[0])
    self._joints_uvd = np.frombuffer(values, np.float32).reshape(
        -1, self.skeleton.num_joints, 3)

  def _add_line(self, values, path, number, tokens):
    """Appends one label line's frame; a malformed one is remembered."""
    row, error = _parse_values(tokens[1:], number, self.skeleton.num_joints)
    if error is not None:
      self._line_errors[len(self.frame_ids)] = (path, error)
    self.frame_ids.append(tokens[0])
    values.extend(row)

  def read(self, index):
    index = self.check_index(index)
    frame_id = self.frame_ids[index]
    if index in self._line_errors:
      path, message = self._line_errors[index]
      raise frame_lib.DatasetError(message, path=path, frame=frame_id)
    path = os.path.join(self.image_dir, frame_id)
    depth = frame_lib.read_uint16_depth_png(path, frame_id, self.camera)
    joints_uvd = self._joints_uvd[index].copy()
    return frame_lib.Frame(
        frame_id=frame_id, depth_mm=depth,
        joints_uvd=joints_uvd,
        joints_xyz=geometry.uvd_to_xyz(joints_uvd, self.camera),
        camera=self.camera)


class IcvlReader(LabelFileReader):
  """One split of the ICVL dataset.

  Args:
    data_dir: the dataset root, holding ``Training/`` and ``Testing/``.
    split: "train" (Training/labels.txt) or "test" (Testing/test_seq_1.txt
      then test_seq_2.txt); ignored when ``labels`` is given.
    labels: a label file, or a list of them, to read instead of the split's.
    image_dir: the folder their image paths are relative to; by default
      ``Depth/`` beside the first label file if it exists (the real layout),
      else the label file's own folder.
  """

  def __init__(self, data_dir, split, labels=None, image_dir=None):
    self.split = split
    if labels is None:
      if split not in ICVL_SPLITS:
        raise ValueError(f"ICVL split must be one of {sorted(ICVL_SPLITS)}, "
                         f"got {split!r}")
      label_names, image_name = ICVL_SPLITS[split]
      labels = [os.path.join(data_dir, name) for name in label_names]
      if image_dir is None:
        image_dir = os.path.join(data_dir, image_name)
    elif isinstance(labels, (str, os.PathLike)):
      labels = [labels]
    if image_dir is None:
      label_dir = os.path.dirname(os.fspath(labels[0]))
      image_dir = os.path.join(label_dir, "Depth")
      if not os.path.isdir(image_dir):
        image_dir = label_dir
    super().__init__(labels, image_dir, CAMERA, skeletons.ICVL)


def _label_lines(path):
  """Yields (line number, tokens) of a label file's non-blank lines."""
  try:
    with open(path, encoding="utf-8") as f:
      for number, line in enumerate(f, start=1):
        tokens = line.split()
        if tokens:
          yield number, tokens
  except FileNotFoundError:
    raise frame_lib.DatasetError(
        "missing label file, expected lines 'image.png u v d ...'", path=path,
        frame="all") from None
  except (OSError, UnicodeDecodeError) as e:
    raise frame_lib.DatasetError(f"cannot read label file ({e})", path=path,
                                 frame="all") from None


def _layout_of(tokens):
  """The layout named by a label line's joint count, or None."""
  num_values = len(tokens) - 1
  if num_values % 3:
    return None
  return LAYOUTS_BY_JOINT_COUNT.get(num_values // 3)


def _parse_values(values, number, num_joints):
  """The 3·J floats of a label line (NaN if malformed) and an error or None."""
  expected = 3 * num_joints
  if len(values) != expected:
    return [math.nan] * expected, (
        f"line {number} has {len(values)} values after the image path, "
        f"expected {expected} (u v d of {num_joints} joints)")
  try:
    row = [float(v) for v in values]
  except ValueError as e:
    return [math.nan] * expected, (
        f"line {number}: {e}, expected {expected} numbers after the image "
        "path")
  if not all(map(math.isfinite, row)):
    return row, (f"line {number} has a value that is not finite, expected "
                 f"{expected} finite numbers")
  return row, None
