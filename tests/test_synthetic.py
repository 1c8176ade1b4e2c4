"""Tests of the synthetic depth-hand generator (jgr_p2o_tf.synthetic)."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import skeletons
from jgr_p2o_tf.synthetic import contact_sheet
from jgr_p2o_tf.synthetic import hand_model
from jgr_p2o_tf.synthetic import poses
from jgr_p2o_tf.synthetic import renderer
from jgr_p2o_tf.synthetic import scene
from jgr_p2o_tf.synthetic import writer

CAMERA = dataset_profiles.ICVL.camera


def _segment_distance(points, start, end):
  """Distance of (..., 3) points to the segment start–end."""
  axis = end - start
  s = np.clip(((points - start) @ axis) / (axis @ axis), 0.0, 1.0)
  return np.linalg.norm(points - start - s[..., None] * axis, axis=-1)


def _polygon_distance(points, polygon):
  """Distance of (..., 3) points to a planar convex polygon (filled)."""
  centroid = polygon.mean(axis=0)
  normal = np.cross(polygon[1] - polygon[0], polygon[2] - polygon[1])
  normal /= np.linalg.norm(normal)
  height = (points - centroid) @ normal
  foot = points - height[..., None] * normal
  edges = np.roll(polygon, -1, axis=0) - polygon
  # Inside when the foot is on the same side of every edge as the centroid.
  sides = np.stack([np.cross(e, foot - p) @ normal
                    for p, e in zip(polygon, edges)], axis=-1)
  inside = np.all(np.sign(sides) == np.sign(sides[..., :1]), axis=-1)
  to_edges = np.min(np.stack([
      _segment_distance(points, p, p + e) for p, e in zip(polygon, edges)],
                             axis=-1), axis=-1)
  return np.where(inside, np.abs(height), to_edges)


def _first_hit_brute_force(directions, distance, radius):
  """First t with distance(t·d) ≤ radius along rays d, by search.

  The distance to a convex set along a line is convex in t: a coarse grid
  brackets its minimum, ternary search finds it, the ray meets the set iff
  that minimum is ≤ radius, and bisection finds the crossing before it.
  Returns inf for a miss and NaN for a ray grazing within 0.01 mm.
  """
  t_grid = np.linspace(0.0, 1500.0, 301)
  grid = distance(t_grid[None, :, None] * directions[:, None, :])
  best = np.argmin(grid, axis=1)
  low = t_grid[np.maximum(best - 1, 0)]
  high = t_grid[np.minimum(best + 1, len(t_grid) - 1)]
  at = lambda t: distance(t[:, None] * directions)
  for _ in range(60):
    third = (high - low) / 3
    left_lower = at(low + third) < at(high - third)
    high = np.where(left_lower, high - third, high)
    low = np.where(left_lower, low, low + third)
  minimum = at(low)
  outside, inside = np.zeros(len(directions)), low
  for _ in range(50):
    middle = (outside + inside) / 2
    hit = at(middle) <= radius
    inside = np.where(hit, middle, inside)
    outside = np.where(hit, outside, middle)
  return np.where(np.abs(minimum - radius) <= 0.01, np.nan,
                  np.where(minimum < radius, inside, np.inf))


def test_ray_capsule_facing_the_camera():
  # Along the view axis the ray through the axis meets the near cap's apex;
  # across it, the cylinder's nearest line.
  along = renderer.ray_capsule_depth([0.0], [0.0], [0.0, 0.0, 500.0],
                                     [0.0, 0.0, 600.0], 10.0)
  across = renderer.ray_capsule_depth([0.0, 0.0], [0.0, 0.01],
                                      [-50.0, 0.0, 500.0], [50.0, 0.0, 500.0],
                                      10.0)
  np.testing.assert_allclose(along, [490.0], atol=1e-3)
  # Ray (0, 0.01, 1): |t·(0.01, 1) − (0, 500)| = 10 in the y–z plane.
  d = np.array([0.01, 1.0])
  t = (d @ [0.0, 500.0] - np.sqrt((d @ [0.0, 500.0])**2 -
                                  (d @ d) * (500.0**2 - 100.0))) / (d @ d)
  np.testing.assert_allclose(across, [490.0, t], atol=1e-3)
  # A ray along the axis, 5 mm off it, meets the cap at depth 500 − √75.
  off_axis = renderer.ray_capsule_depth([0.0], [0.0], [5.0, 0.0, 500.0],
                                        [5.0, 0.0, 600.0], 10.0)
  np.testing.assert_allclose(off_axis, [500.0 - np.sqrt(75.0)], atol=1e-3)
  # A ray beside it misses.
  assert np.isinf(renderer.ray_capsule_depth([0.1], [0.0], [0.0, 0.0, 500.0],
                                             [0.0, 0.0, 600.0], 10.0)[0])


def test_ray_capsule_matches_brute_force():
  rng = np.random.default_rng(0)
  for _ in range(5):
    start = rng.uniform([-60, -60, 300], [60, 60, 600])
    end = start + rng.normal(0, 40, 3)
    radius = rng.uniform(5, 20)
    # Rays through the capsule's neighbourhood: hits, grazes and misses.
    targets = (start + end) / 2 + rng.normal(0, 25, (200, 3))
    x, y = (targets[:, :2] / targets[:, 2:]).T
    directions = np.stack([x, y, np.ones_like(x)], axis=1)
    expected = _first_hit_brute_force(
        directions, lambda p: _segment_distance(p, start, end), radius)
    got = renderer.ray_capsule_depth(x, y, start, end, radius)
    known = ~np.isnan(expected)
    assert np.isfinite(expected).sum() > 20 and np.isinf(expected).sum() > 20
    np.testing.assert_allclose(got[known], expected[known], atol=0.02)


def test_palm_is_the_set_within_its_radius_of_the_polygon():
  hand = hand_model.body(hand_model.mean_shape(), hand_model.rest_pose())
  rotation = poses.sample_rotation(np.random.default_rng(1))
  palm = hand.transformed(rotation, [10.0, -5.0, 300.0])
  polygon = palm.palm_polygon
  edges = len(polygon)
  # The palm's own capsules are the K − 1 − P … K − 2 ones (the forearm last).
  outline = slice(len(palm.capsule_radius) - 1 - edges, -1)
  u, v = np.meshgrid(np.arange(60, 260, 3), np.arange(20, 220, 3))
  x, y = renderer.ray_directions(CAMERA, u.ravel(), v.ravel())
  got = np.minimum(
      renderer.ray_slab_depth(x, y, polygon, palm.palm_radius),
      np.min([renderer.ray_capsule_depth(x, y, a, b, r) for a, b, r in zip(
          palm.capsule_start[outline], palm.capsule_end[outline],
          palm.capsule_radius[outline])], axis=0))
  directions = np.stack([x, y, np.ones_like(x)], axis=1).astype(np.float64)
  expected = _first_hit_brute_force(
      directions, lambda p: _polygon_distance(p, polygon), palm.palm_radius)
  known = ~np.isnan(expected)
  assert np.isfinite(expected).sum() > 500 and np.isinf(expected).sum() > 500
  np.testing.assert_allclose(got[known], expected[known], atol=0.02)


def test_bone_lengths_do_not_change_with_pose():
  rng = np.random.default_rng(2)
  shape = hand_model.sample_shape(rng)
  joints = np.stack([
      hand_model.forward_kinematics(shape, poses.sample_pose(rng))
      for _ in range(200)])
  lengths = hand_model.bone_lengths(joints)
  np.testing.assert_allclose(lengths, np.broadcast_to(lengths[0],
                                                      lengths.shape),
                             atol=1e-9)
  # Each digit's three bones after its base are its phalanges.
  phalanges = lengths[0].reshape(5, 4)[:, 1:]
  np.testing.assert_allclose(phalanges, shape.lengths, atol=1e-9)


def test_poses_stay_within_joint_limits():
  rng = np.random.default_rng(3)
  for gesture in poses.GESTURES:
    pose = poses.sample_pose(rng, gesture)
    assert np.all(pose.flexion >= hand_model.FLEXION_LIMITS[..., 0])
    assert np.all(pose.flexion <= hand_model.FLEXION_LIMITS[..., 1])
    assert np.all(pose.abduction >= hand_model.ABDUCTION_LIMITS[:, 0])
    assert np.all(pose.abduction <= hand_model.ABDUCTION_LIMITS[:, 1])


def test_a_fist_is_smaller_than_an_open_hand():
  shape = hand_model.mean_shape()
  extent = lambda gesture: np.ptp(hand_model.forward_kinematics(
      shape, poses.sample_pose(np.random.default_rng(4), gesture)), axis=0)
  assert extent("fist")[1] < 0.7 * extent("open")[1]


def test_depth_at_joints_is_on_the_surface_of_a_front_facing_open_hand():
  shape = hand_model.mean_shape()
  pose = poses.pose_from_curls(np.zeros(4), 0.5, 0.0, 0.0)
  hand = hand_model.body(shape, pose).transformed(poses.PALM_TO_CAMERA,
                                                  [0.0, 40.0, 400.0])
  depth = renderer.render_depth(CAMERA, hand)
  uvd = geometry.xyz_to_uvd(hand.joints, CAMERA)
  at_joints = depth[np.rint(uvd[:, 1]).astype(int),
                    np.rint(uvd[:, 0]).astype(int)]
  # Every joint is seen: its depth lies within the largest radius of the
  # parts around it in front of it.
  distances = np.stack([_segment_distance(hand.joints, a, b) for a, b in zip(
      hand.capsule_start, hand.capsule_end)], axis=1)
  radius = np.max(np.where(distances <= hand.capsule_radius,
                           hand.capsule_radius, 0.0), axis=1)
  assert np.all(at_joints <= uvd[:, 2] + 0.5)
  assert np.all(at_joints >= uvd[:, 2] - radius - 0.5)


def test_frames_show_every_joint_on_the_hand_inside_the_image():
  # NYU's wrist joints lie beside the hand's; the layout written must fit.
  options = scene.FrameOptions(layout="nyu", noise_mm=0.0, edge_dropout=0.0)
  for index in range(12):
    frame = scene.render_frame(5, index, options)
    depth = frame.depth.astype(np.float32)
    for layout in ("synthetic", "nyu"):
      uvd = writer.layout_uvd(frame.joints_xyz, layout, CAMERA)
      assert np.all((uvd[:, 0] >= 0) & (uvd[:, 0] <= CAMERA.width - 1))
      assert np.all((uvd[:, 1] >= 0) & (uvd[:, 1] <= CAMERA.height - 1))
    uvd = geometry.xyz_to_uvd(frame.joints_xyz, CAMERA)
    assert np.all((uvd[:, 2] > 150) & (uvd[:, 2] < 800))
    # The ray through a joint's pixel passes inside the body within a
    # millimetre or two of the joint, so the surface is no further.
    at_joints = depth[np.rint(uvd[:, 1]).astype(int),
                      np.rint(uvd[:, 0]).astype(int)]
    assert np.all((at_joints > 0) & (at_joints <= uvd[:, 2] + 2.0))


def test_sensor_effects():
  hand = hand_model.body(hand_model.mean_shape(), hand_model.rest_pose())
  depth = renderer.render_depth(CAMERA, hand.transformed(
      poses.PALM_TO_CAMERA, [0.0, 40.0, 400.0]))
  rng = np.random.default_rng(6)
  clean = renderer.apply_sensor_effects(depth, rng)
  np.testing.assert_array_equal(clean, np.rint(depth).astype(np.uint16))
  edges = renderer.silhouette_edges(depth)
  dropped = renderer.apply_sensor_effects(depth, rng, edge_dropout=1.0)
  assert edges.sum() > 100
  assert np.all(dropped[edges] == 0)
  np.testing.assert_array_equal(dropped[~edges], clean[~edges])
  noisy = renderer.apply_sensor_effects(depth, rng, noise_mm=2.0)
  error = noisy[depth > 0].astype(np.float64) - depth[depth > 0]
  assert 1.7 < error.std() < 2.3


def _read_tree(root):
  files = {}
  for folder, _, names in os.walk(root):
    for name in names:
      path = os.path.join(folder, name)
      with open(path, "rb") as f:
        files[os.path.relpath(path, root)] = f.read()
  return files


def test_same_seed_gives_identical_files_whatever_the_workers(tmp_path):
  kwargs = dict(num_frames=6, seed=7, layout="icvl", background_plane=True,
                progress=False)
  writer.generate(tmp_path / "a", workers=1, **kwargs)
  writer.generate(tmp_path / "b", workers=2, **kwargs)
  a, b = _read_tree(tmp_path / "a"), _read_tree(tmp_path / "b")
  assert sorted(a) == sorted(
      ["camera.json", "labels.txt"] +
      [f"images/image_{i:06d}.png" for i in range(6)])
  assert a == b
  writer.generate(tmp_path / "c", workers=1, **{**kwargs, "seed": 8})
  assert _read_tree(tmp_path / "c")["labels.txt"] != a["labels.txt"]


@pytest.mark.parametrize("layout,camera", [("icvl", "icvl"), ("nyu", "nyu"),
                                           ("msra", "icvl"),
                                           ("synthetic", "icvl")])
def test_labels_parse_back_to_the_generated_joints(tmp_path, layout, camera):
  labels = writer.generate(tmp_path, 2, seed=9, layout=layout, camera=camera,
                           workers=1, progress=False)
  cam = dataset_profiles.get_profile(camera).camera
  with open(tmp_path / "camera.json") as f:
    assert json.load(f) == {"fx": cam.fx, "fy": cam.fy, "cx": cam.cx,
                            "cy": cam.cy, "width": cam.width,
                            "height": cam.height, "layout": layout}
  options = scene.FrameOptions(camera=cam, layout=layout)
  with open(labels) as f:
    lines = f.read().splitlines()
  assert len(lines) == 2
  num_joints = skeletons.get_skeleton(layout).num_joints
  for index, line in enumerate(lines):
    path, *values = line.split()
    assert path == f"images/image_{index:06d}.png"
    uvd = np.array(values, np.float64).reshape(num_joints, 3)
    frame = scene.render_frame(9, index, options)
    expected = writer.layout_uvd(frame.joints_xyz, layout, cam)
    np.testing.assert_allclose(uvd, expected, atol=0.5e-4 + 1e-9)
    depth = cv2.imread(str(tmp_path / path), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16 and depth.shape == (cam.height,
                                                        cam.width)
    np.testing.assert_array_equal(depth, frame.depth)
    # Labels are in image coordinates whatever the sign convention of fy.
    xyz = geometry.uvd_to_xyz(uvd, cam)
    np.testing.assert_allclose(geometry.xyz_to_uvd(xyz, cam), uvd, atol=1e-6)


def test_generate_rejects_bad_arguments(tmp_path):
  for bad in (dict(layout="mano"), dict(camera="kinect"), dict(num_frames=0),
              dict(edge_dropout=1.5), dict(noise_mm=-1.0)):
    with pytest.raises(ValueError):
      writer.generate(tmp_path, **{"num_frames": 1, "seed": 0, **bad})
  assert not os.path.exists(tmp_path / "labels.txt")


def test_contact_sheet(tmp_path):
  path = contact_sheet.make_contact_sheet(str(tmp_path / "sheet.png"), seed=0,
                                          num_frames=3, columns=2, tile_px=64)
  sheet = cv2.imread(path)
  assert sheet.shape == (128, 128, 3)
  assert (sheet[:64, :64] > 0).any() and not (sheet[64:, 64:] > 0).any()


def test_command_line(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "jgr_p2o_tf.synthetic", f"--out={tmp_path}",
       "--num_frames=2", "--seed=3", "--layout=msra", "--workers=1",
       "--noise_mm=0"], capture_output=True, text=True, check=False,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert result.returncode == 0, result.stderr
  with open(tmp_path / "labels.txt") as f:
    assert [len(line.split()) for line in f] == [1 + 21 * 3] * 2
  bad = subprocess.run(
      [sys.executable, "-m", "jgr_p2o_tf.synthetic", f"--out={tmp_path}",
       "--num_frames=0"], capture_output=True, text=True, check=False,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert bad.returncode == 2 and bad.stderr.startswith("error:")
