"""Tests of inference with an exported SavedModel and of the infer CLI."""

import dataclasses
import json
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import exporter
from jgr_p2o_tf import geometry
from jgr_p2o_tf import inference
from jgr_p2o_tf import visualize
from jgr_p2o_tf.datasets import centres
from jgr_p2o_tf.datasets import frame as frame_lib
from tests import dataset_fixtures
from tests import test_export

REPO = pathlib.Path(__file__).resolve().parents[1]
CAMERA = dataset_profiles.ICVL.camera


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
  """A one-stack ICVL model exported with ICVL's camera as the default."""
  export_dir = tmp_path_factory.mktemp("infer") / "saved_model"
  exporter.export_saved_model(test_export.small_model(), export_dir,
                              skeleton="icvl", cube_mm=250.0, dataset="icvl")
  return export_dir


@pytest.fixture(scope="module")
def images(tmp_path_factory):
  """Two 16-bit depth PNGs and an 8-bit one."""
  root = tmp_path_factory.mktemp("images")
  depth, _ = test_export.hand_frames(CAMERA, 2, seed=7)
  paths = []
  for index, frame in enumerate(depth):
    paths.append(root / f"hand{index}.png")
    cv2.imwrite(str(paths[-1]), np.round(frame).astype(np.uint16))
  eight_bit = root / "eight_bit.png"
  cv2.imwrite(str(eight_bit), np.full((CAMERA.height, CAMERA.width), 80,
                                      np.uint8))
  return paths, depth, eight_bit


def _run_infer(*args, cwd=REPO):
  return subprocess.run(
      [sys.executable, "-m", "jgr_p2o_tf.infer", *map(str, args)], cwd=cwd,
      capture_output=True, text=True, timeout=120, check=False)


def test_cli_writes_predictions_and_figures(saved_model, images, tmp_path):
  paths, depth, _ = images
  out = tmp_path / "out"
  result = _run_infer(f"--saved_model={saved_model}", f"--output_dir={out}",
                      *paths)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads((out / "predictions.json").read_text())
  assert report["skeleton"] == "icvl" and len(report["joint_names"]) == 16
  assert report["camera"] == dataclasses.asdict(CAMERA)
  # Every path absolute.
  assert [f["file"] for f in report["frames"]] == [str(p) for p in paths]
  assert report["model"] == str(saved_model)
  assert [f["plot"] for f in report["frames"]] == [
      str(out / "hand0.png"), str(out / "hand1.png")]
  for frame, frame_depth in zip(report["frames"], depth):
    joints_xyz = np.array(frame["joints_xyz"])
    assert joints_xyz.shape == (16, 3) and np.all(np.isfinite(joints_xyz))
    np.testing.assert_allclose(
        np.array(frame["joints_uvd"]), geometry.xyz_to_uvd(joints_xyz, CAMERA),
        atol=2e-2)
    # The PNG holds depth in whole millimetres.
    expected_centre = centres.compute_centre(np.round(frame_depth), CAMERA,
                                             cube_mm=250.0)
    # predictions.json rounds to 0.01 mm.
    np.testing.assert_allclose(frame["centre_xyz"], expected_centre,
                               atol=0.005 + 1e-6)
    assert all(round(c, 2) == c for c in frame["centre_xyz"] +
               frame["joints_xyz"][0] + frame["joints_uvd"][0])
    assert frame["centre_source"] == "computed"
    figure = cv2.imread(str(out / frame["plot"]), cv2.IMREAD_UNCHANGED)
    assert figure is not None and figure.ndim == 3
  assert sorted(p.name for p in out.glob("*.png")) == ["hand0.png",
                                                        "hand1.png"]


def test_cli_missing_file_is_one_line_error(saved_model, images, tmp_path):
  paths, _, _ = images
  missing = tmp_path / "nowhere.png"
  result = _run_infer(f"--saved_model={saved_model}",
                      f"--output_dir={tmp_path / 'out'}", paths[0], missing)
  assert result.returncode == 2
  assert result.stderr.strip() == f"error: {missing}: no such file"


def test_cli_8bit_png_is_one_line_error(saved_model, images, tmp_path):
  _, _, eight_bit = images
  result = _run_infer(f"--saved_model={saved_model}", "--centre=0,0,450",
                      f"--output_dir={tmp_path / 'out'}", eight_bit)
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert lines[-1] == (f"error: {eight_bit}: got 8-bit 1-channel PNG, "
                       f"expected 16-bit single-channel 320×240 PNG")
  assert not any(line.startswith("Traceback") for line in lines)


def test_given_centre_equals_the_crop_signature(saved_model, images):
  predictor = inference.Predictor(saved_model)
  paths, _, _ = images
  centre = np.array([10.0, -5.0, 450.0], np.float32)
  results = inference.predict_files(predictor, paths[:1], CAMERA,
                                    centre_xyz=centre)
  assert results[0]["centre_source"] == "given"
  depth = inference.read_depth(paths[0], CAMERA)
  crop, affine = geometry.crop_depth(depth, centre, 250.0, CAMERA)
  uvz = predictor.predict_crop(crop[None, ..., None])["joints_uvz"][0]
  xyz = geometry.normalized_to_xyz(uvz, affine, centre[2],
                                   geometry.cube_vector(250.0), CAMERA)
  np.testing.assert_allclose(results[0]["joints_xyz"], xyz, atol=1e-2)


def test_read_depth_formats(tmp_path):
  rng = np.random.default_rng(0)
  depth = np.zeros((CAMERA.height, CAMERA.width), np.float32)
  depth[50:120, 80:200] = rng.integers(300, 1200, (70, 120))
  # NYU: high byte in green, low byte in blue (OpenCV writes BGR).
  packed = np.zeros(depth.shape + (3,), np.uint8)
  packed[..., 0] = depth.astype(np.uint16) & 0xFF
  packed[..., 1] = depth.astype(np.uint16) >> 8
  nyu_png = tmp_path / "nyu.png"
  cv2.imwrite(str(nyu_png), packed)
  nyu_camera = dataclasses.replace(dataset_profiles.NYU.camera, width=CAMERA.width,
                                   height=CAMERA.height)
  np.testing.assert_array_equal(
      inference.read_depth(nyu_png, nyu_camera, dataset="nyu"), depth)
  msra_bin = tmp_path / "000000_depth.bin"
  dataset_fixtures.write_msra_bin(msra_bin, depth)
  np.testing.assert_array_equal(
      inference.read_depth(msra_bin, dataset_profiles.MSRA.camera), depth)
  with pytest.raises(frame_lib.DatasetError, match=r"nyu\.png: got 8-bit "
                     r"3-channel PNG, expected 16-bit single-channel"):
    inference.read_depth(nyu_png, CAMERA)
  with pytest.raises(frame_lib.DatasetError, match=r"depth\.jpg: unknown"):
    inference.read_depth(tmp_path / "depth.jpg", CAMERA)


class _StubPredictor:
  camera = CAMERA


def test_resolve_camera():
  stub = _StubPredictor()
  assert inference.resolve_camera(stub) == CAMERA
  assert inference.resolve_camera(stub, "nyu") == dataset_profiles.NYU.camera
  assert inference.resolve_camera(stub, None, [200, 210, 150, 110]) == (
      geometry.Camera(200.0, 210.0, 150.0, 110.0, 320, 240))
  assert inference.resolve_camera(
      stub, None, [200, 210, 150, 110, 640, 480]).width == 640
  stub.camera = None
  with pytest.raises(ValueError, match="stores no camera: pass --dataset"):
    inference.resolve_camera(stub)
  with pytest.raises(ValueError, match="needs width,height too"):
    inference.resolve_camera(stub, None, [200, 210, 150, 110])
  with pytest.raises(ValueError, match="fx,fy,cx,cy\\[,width,height\\], got 5"):
    inference.resolve_camera(stub, None, [1, 2, 3, 4, 5])


def test_plot_depth_with_joints():
  depth = np.zeros((CAMERA.height, CAMERA.width), np.float32)
  depth[100:140, 150:190] = 450.0
  joints = geometry.xyz_to_uvd(
      dataset_fixtures.random_hand_xyz(np.random.default_rng(1), 16, 450.0),
      CAMERA)
  figure = visualize.plot_depth_with_joints(depth, joints, "icvl",
                                            centre_uvd=joints[0],
                                            full_frame=True)
  ax, colour_bar = figure.axes
  (image,) = ax.get_images()
  assert image.get_array().shape == depth.shape
  assert image.get_array().mask[0, 0] and not image.get_array().mask[120, 170]
  assert ax.get_xlim() == (-0.5, CAMERA.width - 0.5)
  assert colour_bar.get_ylabel() == "depth (mm)"
  assert visualize.figure_to_png_bytes(figure).startswith(b"\x89PNG")
