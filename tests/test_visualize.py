"""Tests of jgr_p2o_tf.visualize: panels, positions and what is drawn."""

from matplotlib import collections as mpl_collections
from matplotlib import colors as mpl_colors
from matplotlib import figure as mpl_figure
from matplotlib import quiver as mpl_quiver
import numpy as np
import pytest

from jgr_p2o_tf import evaluation
from jgr_p2o_tf import skeletons
from jgr_p2o_tf import visualize

S = 96


def _scatter(ax, label):
  return next(c for c in ax.collections
              if isinstance(c, mpl_collections.PathCollection)
              and c.get_label() == label)


def _results():
  rng = np.random.default_rng(0)
  gt = rng.normal([0, 0, 400], 40, (20, 14, 3))
  preds = [gt + rng.normal(0, s, gt.shape) for s in (3.0, 6.0, 9.0)]
  report = evaluation.evaluate_arrays(preds, gt, ["a", "b", "c"], "nyu")
  return report["methods"]


def test_crop_joints_drawn_at_integer_pixel_centres():
  joints_uvz = np.array([[0.5, 0.5, 0.0], [0.25, 0.75, 0.1],
                         [1 / 96 * 0.5, 1.0 - 0.5 / 96, 0.0]])
  skeleton = skeletons.Skeleton("three", ("a", "b", "c"), ((0, 1), (1, 2)))
  gt = joints_uvz + [0.05, -0.05, 0.0]
  fig = visualize.plot_crop_with_joints(np.ones((S, S, 1)), joints_uvz,
                                        skeleton, gt_uvz=gt)
  assert isinstance(fig, mpl_figure.Figure)
  ax = fig.axes[0]
  np.testing.assert_allclose(_scatter(ax, "prediction").get_offsets(),
                             joints_uvz[:, :2] * S - 0.5)
  np.testing.assert_allclose(_scatter(ax, "ground truth").get_offsets(),
                             gt[:, :2] * S - 0.5)
  # Pixel 0's centre is 0 and pixel 95's is 95: the crop spans −0.5..95.5.
  np.testing.assert_allclose(_scatter(ax, "prediction").get_offsets()[2],
                             [0.0, 95.0])
  assert ax.images[0].get_extent() == [-0.5, 95.5, 95.5, -0.5]
  assert len(ax.lines) == 4  # two bones each


def test_crop_marker_renders_at_expected_pixel():
  fig = visualize.plot_crop_with_joints(
      np.ones((S, S)), np.array([[0.3, 0.7, 0.0]]),
      skeletons.Skeleton("one", ("a",), ()))
  ax = fig.axes[0]
  image = visualize.figure_to_array(fig)
  # Display coordinates have y up; image rows go down.
  x, y = ax.transData.transform((0.3 * S - 0.5, 0.7 * S - 0.5))
  row, col = int(round(image.shape[0] - y)), int(round(x))
  red = np.array(mpl_colors.to_rgb(visualize.PRED_COLOR)) * 255
  assert np.abs(image[row, col].astype(float) - red).max() < 30
  # The crop itself (background = 1) is white away from the marker.
  assert np.all(image[row, col + 15] > 240)


def _hand_uvd(centre_uv, depth_mm=400.0):
  """ICVL joints: palm at centre_uv, each finger a straight ray of its own."""
  joints = [list(centre_uv) + [depth_mm]]
  for f in range(5):
    angle = np.radians(-150 + 30 * f)
    direction = np.array([np.cos(angle), np.sin(angle)])
    joints += [list(np.asarray(centre_uv) + r * direction) + [depth_mm]
               for r in (12.0, 24.0, 36.0)]
  return np.array(joints)


def test_depth_frame_zooms_to_the_hand_and_colours_each_finger():
  height, width = 240, 320
  joints = _hand_uvd((250.0, 170.0))
  depth = np.zeros((height, width))
  depth[130:215, 210:290] = 400.0
  fig = visualize.plot_depth_with_joints(depth, joints, "icvl",
                                         centre_uvd=joints[0])
  view, whole, colour_bar = fig.axes
  (u0, u1), (v1, v0) = view.get_xlim(), view.get_ylim()
  # Every joint inside the view, which is a zoom: about the hand's size.
  assert np.all((u0 < joints[:, 0]) & (joints[:, 0] < u1))
  assert np.all((v0 < joints[:, 1]) & (joints[:, 1] < v1))
  assert 72 <= u1 - u0 < width / 2 and u1 - u0 == pytest.approx(v1 - v0)
  assert whole.get_xlim() == (-0.5, width - 0.5)
  assert colour_bar.get_ylabel() == "depth (mm)"
  legend = [t.get_text() for t in whole.get_legend().get_texts()]
  assert legend[:5] == list(skeletons.FINGERS)
  # Each bone's middle is drawn in its finger's colour.
  image = visualize.figure_to_array(fig).astype(float)
  skeleton = skeletons.ICVL
  for (i, j), finger in zip(skeleton.bones, skeleton.bone_fingers):
    x, y = view.transData.transform((joints[[i, j], :2].mean(axis=0)))
    pixel = image[int(round(image.shape[0] - y)), int(round(x))]
    expected = np.array(skeletons.FINGER_COLORS[finger], float)
    assert np.abs(pixel - expected).max() < 40, (finger, pixel)


def test_hand_window_stays_in_the_frame_and_keeps_a_margin():
  u0, u1, v0, v1 = visualize.hand_window([[2.0, 3.0], [40.0, 20.0]],
                                         (240, 320))
  assert (u0, v0) == (-0.5, -0.5)
  assert u1 - u0 == v1 - v0 == pytest.approx(38.0 * 1.6)
  # A point cloud wider than the frame: the frame's larger edge, centred.
  u0, u1, v0, v1 = visualize.hand_window([[-50.0, 5.0], [400.0, 6.0]],
                                         (240, 320))
  assert (u0, u1) == (-0.5, 319.5) and v1 - v0 == 320


def test_voting_maps_one_panel_per_joint_with_names():
  names = skeletons.NYU.joint_names
  maps = np.random.default_rng(0).random((24, 24, len(names)))
  gt = np.full((len(names), 3), 0.25)
  fig = visualize.plot_voting_maps(np.zeros((S, S)), maps, names,
                                   joints_uvz=np.full((len(names), 3), 0.5),
                                   gt_uvz=gt)
  assert len(fig.axes) == len(names)
  # Each panel marks its joint: the true one and the prediction.
  markers = [c.get_offsets()[0] for c in fig.axes[3].collections]
  np.testing.assert_allclose(markers, [[0.25 * S - 0.5] * 2, [0.5 * S - 0.5] * 2])
  assert [ax.get_title() for ax in fig.axes] == list(names)
  # The 24×24 map covers exactly the 96×96 crop.
  overlay = fig.axes[3].images[1]
  assert overlay.get_array().shape == (24, 24)
  assert overlay.get_extent() == fig.axes[3].images[0].get_extent()
  with pytest.raises(ValueError, match="14 voting maps but 2 names"):
    visualize.plot_voting_maps(np.zeros((S, S)), maps, ["a", "b"])


def test_offset_field_arrows_start_at_cells_and_vote_for_the_joint():
  h = w = 24
  joint_uv = np.array([0.3, 0.6])
  rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  cell_uv = np.stack([(cols + 0.5) / w, (rows + 0.5) / h], axis=-1)
  offsets = np.zeros((h, w, 2, 3))
  offsets[..., 1, :2] = joint_uv - cell_uv
  weights = np.full((h, w, 2), 1.0 / (h * w))
  fig = visualize.plot_offset_field(np.zeros((S, S)), offsets, weights, 1,
                                    joint_name="thumb_tip", stride=1)
  ax = fig.axes[0]
  assert ax.get_title() == "Offsets to thumb_tip"
  arrows = next(c for c in ax.collections
                if isinstance(c, mpl_quiver.Quiver))
  assert len(arrows.X) == h * w
  starts = np.stack([arrows.X, arrows.Y], axis=-1)
  ends = starts + np.stack([arrows.U, arrows.V], axis=-1)
  assert set(map(tuple, starts)) == {
      (4 * j + 1.5, 4 * i + 1.5) for i in range(h) for j in range(w)}
  np.testing.assert_allclose(ends, np.tile(joint_uv * S - 0.5, (h * w, 1)),
                             atol=1e-9)
  np.testing.assert_allclose(_scatter(ax, "weighted vote").get_offsets(),
                             [joint_uv * S - 0.5])


def test_offset_field_in_the_authors_convention():
  # Their cell j is at u = j/23 and u is crop pixel / 95.
  h = w = 24
  joint_uv = np.array([0.3, 0.6])
  rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  cell_uv = np.stack([cols / (w - 1), rows / (h - 1)], axis=-1)
  offsets = np.zeros((h, w, 1, 3))
  offsets[..., 0, :2] = joint_uv - cell_uv
  weights = np.full((h, w, 1), 1.0 / (h * w))
  fig = visualize.plot_offset_field(np.zeros((S, S)), offsets, weights, 0,
                                    stride=1, convention="authors")
  ax = fig.axes[0]
  arrows = next(c for c in ax.collections
                if isinstance(c, mpl_quiver.Quiver))
  starts = np.stack([arrows.X, arrows.Y], axis=-1)
  np.testing.assert_allclose(np.sort(np.unique(starts[:, 0])),
                             95 * np.arange(w) / 23, atol=1e-9)
  np.testing.assert_allclose(starts + np.stack([arrows.U, arrows.V], -1),
                             np.tile(joint_uv * 95, (h * w, 1)), atol=1e-9)
  np.testing.assert_allclose(_scatter(ax, "weighted vote").get_offsets(),
                             [joint_uv * 95])


def test_offset_field_draws_every_other_cell_on_the_hand_whatever_its_weight():
  # A trained model's weights: one cell holds nearly all of them.
  weights = np.full((24, 24, 1), 1e-7)
  weights[5, 7] = 1.0
  crop = np.ones((S, S))
  crop[:48, 40:] = 0.2  # the hand: cell rows 0..11, columns 10..23
  fig = visualize.plot_offset_field(crop, np.zeros((24, 24, 1, 3)), weights,
                                    0)
  arrows = next(c for c in fig.axes[0].collections
                if isinstance(c, mpl_quiver.Quiver))
  # Rows 0, 2, .., 10 and columns 10, 12, .., 22.
  assert len(arrows.X) == 6 * 7
  assert set(arrows.X) == {4 * j + 1.5 for j in range(10, 24, 2)}
  assert max(arrows.Y) == 4 * 10 + 1.5
  # The faint cells are drawn in the colour map's low end, not hidden.
  assert arrows.norm.vmin == pytest.approx(1e-4)


def test_success_curves_one_line_per_method():
  results = _results()
  fig = visualize.plot_success_curves(results)
  ax = fig.axes[0]
  assert len(ax.lines) == 3
  assert [t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()] == [
      "a", "b", "c"]
  np.testing.assert_allclose(ax.lines[0].get_ydata(),
                             100 * np.asarray(
                                 results[0]["success_curves"]["max_joint_error"]))
  assert "(mm)" in ax.get_xlabel() and "(%)" in ax.get_ylabel()
  mean_fig = visualize.plot_success_curves(results, curve="mean_joint_error")
  assert "mean joint" in mean_fig.axes[0].get_ylabel()


def test_per_joint_bars_and_comparison():
  results = _results()
  fig = visualize.plot_per_joint_errors(results)
  ax = fig.axes[0]
  # 14 joints and the mean, for each of three methods.
  assert len(ax.patches) == 3 * 15
  assert [t.get_text() for t in ax.get_xticklabels()][-1] == "mean"
  assert ax.patches[14].get_height() == pytest.approx(
      results[0]["mean_error_mm"])
  comparison = visualize.plot_comparison(results, title="t")
  assert len(comparison.axes) == 2
  assert len(comparison.axes[0].lines) == 3


def test_skeleton_3d_and_per_frame_figures():
  xyz = np.random.default_rng(0).normal([0, 0, 400], 30, (16, 3))
  fig = visualize.plot_skeleton_3d(xyz, "icvl", gt_xyz=xyz + 5)
  assert fig.axes[0].name == "3d"
  assert len(fig.axes[0].lines) == 2 * len(skeletons.ICVL.bones)
  errors = np.array([1.0, 7.0, 3.0, 9.0, 2.0])
  fig = visualize.plot_per_frame_errors(errors, k=2)
  np.testing.assert_allclose(
      _scatter(fig.axes[0], "2 worst frames").get_offsets(), [[3, 9], [1, 7]])


def test_worst_frames_figure():
  crops = np.ones((5, S, S, 1))
  uvz = np.full((5, 14, 3), 0.5)
  errors = np.array([1.0, 7.0, 3.0, 9.0, 2.0])
  fig = visualize.plot_worst_frames(crops, uvz, "nyu", errors, k=4,
                                    gt_uvz=uvz, ncols=3)
  assert [ax.get_title() for ax in fig.axes] == [
      "frame 3: 9.0 mm", "frame 1: 7.0 mm", "frame 2: 3.0 mm",
      "frame 4: 2.0 mm"]


def test_figure_conversions_for_tensorboard():
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  open_before = pyplot.get_fignums()
  fig = visualize.new_figure((2, 1.5))
  fig.add_subplot().plot([0, 1])
  png = visualize.figure_to_png_bytes(fig, dpi=50)
  assert png.startswith(b"\x89PNG")
  array = visualize.figure_to_array(fig)
  assert array.dtype == np.uint8 and array.shape == (150, 200, 3)
  # Made without pyplot, so nothing is left open in pyplot's registry.
  assert pyplot.get_fignums() == open_before


def test_frame_overview_panels():
  rng = np.random.default_rng(3)
  uvz = rng.uniform(0.2, 0.8, (16, 3))
  xyz = rng.normal([0, 0, 400], 30, (16, 3))
  crop = np.ones((S, S))
  crop[30:60, 30:60] = 0.2
  fig = visualize.plot_frame_overview(crop, uvz, xyz, "icvl", gt_uvz=uvz + 0.01,
                                      gt_xyz=xyz + 5, title="frame 0")
  crop_ax, joints_ax, skeleton_ax, colorbar_ax = fig.axes
  np.testing.assert_array_equal(crop_ax.images[0].get_array(), crop)
  assert not crop_ax.collections  # the crop alone
  np.testing.assert_allclose(_scatter(joints_ax, "prediction").get_offsets(),
                             uvz[:, :2] * S - 0.5)
  assert _scatter(joints_ax, "ground truth") is not None
  assert skeleton_ax.name == "3d"
  assert len(skeleton_ax.lines) == 2 * len(skeletons.ICVL.bones)
  assert colorbar_ax.get_ylim() == (-1.0, 1.0)
  assert fig.get_suptitle() == "frame 0"
