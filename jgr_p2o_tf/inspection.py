"""What notebooks/inspect_voting_maps.ipynb needs besides its figures.

``load_model`` opens what the notebook is pointed at: a ``.keras`` file, a
training run's model_dir, or an exported SavedModel or ONNX export (on any
of ``inference.RUNTIMES``). ``quick_train`` makes a small model on synthetic
frames when there is none, with the library's trainer (its frames from
``data_preparation.prepare_synthetic_split``).
``run_on_records`` runs a model over the first crops of a prepared split and
maps its joints back to millimetres; ``stack_outputs`` gives every stack's
outputs for one crop. The figures are ``jgr_p2o_tf.visualize``'s.
"""

import math
import os

import numpy as np

from jgr_p2o_tf import data_preparation
from jgr_p2o_tf import geometry
from jgr_p2o_tf import inference
from jgr_p2o_tf import input_pipeline
from jgr_p2o_tf import records_manifest
from jgr_p2o_tf import run_dir
from jgr_p2o_tf import skeletons
from jgr_p2o_tf import train_config
from jgr_p2o_tf import trainer

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
