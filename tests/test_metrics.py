"""Tests of jgr_p2o_tf.metrics on cases with known answers."""

import numpy as np
import pytest

from jgr_p2o_tf import geometry
from jgr_p2o_tf import metrics


def _offset_poses(offsets):
  """Ground truth at random and predictions shifted by (N, J, 3) offsets."""
  offsets = np.asarray(offsets, np.float64)
  gt = np.random.default_rng(0).normal(0.0, 50.0, offsets.shape)
  return gt + offsets, gt


def test_three_four_five_offset_gives_five_mm():
  pred, gt = _offset_poses(np.tile([3.0, 4.0, 0.0], (7, 5, 1)))
  errors = metrics.joint_errors(pred, gt)
  assert errors.shape == (7, 5)
  np.testing.assert_allclose(errors, 5.0)
  assert metrics.mean_error(errors) == pytest.approx(5.0)


def test_mean_and_per_joint_errors():
  # Two frames, two joints: errors (0, 5) and (12, 13) mm.
  offsets = [[[0, 0, 0], [0, 3, 4]], [[12, 0, 0], [5, 0, 12]]]
  errors = metrics.joint_errors(*_offset_poses(offsets))
  np.testing.assert_allclose(errors, [[0, 5], [12, 13]])
  assert metrics.mean_error(errors) == pytest.approx(7.5)
  np.testing.assert_allclose(metrics.per_joint_errors(errors), [6.0, 9.0])
  np.testing.assert_allclose(metrics.max_joint_errors(errors), [5.0, 13.0])
  np.testing.assert_allclose(metrics.mean_joint_errors(errors), [2.5, 12.5])


def test_joint_errors_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match="same shape"):
    metrics.joint_errors(np.zeros((2, 3, 3)), np.zeros((2, 4, 3)))


def test_success_curve_counts_frames_at_most_each_threshold():
  errors = np.array([[1.0, 4.0], [2.0, 2.5], [10.0, 0.0]])  # worst 4, 2.5, 10
  curve = metrics.worst_joint_success_curve(errors, [0, 2.5, 4, 9.99, 10, 80])
  np.testing.assert_allclose(curve, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1])
  mean_curve = metrics.mean_joint_success_curve(errors, [2.25, 2.5, 5.0])
  np.testing.assert_allclose(mean_curve, [1 / 3, 2 / 3, 1])  # 2.5 2.25 5


def test_success_curve_is_monotone_from_zero_to_one():
  errors = np.random.default_rng(1).gamma(2.0, 4.0, size=(500, 14)) + 0.5
  worst = metrics.max_joint_errors(errors)
  curve = metrics.worst_joint_success_curve(errors)
  thresholds = metrics.DEFAULT_THRESHOLDS_MM
  assert thresholds[0] == 0 and thresholds[-1] == 80 and len(curve) == 81
  assert np.all(np.diff(curve) >= 0)
  assert np.all(curve[thresholds < errors.min()] == 0)
  assert np.all(curve[thresholds >= worst.max()] == 1)
  # The worst joint is never better than the mean joint.
  assert np.all(curve <= metrics.mean_joint_success_curve(errors))


def test_worst_frames_largest_first_ties_in_frame_order():
  np.testing.assert_array_equal(
      metrics.worst_frames([3.0, 9.0, 1.0, 9.0, 5.0], 3), [1, 3, 4])
  assert len(metrics.worst_frames([1.0, 2.0], 10)) == 2


def test_evaluation_cameras_are_the_toolkit_intrinsics():
  nyu = metrics.evaluation_camera("nyu")
  assert (nyu.fx, nyu.fy, nyu.cx, nyu.cy) == (588.03, -587.07, 320, 240)
  icvl = metrics.evaluation_camera("icvl")
  assert (icvl.fx, icvl.fy, icvl.cx, icvl.cy) == (240.99, 240.96, 160, 120)
  msra = metrics.evaluation_camera("msra")
  assert (msra.fx, msra.fy, msra.cx, msra.cy) == (241.42, 241.42, 160, 120)
  with pytest.raises(ValueError, match="Unknown dataset 'hands'"):
    metrics.evaluation_camera("hands")


def test_text_format_round_trip(tmp_path):
  rng = np.random.default_rng(2)
  uvd = np.concatenate([rng.uniform(0, 640, (4, 14, 2)),
                        rng.uniform(300, 900, (4, 14, 1))], axis=-1)
  path = tmp_path / "pred.txt"
  metrics.write_uvd_file(path, uvd)
  lines = path.read_text().splitlines()
  assert len(lines) == 4 and len(lines[0].split()) == 42
  assert all(len(v.split(".")[1]) == 3 for v in lines[0].split())
  np.testing.assert_allclose(metrics.read_uvd_file(path, 14), uvd, atol=5e-4)
  np.testing.assert_allclose(metrics.read_uvd_file(path), uvd, atol=5e-4)


def test_uvd_to_xyz_with_evaluation_camera_matches_known_point():
  uvd = np.array([[[320.0 + 588.03, 240.0 - 587.07, 1000.0]]])
  xyz = geometry.uvd_to_xyz(uvd, metrics.evaluation_camera("nyu"))
  np.testing.assert_allclose(xyz, [[[1000.0, 1000.0, 1000.0]]])


@pytest.mark.parametrize("content, line, message", [
    ("1 2 3 4 5 6\n1 2 3 4 5\n", 2, "5 values, expected 6"),
    ("1 2 3 4 5 6\n1 2 x 4 5 6\n", 2, "'x' is not a number"),
    ("1 2 3 4\n", 1, "not a whole number of joints"),
    ("1 2 3\n\n4 5 6\n", 2, "0 values, expected 3"),
    ("1 2 3\n1 nan 3\n", 2, "finite"),
])
def test_malformed_file_errors_name_file_and_line(tmp_path, content, line,
                                                  message):
  path = tmp_path / "bad.txt"
  path.write_text(content)
  with pytest.raises(metrics.PredictionFileError) as error:
    metrics.read_uvd_file(path)
  assert f"{path}:{line}:" in str(error.value)
  assert message in str(error.value)


def test_wrong_joint_count_names_file_and_line(tmp_path):
  path = tmp_path / "bad.txt"
  path.write_text("1 2 3 4 5 6\n")
  with pytest.raises(metrics.PredictionFileError,
                     match=r"bad.txt:1: 6 values, expected 42 \(14 joints"):
    metrics.read_uvd_file(path, 14)


def test_empty_file_is_an_error(tmp_path):
  path = tmp_path / "empty.txt"
  path.write_text("\n")
  with pytest.raises(metrics.PredictionFileError, match="no frames"):
    metrics.read_uvd_file(path)
