"""Exports a trained model as a TensorFlow SavedModel for serving.

The SavedModel holds the model's weights, its metadata and two signatures,
all TensorFlow graph (no Python is needed to serve it):

  * ``serving_default`` (full frame): ``depth`` (B, H, W) float32 mm, any
    H × W, 0 for holes; ``centre_xyz`` (B, 3) float32 hand centres in mm;
    ``intrinsics`` (B, 4) float32 (fx, fy, cx, cy) → ``joints_xyz`` (B, J, 3)
    mm, ``joints_uvd`` (B, J, 3) full-frame pixels and mm, ``joints_uvz``
    (B, J, 3) normalized. The cube crop runs inside the graph (the
    ``geometry`` functions: xyz_to_uvd → crop_affine → crop_depth_in_graph →
    network → convert_uvz → normalized_to_uvd → uvd_to_xyz) with the cube
    edges fixed at export.
  * ``crop``: ``depth_crop`` (B, S, S, 1) float32 normalized crop →
    ``joints_uvz`` (B, J, 3) and ``voting_maps`` (B, S/4, S/4, J) of the last
    stack.

Both are also attributes of the loaded object (``loaded.full_frame(depth,
centre_xyz, intrinsics)``, ``loaded.crop(depth_crop)``), which refuse a
tensor of the wrong dtype or rank with a message naming the argument.
Inside the graph, ``tf.ensure_shape`` and assertions refuse what a signature
call lets through (signatures check dtypes only): a wrong rank or crop size,
batch sizes that disagree, empty frames, a centre not in front of the camera.

Both return ``joints_uvz`` in the project's coordinate convention
(``geometry.COORDINATE_CONVENTIONS``) whatever the network's: a model in the
authors' convention (an imported checkpoint) has its joints converted in the
graph, and the metadata's ``coordinate_convention`` names the network's.

The metadata (``METADATA_FILE``: skeleton, joint names and bones, cube, crop
size, default camera, coordinate convention, ...) is a JSON asset of the SavedModel
(``loaded.metadata_file.asset_path``) and a copy beside it,
``{export_dir}/metadata.json``.

Speed: the network (the part of both signatures behind the crop) is one
``tf.function(jit_compile=True)``. The in-graph crop stays outside XLA:
``ImageProjectiveTransformV3`` has no XLA kernel, and outside XLA any frame
size is served without recompiling (XLA compiles once per batch size, not per
H × W). Batch normalization is folded into the preceding convolutions
(``fold_batch_norm``): loaded variables are not constants, so neither
grappler nor XLA can fold it at run time.
"""

import dataclasses
import json
import os
import shutil

import numpy as np

from jgr_p2o_tf import geometry
from jgr_p2o_tf import skeletons

SIGNATURE_FULL_FRAME = "serving_default"
SIGNATURE_CROP = "crop"
METADATA_FILE = "metadata.json"
FORMAT = "jgr_p2o_tf.saved_model"
FORMAT_VERSION = 1
MODEL_CHOICES = ("best", "last")
MIXED_PRECISION = ("none", "bfloat16", "float16")


def fold_batch_norm(model):
  """A copy of a functional model with each Conv2D → BN pair as one Conv2D.

  With inference statistics, BN is the per-channel affine map
  ``y = γ (x − μ) / √(σ² + ε) + β``, so a convolution whose output feeds only
  a BN becomes one convolution with kernel ``W γ/√(σ² + ε)`` and bias
  ``(b − μ) γ/√(σ² + ε) + β``. The project's conv_bn units are such pairs
  (post-activation: the ReLU follows the BN). The BNs inside the JGR layer
  are not top-level layers and stay as they are.

  The copy keeps the layers' dtype policies, so a mixed precision model gives
  a mixed precision copy. Its outputs equal the model's in inference mode up
  to float rounding; it is for inference only.

  Args:
    model: a functional keras.Model.

  Returns:
    (folded model, number of BN layers folded).
  """
  import keras  # pylint: disable=g-import-not-at-top
  bn_of_conv = {conv.name: bn for conv, bn in _conv_bn_pairs(model)}
  folded_bns = {bn.name for bn in bn_of_conv.values()}

  def clone_layer(layer):
    config = layer.get_config()
    if layer.name in bn_of_conv:
      config["use_bias"] = True
    return layer.__class__.from_config(config)

  def call_layer(layer, *args, **kwargs):
    # A folded BN is left out of the copy's graph altogether.
    if layer.name in folded_bns:
      return args[0]
    return layer(*args, **kwargs)

  from jgr_p2o_tf import model as model_lib  # pylint: disable=g-import-not-at-top
  clone = keras.models.clone_model(model, clone_function=clone_layer,
                                   call_function=call_layer)
  # Keep the one-dict-per-stack list of build_model's class.
  folded = model_lib.StackOutputsModel(clone.input, clone.output,
                                       name=model.name)
  for layer in model.layers:
    if layer.name in folded_bns or not layer.weights:
      continue
    target = folded.get_layer(layer.name)
    if layer.name in bn_of_conv:
      target.set_weights(_folded_conv_weights(layer, bn_of_conv[layer.name]))
    else:
      target.set_weights(layer.get_weights())
  return folded, len(bn_of_conv)


def _conv_bn_pairs(model):
  """(Conv2D, BatchNormalization) layer pairs that can be folded."""
  import keras  # pylint: disable=g-import-not-at-top
  # Keras keeps a functional graph's wiring in its layers' nodes.
  # pylint: disable=protected-access
  pairs = []
  for bn in model.layers:
    if (not isinstance(bn, keras.layers.BatchNormalization) or
        len(bn._inbound_nodes) != 1 or
        len(bn._inbound_nodes[0].parent_nodes) != 1):
      continue
    conv = bn._inbound_nodes[0].parent_nodes[0].operation
    # A linear convolution, channels last on both sides, read by nothing but
    # the BN: the fold changes its output.
    if (isinstance(conv, keras.layers.Conv2D) and
        conv.get_config()["activation"] == "linear" and
        conv.data_format == "channels_last" and bn.axis in (-1, 3) and
        len(conv._inbound_nodes) == 1 and len(conv._outbound_nodes) == 1):
      pairs.append((conv, bn))
  return pairs


def _folded_conv_weights(conv, bn):
  """[kernel, bias] of the convolution that does conv then bn (inference)."""
  kernel = np.asarray(conv.kernel, np.float64)
  bias = (np.asarray(conv.bias, np.float64) if conv.use_bias
          else np.zeros(kernel.shape[-1]))
  gamma = (np.asarray(bn.gamma, np.float64) if bn.scale
           else np.ones(kernel.shape[-1]))
  beta = (np.asarray(bn.beta, np.float64) if bn.center
          else np.zeros(kernel.shape[-1]))
  mean = np.asarray(bn.moving_mean, np.float64)
  scale = gamma / np.sqrt(np.asarray(bn.moving_variance, np.float64) +
                          bn.epsilon)
  return [(kernel * scale).astype(np.float32),
          ((bias - mean) * scale + beta).astype(np.float32)]


def output_spec(model):
  """The model's symbolic outputs: a list with one dict per stack."""
  import keras  # pylint: disable=g-import-not-at-top
  size = int(model.inputs[0].shape[1])
  spec = model.compute_output_spec(keras.KerasTensor((None, size, size, 1)))
  return [spec] if isinstance(spec, dict) else list(spec)


def build_metadata(model, *, skeleton, cube_mm, camera=None, dataset=None,
                   dtype_policy=None, jit_compile=True, batch_norm_folded=0,
                   source=None, coordinate_convention="project"):
  """The metadata dict stored with a SavedModel (see ``export_saved_model``)."""
  skeleton = skeletons.get_skeleton(skeleton)
  cube = geometry.cube_vector(cube_mm)
  crop_size = int(model.inputs[0].shape[1])
  stacks = output_spec(model)
  last = stacks[-1]
  num_joints = int(last["joints_uvz"].shape[1])
  if num_joints != skeleton.num_joints:
    raise ValueError(f"The model predicts {num_joints} joints but skeleton "
                     f"{skeleton.name!r} has {skeleton.num_joints}.")
  grid = tuple(int(s) for s in last["voting_maps"].shape[1:3])
  return {
      "format": FORMAT,
      "format_version": FORMAT_VERSION,
      "skeleton": skeleton.name,
      "num_joints": num_joints,
      "joint_names": list(skeleton.joint_names),
      "bones": [list(b) for b in skeleton.bones],
      "cube_mm": [float(c) for c in cube],
      "crop_size": crop_size,
      "output_grid": list(grid),
      "num_stacks": len(stacks),
      "coordinate_convention": geometry.check_convention(
          coordinate_convention),
      "dataset": dataset,
      "camera": None if camera is None else dataclasses.asdict(camera),
      "dtype_policy": dtype_policy or model.dtype_policy.name,
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
                  "voting_maps": f"(B, {grid[0]}, {grid[1]}, {num_joints}) "
                                 "voting weights of the last stack"}}},
  }


def _serving_module(model, cube, crop_size, metadata_path, jit_compile,
                    convention):
  """The tf.Module that is saved: weights, metadata asset, two functions."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  module = tf.Module(name="jgr_p2o")
  # The variables, not the Keras model: saving then needs nothing of Keras,
  # and the functions below capture exactly these.
  module.model_variables = list(model.variables)
  module.metadata_file = tf.saved_model.Asset(metadata_path)

  def predict(depth_crop):
    outputs = model(depth_crop, training=False)[-1]
    joints_uvz = geometry.convert_uvz(outputs["joints_uvz"], crop_size,
                                      convention)
    return joints_uvz, outputs["voting_maps"]

  predict = tf.function(predict, jit_compile=jit_compile)

  @tf.function(input_signature=[
      tf.TensorSpec((None, crop_size, crop_size, 1), tf.float32,
                    name="depth_crop")])
  def crop(depth_crop):
    # Signature calls check dtypes only; this checks the shape at run time.
    depth_crop = tf.ensure_shape(depth_crop, (None, crop_size, crop_size, 1),
                                 name="depth_crop")
    joints_uvz, voting_maps = predict(depth_crop)
    return {"joints_uvz": joints_uvz, "voting_maps": voting_maps}

  @tf.function(input_signature=[
      tf.TensorSpec((None, None, None), tf.float32, name="depth"),
      tf.TensorSpec((None, 3), tf.float32, name="centre_xyz"),
      tf.TensorSpec((None, 4), tf.float32, name="intrinsics")])
  def full_frame(depth, centre_xyz, intrinsics):
    depth = tf.ensure_shape(depth, (None, None, None), name="depth")
    centre_xyz = tf.ensure_shape(centre_xyz, (None, 3), name="centre_xyz")
    intrinsics = tf.ensure_shape(intrinsics, (None, 4), name="intrinsics")
    batch = tf.shape(depth)[0]
    checks = [
        tf.debugging.assert_equal(
            tf.shape(centre_xyz)[0], batch,
            message="centre_xyz must have one row per depth frame (batch "
            "sizes of centre_xyz and depth differ)"),
        tf.debugging.assert_equal(
            tf.shape(intrinsics)[0], batch,
            message="intrinsics must have one row per depth frame (batch "
            "sizes of intrinsics and depth differ)"),
        tf.debugging.assert_positive(
            tf.shape(depth)[1:],
            message="depth must be (B, H, W) with H, W >= 1"),
        tf.debugging.assert_positive(
            centre_xyz[:, 2],
            message="centre_xyz z must be > 0 mm (in front of the camera)"),
        tf.debugging.assert_positive(
            tf.abs(intrinsics[:, :2]),
            message="intrinsics fx and fy must be non-zero"),
    ]
    with tf.control_dependencies(checks):
      depth = tf.identity(depth)
    cube_mm = tf.constant(cube, tf.float32)
    centre_z = centre_xyz[:, 2]
    affine = geometry.crop_affine(geometry.xyz_to_uvd(centre_xyz, intrinsics),
                                  cube_mm, intrinsics, crop_size)
    depth_crop = geometry.crop_depth_in_graph(
        depth[..., None], affine, centre_z, tf.fill([batch], cube_mm[2]),
        crop_size)
    joints_uvz, _ = predict(depth_crop)
    joints_uvd = geometry.normalized_to_uvd(joints_uvz, affine, centre_z,
                                            cube_mm, crop_size)
    joints_xyz = geometry.uvd_to_xyz(joints_uvd, intrinsics[:, None, :])
    return {"joints_xyz": joints_xyz, "joints_uvd": joints_uvd,
            "joints_uvz": joints_uvz}

  module.crop = crop
  module.full_frame = full_frame
  return module


def _check_export_dir(export_dir, overwrite):
  """The absolute export_dir, if it may be written; ValueError otherwise."""
  export_dir = os.path.abspath(export_dir)
  if os.path.exists(export_dir):
    if not os.path.isdir(export_dir):
      raise ValueError(f"{export_dir} exists and is not a directory")
    if os.listdir(export_dir):
      if not overwrite:
        raise ValueError(f"{export_dir} is not empty; choose another "
                         f"export_dir or overwrite it (--overwrite)")
      if not os.path.exists(os.path.join(export_dir, "saved_model.pb")):
        raise ValueError(f"{export_dir} is not empty and holds no SavedModel; "
                         "refusing to overwrite it")
  return export_dir


def export_saved_model(keras_model, export_dir, *, skeleton, cube_mm,
                       camera=None, dataset=None, crop_size=None,
                       jit_compile=True, fold_batch_norm_layers=True,
                       overwrite=False, source=None):
  """Writes ``keras_model`` as a SavedModel with the signatures above.

  The directory is written under ``{export_dir}.partial`` and renamed when
  complete, so an interrupted export leaves no half-written SavedModel.

  Args:
    keras_model: a model of ``model.build_model`` (any dtype policy, any
      coordinate convention).
    export_dir: the SavedModel directory to write.
    skeleton: the joint layout's name (``skeletons.SKELETONS``) or Skeleton.
    cube_mm: scalar or (3,) cube edges in mm of the full-frame crop; those
      of the records the model was trained on.
    camera: optional default Camera for clients (metadata only; the
      full-frame signature always takes intrinsics).
    dataset: optional dataset name, for the metadata; gives the default
      camera when ``camera`` is None.
    crop_size: S; the model's input size when None; must equal it otherwise.
    jit_compile: compile the network with XLA in the served functions.
    fold_batch_norm_layers: fold BN into the convolutions first
      (``fold_batch_norm``).
    overwrite: replace an existing SavedModel at ``export_dir``.
    source: where the model came from, for the metadata.

  Returns:
    The metadata dict (also written to ``{export_dir}/metadata.json``).

  Raises:
    ValueError: a skeleton that does not fit the model, bad cube edges, a
      crop size other than the model's, or an export_dir that must not be
      overwritten.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  model_size = int(keras_model.inputs[0].shape[1])
  if crop_size is not None and crop_size != model_size:
    raise ValueError(f"crop_size {crop_size} differs from the model's input "
                     f"size {model_size}")
  export_dir = _check_export_dir(export_dir, overwrite)
  if camera is None and dataset is not None:
    camera = geometry.CAMERAS.get(dataset)
  # The folded copy is a new Functional of the global policy: the source
  # model's policy is the one its layers compute in.
  policy = keras_model.dtype_policy.name
  convention = keras_model.coordinate_convention
  num_folded = 0
  if fold_batch_norm_layers:
    keras_model, num_folded = fold_batch_norm(keras_model)
  metadata = build_metadata(
      keras_model, skeleton=skeleton, cube_mm=cube_mm, camera=camera,
      dataset=dataset, dtype_policy=policy, jit_compile=jit_compile,
      batch_norm_folded=num_folded, source=source,
      coordinate_convention=convention)
  partial = export_dir + ".partial"
  shutil.rmtree(partial, ignore_errors=True)
  os.makedirs(partial)
  metadata_path = os.path.join(partial, METADATA_FILE)
  with open(metadata_path, "w", encoding="utf-8") as f:
    json.dump(metadata, f, indent=2)
    f.write("\n")
  module = _serving_module(keras_model, metadata["cube_mm"], model_size,
                           metadata_path, jit_compile, convention)
  tf.saved_model.save(
      module, partial,
      signatures={
          SIGNATURE_FULL_FRAME: module.full_frame.get_concrete_function(),
          SIGNATURE_CROP: module.crop.get_concrete_function()})
  if os.path.exists(export_dir):
    shutil.rmtree(export_dir)
  os.replace(partial, export_dir)
  return metadata


def resolve_model_path(model_dir, model="best"):
  """``best``/``last`` → ``{model_dir}/{model}.keras``; else a .keras path."""
  if model in MODEL_CHOICES:
    path = os.path.join(model_dir, f"{model}.keras")
  elif model.endswith(".keras"):
    path = model
  else:
    raise ValueError(f"--model={model!r} must be best, last or a path to a "
                     f".keras file")
  if not os.path.isfile(path):
    hint = (" (train writes best.keras only when it validates)"
            if model == "best" else "")
    raise FileNotFoundError(f"{path}: no such model{hint}")
  return path


def read_train_config(model_dir):
  """The training run's config.json as a dict."""
  path = os.path.join(model_dir, "config.json")
  try:
    with open(path, encoding="utf-8") as f:
      config = json.load(f)
  except FileNotFoundError:
    raise FileNotFoundError(f"{path} not found: --model_dir must be the "
                            f"--model_dir of a training run") from None
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"{path}: cannot read the training config ({e})") from None
  if not isinstance(config, dict):
    raise ValueError(f"{path}: not a training config (a JSON object)")
  return config


def _training_manifest(config):
  """The dataset facts of a model directory (cube, camera, dataset, skeleton).

  Those of the manifest of the run's training records, or None if they are
  not here; a model directory of ``import_checkpoint`` has no records and its
  config.json holds them itself.
  """
  if config.get("source_checkpoint"):
    return config
  path = os.path.join(config.get("train_dir", ""), "manifest.json")
  if not os.path.isfile(path):
    return None
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def load_keras_model(path, mixed_precision="none"):
  """Loads a saved .keras model, optionally rebuilt under a mixed policy.

  Args:
    path: the .keras file.
    mixed_precision: "none", "bfloat16" or "float16": the copy computes in
      that dtype with float32 weights (Keras' ``mixed_*`` policies).

  Returns:
    keras.Model.
  """
  import keras  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import model as model_lib  # pylint: disable=g-import-not-at-top
  if mixed_precision not in MIXED_PRECISION:
    raise ValueError(f"mixed_precision={mixed_precision!r} is not one of "
                     f"{', '.join(MIXED_PRECISION)}")
  try:
    model = keras.saving.load_model(path, compile=False)
  except (OSError, ValueError) as e:
    raise ValueError(f"{path}: cannot load the Keras model ({e})") from None
  if mixed_precision == "none":
    return model
  mixed = model_lib.JGRP2OModel.from_config(
      {**model.get_config(), "dtype": f"mixed_{mixed_precision}"})
  mixed.set_weights(model.get_weights())
  return mixed


def export_from_model_dir(model_dir, export_dir, *, model="best", cube_mm=None,
                          mixed_precision="none", jit_compile=True,
                          fold_batch_norm_layers=True, overwrite=False):
  """Exports a training run's best or last model (what the CLI does).

  The skeleton comes from the run's config.json; the cube edges, default
  camera and dataset from the manifest of its training records when they are
  still at the recorded train_dir. ``cube_mm`` overrides the manifest's and
  is required without it.

  Returns:
    The metadata dict.
  """
  path = resolve_model_path(model_dir, model)
  config = read_train_config(model_dir)
  manifest = _training_manifest(config)
  if cube_mm is None:
    if manifest is None:
      raise ValueError(
          f"the training records' manifest "
          f"({os.path.join(config.get('train_dir', '?'), 'manifest.json')}) "
          f"is not here to tell the cube edges: pass --cube_mm")
    cube_mm = manifest["cube_mm"]
  skeleton = config.get("skeleton") or (manifest or {}).get("skeleton")
  if not skeleton:
    raise ValueError(f"neither {model_dir}/config.json nor the records' "
                     f"manifest names the skeleton")
  camera = None
  if manifest is not None and manifest.get("camera"):
    camera = geometry.Camera(**manifest["camera"])
  keras_model = load_keras_model(path, mixed_precision)
  return export_saved_model(
      keras_model, export_dir, skeleton=skeleton, cube_mm=cube_mm,
      camera=camera, dataset=(manifest or {}).get("dataset"),
      jit_compile=jit_compile, fold_batch_norm_layers=fold_batch_norm_layers,
      overwrite=overwrite, source=path)

