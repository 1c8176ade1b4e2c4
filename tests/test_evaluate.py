"""Tests of the evaluation library and the evaluate CLI's file mode.

The published predictions must give the mean errors of the paper's Table 5.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from jgr_p2o_tf import evaluation
from jgr_p2o_tf import geometry
from jgr_p2o_tf import metrics
from jgr_p2o_tf import skeletons

REPO = pathlib.Path(__file__).resolve().parents[1]
# The published results lie in shared/, beside the checkout (as in CI).
PUBLISHED = REPO.parent / "shared" / "published_results"
NYU_LABELS = PUBLISHED / "nyu" / "nyu_test_groundtruth_label.txt"
NYU_V2V = PUBLISHED / "nyu" / "CVPR18_NYU_V2V_PoseNet.txt"
NYU_DEEPPRIOR = PUBLISHED / "nyu" / "ICCVW17_NYU_DeepPrior++.txt"
ICVL_LABELS = PUBLISHED / "icvl" / "icvl_test_groundtruth_label.txt"
ICVL_V2V = PUBLISHED / "icvl" / "CVPR18_ICVL_V2V_PoseNet.txt"
ICVL_CROSSINFONET = PUBLISHED / "icvl" / "CVPR19_ICVL_CrossInfoNet.txt"

needs_published = pytest.mark.skipif(
    not PUBLISHED.is_dir(), reason="published results not available")


def _run_cli(*flags):
  return subprocess.run(
      [sys.executable, "-m", "jgr_p2o_tf.evaluate", *flags], cwd=REPO,
      capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def nyu_report():
  return evaluation.evaluate_prediction_files(
      "nyu", str(NYU_LABELS), [str(NYU_V2V), str(NYU_DEEPPRIOR)],
      ["V2V-PoseNet", "DeepPrior++"])


@needs_published
def test_published_nyu_numbers(nyu_report):
  v2v, deepprior = nyu_report["methods"]
  assert v2v["mean_error_mm"] == pytest.approx(8.42, abs=0.01)
  assert deepprior["mean_error_mm"] == pytest.approx(12.24, abs=0.01)
  assert nyu_report["num_frames"] == 8252 and nyu_report["num_joints"] == 14


@needs_published
def test_published_icvl_numbers():
  report = evaluation.evaluate_prediction_files(
      "icvl", str(ICVL_LABELS), [str(ICVL_V2V), str(ICVL_CROSSINFONET)])
  v2v, crossinfonet = report["methods"]
  assert v2v["name"] == "CVPR18_ICVL_V2V_PoseNet"
  assert v2v["mean_error_mm"] == pytest.approx(6.28, abs=0.01)
  assert crossinfonet["mean_error_mm"] == pytest.approx(6.73, abs=0.01)
  assert report["num_frames"] == 1596 and report["num_joints"] == 16


@needs_published
def test_report_contents(nyu_report):
  assert nyu_report["joint_names"] == list(skeletons.NYU.joint_names)
  assert nyu_report["camera"] == {"fx": 588.03, "fy": -587.07, "cx": 320.0,
                                  "cy": 240.0}
  v2v = nyu_report["methods"][0]
  assert v2v["path"] == str(NYU_V2V)
  per_joint = v2v["per_joint_error_mm"]
  assert list(per_joint) == list(skeletons.NYU.joint_names)
  # Every joint has as many frames, so the joints' means average to the mean.
  assert np.mean(list(per_joint.values())) == pytest.approx(
      v2v["mean_error_mm"])
  curves = v2v["success_curves"]
  assert curves["thresholds_mm"] == list(range(81))
  assert len(curves["max_joint_error"]) == len(curves["mean_joint_error"]) == 81
  assert curves["max_joint_error"][0] == 0.0
  assert np.all(np.diff(curves["max_joint_error"]) >= 0)
  # The joint with the highest mean error, another thing than a frame's max.
  highest = v2v["highest_error_joint"]
  assert per_joint[highest["name"]] == highest["mean_error_mm"] == max(
      per_joint.values())
  worst = v2v["worst_frames"]
  assert len(worst) == evaluation.NUM_WORST_FRAMES
  assert (worst[0]["max_joint_error_mm"] >= worst[-1]["max_joint_error_mm"]
          > 80.0)
  assert worst[0]["frame_id"] == f"line {worst[0]['index'] + 1}"


def test_evaluate_arrays_matches_file_mode(tmp_path):
  rng = np.random.default_rng(0)
  gt_xyz = rng.normal([0, 0, 400], 40, (6, 16, 3))
  pred_xyz = gt_xyz + rng.normal(0, 5, gt_xyz.shape)
  from_arrays = evaluation.evaluate_arrays([pred_xyz], gt_xyz, ["m"], "icvl")
  camera = metrics.evaluation_camera("icvl")
  metrics.write_uvd_file(tmp_path / "gt.txt",
                         geometry.xyz_to_uvd(gt_xyz, camera))
  metrics.write_uvd_file(tmp_path / "m.txt",
                         geometry.xyz_to_uvd(pred_xyz, camera))
  from_files = evaluation.evaluate_prediction_files(
      "icvl", str(tmp_path / "gt.txt"), [str(tmp_path / "m.txt")])
  # Arrays have no label file or camera, their method no file: left out.
  assert set(from_files) - set(from_arrays) == {"camera", "labels"}
  assert set(from_files["methods"][0]) - set(from_arrays["methods"][0]) == {
      "path"}
  # %.3f rounding of the files moves the errors by well under 0.01 mm.
  assert from_arrays["methods"][0]["mean_error_mm"] == pytest.approx(
      from_files["methods"][0]["mean_error_mm"], abs=0.01)


def test_frame_count_mismatch_names_both_files(tmp_path):
  metrics.write_uvd_file(tmp_path / "gt.txt", np.ones((5, 14, 3)))
  metrics.write_uvd_file(tmp_path / "p.txt", np.ones((4, 14, 3)))
  with pytest.raises(metrics.PredictionFileError,
                     match=r"p.txt: 4 frames, but the labels .*gt.txt have 5"):
    evaluation.evaluate_prediction_files(
        "nyu", str(tmp_path / "gt.txt"), [str(tmp_path / "p.txt")])


def test_json_round_trip(tmp_path):
  gt_xyz = np.full((3, 14, 3), 500.0)
  report = evaluation.evaluate_arrays([gt_xyz + 1.0], gt_xyz, ["m"], "nyu")
  evaluation.write_report_json(report, str(tmp_path / "sub" / "r.json"))
  assert evaluation.read_report_json(str(tmp_path / "sub" / "r.json")) == report
  assert "m" in evaluation.format_table(report)


@needs_published
def test_cli_file_mode_writes_json_and_png(tmp_path):
  json_path, png_path = tmp_path / "out.json", tmp_path / "curves.png"
  result = _run_cli(
      "--dataset=nyu", f"--labels={NYU_LABELS}",
      f"--predictions={NYU_V2V},{NYU_DEEPPRIOR}", "--names=V2V,DeepPrior++",
      f"--plot={png_path}", f"--output_json={json_path}")
  assert result.returncode == 0, result.stderr
  assert "V2V" in result.stdout and "8.419" in result.stdout
  report = json.loads(json_path.read_text())
  assert [m["name"] for m in report["methods"]] == ["V2V", "DeepPrior++"]
  for method in report["methods"]:
    assert {"name", "path", "mean_error_mm", "per_joint_error_mm",
            "success_curves"} <= set(method)
    assert {"thresholds_mm", "max_joint_error", "mean_joint_error"} <= set(
        method["success_curves"])
  png = png_path.read_bytes()
  assert png.startswith(b"\x89PNG\r\n\x1a\n")
  assert 20_000 < len(png) < 2_000_000
  width, height = (int.from_bytes(png[16:20], "big"),
                   int.from_bytes(png[20:24], "big"))
  assert width >= 800 and height >= 400


@pytest.mark.parametrize("flags, message", [
    (["--dataset=hands", "--labels=a.txt", "--predictions=b.txt"],
     "--dataset=hands"),
    (["--dataset=nyu", "--labels=/nonexistent/gt.txt", "--predictions=b.txt"],
     "/nonexistent/gt.txt"),
    (["--dataset=nyu", "--predictions=b.txt"],
     "--labels is required in file mode"),
    (["--dataset=nyu"], "a model (--model_dir and --data_dir) or prediction "
     "files (--predictions and --labels)"),
    (["--dataset=nyu", "--bogus=1"], "Unknown command line flag 'bogus'"),
])
def test_cli_bad_input_is_a_one_line_error(flags, message):
  result = _run_cli(*flags)
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith("error:") and message in lines[0]
  assert "Traceback" not in result.stderr


def test_cli_wrong_names_count_is_a_one_line_error(tmp_path):
  metrics.write_uvd_file(tmp_path / "gt.txt", np.ones((2, 16, 3)))
  result = _run_cli("--dataset=icvl", f"--labels={tmp_path / 'gt.txt'}",
                    f"--predictions={tmp_path / 'gt.txt'}", "--names=a,b")
  assert result.returncode == 2
  assert result.stderr.strip() == "error: 2 names for 1 prediction files"
  assert os.listdir(tmp_path) == ["gt.txt"]
