"""Exports a trained model as a TensorFlow SavedModel for serving.

``export_saved_model`` writes a Keras model as the SavedModel that
``saved_model_contract`` describes (its signatures and metadata);
``export_from_model_dir`` does it for a training run (``run_dir``), as
``python -m jgr_p2o_tf.export`` does.

Inside the graph, ``tf.ensure_shape`` and assertions refuse what a signature
call lets through (signatures check dtypes only): a wrong rank or crop size,
batch sizes that disagree, empty frames, a centre not in front of the camera.
The full-frame crop is the ``geometry`` functions: xyz_to_uvd → crop_affine →
crop_depth_in_graph → network → convert_uvz → normalized_to_uvd → uvd_to_xyz.

Both signatures return ``joints_uvz`` in the project's coordinate convention
(``geometry.COORDINATE_CONVENTIONS``) whatever the network's: a model in the
authors' convention (an imported checkpoint) has its joints converted in the
graph, and the metadata's ``coordinate_convention`` names the network's.

Speed: the network (the part of both signatures behind the crop) is one
``tf.function(jit_compile=True)``. The in-graph crop stays outside XLA:
``ImageProjectiveTransformV3`` has no XLA kernel, and outside XLA any frame
size is served without recompiling (XLA compiles once per batch size, not per
H × W). Batch normalization is folded into the preceding convolutions first
(``batch_norm_folding``). An export that finds the hand compiles the whole
search (rough centre, the refiners' crops by gathers, the refiners) as one
XLA computation per frame size (``find_hand``).
"""

import ctypes
import errno
import json
import os
import shutil
import sys

from jgr_p2o_tf import batch_norm_folding
from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import records_manifest
from jgr_p2o_tf import run_dir
from jgr_p2o_tf import saved_model_contract
from jgr_p2o_tf import skeletons

# The centre a frame without a hand is cropped around (the joints it gives
# are then replaced by NaN): any point in front of the camera would do.
NO_HAND_CENTRE_XYZ = (0.0, 0.0, 1000.0)

# renameat2(2): the current directory as base, and the flag that swaps.
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def output_spec(model):
  """The model's symbolic outputs: a list with one dict per stack."""
  import keras  # pylint: disable=g-import-not-at-top
  size = int(model.inputs[0].shape[1])
  spec = model.compute_output_spec(keras.KerasTensor((None, size, size, 1)))
  return [spec] if isinstance(spec, dict) else list(spec)


def build_metadata(model, *, skeleton, cube_mm, camera=None, dataset=None,
                   dtype_policy=None, jit_compile=True, batch_norm_folded=0,
                   source=None, coordinate_convention="project"):
  """The metadata dict stored with a SavedModel (``saved_model_contract``)."""
  skeleton = skeletons.get_skeleton(skeleton)
  cube = geometry.cube_vector(cube_mm)
  crop_size = int(model.inputs[0].shape[1])
  stacks = output_spec(model)
  last = stacks[-1]
  num_joints = int(last["joints_uvz"].shape[1])
  if num_joints != skeleton.num_joints:
    raise ValueError(f"The model predicts {num_joints} joints but skeleton "
                     f"{skeleton.name!r} has {skeleton.num_joints}.")
  return saved_model_contract.metadata(
      skeleton=skeleton, cube_mm=cube, crop_size=crop_size,
      output_grid=last["voting_maps"].shape[1:3], num_stacks=len(stacks),
      dataset=dataset, camera=camera,
      dtype_policy=dtype_policy or model.dtype_policy.name,
      jit_compile=jit_compile, batch_norm_folded=batch_norm_folded,
      source=source,
      coordinate_convention=geometry.check_convention(coordinate_convention))


def full_frame_signature(with_centre=True):
  """The full-frame signature's inputs: depth, [centre_xyz,] intrinsics."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  depth = tf.TensorSpec((None, None, None), tf.float32, name="depth")
  intrinsics = tf.TensorSpec((None, 4), tf.float32, name="intrinsics")
  if not with_centre:
    return [depth, intrinsics]
  return [depth, tf.TensorSpec((None, 3), tf.float32, name="centre_xyz"),
          intrinsics]


def find_hand(depth, intrinsics, pose_cube, steps):
  """The hand centre of full frames, in the graph: rough centre → refiners.

  ``centres.compute_centre_in_graph`` (with the pose cube), then per
  refinement step: the step's refiner crop around the centre
  (``geometry.crop_affine``, ``crop_depth_by_gather``) → its offset → the
  centre moved by it (``geometry.apply_offset``). Every op compiles with
  XLA, so that the export runs all of it as one computation.

  Args:
    depth: (B, H, W) float32 mm; intrinsics: (B, 4).
    pose_cube: (3,) cube edges of the pose crop in mm.
    steps: per step (``refine``, cube_mm, size): ``refine(crops (B, R, R,
      1)) → (B, 3)`` normalized offsets, the (3,) cube edges in mm and R of
      its crops.

  Returns:
    (centre_xyz (B, 3), found (B,) bool). Nothing is found in a frame without
    depth pixels or whose refined centre is not in front of the camera; its
    centre is then ``NO_HAND_CENTRE_XYZ``, a point in front of the camera
    that the rest of the graph can crop around.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf.datasets import centres  # pylint: disable=g-import-not-at-top
  depth = tf.ensure_shape(depth, (None, None, None), name="depth")
  intrinsics = tf.ensure_shape(intrinsics, (None, 4), name="intrinsics")
  centre, found = centres.compute_centre_in_graph(depth, intrinsics,
                                                  cube_mm=pose_cube)
  batch = tf.shape(depth)[0]
  fallback = tf.broadcast_to(tf.constant(NO_HAND_CENTRE_XYZ, tf.float32),
                             [batch, 3])
  for refine, cube_mm, size in steps:
    cube = tf.constant(cube_mm, tf.float32)
    centre = tf.where(found[:, None], centre, fallback)
    affine = geometry.crop_affine(geometry.xyz_to_uvd(centre, intrinsics),
                                  cube, intrinsics, size)
    crop = geometry.crop_depth_by_gather(depth[..., None], affine,
                                         centre[:, 2],
                                         tf.fill([batch], cube[2]), size)
    centre = geometry.apply_offset(centre, refine(crop), cube_mm, intrinsics)
    found &= centre[:, 2] > 0
  return tf.where(found[:, None], centre, fallback), found


def frame_crops(depth, centre_xyz, intrinsics, cube, crop_size):
  """The full-frame signature before the network: checks, then the crop.

  Args:
    depth, centre_xyz, intrinsics: the signature's input tensors.
    cube: (3,) cube edges in mm.
    crop_size: S.

  Returns:
    (depth_crop (B, S, S, 1), affine (B, 2, 3)).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
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
  affine = geometry.crop_affine(geometry.xyz_to_uvd(centre_xyz, intrinsics),
                                cube_mm, intrinsics, crop_size)
  depth_crop = geometry.crop_depth_in_graph(
      depth[..., None], affine, centre_xyz[:, 2],
      tf.fill([batch], cube_mm[2]), crop_size)
  return depth_crop, affine


def frame_joints(joints_uvz, affine, centre_xyz, intrinsics, cube, crop_size):
  """The full-frame signature after the network: its outputs.

  Args:
    joints_uvz: (B, J, 3) the network's joints, project convention.
    affine: (B, 2, 3) of ``frame_crops``.
    centre_xyz, intrinsics: the signature's inputs.
    cube: (3,) cube edges in mm.
    crop_size: S.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  cube_mm = tf.constant(cube, tf.float32)
  joints_uvd = geometry.normalized_to_uvd(joints_uvz, affine,
                                          centre_xyz[:, 2], cube_mm, crop_size)
  joints_xyz = geometry.uvd_to_xyz(joints_uvd, intrinsics[:, None, :])
  return {"joints_xyz": joints_xyz, "joints_uvd": joints_uvd,
          "joints_uvz": joints_uvz}


def serving_module(model, cube, crop_size, metadata_path, jit_compile,
                   convention, refiners=()):
  """The tf.Module that is saved: weights, metadata asset, its functions.

  ``full_frame`` is ``frame_crops`` → the network → ``frame_joints``;
  ``onnx_export`` converts ``crop`` and those two parts (with
  ``jit_compile=False``). With ``refiners`` (``centre_refiner``), the
  module also has ``find_hand_and_pose(depth, intrinsics)``: ``find_hand``
  → ``full_frame``'s steps, with the centre used and ``hand_found`` among
  its outputs, and NaN joints where no hand was found (nothing in the
  frame, or nothing inside the pose cube around the refined centre).
  ``refiners``: per refinement step (CentreRefiner, network), the network
  computing what the refiner computes (it or its BN-folded copy).
  """
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

  def crop_and_pose(depth, centre_xyz, intrinsics):
    """(full-frame outputs, the pose crop they come from)."""
    depth_crop, affine = frame_crops(depth, centre_xyz, intrinsics, cube,
                                     crop_size)
    joints_uvz, _ = predict(depth_crop)
    return frame_joints(joints_uvz, affine, centre_xyz, intrinsics, cube,
                        crop_size), depth_crop

  @tf.function(input_signature=full_frame_signature())
  def full_frame(depth, centre_xyz, intrinsics):
    return crop_and_pose(depth, centre_xyz, intrinsics)[0]

  module.crop = crop
  module.full_frame = full_frame
  if not refiners:
    return module
  steps = [(lambda crop, network=network: network(crop, training=False),
            refiner.cube_mm, refiner.input_size)
           for refiner, network in refiners]
  # One copy of the weights per refiner, however many steps it serves.
  networks = {id(network): network for _, network in refiners}
  module.refiner_variables = [v for network in networks.values()
                              for v in network.variables]
  # The rough centre and every step as one XLA computation (compiled once
  # per frame size): a dozen small kernels and launches fewer per frame.
  find = tf.function(
      lambda depth, intrinsics: find_hand(depth, intrinsics, cube, steps),
      jit_compile=jit_compile)

  @tf.function(input_signature=full_frame_signature(with_centre=False))
  def find_hand_and_pose(depth, intrinsics):
    centre_xyz, hand_found = find(depth, intrinsics)
    outputs, depth_crop = crop_and_pose(depth, centre_xyz, intrinsics)
    # A hand is found where its pose crop holds depth inside the pose cube.
    hand_found &= tf.reduce_any(depth_crop < 1.0, axis=[1, 2, 3])
    missing = tf.fill(tf.shape(outputs["joints_xyz"]), float("nan"))
    outputs = {k: tf.where(hand_found[:, None, None], v, missing)
               for k, v in outputs.items()}
    centre_xyz = tf.where(hand_found[:, None], centre_xyz,
                          tf.constant(NO_HAND_CENTRE_XYZ, tf.float32))
    return {**outputs, "centre_xyz": centre_xyz, "hand_found": hand_found}

  module.find_hand_and_pose = find_hand_and_pose
  return module


def _exchange_directories(a, b):
  """Swaps two directories in one step (Linux ``renameat2`` RENAME_EXCHANGE).

  Raises:
    OSError: the system or the filesystem cannot.
  """
  if not sys.platform.startswith("linux"):
    raise OSError(errno.ENOSYS, "renameat2 is Linux only")
  renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
  if renameat2 is None:
    raise OSError(errno.ENOSYS, "this C library has no renameat2")
  renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                        ctypes.c_char_p, ctypes.c_uint]
  if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b),
               _RENAME_EXCHANGE):
    code = ctypes.get_errno()
    raise OSError(code, os.strerror(code), a)


def move_into_place(partial, export_dir):
  """Puts the finished export at export_dir, replacing the old one whole.

  Swapped in one step where the system can, so that a kill at any moment
  leaves export_dir holding the old export or the new one. Otherwise two
  renames, the old export waiting at ``{export_dir}.old`` between them:
  ``_recover_interrupted_export`` puts it back after a kill there.
  """
  if not os.path.exists(export_dir):
    os.replace(partial, export_dir)
    return
  try:
    _exchange_directories(partial, export_dir)
  except OSError:
    old = export_dir + ".old"
    os.replace(export_dir, old)
    os.replace(partial, export_dir)
    shutil.rmtree(old)
  else:
    shutil.rmtree(partial)  # now the old export


def _recover_interrupted_export(export_dir):
  """Undoes what a killed export left beside export_dir.

  ``.partial``: an unfinished export, or after the swap the old one; ``.old``:
  the old export, back at export_dir if the kill came between the two
  renames of ``move_into_place``.
  """
  old = export_dir + ".old"
  if os.path.isdir(old):
    if os.path.exists(export_dir):
      shutil.rmtree(old)
    else:
      os.replace(old, export_dir)
  shutil.rmtree(export_dir + ".partial", ignore_errors=True)


def prepare_export_dir(export_dir, marker, kind, overwrite):
  """The absolute export_dir, if it may be written; ValueError otherwise.

  First clears what a killed export left beside it
  (``_recover_interrupted_export``). A folder that is not empty may only be
  overwritten, and only if it holds an export of this kind (its ``marker``
  file).

  Args:
    export_dir: the folder to write.
    marker: a file every export of this kind holds ("saved_model.pb").
    kind: what the export is called in messages ("SavedModel").
    overwrite: whether an existing export may be replaced.
  """
  export_dir = os.path.abspath(export_dir)
  _recover_interrupted_export(export_dir)
  return run_dir.check_output_dir(export_dir, "export_dir", marker, kind,
                                  overwrite)


def start_partial_export(export_dir, metadata_file, metadata):
  """Creates ``export_dir.partial``, the export being written, with its metadata.

  ``move_into_place`` moves it to ``export_dir`` once complete.

  Returns:
    (the partial folder, the path of its metadata file).
  """
  partial = export_dir + ".partial"
  os.makedirs(partial)
  metadata_path = os.path.join(partial, metadata_file)
  with open(metadata_path, "w", encoding="utf-8") as f:
    json.dump(metadata, f, indent=2)
    f.write("\n")
  return partial, metadata_path


def export_saved_model(keras_model, export_dir, *, skeleton, cube_mm,
                       camera=None, dataset=None, crop_size=None,
                       jit_compile=True, fold_batch_norm_layers=True,
                       overwrite=False, source=None, centre_refiners=()):
  """Writes ``keras_model`` as a SavedModel (see ``saved_model_contract``).

  The directory is written under ``{export_dir}.partial`` and swapped in
  when complete (``move_into_place``), so a killed export leaves the old
  SavedModel or the new one whole, and the next export clears what it left.

  Args:
    keras_model: a model of ``model.build_model`` (any dtype policy).
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
      (``batch_norm_folding``).
    overwrite: replace an existing SavedModel at ``export_dir``.
    source: where the model came from, for the metadata.
    centre_refiners: (CentreRefiner, source path) per refinement step, in
      order (the same refiner may serve several steps): bundled, they make
      ``serving_default`` find the hand itself (``find_hand``), and the
      signature with a centre becomes ``full_frame_with_centre``.

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
  export_dir = prepare_export_dir(export_dir, "saved_model.pb", "SavedModel",
                                  overwrite)
  if camera is None and dataset in dataset_profiles.PROFILES:
    camera = dataset_profiles.PROFILES[dataset].camera
  # The folded copy is a new Functional of the global policy: the source
  # model's policy is the one its layers compute in.
  policy = keras_model.dtype_policy.name
  convention = keras_model.coordinate_convention
  num_folded = 0
  if fold_batch_norm_layers:
    keras_model, num_folded = batch_norm_folding.fold_batch_norm(keras_model)
  metadata = build_metadata(
      keras_model, skeleton=skeleton, cube_mm=cube_mm, camera=camera,
      dataset=dataset, dtype_policy=policy, jit_compile=jit_compile,
      batch_norm_folded=num_folded, source=source,
      coordinate_convention=convention)
  folded = {}
  for refiner, _ in centre_refiners:
    if id(refiner) not in folded:
      folded[id(refiner)] = (
          batch_norm_folding.fold_batch_norm(refiner)[0]
          if fold_batch_norm_layers else refiner)
  refiners = [(refiner, folded[id(refiner)]) for refiner, _ in centre_refiners]
  if refiners:
    metadata = saved_model_contract.with_centre_refiners(metadata, [
        {"cube_mm": refiner.cube_mm, "crop_size": refiner.input_size,
         "source": source} for refiner, source in centre_refiners])
  partial, metadata_path = start_partial_export(
      export_dir, saved_model_contract.METADATA_FILE, metadata)
  module = serving_module(keras_model, metadata["cube_mm"], model_size,
                          metadata_path, jit_compile, convention, refiners)
  signatures = {saved_model_contract.SIGNATURE_CROP:
                    module.crop.get_concrete_function()}
  if not refiners:
    signatures[saved_model_contract.SIGNATURE_FULL_FRAME] = (
        module.full_frame.get_concrete_function())
  else:
    signatures[saved_model_contract.SIGNATURE_FULL_FRAME] = (
        module.find_hand_and_pose.get_concrete_function())
    signatures[saved_model_contract.SIGNATURE_FULL_FRAME_WITH_CENTRE] = (
        module.full_frame.get_concrete_function())
  tf.saved_model.save(module, partial, signatures=signatures)
  move_into_place(partial, export_dir)
  return metadata


def load_run(model_dir, model=None, cube_mm=None, mixed_precision="none"):
  """A training run's model and what an export records with it.

  ``model``: None for the run's default (``run_dir.resolve_model_path``),
  "best", "last" or a .keras path.

  The skeleton comes from the run's config.json; the cube edges, default
  camera and dataset from the manifest of its training records when they are
  still at the recorded train_dir. ``cube_mm`` overrides the manifest's and
  is required without it.

  Returns:
    (keras_model, arguments): the loaded model and the keyword arguments
    ``skeleton``, ``cube_mm``, ``camera``, ``dataset`` and ``source`` of
    ``export_saved_model`` (and ``onnx_export.export_onnx``).
  """
  path = run_dir.resolve_model_path(model_dir, model)
  config = run_dir.read_train_config(model_dir)
  manifest = run_dir.training_manifest(config)
  if cube_mm is None:
    if manifest is None:
      raise ValueError(
          f"the training records' manifest "
          f"({records_manifest.manifest_path(config.get('train_dir', '?'))}) "
          f"is not here to tell the cube edges: pass --cube_mm")
    cube_mm = manifest["cube_mm"]
    if cube_mm is None:
      raise ValueError(
          f"the training records' frames have cubes of "
          f"{manifest.get('cube_choices_mm')} mm: pass --cube_mm, the cube "
          f"of the crops the model will serve (the authors' test cube is in "
          f"dataset_profiles)")
  skeleton = config.get("skeleton") or (manifest or {}).get("skeleton")
  if not skeleton:
    raise ValueError(f"neither {model_dir}/config.json nor the records' "
                     f"manifest names the skeleton")
  camera = None
  if manifest is not None and manifest.get("camera"):
    camera = geometry.Camera(**manifest["camera"])
  keras_model = run_dir.load_keras_model(path, mixed_precision)
  return keras_model, dict(skeleton=skeleton, cube_mm=cube_mm, camera=camera,
                           dataset=(manifest or {}).get("dataset"),
                           source=path)


def load_centre_refiner(refiner_dir):
  """(CentreRefiner, path) of a ``train --task=centre`` run's last.keras."""
  import keras  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import centre_refiner  # pylint: disable=g-import-not-at-top
  path = os.path.join(refiner_dir, run_dir.LAST_MODEL)
  if not os.path.isfile(path):
    raise ValueError(f"{refiner_dir}: no {run_dir.LAST_MODEL} (train the "
                     f"refiner with python -m jgr_p2o_tf.train --task=centre)")
  refiner = keras.saving.load_model(path, compile=False)
  if not isinstance(refiner, centre_refiner.CentreRefiner):
    raise ValueError(f"{path} is not a centre refiner ({type(refiner).__name__})")
  return refiner, path


def export_from_model_dir(model_dir, export_dir, *, model=None, cube_mm=None,
                          mixed_precision="none", jit_compile=True,
                          fold_batch_norm_layers=True, overwrite=False,
                          centre_refiner_dirs=()):
  """Exports a training run's model (what the CLI does).

  See ``load_run`` for where the skeleton, cube edges and camera come from;
  ``centre_refiner_dirs``: refiner runs, one per refinement step.

  Returns:
    The metadata dict.
  """
  keras_model, arguments = load_run(model_dir, model, cube_mm,
                                    mixed_precision)
  loaded = {}  # a run listed for several steps is one refiner
  for refiner_dir in centre_refiner_dirs:
    if refiner_dir not in loaded:
      loaded[refiner_dir] = load_centre_refiner(refiner_dir)
  return export_saved_model(
      keras_model, export_dir, jit_compile=jit_compile,
      fold_batch_norm_layers=fold_batch_norm_layers, overwrite=overwrite,
      centre_refiners=[loaded[d] for d in centre_refiner_dirs], **arguments)
