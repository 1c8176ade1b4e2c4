"""Reader of the synthetic data written by ``python -m jgr_p2o_tf.synthetic``.

It is the ICVL format (``datasets/icvl.py``) plus the camera::

  {data_dir}/{split}/labels.txt     image paths relative to {data_dir}/{split}/
  {data_dir}/{split}/camera.json    {"fx", "fy", "cx", "cy", "width", "height"}
                                    and optionally "layout" (a skeleton name)

Without "layout", the joint count of the label lines names it (14: nyu,
16: icvl, 21: synthetic).
"""

import json
import os

from jgr_p2o_tf import geometry
from jgr_p2o_tf import skeletons
from jgr_p2o_tf.datasets import frame as frame_lib
from jgr_p2o_tf.datasets import icvl

_CAMERA_KEYS = ("fx", "fy", "cx", "cy", "width", "height")


class SyntheticReader(icvl.LabelFileReader):
  """One split of a synthetic dataset.

  Args:
    data_dir: the folder the generator wrote to.
    split: the split's folder name, e.g. "train" or "test".

  Raises:
    DatasetError: labels.txt or camera.json is missing or malformed.
  """

  def __init__(self, data_dir, split):
    self.split = split
    split_dir = os.path.join(data_dir, split)
    camera, layout = load_camera_json(os.path.join(split_dir, "camera.json"))
    super().__init__([os.path.join(split_dir, "labels.txt")], split_dir,
                     camera, layout)


def load_camera_json(path):
  """(Camera, layout name or None) from a synthetic split's camera.json."""
  expected = f"a JSON object with numbers {', '.join(_CAMERA_KEYS)}"
  try:
    with open(path, encoding="utf-8") as f:
      contents = json.load(f)
  except FileNotFoundError:
    raise frame_lib.DatasetError(f"missing file, expected {expected}",
                                 path=path, frame="all") from None
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise frame_lib.DatasetError(f"cannot read ({e}), expected {expected}",
                                 path=path, frame="all") from None
  if not isinstance(contents, dict):
    raise frame_lib.DatasetError(f"expected {expected}", path=path,
                                 frame="all")
  missing = [k for k in _CAMERA_KEYS
             if not isinstance(contents.get(k), (int, float))]
  if missing:
    raise frame_lib.DatasetError(
        f"{', '.join(missing)} missing or not numbers, expected {expected}",
        path=path, frame="all")
  layout = contents.get("layout")
  if layout is not None and layout not in skeletons.SKELETONS:
    raise frame_lib.DatasetError(
        f"layout {layout!r} is not one of {sorted(skeletons.SKELETONS)}",
        path=path, frame="all")
  camera = geometry.Camera(
      fx=float(contents["fx"]), fy=float(contents["fy"]),
      cx=float(contents["cx"]), cy=float(contents["cy"]),
      width=int(contents["width"]), height=int(contents["height"]))
  return camera, layout
