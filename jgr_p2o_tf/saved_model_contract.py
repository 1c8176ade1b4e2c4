"""What an exported SavedModel promises its clients: signatures and metadata.

The exporter (``exporter.py``) writes it and ``inference.py`` reads it; both
take the names from here, and this module imports neither Keras nor the
exporter. A SavedModel of format ``FORMAT`` version ``FORMAT_VERSION`` has
two signatures, all TensorFlow graph (no Python is needed to serve it):

  * ``SIGNATURE_FULL_FRAME`` ("serving_default"): ``depth`` (B, H, W)
    float32 mm, any H × W, 0 for holes; ``centre_xyz`` (B, 3) float32 hand
    centres in mm; ``intrinsics`` (B, 4) float32 (fx, fy, cx, cy) →
    ``joints_xyz`` (B, J, 3) mm, ``joints_uvd`` (B, J, 3) full-frame pixels
    and mm, ``joints_uvz`` (B, J, 3) normalized. The cube crop runs inside the
    graph with the cube edges fixed at export.
  * ``SIGNATURE_CROP`` ("crop"): ``depth_crop`` (B, S, S, 1) float32
    normalized crop → ``joints_uvz`` (B, J, 3) and ``voting_maps``
    (B, S/4, S/4, J) of the last stack.

An export that bundles a centre refiner (``export --centre_refiner_dir``,
metadata ``centre_refiner``: the cube and crop size of each step) finds the
hand itself, so its ``SIGNATURE_FULL_FRAME`` takes ``depth`` and
``intrinsics`` only and also returns ``centre_xyz`` (B, 3), the centre it
cropped around, and ``hand_found`` (B,) bool; where no hand was found the
joints are NaN. The signature with a centre is then
``SIGNATURE_FULL_FRAME_WITH_CENTRE`` (a signature's inputs are fixed, so the
centre cannot be an optional input of one).

Both are also attributes of the loaded object (``loaded.full_frame(depth,
centre_xyz, intrinsics)``, ``loaded.crop(depth_crop)``), which refuse a
tensor of the wrong dtype or rank with a message naming the argument.

The metadata (``metadata``: skeleton, joint names and bones, cube, crop size,
default camera, ...) is a JSON asset of the SavedModel
(``loaded.metadata_file.asset_path``, ``read_metadata``) and a copy beside
it, ``{export_dir}/METADATA_FILE``.
"""

import dataclasses
import json
import os

SIGNATURE_FULL_FRAME = "serving_default"
SIGNATURE_CROP = "crop"
SIGNATURE_FULL_FRAME_WITH_CENTRE = "full_frame_with_centre"
METADATA_FILE = "metadata.json"
FORMAT = "jgr_p2o_tf.saved_model"
FORMAT_VERSION = 1


def metadata(*, skeleton, cube_mm, crop_size, output_grid, num_stacks,
             dataset, camera, dtype_policy, jit_compile, batch_norm_folded,
             source, coordinate_convention):
  """The metadata dict stored with a SavedModel.

  Args:
    skeleton: the Skeleton of the predicted joints.
    cube_mm: (3,) cube edges in mm of the full-frame crop.
    crop_size: S.
    output_grid: (h, w) of the voting maps.
    num_stacks: stacks of the network.
    dataset: the dataset name, or None.
    camera: the default Camera for clients, or None.
    dtype_policy: the network's Keras dtype policy name.
    jit_compile: whether the network is compiled with XLA.
    batch_norm_folded: how many batch norms were folded.
    source: where the model came from, or None.
    coordinate_convention: the network's (``geometry.COORDINATE_CONVENTIONS``);
      the signatures return the project's whatever it is.
  """
  num_joints = skeleton.num_joints
  grid_h, grid_w = output_grid
  return {
      "format": FORMAT,
      "format_version": FORMAT_VERSION,
      "skeleton": skeleton.name,
      "num_joints": num_joints,
      "joint_names": list(skeleton.joint_names),
      "bones": [list(b) for b in skeleton.bones],
      "cube_mm": [float(c) for c in cube_mm],
      "crop_size": int(crop_size),
      "output_grid": [int(grid_h), int(grid_w)],
      "num_stacks": int(num_stacks),
      "coordinate_convention": coordinate_convention,
      "dataset": dataset,
      "camera": None if camera is None else dataclasses.asdict(camera),
      "dtype_policy": dtype_policy,
      "jit_compile": bool(jit_compile),
      "batch_norm_folded": int(batch_norm_folded),
      "source": None if source is None else os.fspath(source),
      "signatures": {
          SIGNATURE_FULL_FRAME: {
              "inputs": {
                  "depth": "(B, H, W) float32 depth in mm, 0 for holes",
                  "centre_xyz": "(B, 3) float32 hand centre in mm",
                  "intrinsics": "(B, 4) float32 fx, fy, cx, cy in pixels"},
              "outputs": {
                  "joints_xyz": f"(B, {num_joints}, 3) camera space, mm",
                  "joints_uvd": f"(B, {num_joints}, 3) full-frame pixels "
                                "(u column, v row) and depth mm",
                  "joints_uvz": f"(B, {num_joints}, 3) normalized UVZ of "
                                "the crop (project convention)"}},
          SIGNATURE_CROP: {
              "inputs": {
                  "depth_crop": f"(B, {crop_size}, {crop_size}, 1) float32 "
                                "normalized depth crop"},
              "outputs": {
                  "joints_uvz": f"(B, {num_joints}, 3) normalized UVZ "
                                "(project convention)",
                  "voting_maps": f"(B, {grid_h}, {grid_w}, {num_joints}) "
                                 "voting weights of the last stack"}}},
  }


def with_centre_refiners(metadata, steps):
  """The metadata of an export that bundles centre refiners.

  Its full-frame signature takes no centre and returns the centre and
  ``hand_found``; the signature with a centre moves to
  ``SIGNATURE_FULL_FRAME_WITH_CENTRE``.

  Args:
    metadata: the export's metadata without refiners.
    steps: per refinement step, in order, a dict of the refiner's "cube_mm"
      (3,), "crop_size" and "source" (its path, or None).
  """
  signatures = dict(metadata["signatures"])
  with_centre = signatures[SIGNATURE_FULL_FRAME]
  inputs = {k: v for k, v in with_centre["inputs"].items()
            if k != "centre_xyz"}
  outputs = {k: f"{v}; NaN where no hand was found"
             for k, v in with_centre["outputs"].items()}
  outputs["centre_xyz"] = ("(B, 3) float32 hand centre in mm the crop was "
                           "cut around (rough centre, then the refiners)")
  outputs["hand_found"] = ("(B,) bool: False for a frame without depth or "
                           "without depth in the pose cube around the "
                           "centre")
  signatures[SIGNATURE_FULL_FRAME] = {"inputs": inputs, "outputs": outputs}
  signatures[SIGNATURE_FULL_FRAME_WITH_CENTRE] = with_centre
  return {**metadata, "signatures": signatures, "centre_refiner": {
      "steps": [{"cube_mm": [float(c) for c in step["cube_mm"]],
                 "crop_size": int(step["crop_size"]),
                 "source": (None if step["source"] is None
                            else os.fspath(step["source"]))}
                for step in steps]}}


def check_format(metadata, path, expected_format=FORMAT,
                 expected_version=FORMAT_VERSION):
  """Raises ValueError naming ``path`` unless the metadata is of that format.

  Shared with ``onnx_contract``: an export by an older or newer version of
  this project, or of something else, is refused with one line saying so.
  """
  found, version = metadata.get("format"), metadata.get("format_version")
  if found != expected_format:
    raise ValueError(f"{path}: metadata of format {found!r}, not "
                     f"{expected_format!r}: not exported by this version of "
                     f"python -m jgr_p2o_tf.export; export the model again")
  if version != expected_version:
    age = ("an older" if isinstance(version, int) and version < expected_version
           else "another")
    raise ValueError(f"{path}: exported by {age} version of jgr_p2o_tf "
                     f"({expected_format} version {version}; this one reads "
                     f"version {expected_version}); export the model again")


def read_metadata(loaded, saved_model_dir):
  """The metadata dict of a SavedModel loaded with ``tf.saved_model.load``.

  Raises:
    ValueError: naming ``saved_model_dir``, a SavedModel without the asset
      or of another format version (``check_format``).
  """
  metadata_file = getattr(loaded, "metadata_file", None)
  if metadata_file is None:
    raise ValueError(f"{saved_model_dir}: a SavedModel without the "
                     f"{METADATA_FILE} asset of jgr_p2o_tf.export")
  with open(metadata_file.asset_path.numpy().decode(), encoding="utf-8") as f:
    metadata = json.load(f)
  check_format(metadata, saved_model_dir)
  return metadata
