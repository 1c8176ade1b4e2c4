"""Hand poses from depth images with an exported SavedModel.

``Predictor`` loads a SavedModel written by ``exporter.export_saved_model``
(its signatures and metadata: ``saved_model_contract``) and runs its
signatures on NumPy arrays; ``read_depth`` reads one depth image
with the dataset readers' functions; ``predict_files`` and
``write_predictions`` are what ``python -m jgr_p2o_tf.infer`` does.

Depth image formats (by extension and dataset):
  * ``.png``: the dataset's depth PNG (its profile's ``read_depth_png``):
    16-bit single-channel depth in mm (ICVL, the synthetic data, most depth
    cameras' tools, and without a dataset), or for "nyu" NYU's 8-bit RGB
    PNG, depth = (G << 8) | B;
  * ``.bin``: MSRA 2015's binary files (header and float32 depth of a box).
"""

import dataclasses
import json
import os

import numpy as np

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import saved_model_contract
from jgr_p2o_tf import skeletons
from jgr_p2o_tf.datasets import centres
from jgr_p2o_tf.datasets import frame as frame_lib
from jgr_p2o_tf.datasets import msra

PREDICTIONS_FILE = "predictions.json"


class Predictor:
  """An exported model, run by TensorFlow alone: no Keras, no model code.

  Attributes:
    metadata: the SavedModel's metadata dict (``saved_model_contract``).
    skeleton: its Skeleton.
    camera: the default Camera stored at export, or None.
  """

  def __init__(self, saved_model_dir):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    saved_model_dir = os.fspath(saved_model_dir)
    if not os.path.isfile(os.path.join(saved_model_dir, "saved_model.pb")):
      raise FileNotFoundError(f"{saved_model_dir}: no saved_model.pb, not a "
                              f"SavedModel of python -m jgr_p2o_tf.export")
    self.saved_model_dir = saved_model_dir
    self._loaded = tf.saved_model.load(saved_model_dir)
    self.metadata = saved_model_contract.read_metadata(self._loaded,
                                                       saved_model_dir)
    self.skeleton = skeletons.get_skeleton(self.metadata["skeleton"])
    camera = self.metadata.get("camera")
    self.camera = None if camera is None else geometry.Camera(**camera)
    self._full_frame = self._loaded.signatures[
        saved_model_contract.SIGNATURE_FULL_FRAME]
    self._crop = self._loaded.signatures[saved_model_contract.SIGNATURE_CROP]

  @property
  def cube_mm(self):
    return np.asarray(self.metadata["cube_mm"], np.float32)

  def predict(self, depth_mm, centre_xyz, camera):
    """The full-frame signature on one frame or a batch.

    Args:
      depth_mm: (H, W) or (B, H, W) depth in mm (any real dtype; 0 = hole).
      centre_xyz: (3,) or (B, 3) hand centres in mm.
      camera: Camera, or (4,) or (B, 4) intrinsics fx, fy, cx, cy.

    Returns:
      dict of float32 arrays ``joints_xyz``, ``joints_uvd``, ``joints_uvz``:
      (J, 3) for one frame, (B, J, 3) for a batch.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    depth = np.asarray(depth_mm, np.float32)
    single = depth.ndim == 2
    if depth.ndim not in (2, 3):
      raise ValueError(f"depth must be (H, W) or (B, H, W), got shape "
                       f"{depth.shape}")
    batch = 1 if single else depth.shape[0]
    intrinsics = (camera.intrinsics if isinstance(camera, geometry.Camera)
                  else np.asarray(camera, np.float32))
    arguments = {
        "depth": depth.reshape((batch,) + depth.shape[-2:]),
        "centre_xyz": np.broadcast_to(
            np.asarray(centre_xyz, np.float32), (batch, 3)),
        "intrinsics": np.broadcast_to(intrinsics.astype(np.float32),
                                      (batch, 4)),
    }
    outputs = self._full_frame(
        **{k: tf.constant(v) for k, v in arguments.items()})
    outputs = {k: v.numpy() for k, v in outputs.items()}
    return {k: v[0] for k, v in outputs.items()} if single else outputs

  def predict_crop(self, depth_crop):
    """The crop signature on (B, S, S, 1) normalized crops → dict of arrays."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    outputs = self._crop(depth_crop=tf.constant(depth_crop, tf.float32))
    return {k: v.numpy() for k, v in outputs.items()}


def read_depth(path, camera, dataset=None):
  """(H, W) float32 depth in mm of one image (see the module docstring).

  Args:
    path: a .png or .bin file.
    camera: the Camera that took it; the image must have its size.
    dataset: a dataset name, whose profile reads its PNGs ("nyu": NYU's RGB
      packing); None reads 16-bit PNGs.

  Raises:
    DatasetError: naming the file: missing, unreadable, or not of the
      expected format, bit depth, channels or size.
  """
  path = os.fspath(path)
  extension = os.path.splitext(path)[1].lower()
  if extension == ".bin":
    return msra.read_depth_bin(path, None, camera)
  if extension != ".png":
    raise frame_lib.DatasetError(
        "unknown depth image format, expected .png (16-bit, or NYU's RGB with "
        "--dataset=nyu) or .bin (MSRA)", path=path)
  read_png = (dataset_profiles.get_profile(dataset).read_depth_png if dataset
              else frame_lib.read_uint16_depth_png)
  return read_png(path, None, camera)


def resolve_camera(predictor, dataset=None, intrinsics=None):
  """The Camera of the input images.

  Args:
    predictor: a Predictor, whose stored camera is the default.
    dataset: a dataset name: its camera (``dataset_profiles``).
    intrinsics: optional fx, fy, cx, cy[, width, height] overriding the
      intrinsics; without width and height the image size is the default
      camera's.

  Raises:
    ValueError: no camera known, or intrinsics of the wrong length.
  """
  base = (dataset_profiles.get_profile(dataset).camera if dataset
          else predictor.camera)
  if intrinsics is None:
    if base is None:
      raise ValueError("the SavedModel stores no camera: pass --dataset or "
                       "--camera=fx,fy,cx,cy,width,height")
    return base
  values = [float(v) for v in intrinsics]
  if len(values) == 6:
    width, height = int(values[4]), int(values[5])
  elif len(values) == 4 and base is not None:
    width, height = base.width, base.height
  elif len(values) == 4:
    raise ValueError("--camera=fx,fy,cx,cy needs width,height too: the "
                     "SavedModel stores no camera to take the image size from")
  else:
    raise ValueError(f"--camera takes fx,fy,cx,cy[,width,height], got "
                     f"{len(values)} values")
  if values[0] == 0 or values[1] == 0 or width <= 0 or height <= 0:
    raise ValueError(f"--camera: fx and fy must be non-zero and the size "
                     f"positive, got {values}")
  return geometry.Camera(*values[:4], width=width, height=height)


def predict_files(predictor, paths, camera, *, dataset=None, centre_xyz=None,
                  on_frame=None):
  """Predicts the pose in each depth image, one at a time.

  Args:
    predictor: a Predictor.
    paths: depth image files.
    camera: their Camera.
    dataset: passed to ``read_depth``.
    centre_xyz: (3,) hand centre in mm for every image; None computes each
      image's centre (``centres.compute_centre`` with the exported cube).
    on_frame: optional ``f(result, depth_mm)`` called after each image, e.g.
      to draw it.

  Returns:
    A list with a dict per image: ``file``; ``centre_xyz`` and
    ``centre_uvd`` (3 floats); ``centre_source``, "given" or "computed";
    ``joints_xyz`` and ``joints_uvd`` (J lists of 3 floats).

  Raises:
    DatasetError: naming the image that cannot be read or has no depth.
  """
  if centre_xyz is not None:
    centre_xyz = np.asarray(centre_xyz, np.float32)
    if not centres.centre_in_frame(centre_xyz, camera):
      raise ValueError(
          f"the centre must be x,y,z in mm, finite, with z > 0 and inside "
          f"the {camera.width}×{camera.height} image, got "
          f"{centre_xyz.tolist()}{_projection(centre_xyz, camera)}")
  results = []
  for path in paths:
    path = os.fspath(path)
    depth = read_depth(path, camera, dataset)
    if not np.all(np.isfinite(depth)):
      raise frame_lib.DatasetError("depth values that are not finite",
                                   path=path)
    centre = centre_xyz
    if centre is None:
      centre = centres.compute_centre(depth, camera,
                                      cube_mm=predictor.cube_mm,
                                      frame_id=path)
    outputs = predictor.predict(depth, centre, camera)
    if not all(np.all(np.isfinite(v)) for v in outputs.values()):
      raise ValueError(f"{path}: the model's joints are not finite")
    result = {
        "file": path,
        "centre_xyz": [float(c) for c in centre],
        "centre_uvd": geometry.xyz_to_uvd(centre, camera).tolist(),
        "centre_source": "computed" if centre_xyz is None else "given",
        "joints_xyz": outputs["joints_xyz"].tolist(),
        "joints_uvd": outputs["joints_uvd"].tolist(),
    }
    if on_frame is not None:
      on_frame(result, depth)
    results.append(result)
  return results


def _projection(centre_xyz, camera):
  """Where a centre in front of the camera projects, for error messages."""
  if not (np.all(np.isfinite(centre_xyz)) and centre_xyz[2] > 0):
    return ""
  u, v, _ = geometry.xyz_to_uvd(np.asarray(centre_xyz, np.float64), camera)
  return f" (it projects to u={u:.1f}, v={v:.1f})"


def plot_file_name(path, taken):
  """A PNG name for an input image's figure, unique among ``taken``."""
  stem = os.path.splitext(os.path.basename(path))[0]
  name, count = f"{stem}.png", 1
  while name in taken:
    count += 1
    name = f"{stem}_{count}.png"
  taken.add(name)
  return name


def write_predictions(path, predictor, camera, results):
  """Writes ``predictions.json``: the model, camera and per-image results."""
  report = {
      "saved_model": os.path.abspath(predictor.saved_model_dir),
      "skeleton": predictor.skeleton.name,
      "joint_names": list(predictor.skeleton.joint_names),
      "camera": dataclasses.asdict(camera),
      "cube_mm": predictor.metadata["cube_mm"],
      "frames": results,
  }
  # Strict JSON: a NaN or Infinity would be written as no JSON reader takes.
  text = json.dumps(report, indent=1, allow_nan=False)
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(text + "\n")
  os.replace(tmp, path)
  return report
