"""Evaluation reports: metrics of several methods on one test set, as a dict.

A report is plain JSON-able data, so the CLI writes it as is, and plots,
tables and notebooks read it back:

  {"dataset": "nyu", "layout": skeleton name,
   "labels": the ground-truth file,               # when there is one
   "model": path, "records": folder,              # model mode
   "camera": {"fx", "fy", "cx", "cy"},            # uvd → xyz, when one is
   "num_frames": N, "num_joints": J, "joint_names": [...],
   "methods": [{"name",
                "path",                           # its predictions' file
                "mean_error_mm",
                "per_joint_error_mm": {joint name: mm, ...},
                "highest_error_joint": {"name", "mean_error_mm"},
                "success_curves": {"thresholds_mm": [...],
                                   "max_joint_error": [fraction, ...],
                                   "mean_joint_error": [fraction, ...]},
                "worst_frames": [{"index", "frame_id", "max_joint_error_mm"},
                                 ...]}, ...]}

A success curve is the fraction of frames whose largest ("max_joint_error",
the paper's Figure 4) or mean joint error is at most each threshold; the
worst frames are those with the largest max joint error, ``index`` their
place in the test order (the line of a prediction file) and ``frame_id``
the record's frame id (model mode) or ``line N`` (file mode). Keys without a
value are left out.

``evaluate_arrays`` builds it from xyz arrays (the model mode);
``evaluate_prediction_files`` reads uvd files first (the file mode).
"""

import json
import os
import weakref

import numpy as np

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import metrics
from jgr_p2o_tf import records_manifest
from jgr_p2o_tf import skeletons
from jgr_p2o_tf import visualize
from jgr_p2o_tf.datasets import icvl

# How many of the worst frames each method lists, for a look at failures.
NUM_WORST_FRAMES = 10


def method_result(name, pred_xyz, gt_xyz, joint_names, path=None,
                  thresholds=metrics.DEFAULT_THRESHOLDS_MM, frame_ids=None):
  """The report entry of one method.

  Args:
    name: the method's name in tables and legends.
    pred_xyz: (N, J, 3) predicted joints in mm.
    gt_xyz: (N, J, 3) true joints in mm.
    joint_names: J names, the keys of the per-joint errors.
    path: the prediction file, if there is one.
    thresholds: thresholds of the success curves in mm.
    frame_ids: (N,) the frames' ids; by default ``line N`` of a file.
  """
  errors = metrics.joint_errors(pred_xyz, gt_xyz)
  if errors.shape[1] != len(joint_names):
    raise ValueError(f"{name}: {errors.shape[1]} joints but "
                     f"{len(joint_names)} joint names")
  worst = metrics.max_joint_errors(errors)
  per_joint = metrics.per_joint_errors(errors)
  highest = int(np.argmax(per_joint))
  frame_id = ((lambda i: str(frame_ids[i])) if frame_ids is not None
              else (lambda i: f"line {i + 1}"))
  return _without_none({
      "name": name,
      "path": path,
      "mean_error_mm": metrics.mean_error(errors),
      "per_joint_error_mm": dict(zip(joint_names, per_joint.tolist())),
      "highest_error_joint": {"name": joint_names[highest],
                              "mean_error_mm": float(per_joint[highest])},
      "success_curves": {
          "thresholds_mm": np.asarray(thresholds, np.float64).tolist(),
          "max_joint_error": metrics.success_curve(worst,
                                                   thresholds).tolist(),
          "mean_joint_error": metrics.mean_joint_success_curve(
              errors, thresholds).tolist(),
      },
      "worst_frames": [
          {"index": int(i), "frame_id": frame_id(i),
           "max_joint_error_mm": float(worst[i])}
          for i in metrics.worst_frames(worst, NUM_WORST_FRAMES)],
  })


def _without_none(entries):
  """A dict less its None values: a report leaves out what it has not."""
  return {k: v for k, v in entries.items() if v is not None}


def evaluate_arrays(pred_xyz, gt_xyz, names, dataset, paths=None,
                    labels_path=None, camera=None,
                    thresholds=metrics.DEFAULT_THRESHOLDS_MM, frame_ids=None):
  """A report comparing several methods' predictions with the ground truth.

  Args:
    pred_xyz: sequence of (N, J, 3) predictions in mm, one per method.
    gt_xyz: (N, J, 3) ground truth in mm.
    names: one name per method.
    dataset: skeleton layout name (``skeletons.SKELETONS``) for joint names.
    paths: the prediction file of each method, or None.
    labels_path: the ground-truth file, or None.
    camera: the Camera that turned uvd into xyz, or None.
    thresholds: thresholds of the success curves in mm.
    frame_ids: (N,) the frames' ids, or None.

  Returns:
    The report dict described in the module docstring.
  """
  skeleton = skeletons.get_skeleton(dataset)
  gt_xyz = np.asarray(gt_xyz)
  if gt_xyz.ndim != 3 or gt_xyz.shape[1:] != (skeleton.num_joints, 3):
    raise ValueError(
        f"ground truth has shape {gt_xyz.shape}, expected (N, "
        f"{skeleton.num_joints}, 3) for the {skeleton.name} layout")
  paths = [None] * len(pred_xyz) if paths is None else list(paths)
  if not len(pred_xyz) == len(names) == len(paths):
    raise ValueError(f"{len(pred_xyz)} predictions, {len(names)} names and "
                     f"{len(paths)} paths; expected as many of each")
  return _without_none({
      "dataset": skeleton.name,
      "layout": skeleton.name,
      "labels": labels_path,
      "camera": None if camera is None else {
          "fx": camera.fx, "fy": camera.fy, "cx": camera.cx, "cy": camera.cy},
      "num_frames": int(gt_xyz.shape[0]),
      "num_joints": skeleton.num_joints,
      "joint_names": list(skeleton.joint_names),
      "methods": [
          method_result(name, pred, gt_xyz, skeleton.joint_names, path,
                        thresholds, frame_ids)
          for pred, name, path in zip(pred_xyz, names, paths)],
  })


def default_name(path):
  """A method's name from its file: the base name without extension."""
  return os.path.splitext(os.path.basename(path))[0]


def evaluate_prediction_files(dataset, labels_path, prediction_paths,
                              names=None):
  """The report of uvd prediction files against a uvd label file.

  Args:
    dataset: "nyu", "icvl", "msra" or "synthetic": the joint layout and the
      evaluation intrinsics (``metrics.evaluation_camera``).
    labels_path: ground truth in the community text format.
    prediction_paths: prediction files in the same format and frame order.
    names: one name per file; by default the files' base names.

  Returns:
    The report dict described in the module docstring.

  Raises:
    ValueError: unknown dataset, wrong number of names, or a file that is
      malformed (``metrics.PredictionFileError``) or has other frame or joint
      counts than the labels.
    OSError: a file that cannot be read.
  """
  camera = metrics.evaluation_camera(dataset)
  names = ([default_name(p) for p in prediction_paths] if names is None
           else list(names))
  if len(names) != len(prediction_paths):
    raise ValueError(f"{len(names)} names for {len(prediction_paths)} "
                     f"prediction files")
  skeleton, gt_uvd = _read_labels(dataset, labels_path)
  num_joints = gt_uvd.shape[1]
  pred_xyz = []
  for path in prediction_paths:
    pred_uvd = metrics.read_uvd_file(path, num_joints)
    if len(pred_uvd) != len(gt_uvd):
      raise metrics.PredictionFileError(
          f"{path}: {len(pred_uvd)} frames, but the labels {labels_path} "
          f"have {len(gt_uvd)}")
    pred_xyz.append(geometry.uvd_to_xyz(pred_uvd, camera))
  report = evaluate_arrays(
      pred_xyz, geometry.uvd_to_xyz(gt_uvd, camera), names, skeleton,
      paths=list(prediction_paths), labels_path=labels_path, camera=camera)
  report["dataset"] = dataset
  return report


def _read_labels(dataset, labels_path):
  """(layout name, (N, J, 3) uvd) of a label file of ``dataset``.

  Synthetic data comes in any layout (its camera.json names it), so its
  label file's joint count names the layout, as for the synthetic reader.
  """
  if dataset != dataset_profiles.SYNTHETIC.name:
    skeleton = dataset_profiles.get_profile(dataset).skeleton
    return skeleton, metrics.read_uvd_file(
        labels_path, skeletons.get_skeleton(skeleton).num_joints)
  gt_uvd = metrics.read_uvd_file(labels_path)
  layout = icvl.LAYOUTS_BY_JOINT_COUNT.get(gt_uvd.shape[1])
  if layout is None:
    raise metrics.PredictionFileError(
        f"{labels_path}: {gt_uvd.shape[1]} joints a line; synthetic labels "
        f"have one of {sorted(icvl.LAYOUTS_BY_JOINT_COUNT)}")
  return layout, gt_uvd


def _success_at(method, threshold_mm):
  curves = method["success_curves"]
  return float(np.interp(threshold_mm, curves["thresholds_mm"],
                         curves["max_joint_error"]))


def format_table(report):
  """A plain-text table: mean error, highest-error joint, success rates."""
  # ASCII only, so that the table prints on any console encoding.
  rows = [("method", "mean (mm)", "highest-error joint (mm)", "<=20 mm",
           "<=40 mm")]
  for method in report["methods"]:
    highest = method["highest_error_joint"]
    rows.append((
        method["name"], f"{method['mean_error_mm']:.3f}",
        f"{highest['name']} {highest['mean_error_mm']:.2f}",
        f"{100 * _success_at(method, 20.0):.1f}%",
        f"{100 * _success_at(method, 40.0):.1f}%"))
  widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
  title = (f"{report['dataset']}: {report['num_frames']} frames, "
           f"{report['num_joints']} joints; success = a frame's max joint "
           "error <= t")
  lines = [title] + ["  ".join(cell.ljust(w) if c == 0 else cell.rjust(w)
                               for c, (cell, w) in enumerate(zip(row, widths)))
                     for row in rows]
  return "\n".join(lines)


def _make_parent(path):
  parent = os.path.dirname(path)
  if parent:
    os.makedirs(parent, exist_ok=True)


def write_report_json(report, path):
  """Writes the report as indented JSON, creating the folder if needed."""
  _make_parent(path)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(report, f, indent=1)
    f.write("\n")


def read_report_json(path):
  """Reads a report written by ``write_report_json``."""
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def plot_report(report, title=None):
  """The comparison figure (success curves and per-joint errors) of a report."""
  if title is None:
    title = (f"{report['dataset'].upper()} test set "
             f"({report['num_frames']} frames, {report['num_joints']} joints)")
  return visualize.plot_comparison(
      report["methods"], joint_names=report["joint_names"], title=title)


def save_report_plot(report, path, title=None, dpi=120):
  """Saves ``plot_report``'s figure as an image (format from the suffix)."""
  _make_parent(path)
  plot_report(report, title).savefig(path, dpi=dpi)


# The compiled forward pass of each Keras model ``predict_records`` has run.
_PREDICT_FUNCTIONS = weakref.WeakKeyDictionary()


def predict_records(model, data_dir, *, batch_size=64, subjects=None,
                    shards=None):
  """Runs a model over a prepared split and maps back to full frames.

  Args:
    model: a JGRP2OModel (``model.build_model`` or a loaded one), or an
      exported model's ``inference.CropModel``; its joints are mapped back
      in its coordinate convention.
    data_dir: a split prepared by data_prep (manifest.json and shards).
    batch_size: frames per forward pass.
    subjects: MSRA subjects to keep, or None for all.
    shards: shard files to keep, or None for all.

  Returns:
    dict of NumPy arrays over the frames in order: "frame_id" (N,),
    "pred_uvz" (N, J, 3) normalized (the project's convention, as the
    records' labels), "pred_uvd"/"gt_uvd" (N, J, 3),
    "pred_xyz"/"gt_xyz" (N, J, 3) mm with the records' camera, and
    "intrinsics" (N, 4).
  """
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import input_pipeline  # pylint: disable=g-import-not-at-top
  predict = _PREDICT_FUNCTIONS.get(model)
  if predict is None:
    predict = lambda depth: model(depth, training=False)[-1]["joints_uvz"]
    if isinstance(model, keras.Model):
      # One traced function per model: the trainer validates the same model
      # every epoch, and a fresh tf.function each time retraces each time.
      # It holds the model weakly, so that the cache does not keep it alive.
      model_ref = weakref.ref(model)
      predict = tf.function(
          lambda depth: model_ref()(depth, training=False)[-1]["joints_uvz"])
      _PREDICT_FUNCTIONS[model] = predict
  columns = {k: [] for k in ("frame_id", "pred_uvz", "pred_uvd", "gt_uvd",
                             "pred_xyz", "gt_xyz", "intrinsics")}
  dataset = input_pipeline.make_dataset(data_dir, batch_size=batch_size,
                                        training=False, subjects=subjects,
                                        shards=shards)
  for batch in input_pipeline.batches(dataset, data_dir):
    batch = {k: v.numpy() for k, v in batch.items()}
    uvz = geometry.convert_uvz(np.asarray(predict(batch["depth"]), np.float64),
                               batch["depth"].shape[1],
                               model.coordinate_convention)
    uvd = geometry.normalized_to_uvd(
        uvz, batch["affine"].astype(np.float64), batch["centre_xyz"][:, 2],
        batch["cube"], crop_size=batch["depth"].shape[1])
    intrinsics = batch["camera"][:, None, :].astype(np.float64)
    columns["frame_id"].append(batch["frame_id"].astype(str))
    columns["pred_uvz"].append(uvz)
    columns["pred_uvd"].append(uvd)
    columns["gt_uvd"].append(batch["joints_uvd"])
    columns["pred_xyz"].append(geometry.uvd_to_xyz(uvd, intrinsics))
    columns["gt_xyz"].append(batch["joints_xyz"])
    columns["intrinsics"].append(batch["camera"])
  return {k: np.concatenate(v) for k, v in columns.items()}


def check_agreement(dataset, data_dir, manifest, model_config, model_path):
  """Raises ValueError naming what disagrees: --dataset, records, model.

  The model mode measures with ``dataset``'s evaluation camera and reports
  under the records' joint names, so the three must be of one dataset and
  one joint layout; a model of another layout with as many joints would
  otherwise give numbers under the wrong names.

  Args:
    dataset: the --dataset flag.
    data_dir: the prepared split; ``manifest`` its manifest.
    model_config: the model's build arguments (``run_dir.read_model_config``
      of ``model_path``) or an export's metadata: its "skeleton" and
      "num_joints".
    model_path: the .keras file or export.
  """
  problems = []
  try:
    records_manifest.check_dataset(data_dir, manifest, dataset)
  except ValueError as e:
    problems.append(str(e))
  skeleton = model_config.get("skeleton")
  layout = skeleton.get("name") if isinstance(skeleton, dict) else skeleton
  num_joints = model_config.get("num_joints")
  if (num_joints != manifest["num_joints"] or
      layout not in (None, manifest["skeleton"])):
    problems.append(
        f"the model {model_path} predicts {num_joints} {layout or 'unnamed'} "
        f"joints but the records hold {manifest['num_joints']} "
        f"{manifest['skeleton']} joints")
  if problems:
    raise ValueError("; ".join(problems))


def evaluate_predictions(predictions, dataset, skeleton, name, *,
                         model_path=None, records_dir=None,
                         predictions_path=None, labels_path=None):
  """The report of ``predict_records`` output, measured like the file mode.

  For datasets with an evaluation toolkit (NYU, ICVL, MSRA) both predicted
  and true uvd go through its intrinsics (the profile's
  ``evaluation_camera``), exactly as when the written prediction file is
  evaluated in file mode; other data use the records' own cameras (the
  report's "camera" when they all share one).

  Args:
    predictions: ``predict_records``' arrays.
    dataset: the dataset's name; ``skeleton`` its records' layout.
    name: the method's name.
    model_path, records_dir: what was evaluated, for the report.
    predictions_path, labels_path: the text files of the predictions and
      the ground truth, when they were written.
  """
  camera = dataset_profiles.get_profile(dataset).evaluation_camera
  if camera is not None:
    pred_xyz = geometry.uvd_to_xyz(predictions["pred_uvd"], camera)
    gt_xyz = geometry.uvd_to_xyz(predictions["gt_uvd"].astype(np.float64),
                                 camera)
  else:
    pred_xyz, gt_xyz = predictions["pred_xyz"], predictions["gt_xyz"]
  report = evaluate_arrays(
      [pred_xyz], gt_xyz, [name], skeleton, camera=camera,
      paths=[predictions_path], labels_path=labels_path,
      frame_ids=predictions["frame_id"])
  if camera is None:
    intrinsics = np.unique(np.asarray(predictions["intrinsics"]), axis=0)
    if len(intrinsics) == 1:
      report["camera"] = dict(zip(("fx", "fy", "cx", "cy"),
                                  map(float, intrinsics[0][:4])))
  report["dataset"] = dataset
  report.update(_without_none({"model": model_path, "records": records_dir}))
  return report
