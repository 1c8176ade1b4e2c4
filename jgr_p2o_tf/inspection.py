"""What notebooks/inspect_voting_maps.ipynb needs besides its figures.

``load_model`` opens what the notebook is pointed at: a ``.keras`` file, a
training run's model_dir, or an exported SavedModel or ONNX export (on any
of ``inference.RUNTIMES``). ``quick_train`` makes a small model on synthetic
frames when there is none, with the library's trainer (its frames from
``data_preparation.prepare_synthetic_split``).
``run_on_records`` runs a model over the first crops of a prepared split and
maps its joints back to millimetres; ``stack_outputs`` gives every stack's
outputs for one crop. ``full_frames_of_records`` reads the raw frames those
crops were cut from, and ``find_hands`` runs an export that finds the hand
itself (``hand_finder``) on them with no centre given, against the records'
centres. The figures are ``jgr_p2o_tf.visualize``'s.
"""

import math
import os

import numpy as np

from jgr_p2o_tf import data_preparation
from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import inference
from jgr_p2o_tf import input_pipeline
from jgr_p2o_tf import records_manifest
from jgr_p2o_tf import run_dir
from jgr_p2o_tf import skeletons
from jgr_p2o_tf import train_config
from jgr_p2o_tf import trainer
from jgr_p2o_tf.datasets import centres
from jgr_p2o_tf.datasets import frame as frame_lib

# The quick model: one stack of 64 features. On two CPU cores 300 steps take
# about 80 s and reach about 19 mm on synthetic test frames (1e-3 reaches
# 22 mm). No XLA: on a CPU it compiles for longer than it saves here.
QUICK_TRAIN = dict(num_stacks=1, num_features=64, batch_size=32,
                   learning_rate=3e-3, learning_rate_decay=0.8,
                   jit_compile=False)


def load_model(path, runtime=None):
  """A model to inspect, and the skeleton it was trained on if that is known.

  Args:
    path: a ``.keras`` file; a training run's model_dir (the model
      ``run_dir.resolve_model_path`` picks); or an exported SavedModel or
      ONNX export folder, whose crop graph ``inference.CropModel`` calls (last
      stack only, no offset maps).
    runtime: for an export, one of ``inference.RUNTIMES`` (default: its
      format's); ignored for Keras models.

  Returns:
    (model, skeleton): a callable ``model(depth_crop, training=False)`` giving
    one dict per stack (``model.build_model``'s outputs) with a
    ``coordinate_convention`` attribute, and the skeleton's name from the
    run's config.json or the SavedModel's metadata, or None.

  Raises:
    FileNotFoundError: nothing to load at ``path``.
  """
  path = os.fspath(path)
  if inference.export_format(path):
    predictor = inference.Predictor(path, runtime)
    return inference.CropModel(predictor), predictor.skeleton.name
  if os.path.isdir(path):
    model_dir = path
    path = run_dir.resolve_model_path(path)
  elif path.endswith(".keras") and os.path.isfile(path):
    model_dir = os.path.dirname(path)
  else:
    raise FileNotFoundError(f"{path}: not a .keras file, a training run's "
                            f"model_dir, a SavedModel or an ONNX export")
  config = os.path.join(model_dir, run_dir.CONFIG_FILE)
  skeleton = (run_dir.read_train_config(model_dir).get("skeleton") or None
              if os.path.isfile(config) else None)
  return run_dir.load_keras_model(path), skeleton


def quick_train(work_dir, steps, num_frames=2048, layout="icvl", log=print):
  """Trains a small JGR-P2O model on synthetic frames; returns its model_dir.

  Rerunning with the same ``work_dir`` resumes the run, or does nothing when
  it has reached ``steps``.

  Args:
    work_dir: folder for the frames (``prepare_synthetic_split``) and
      ``{work_dir}/model``.
    steps: training steps of ``QUICK_TRAIN["batch_size"]`` frames.
    num_frames: synthetic training frames (seed 0).
    layout: joint layout of the frames.
    log: prints the trainer's line per epoch.
  """
  train_dir = data_preparation.prepare_synthetic_split(
      work_dir, "train", num_frames, seed=0, layout=layout)
  steps_per_epoch = num_frames // QUICK_TRAIN["batch_size"]
  config = train_config.TrainConfig(
      train_dir=train_dir, model_dir=os.path.join(work_dir, "model"),
      epochs=math.ceil(steps / steps_per_epoch), max_steps=steps,
      progress_bar=False, **QUICK_TRAIN)
  trainer.train(config, log=log)
  return config.model_dir


def run_on_records(model, data_dir, num_frames=None, batch_size=32):
  """Runs a model over the first crops of a prepared split, in frame order.

  Args:
    model: a callable as ``load_model`` returns.
    data_dir: a split prepared by data_prep.
    num_frames: how many crops; all of the split when None.
    batch_size: crops per forward pass.

  Returns:
    dict of NumPy arrays over the N crops: "frame_id" (N,), "depth"
    (N, S, S, 1) normalized crops, "pred_uvz"/"gt_uvz" (N, J, 3) normalized
    UVZ (the project's convention) of the last stack and the labels,
    "pred_xyz"/"gt_xyz" (N, J, 3) full-frame joints in mm.

  Raises:
    ValueError: the model predicts another number of joints than the split
      has.
  """
  num_joints = records_manifest.read_manifest(data_dir)["num_joints"]
  columns = {k: [] for k in ("frame_id", "depth", "pred_uvz", "gt_uvz",
                             "pred_xyz", "gt_xyz")}
  dataset = input_pipeline.make_dataset(data_dir, batch_size=batch_size,
                                        training=False)
  if num_frames is not None:
    dataset = dataset.take(math.ceil(num_frames / batch_size))
  for batch in dataset:
    batch = {k: v.numpy() for k, v in batch.items()}
    uvz = geometry.convert_uvz(
        np.asarray(model(batch["depth"], training=False)[-1]["joints_uvz"]),
        batch["depth"].shape[1], model.coordinate_convention)
    if uvz.shape[1] != num_joints:
      raise ValueError(f"the model predicts {uvz.shape[1]} joints but "
                       f"{data_dir} has {num_joints}")
    columns["frame_id"].append(batch["frame_id"].astype(str))
    columns["depth"].append(batch["depth"])
    columns["pred_uvz"].append(uvz)
    columns["gt_uvz"].append(batch["joints_uvz"])
    columns["pred_xyz"].append(geometry.normalized_to_xyz(
        uvz.astype(np.float64), batch["affine"].astype(np.float64),
        batch["centre_xyz"][:, 2], batch["cube"],
        batch["camera"][:, None, :].astype(np.float64),
        crop_size=batch["depth"].shape[1]))
    columns["gt_xyz"].append(batch["joints_xyz"])
  return {k: np.concatenate(v)[:num_frames] for k, v in columns.items()}


def full_frames_of_records(data_dir, num_frames):
  """The raw frames the first crops of a prepared split were cut from.

  The split's manifest names the raw dataset (``dataset``, ``data_dir``,
  ``split``, ``reader_kwargs``); each record's ``frame_id`` names its frame
  there. Frames that data_prep skipped have no record and are not read.

  Args:
    data_dir: a split prepared by data_prep, whose raw dataset is still
      where it was prepared from.
    num_frames: how many of its first records.

  Returns:
    (frames, reference_centres): a list of ``datasets.frame.Frame``, in
    record order, and (N, 3) float32 the records' ``centre_xyz``, the
    centres the pose crops were cut around.

  Raises:
    DatasetError: the raw dataset cannot be read, or a record's frame is
      not in it.
  """
  manifest = records_manifest.read_manifest(data_dir)
  reader = dataset_profiles.get_reader(
      manifest["dataset"], manifest["data_dir"], manifest["split"],
      **(manifest.get("reader_kwargs") or {}))
  index = {frame_id: i for i, frame_id in enumerate(reader.frame_ids)}
  records = next(iter(input_pipeline.make_dataset(
      data_dir, batch_size=num_frames, training=False)))
  frames = []
  for frame_id in records["frame_id"].numpy().astype(str):
    if frame_id not in index:
      raise frame_lib.DatasetError(
          f"not in the {manifest['dataset']} {manifest['split']} split the "
          f"records {data_dir} were prepared from", path=manifest["data_dir"],
          frame=frame_id)
    frames.append(reader.read(index[frame_id]))
  return frames, records["centre_xyz"].numpy()


def hand_finder(model):
  """The Predictor behind ``model`` if its export finds the hand, else None.

  Args:
    model: what ``load_model`` returned: an export's ``inference.CropModel``
      or a Keras model.
  """
  predictor = getattr(model, "predictor", None)
  return predictor if predictor is not None and predictor.finds_hand else None


def find_hands(predictor, frames, reference_centres, batch_size=16):
  """An export finding the hand in full frames, no centre given.

  Args:
    predictor: an ``inference.Predictor`` whose export finds the hand
      (``finds_hand``: exported with ``--centre_refiner_dir``).
    frames: ``datasets.frame.Frame`` s of one camera's image size, with
      their joints.
    reference_centres: (N, 3) centres in mm the pose crops are cut around
      (``full_frames_of_records``).
    batch_size: frames per call of the export.

  Returns:
    dict of NumPy arrays over the N frames: "frame_id" (N,); "hand_found"
    (N,) bool; "centre_xyz", "centre_uvd" (N, 3), the centre the export
    used; "rough_centre_xyz" (N, 3), ``centres.compute_centre`` on every
    ``GRAPH_PIXEL_STRIDE``-th pixel with the export's pose cube, as the
    export starts; "reference_centre_xyz" (N, 3); "centre_error_mm",
    "rough_centre_error_mm" (N,), their distances to the reference centre;
    "joints_xyz", "joints_uvd" (N, J, 3) predicted; "joint_error_mm" (N,),
    the mean distance to the frame's true joints. Where no hand was found
    the centre, joints and their errors are NaN; where the frame has no
    depth the rough centre and its error are too.

  Raises:
    ValueError: the export does not find the hand.
  """
  if not predictor.finds_hand:
    raise ValueError(f"{predictor.model_dir}: an export without a centre "
                     f"refiner (export it with --centre_refiner_dir)")
  columns = {k: [] for k in ("hand_found", "centre_xyz", "joints_xyz",
                             "joints_uvd")}
  for start in range(0, len(frames), batch_size):
    batch = frames[start:start + batch_size]
    outputs = predictor.predict(
        np.stack([f.depth_mm for f in batch]), None,
        np.stack([f.camera.intrinsics for f in batch]))
    for k, column in columns.items():
      column.append(outputs[k])
  found = {k: np.concatenate(v) for k, v in columns.items()}
  missing = ~found["hand_found"]
  for k in ("centre_xyz", "joints_xyz", "joints_uvd"):
    found[k] = found[k].astype(np.float64)
    found[k][missing] = np.nan
  found["centre_uvd"] = np.stack([
      geometry.xyz_to_uvd(c, f.camera)
      for c, f in zip(found["centre_xyz"], frames)])
  found["rough_centre_xyz"] = np.stack(
      [_rough_centre(f, predictor.cube_mm) for f in frames])
  found["reference_centre_xyz"] = np.asarray(reference_centres, np.float64)
  for name, key in (("centre_error_mm", "centre_xyz"),
                    ("rough_centre_error_mm", "rough_centre_xyz")):
    found[name] = np.linalg.norm(
        found[key] - found["reference_centre_xyz"], axis=-1)
  found["joint_error_mm"] = np.linalg.norm(
      found["joints_xyz"] - np.stack([f.joints_xyz for f in frames]),
      axis=-1).mean(axis=-1)
  found["frame_id"] = np.array([f.frame_id for f in frames])
  return found


def _rough_centre(frame, cube_mm):
  """The export's rough centre of a frame in NumPy; NaN without depth."""
  try:
    return centres.compute_centre(frame.depth_mm, frame.camera,
                                  cube_mm=cube_mm,
                                  pixel_stride=centres.GRAPH_PIXEL_STRIDE)
  except frame_lib.DatasetError:
    return np.full(3, np.nan)


def format_found_hands(found):
  """``find_hands``' result as printed lines: one per frame, then the means.

  A frame without depth has no rough centre ("–"); one in which the export
  found no hand says so instead of its centre and joint errors.
  """
  lines = [f"{'frame':<28}{'rough centre':>14}{'export centre':>15}"
           f"{'joints':>10}  (mm from the records' centre / the true joints)"]
  for i, frame_id in enumerate(found["frame_id"]):
    rough = found["rough_centre_error_mm"][i:i + 1]
    row = f"{frame_id:<28}{_millimetres(rough, 14)}"
    if found["hand_found"][i]:
      row += (f"{found['centre_error_mm'][i]:>15.1f}"
              f"{found['joint_error_mm'][i]:>10.1f}")
    else:
      row += "  no hand found"
    lines.append(row)
  hands = int(found["hand_found"].sum())
  lines.append(
      f"{'mean':<28}{_millimetres(found['rough_centre_error_mm'], 14)}"
      f"{_millimetres(found['centre_error_mm'], 15)}"
      f"{_millimetres(found['joint_error_mm'], 10)}  (hand found in {hands} "
      f"of {len(found['frame_id'])} frames)")
  return "\n".join(lines)


def _millimetres(values, width):
  """The mean of the finite values, right-aligned; "–" when there is none."""
  values = np.asarray(values)[np.isfinite(values)]
  return f"{values.mean():>{width}.1f}" if values.size else f"{'–':>{width}}"


def stack_outputs(model, depth_crop):
  """Every stack's outputs for one (S, S, 1) crop, without the batch axis.

  Returns:
    list, one dict per stack, of NumPy arrays: "joints_uvz" (J, 3),
    "voting_maps" (h, w, J) and, where the model predicts them,
    "offset_maps" (h, w, J, 3), in the model's coordinate convention.
  """
  outputs = model(np.asarray(depth_crop, np.float32)[None], training=False)
  return [{k: np.asarray(v)[0] for k, v in stack.items()} for stack in outputs]


def joint_index(skeleton, joint):
  """The index of ``joint``, a joint name or an index, in a skeleton."""
  names = skeletons.get_skeleton(skeleton).joint_names
  if isinstance(joint, str) and not joint.isdigit():
    if joint not in names:
      raise ValueError(f"no joint {joint!r} in the {skeleton} skeleton: "
                       f"{', '.join(names)}")
    return names.index(joint)
  index = int(joint)
  if not 0 <= index < len(names):
    raise ValueError(f"joint index {index} is not in 0..{len(names) - 1}")
  return index
