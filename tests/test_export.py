"""Tests of the SavedModel export: fidelity, signatures, errors, CLI.

The default two-stack model is exported once (``nyu_export`` in conftest.py,
shared with the ONNX tests) and run in a fresh Python process that can import nothing of this project, only TensorFlow; its
outputs must equal the Keras model's on NumPy crops (``geometry.crop_depth``)
and NumPy uncrops. The other tests use a one-stack model with 32 features to
stay fast. Batch norm statistics are randomised, so folding them is tested
for real rather than on the identity of a fresh model.
"""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from jgr_p2o_tf import batch_norm_folding
from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import exporter
from jgr_p2o_tf import geometry
from jgr_p2o_tf import inference
from jgr_p2o_tf import model as model_lib
from jgr_p2o_tf import train_config
from tests import dataset_fixtures

REPO = pathlib.Path(__file__).resolve().parents[1]

# Loads a SavedModel with TensorFlow alone and runs both signatures on .npy
# inputs; the outputs go back as .npy files.
_FRESH_PROCESS_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
export_dir, io_dir = sys.argv[1:]
loaded = tf.saved_model.load(export_dir)
read = lambda name: tf.constant(np.load(f"{io_dir}/{name}.npy"))
full = loaded.signatures["serving_default"](
    depth=read("depth"), centre_xyz=read("centre_xyz"),
    intrinsics=read("intrinsics"))
crop = loaded.signatures["crop"](depth_crop=read("depth_crop"))
for prefix, outputs in (("full", full), ("crop", crop)):
  for name, value in outputs.items():
    np.save(f"{io_dir}/{prefix}_{name}.npy", value.numpy())
with open(loaded.metadata_file.asset_path.numpy().decode()) as f:
  metadata = json.load(f)
print(json.dumps({"metadata": metadata, "signatures": sorted(loaded.signatures),
                  "project_imported": any(m.startswith("jgr_p2o_tf")
                                          for m in sys.modules)}))
"""


def randomize_batch_norm(model, seed=0):
  """Gives every BN (nested ones too) statistics far from the identity.

  Also scales the P2O offsets down to a trained model's: a fraction of the
  crop rather than the several crop widths a random 1×1 convolution gives,
  which would turn bfloat16's 3 significant digits into millimetres.
  """
  rng = np.random.default_rng(seed)
  ranges = {"gamma": (0.5, 1.5), "beta": (-0.1, 0.1),
            "moving_mean": (-0.1, 0.1), "moving_variance": (0.5, 1.5)}
  for variable in model.variables:
    name = variable.path.rsplit("/", 1)[-1]
    if name in ranges:
      variable.assign(rng.uniform(*ranges[name], variable.shape))
    elif "offset_conv" in variable.path:
      variable.assign(variable * 0.05)


def small_model(num_joints=16, skeleton="icvl"):
  keras.utils.set_random_seed(0)
  model = model_lib.build_model(num_joints, num_stacks=1, num_features=32,
                                skeleton=skeleton)
  randomize_batch_norm(model)
  return model


def hand_frames(camera, num_frames, seed=0, depth_mm=450.0):
  """Rendered frames with a wall, and their hands' ground-truth centres."""
  rng = np.random.default_rng(seed)
  frames, centres = [], []
  for _ in range(num_frames):
    xyz = dataset_fixtures.random_hand_xyz(rng, 16, depth_mm)
    frames.append(dataset_fixtures.render_hand(
        geometry.xyz_to_uvd(xyz, camera), camera, wall_mm=2 * depth_mm))
    centres.append((xyz.min(axis=0) + xyz.max(axis=0)) / 2)
  return np.stack(frames), np.asarray(centres, np.float32)


def numpy_reference(model, depth, centres, cameras, cube_mm):
  """NumPy crops → Keras model → joints; and the crops and their affines."""
  crops, affines = zip(*(geometry.crop_depth(d, c, cube_mm, cam)
                         for d, c, cam in zip(depth, centres, cameras)))
  crops = np.stack(crops)[..., None]
  outputs = model(crops, training=False)[-1]
  return ({k: np.asarray(v) for k, v in outputs.items()}, crops,
          np.stack(affines))


def test_default_model_in_fresh_process(nyu_export, tmp_path):
  model, export_dir, metadata = nyu_export
  cube = geometry.cube_vector(300.0)
  # NYU's camera (negative fy) and, for the second frame, other intrinsics:
  # each row of the batch must use its own.
  nyu = dataset_profiles.NYU.camera
  other = dataclasses.replace(nyu, fx=500.0, fy=-520.0, cx=330.0, cy=250.0)
  depth, centres = hand_frames(nyu, 2, seed=3, depth_mm=500.0)
  cameras = [nyu, other]
  intrinsics = np.stack([c.intrinsics for c in cameras])
  reference, crops, affines = numpy_reference(model, depth, centres, cameras,
                                              cube)
  # Precondition: no rounding tie where OpenCV and TensorFlow would pick
  # different pixels, so the in-graph crop is the NumPy crop.
  in_graph = geometry.crop_depth_in_graph(
      tf.constant(depth[..., None]), tf.constant(affines),
      tf.constant(centres[:, 2]), tf.fill([2], cube[2]))
  np.testing.assert_array_equal(in_graph.numpy(), crops)
  assert np.mean(crops < 1) > 0.05, "the crops should show the hand"

  io_dir = tmp_path / "io"
  io_dir.mkdir()
  inputs = {"depth": depth, "centre_xyz": centres, "intrinsics": intrinsics,
            "depth_crop": crops}
  for name, value in inputs.items():
    np.save(io_dir / f"{name}.npy", value.astype(np.float32))
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  result = subprocess.run(
      [sys.executable, "-c", _FRESH_PROCESS_SCRIPT, str(export_dir),
       str(io_dir)], cwd=tmp_path, env=env, capture_output=True, text=True,
      timeout=120, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(result.stdout.strip().splitlines()[-1])
  assert not report["project_imported"]
  assert report["signatures"] == ["crop", "serving_default"]
  assert report["metadata"] == metadata
  assert metadata["skeleton"] == "nyu" and metadata["num_joints"] == 14
  assert metadata["num_stacks"] == 2 and metadata["cube_mm"] == [300.0] * 3
  assert metadata["batch_norm_folded"] > 0
  assert json.loads((export_dir / "metadata.json").read_text()) == metadata
  out = {p.stem: np.load(p) for p in io_dir.glob("*_*.npy")}

  np.testing.assert_allclose(out["crop_joints_uvz"], reference["joints_uvz"],
                             atol=1e-4, rtol=0)
  np.testing.assert_allclose(out["crop_voting_maps"],
                             reference["voting_maps"], atol=1e-5, rtol=0)
  np.testing.assert_allclose(out["full_joints_uvz"], reference["joints_uvz"],
                             atol=1e-4, rtol=0)
  # The in-graph uncrop is the NumPy one, to float32 precision.
  uvd = geometry.normalized_to_uvd(out["full_joints_uvz"], affines,
                                   centres[:, 2], cube)
  xyz = np.stack([geometry.uvd_to_xyz(u, c) for u, c in zip(uvd, cameras)])
  np.testing.assert_allclose(out["full_joints_uvd"], uvd, atol=1e-2, rtol=0)
  np.testing.assert_allclose(out["full_joints_xyz"], xyz, atol=1e-2, rtol=0)


def test_fold_batch_norm_keeps_outputs():
  model = small_model()
  folded, count = batch_norm_folding.fold_batch_norm(model)
  top_level_bns = [l for l in model.layers if "BatchNormalization" in
                   type(l).__name__]
  assert count == len(top_level_bns) > 0
  assert not [l for l in folded.layers
              if "BatchNormalization" in type(l).__name__]
  crops = np.random.default_rng(1).uniform(-1, 1, (2, 96, 96, 1))
  expected = model(crops.astype(np.float32), training=False)[-1]
  got = folded(crops.astype(np.float32), training=False)[-1]
  for key in expected:
    np.testing.assert_allclose(np.asarray(got[key]), np.asarray(expected[key]),
                               atol=1e-5, rtol=0)


def test_fold_batch_norm_keeps_the_centre_refiners_offsets():
  """The export folds the refiner's BNs too: trained statistics (not the
  initial identity ones) must give the same offsets."""
  from jgr_p2o_tf import centre_refiner  # pylint: disable=g-import-not-at-top
  refiner = centre_refiner.CentreRefiner(input_size=32, num_features=4)
  rng = np.random.default_rng(2)
  for layer in refiner.layers:
    if "BatchNormalization" in type(layer).__name__:
      channels = layer.gamma.shape[0]
      layer.set_weights([rng.uniform(0.5, 2, channels),
                         rng.normal(0, 1, channels),
                         rng.normal(0, 1, channels),
                         rng.uniform(0.5, 2, channels)])
  refiner.get_layer("votes").set_weights(
      [rng.normal(0, 0.1, w.shape) for w in refiner.get_layer(
          "votes").get_weights()])
  folded, count = batch_norm_folding.fold_batch_norm(refiner)
  assert count == 2 + centre_refiner.VOTING_CONVS
  crops = rng.uniform(-1, 1, (3, 32, 32, 1)).astype(np.float32)
  np.testing.assert_allclose(np.asarray(folded(crops, training=False)),
                             np.asarray(refiner(crops, training=False)),
                             atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def small_export(tmp_path_factory):
  export_dir = tmp_path_factory.mktemp("small") / "saved_model"
  exporter.export_saved_model(small_model(), export_dir, skeleton="icvl",
                              cube_mm=250.0, dataset="icvl")
  return tf.saved_model.load(str(export_dir))


def _frame_inputs(batch=1, height=240, width=320):
  return {"depth": tf.fill([batch, height, width], 500.0),
          "centre_xyz": tf.constant([[0.0, 0.0, 500.0]] * batch),
          "intrinsics": tf.constant([dataset_profiles.ICVL.camera.intrinsics] * batch)}


@pytest.mark.parametrize("dtype,c_name", [(tf.int32, "int32"),
                                          (tf.float64, "double")])
def test_wrong_depth_dtype_is_refused(small_export, dtype, c_name):
  inputs = _frame_inputs()
  inputs["depth"] = tf.cast(inputs["depth"], dtype)
  # The signature (what a server calls) names the dtypes...
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=f"expected to be a float tensor but is a "
                     f"{c_name} tensor"):
    small_export.signatures["serving_default"](**inputs)
  # ... and the restored function the argument too.
  with pytest.raises(TypeError, match=f"dtype=tf.{dtype.name}, name='depth'"):
    small_export.full_frame(**inputs)


@pytest.mark.parametrize("name,value,message", [
    ("depth", tf.zeros([240, 320]),
     r"Shape of tensor depth \[240,320\] is not compatible with expected "
     r"shape \[\?,\?,\?\]"),
    ("centre_xyz", tf.constant([[0.0, 0.0, 500.0], [0.0, 0.0, 500.0]]),
     "batch sizes of centre_xyz and depth differ"),
    ("intrinsics", tf.zeros([1, 3]),
     r"Shape of tensor intrinsics \[1,3\] is not compatible"),
    ("centre_xyz", tf.constant([[0.0, 0.0, -5.0]]),
     r"centre_xyz z must be > 0 mm"),
    ("depth", tf.zeros([1, 0, 320]), r"depth must be \(B, H, W\) with H, W"),
])
def test_wrong_full_frame_input_is_refused(small_export, name, value,
                                           message):
  inputs = _frame_inputs()
  inputs[name] = value
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    small_export.signatures["serving_default"](**inputs)


def test_wrong_crop_shape_is_refused(small_export):
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"Shape of tensor depth_crop \[1,64,64,1\] is not "
                     r"compatible with expected shape \[\?,96,96,1\]"):
    small_export.signatures["crop"](depth_crop=tf.zeros([1, 64, 64, 1]))


def test_any_frame_size_and_batch(small_export):
  for batch, height, width in ((1, 240, 320), (3, 100, 150)):
    outputs = small_export.signatures["serving_default"](
        **_frame_inputs(batch, height, width))
    assert outputs["joints_xyz"].shape == (batch, 16, 3)
    assert np.all(np.isfinite(outputs["joints_xyz"].numpy()))


def write_model_dir(root, model, dataset="icvl", cube_mm=250.0):
  """A training run's model_dir and the manifest of its records."""
  train_dir = root / "records" / "train"
  train_dir.mkdir(parents=True)
  camera = dataset_profiles.get_profile(dataset).camera
  (train_dir / "manifest.json").write_text(json.dumps({
      "complete": True, "dataset": dataset, "cube_mm": [cube_mm] * 3,
      "crop_size": 96, "skeleton": dataset, "num_joints": 16,
      "camera": dataclasses.asdict(camera)}))
  model_dir = root / "run"
  model_dir.mkdir()
  config = train_config.TrainConfig(train_dir=str(train_dir),
                                    model_dir=str(model_dir), epochs=1,
                                    num_stacks=1, num_features=32,
                                    skeleton=dataset)
  (model_dir / "config.json").write_text(
      json.dumps(dataclasses.asdict(config)))
  model.save(model_dir / "last.keras")
  return model_dir, train_dir


def _run_export(*flags):
  return subprocess.run(
      [sys.executable, "-m", "jgr_p2o_tf.export", *flags], cwd=REPO,
      capture_output=True, text=True, timeout=120, check=False)


def test_cli_and_bfloat16_export(tmp_path):
  model_dir, _ = write_model_dir(tmp_path, small_model())
  float_dir = tmp_path / "float32"
  # Without XLA, which the other tests compile: it only costs time here.
  result = _run_export(f"--model_dir={model_dir}", f"--export_dir={float_dir}",
                       "--nojit_compile")
  assert result.returncode == 0, result.stderr[-3000:]
  metadata = json.loads((float_dir / "metadata.json").read_text())
  assert not metadata["jit_compile"]
  assert metadata["cube_mm"] == [250.0] * 3
  assert metadata["camera"] == dataclasses.asdict(dataset_profiles.ICVL.camera)
  assert metadata["skeleton"] == "icvl" and metadata["dataset"] == "icvl"
  assert metadata["source"] == str(model_dir / "last.keras")

  mixed_dir = tmp_path / "bfloat16"
  mixed = exporter.export_from_model_dir(model_dir, mixed_dir,
                                         mixed_precision="bfloat16")
  assert mixed["dtype_policy"] == "mixed_bfloat16"
  depth, centres = hand_frames(dataset_profiles.ICVL.camera, 3, seed=5)
  predictions = [
      inference.Predictor(d).predict(depth, centres, dataset_profiles.ICVL.camera)
      for d in (float_dir, mixed_dir)]
  error = np.linalg.norm(predictions[0]["joints_xyz"] -
                         predictions[1]["joints_xyz"], axis=-1)
  # The paper's metric, the mean 3D error. A random model is a hard case:
  # its pixels vote for scattered positions, so the small bfloat16 changes
  # of the voting weights move the joints more than in a trained model.
  assert error.mean() <= 0.5, f"bfloat16 is {error.mean():.3f} mm off"


def test_cli_errors_are_one_line(tmp_path):
  model_dir, train_dir = write_model_dir(tmp_path, small_model())
  (train_dir / "manifest.json").unlink()
  result = _run_export(f"--model_dir={model_dir}",
                       f"--export_dir={tmp_path / 'out'}")
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      f"error: the training records' manifest ({train_dir}/manifest.json) is "
      "not here to tell the cube edges: pass --cube_mm"]
  result = _run_export(f"--model_dir={model_dir}", "--model=best",
                       f"--export_dir={tmp_path / 'out'}", "--cube_mm=250")
  assert result.returncode == 2
  assert result.stderr.strip() == (
      f"error: {model_dir}/best.keras: no such model (train writes "
      "best.keras only with a validation split)")
  result = _run_export(f"--model_dir={model_dir}", "--cube_mm=250,0",
                       f"--export_dir={tmp_path / 'out'}")
  assert result.returncode == 2 and "--cube_mm=250,0 " in result.stderr


def test_export_refuses_to_overwrite(tmp_path):
  model = small_model()
  (tmp_path / "notes.txt").write_text("mine")
  with pytest.raises(ValueError, match="is not empty"):
    exporter.export_saved_model(model, tmp_path, skeleton="icvl",
                                cube_mm=250.0)
  with pytest.raises(ValueError, match="holds no SavedModel"):
    exporter.export_saved_model(model, tmp_path, skeleton="icvl",
                                cube_mm=250.0, overwrite=True)
  with pytest.raises(ValueError, match="skeleton 'nyu' has 14"):
    exporter.export_saved_model(model, tmp_path / "new", skeleton="nyu",
                                cube_mm=250.0)
