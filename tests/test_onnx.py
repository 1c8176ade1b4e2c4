"""Tests of the ONNX export and of inference on onnxruntime and OpenVINO.

Every runtime must give what the SavedModel gives on the same inputs: the
paper's model (2 stacks, 128 features, random weights, ``nyu_export``) on
crops and on full frames, among them one where every crop sample falls
half-way between two pixels (where rounding conventions differ), and a
small model with trained-like statistics in the authors' coordinate
convention through infer, the evaluator and the notebook's loader. Old or
foreign exports must be refused with one line naming the file.
"""

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys

import cv2
import numpy as np
import onnx
import pytest

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import evaluation
from jgr_p2o_tf import exporter
from jgr_p2o_tf import geometry
from jgr_p2o_tf import inference
from jgr_p2o_tf import inspection
from jgr_p2o_tf import model as model_lib
from jgr_p2o_tf import onnx_contract
from jgr_p2o_tf import onnx_export
from tests import test_export

REPO = pathlib.Path(__file__).resolve().parents[1]
ONNX_RUNTIMES = ("onnxruntime", "openvino")
NYU = dataset_profiles.NYU.camera
# fx = fy = 384 px and a hand centre 1200 mm away on the optical axis: the
# 300 mm cube maps to exactly 96 pixels, so the crop's samples fall exactly
# half-way between frame pixels (112.5, 113.5, ...) and the crop depends on
# how ties round. TensorFlow rounds them away from zero.
TIE_CAMERA = dataclasses.replace(NYU, fx=384.0, fy=384.0, cx=320.0, cy=240.0)
TIE_CENTRE = np.float32([0.0, 0.0, 1200.0])


@pytest.fixture(scope="module")
def paper_model(nyu_export, tmp_path_factory):
  """The paper's model as a SavedModel and as ONNX, and the SavedModel's
  outputs on two crops and two full frames (the second of them a tie)."""
  model, saved_model_dir, saved_model_metadata = nyu_export
  onnx_dir = tmp_path_factory.mktemp("paper") / "onnx"
  metadata = onnx_export.export_onnx(model, onnx_dir, skeleton="nyu",
                                     cube_mm=300.0, dataset="nyu")
  depth, centres = test_export.hand_frames(NYU, 1, seed=3, depth_mm=500.0)
  tie_depth, _ = test_export.hand_frames(TIE_CAMERA, 1, seed=4,
                                         depth_mm=float(TIE_CENTRE[2]))
  frames = {"depth": np.concatenate([depth, tie_depth]),
            "centre_xyz": np.stack([centres[0], TIE_CENTRE]),
            "intrinsics": np.stack([NYU.intrinsics, TIE_CAMERA.intrinsics])}
  crops = np.stack([geometry.crop_depth(d, c, 300.0, camera)[0] for d, c, camera
                    in zip(frames["depth"], frames["centre_xyz"],
                           (NYU, TIE_CAMERA))])[..., None]
  saved_model = inference.Predictor(saved_model_dir)
  expected = {"crop": saved_model.predict_crop(crops),
              "full_frame": saved_model.predict(
                  frames["depth"], frames["centre_xyz"],
                  frames["intrinsics"])}
  return (onnx_dir, metadata, saved_model_metadata, frames, crops, expected)


def test_tie_frame_samples_half_way_between_pixels():
  affine = geometry.crop_affine(geometry.xyz_to_uvd(TIE_CENTRE, TIE_CAMERA),
                                geometry.cube_vector(300.0), TIE_CAMERA)
  crop_pixels = np.stack(np.meshgrid(np.arange(96.0), np.arange(96.0)),
                         -1).reshape(-1, 2)
  frame_pixels = geometry.apply_affine(geometry.invert_affine(affine),
                                       crop_pixels)
  np.testing.assert_array_equal(frame_pixels % 1, 0.5)


@pytest.mark.parametrize("runtime", ONNX_RUNTIMES)
def test_paper_model_equals_the_saved_model(paper_model, runtime):
  onnx_dir, metadata, _, frames, crops, expected = paper_model
  predictor = inference.Predictor(onnx_dir, runtime)
  assert predictor.metadata == metadata
  crop = predictor.predict_crop(crops)
  np.testing.assert_allclose(crop["joints_uvz"],
                             expected["crop"]["joints_uvz"], atol=1e-4, rtol=0)
  np.testing.assert_allclose(crop["voting_maps"],
                             expected["crop"]["voting_maps"], atol=1e-6,
                             rtol=0)
  full = predictor.predict(frames["depth"], frames["centre_xyz"],
                           frames["intrinsics"])
  assert full.keys() == expected["full_frame"].keys()
  np.testing.assert_allclose(full["joints_uvz"],
                             expected["full_frame"]["joints_uvz"], atol=1e-4,
                             rtol=0)
  np.testing.assert_allclose(full["joints_xyz"],
                             expected["full_frame"]["joints_xyz"], atol=0.05,
                             rtol=0)


def test_metadata_is_the_saved_model_s(paper_model):
  onnx_dir, metadata, saved_model_metadata, *_ = paper_model
  assert json.loads((onnx_dir / "metadata.json").read_text()) == metadata
  assert metadata["format"] == onnx_contract.FORMAT
  assert metadata["graphs"] == {
      name: saved_model_metadata["signatures"][signature]
      for name, signature in onnx_contract.SIGNATURES.items()}
  shared = set(saved_model_metadata) - {"format", "format_version",
                                        "jit_compile", "signatures"}
  assert {k: metadata[k] for k in shared} == {
      k: saved_model_metadata[k] for k in shared}
  for name in onnx_contract.SIGNATURES:
    graph = onnx.load(onnx_dir / name)
    assert onnx_contract.parse_metadata(
        {p.key: p.value for p in graph.metadata_props}, name) == metadata
    inputs = {i.name: [d.dim_param or d.dim_value
                       for d in i.type.tensor_type.shape.dim]
              for i in graph.graph.input}
    assert inputs == (
        {"depth_crop": ["batch", 96, 96, 1]} if name == "crop.onnx" else
        {"depth": ["batch", "height", "width"], "centre_xyz": ["batch", 3],
         "intrinsics": ["batch", 4]})
    assert not [n for n in graph.graph.node if n.domain]


@pytest.fixture(scope="module")
def small_exports(tmp_path_factory):
  """A one-stack ICVL model in the authors' convention, trained-like
  statistics, exported from a run folder as a SavedModel and as ONNX."""
  root = tmp_path_factory.mktemp("small")
  model = model_lib.build_model(16, num_stacks=1, num_features=32,
                                skeleton="icvl",
                                coordinate_convention="authors")
  test_export.randomize_batch_norm(model)
  model_dir, _ = test_export.write_model_dir(root, model)
  # Without XLA, which test_export compiles: it only costs time here.
  exporter.export_from_model_dir(model_dir, root / "saved_model",
                                 jit_compile=False)
  metadata = onnx_export.export_onnx_from_model_dir(model_dir, root / "onnx")
  assert metadata["coordinate_convention"] == "authors"
  return model, root / "saved_model", root / "onnx"


def test_infer_agrees_across_runtimes(small_exports, tmp_path):
  _, saved_model_dir, onnx_dir = small_exports
  camera = dataset_profiles.ICVL.camera
  depth, _ = test_export.hand_frames(camera, 2, seed=7)
  paths = [str(tmp_path / f"hand{i}.png") for i in range(len(depth))]
  for path, frame in zip(paths, depth):
    cv2.imwrite(path, np.round(frame).astype(np.uint16))
  expected = inference.predict_files(inference.Predictor(saved_model_dir),
                                     paths, camera)
  for runtime in ONNX_RUNTIMES:
    got = inference.predict_files(inference.Predictor(onnx_dir, runtime),
                                  paths, camera)
    for frame, reference in zip(got, expected):
      assert frame["centre_xyz"] == reference["centre_xyz"]
      np.testing.assert_allclose(frame["joints_xyz"], reference["joints_xyz"],
                                 atol=0.05, rtol=0)
  # The command, on OpenVINO, without TensorFlow.
  out = tmp_path / "out"
  script = ("import atexit, sys; atexit.register(lambda: print("
            "'TF_IMPORTED', 'tensorflow' in sys.modules)); "
            "from jgr_p2o_tf import infer; infer.run()")
  result = subprocess.run(
      [sys.executable, "-c", script, f"--model={onnx_dir}",
       "--runtime=openvino", "--noplot", f"--output_dir={out}", *paths],
      capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "TF_IMPORTED False" in result.stdout
  report = json.loads((out / inference.PREDICTIONS_FILE).read_text())
  assert report["runtime"] == "openvino"
  assert report["format"] == onnx_contract.FORMAT
  assert report["model"] == str(onnx_dir)
  for frame, reference in zip(report["frames"], expected):
    np.testing.assert_allclose(frame["joints_xyz"], reference["joints_xyz"],
                               atol=0.05, rtol=0)


def test_evaluator_and_notebook_run_any_runtime(small_exports,
                                               synthetic_records):
  model, saved_model_dir, onnx_dir = small_exports
  test_dir = os.path.join(synthetic_records, "test")
  expected = evaluation.predict_records(model, test_dir)
  # onnxruntime gives OpenVINO's outputs (the tests above): one of them here.
  for runtime, export_dir in (("tensorflow", saved_model_dir),
                              ("openvino", onnx_dir)):
    exported, skeleton = inspection.load_model(export_dir, runtime)
    assert skeleton == "icvl"
    assert exported.predictor.runtime == runtime
    got = evaluation.predict_records(exported, test_dir)
    # The Keras model's joints are in the authors' convention, the export's
    # in the project's: both map back to the same millimetres.
    np.testing.assert_allclose(got["pred_uvz"], expected["pred_uvz"],
                               atol=1e-4, rtol=0)
    np.testing.assert_allclose(got["pred_xyz"], expected["pred_xyz"],
                               atol=0.05, rtol=0)


def _copy_with_properties(onnx_dir, tmp_path, change):
  """A copy of an ONNX export whose crop graph's metadata is changed."""
  copy = tmp_path / "copy"
  shutil.copytree(onnx_dir, copy)
  graph = onnx.load(copy / onnx_contract.CROP_FILE)
  properties = {p.key: p.value for p in graph.metadata_props}
  del graph.metadata_props[:]
  onnx.helper.set_model_props(graph, change(properties))
  onnx.save(graph, copy / onnx_contract.CROP_FILE)
  return copy


@pytest.mark.parametrize("runtime", ONNX_RUNTIMES)
def test_old_or_foreign_onnx_is_refused(small_exports, tmp_path, runtime):
  _, _, onnx_dir = small_exports
  foreign = _copy_with_properties(onnx_dir, tmp_path / "foreign", lambda p: {})
  with pytest.raises(ValueError, match=(
      f"^{foreign / 'crop.onnx'}: an ONNX model without the metadata of "
      "python -m jgr_p2o_tf.export --format=onnx$")):
    inference.Predictor(foreign, runtime)
  old = _copy_with_properties(
      onnx_dir, tmp_path / "old",
      lambda p: {**p, "jgr_p2o_tf.format_version": "0"})
  with pytest.raises(ValueError, match=(
      f"^{old / 'crop.onnx'}: exported by an older version of jgr_p2o_tf "
      r"\(jgr_p2o_tf.onnx version 0; this one reads version 1\); export the "
      "model again$")):
    inference.Predictor(old, runtime)


def test_old_saved_model_and_wrong_runtime_are_refused(small_exports,
                                                      tmp_path):
  _, saved_model_dir, onnx_dir = small_exports
  old = tmp_path / "old"
  shutil.copytree(saved_model_dir, old)
  asset = old / "assets" / "metadata.json"
  asset.write_text(json.dumps({**json.loads(asset.read_text()),
                               "format_version": 0}))
  with pytest.raises(ValueError, match=f"^{old}: exported by an older version"):
    inference.Predictor(old)
  with pytest.raises(ValueError, match="a SavedModel runs on tensorflow; for "
                     "openvino, export the model with --format=onnx"):
    inference.Predictor(saved_model_dir, "openvino")
  with pytest.raises(ValueError, match="an ONNX export runs on onnxruntime "
                     "or openvino"):
    inference.Predictor(onnx_dir, "tensorflow")
  with pytest.raises(FileNotFoundError, match="neither a SavedModel"):
    inference.Predictor(tmp_path)
  # The command says it in one line.
  old_onnx = _copy_with_properties(
      onnx_dir, tmp_path / "old_onnx",
      lambda p: {**p, "jgr_p2o_tf.format_version": "0"})
  result = subprocess.run(
      [sys.executable, "-m", "jgr_p2o_tf.infer", f"--model={old_onnx}",
       f"--output_dir={tmp_path / 'out'}", "--centre=0,0,450",
       str(old_onnx / "metadata.json")],
      capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      f"error: {old_onnx / 'crop.onnx'}: exported by an older version of "
      "jgr_p2o_tf (jgr_p2o_tf.onnx version 0; this one reads version 1); "
      "export the model again"]


def test_onnx_inputs_are_checked(small_exports):
  _, _, onnx_dir = small_exports
  predictor = inference.Predictor(onnx_dir)
  camera = dataset_profiles.ICVL.camera
  depth = np.full((camera.height, camera.width), 500.0, np.float32)
  with pytest.raises(ValueError, match="centre_xyz z must be > 0 mm"):
    predictor.predict(depth, [0.0, 0.0, -5.0], camera)
  with pytest.raises(ValueError, match="intrinsics fx and fy must be non-zero"):
    predictor.predict(depth, [0.0, 0.0, 500.0], [0.0, 1.0, 2.0, 3.0])
  with pytest.raises(ValueError, match=r"H, W >= 1"):
    predictor.predict(depth[:0], [0.0, 0.0, 500.0], camera)
  with pytest.raises(ValueError, match=r"depth_crop must be \(B, 96, 96, 1\), "
                     r"got shape \(1, 64, 64, 1\)"):
    predictor.predict_crop(np.zeros((1, 64, 64, 1)))
  # Any frame size and batch, as the SavedModel.
  outputs = predictor.predict(np.full((3, 100, 150), 500.0), [0.0, 0.0, 500.0],
                              camera)
  assert outputs["joints_xyz"].shape == (3, 16, 3)


def test_export_refusals(tmp_path):
  model = test_export.small_model()
  (tmp_path / "notes.txt").write_text("mine")
  with pytest.raises(ValueError, match="is not empty"):
    onnx_export.export_onnx(model, tmp_path, skeleton="icvl", cube_mm=250.0)
  with pytest.raises(ValueError, match="holds no ONNX export"):
    onnx_export.export_onnx(model, tmp_path, skeleton="icvl", cube_mm=250.0,
                            overwrite=True)
  mixed = model_lib.JGRP2OModel.from_config(
      {**model.get_config(), "dtype": "mixed_bfloat16"})
  with pytest.raises(ValueError, match="the ONNX export is float32"):
    onnx_export.export_onnx(mixed, tmp_path / "new", skeleton="icvl",
                            cube_mm=250.0)
  result = test_export._run_export(  # pylint: disable=protected-access
      "--model_dir=run", f"--export_dir={tmp_path / 'out'}", "--format=onnx",
      "--mixed_precision=bfloat16")
  assert result.returncode == 2
  assert result.stderr.strip() == ("error: --mixed_precision is for "
                                   "--format=saved_model; the ONNX export is "
                                   "float32")
