"""Raw dataset readers and hand centres, on tiny files in the exact formats."""

import json
import os
import pickle

import cv2
import numpy as np
import pytest
import scipy.io

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import skeletons
from jgr_p2o_tf import datasets
from jgr_p2o_tf.datasets import centres
from jgr_p2o_tf.datasets import msra
from tests import dataset_fixtures


def assert_frames_equal(frame, expected):
  assert frame.frame_id == expected.frame_id
  assert frame.camera == expected.camera
  for name in ("depth_mm", "joints_uvd", "joints_xyz"):
    got, want = getattr(frame, name), getattr(expected, name)
    assert got.dtype == np.float32, name
    np.testing.assert_array_equal(got, want, err_msg=name)


def assert_reads_back(reader, expected):
  assert len(reader) == len(expected)
  assert reader.frame_ids == [f.frame_id for f in expected]
  for i, want in enumerate(expected):
    assert_frames_equal(reader.read(i), want)


def error_of(function, *args, **kwargs):
  """The DatasetError that ``function(*args, **kwargs)`` raises."""
  with pytest.raises(datasets.DatasetError) as info:
    function(*args, **kwargs)
  return info.value


def assert_names(error, path, frame):
  message = str(error)
  assert str(path) in message, message
  assert str(frame) in message, message


def test_get_reader_names():
  assert dataset_profiles.NAMES == ("nyu", "icvl", "msra", "synthetic")
  with pytest.raises(ValueError, match="Unknown dataset"):
    dataset_profiles.get_reader("hands2017", "/nonexistent", "train")


# NYU


def test_nyu_reads_back(tmp_path):
  expected = dataset_fixtures.write_nyu(tmp_path, 3, split="test")
  reader = dataset_profiles.get_reader("nyu", tmp_path, "test")
  assert reader.skeleton is skeletons.NYU
  assert reader.camera == dataset_profiles.NYU.camera
  assert reader.subject(0) is None
  assert reader.frame_ids[0] == "test/depth_1_0000001.png"
  # The packing puts the high byte in G: the wall at 1400 mm needs it.
  assert expected[0].depth_mm.max() > 255
  assert_reads_back(reader, expected)
  assert_frames_equal(pickle.loads(pickle.dumps(reader)).read(2), expected[2])


def test_nyu_selects_eval_joints_of_first_kinect(tmp_path):
  dataset_fixtures.write_nyu(tmp_path, 2)
  mat = scipy.io.loadmat(tmp_path / "train" / "joint_data.mat")
  frame = dataset_profiles.get_reader("nyu", tmp_path, "train").read(1)
  eval_joints = list(skeletons.NYU_EVAL_JOINTS)
  np.testing.assert_array_equal(
      frame.joints_xyz, mat["joint_xyz"][0, 1, eval_joints].astype(np.float32))
  # NYU's xyz has y up; NYU_CAMERA's negative fy projects it onto its uvd.
  np.testing.assert_allclose(
      geometry.xyz_to_uvd(frame.joints_xyz, frame.camera), frame.joints_uvd,
      atol=1e-3)


def test_nyu_rejects_xyz_in_another_axis_convention(tmp_path):
  dataset_fixtures.write_nyu(tmp_path, 2)
  path = tmp_path / "train" / "joint_data.mat"
  mat = scipy.io.loadmat(path)
  mat["joint_xyz"][..., 1] *= -1
  scipy.io.savemat(path, {k: mat[k] for k in ("joint_uvd", "joint_xyz")})
  error = error_of(dataset_profiles.get_reader, "nyu", tmp_path, "train")
  assert_names(error, path, "all")
  assert "NYU's camera" in str(error)


@pytest.mark.parametrize("contents, expected", [
    ("no_xyz", "has no joint_xyz"),
    ("35_joints", "shape (3, 2, 35, 3)"),
    ("2_kinects", "shape (2, 2, 36, 3)"),
    ("not_mat", "cannot be read"),
    ("missing", "missing file"),
])
def test_nyu_bad_mat(tmp_path, contents, expected):
  dataset_fixtures.write_nyu(tmp_path, 2)
  path = tmp_path / "train" / "joint_data.mat"
  mat = scipy.io.loadmat(path)
  if contents == "no_xyz":
    scipy.io.savemat(path, {"joint_uvd": mat["joint_uvd"]})
  elif contents == "35_joints":
    scipy.io.savemat(path, {k: mat[k][:, :, :35] for k in ("joint_uvd",
                                                          "joint_xyz")})
  elif contents == "2_kinects":
    scipy.io.savemat(path, {k: mat[k][:2] for k in ("joint_uvd", "joint_xyz")})
  elif contents == "not_mat":
    path.write_text("joint_uvd = 1\n" * 40)
  else:
    path.unlink()
  error = error_of(dataset_profiles.get_reader, "nyu", tmp_path, "train")
  assert_names(error, path, "all")
  assert expected in str(error)


def _damage_png(path, how):
  """Replaces a PNG by a damaged or differently typed one."""
  if how == "missing":
    os.remove(path)
  elif how == "truncated":
    data = open(path, "rb").read()
    open(path, "wb").write(data[:len(data) // 2])
  elif how == "not_png":
    open(path, "wb").write(b"P5\n320 240\n255\n" + bytes(100))
  elif how == "8bit_gray":
    cv2.imwrite(str(path), np.full((240, 320), 200, np.uint8))
  elif how == "16bit_gray":
    cv2.imwrite(str(path), np.full((480, 640), 700, np.uint16))
  elif how == "wrong_size":
    cv2.imwrite(str(path), np.full((100, 100), 700, np.uint16))
  else:
    raise AssertionError(how)


@pytest.mark.parametrize("how, expected", [
    ("missing", "missing file"),
    ("truncated", "truncated"),
    ("not_png", "not a PNG"),
    ("16bit_gray", "got 16-bit 1-channel PNG, expected 8-bit 3-channel 640×480 PNG"),
])
def test_nyu_bad_png(tmp_path, how, expected):
  dataset_fixtures.write_nyu(tmp_path, 2)
  reader = dataset_profiles.get_reader("nyu", tmp_path, "train")
  path = tmp_path / "train" / "depth_1_0000002.png"
  _damage_png(path, how)
  error = error_of(reader.read, 1)
  assert_names(error, path, "train/depth_1_0000002.png")
  assert expected in str(error)
  reader.read(0)


# ICVL


def test_icvl_reads_back_train_and_test(tmp_path):
  train = dataset_fixtures.write_icvl(tmp_path, 2, split="train")
  test = dataset_fixtures.write_icvl(tmp_path, 3, split="test")
  reader = dataset_profiles.get_reader("icvl", tmp_path, "train")
  assert reader.skeleton is skeletons.ICVL
  assert reader.camera == dataset_profiles.ICVL.camera
  assert train[0].depth_mm.max() > 255
  assert_reads_back(reader, train)
  # Both test sequences, in order.
  reader = dataset_profiles.get_reader("icvl", tmp_path, "test")
  assert reader.frame_ids == ["test_seq_1/image_0000.png",
                              "test_seq_1/image_0001.png",
                              "test_seq_2/image_0000.png"]
  assert_reads_back(reader, test)
  assert_frames_equal(pickle.loads(pickle.dumps(reader)).read(2), test[2])


def test_icvl_explicit_label_file(tmp_path):
  test = dataset_fixtures.write_icvl(tmp_path, 3, split="test")
  reader = dataset_profiles.get_reader(
      "icvl", tmp_path, "test", labels=tmp_path / "Testing" / "test_seq_2.txt")
  assert_reads_back(reader, test[2:])


def test_icvl_bad_label_lines(tmp_path):
  dataset_fixtures.write_icvl(tmp_path, 4)
  path = tmp_path / "Training" / "labels.txt"
  lines = path.read_text().splitlines()
  lines[1] = " ".join(lines[1].split()[:-1])  # 47 values
  lines[2] = lines[2].replace(lines[2].split()[5], "abc", 1)
  path.write_text("\n".join(lines) + "\n")
  reader = dataset_profiles.get_reader("icvl", tmp_path, "train")
  assert len(reader) == 4
  error = error_of(reader.read, 1)
  assert_names(error, path, "201403121135/image_0001.png")
  assert "line 2 has 47 values" in str(error) and "expected 48" in str(error)
  error = error_of(reader.read, 2)
  assert_names(error, path, "201403121135/image_0002.png")
  assert "abc" in str(error)
  reader.read(0)
  reader.read(3)


def test_icvl_missing_label_file(tmp_path):
  error = error_of(dataset_profiles.get_reader, "icvl", tmp_path, "test")
  assert_names(error, tmp_path / "Testing" / "test_seq_1.txt", "all")


@pytest.mark.parametrize("how, expected", [
    ("missing", "missing file"),
    ("truncated", "truncated"),
    ("not_png", "not a PNG"),
    ("8bit_gray", "got 8-bit 1-channel PNG, expected 16-bit single-channel "
                  "320×240 PNG"),
    ("wrong_size", "got 100×100 PNG"),
])
def test_icvl_bad_png(tmp_path, how, expected):
  dataset_fixtures.write_icvl(tmp_path, 2)
  reader = dataset_profiles.get_reader("icvl", tmp_path, "train")
  frame_id = "201403121135/image_0001.png"
  path = tmp_path / "Training" / "Depth" / frame_id
  _damage_png(path, how)
  error = error_of(reader.read, 1)
  assert_names(error, path, frame_id)
  assert expected in str(error)


# Synthetic


@pytest.mark.parametrize("num_joints, layout, skeleton", [
    (21, None, skeletons.SYNTHETIC),
    (14, None, skeletons.NYU),
    (16, None, skeletons.ICVL),
    (21, "msra", skeletons.MSRA),
])
def test_synthetic_reads_back(tmp_path, num_joints, layout, skeleton):
  expected = dataset_fixtures.write_synthetic(
      tmp_path, 2, split="test", num_joints=num_joints, layout=layout)
  reader = dataset_profiles.get_reader("synthetic", tmp_path, "test")
  assert reader.skeleton is skeleton
  assert reader.camera == dataset_fixtures.SYNTHETIC_CAMERA
  assert_reads_back(reader, expected)


def test_synthetic_bad_camera_json(tmp_path):
  dataset_fixtures.write_synthetic(tmp_path, 1)
  path = tmp_path / "train" / "camera.json"
  path.write_text(json.dumps({"fx": 200.0, "fy": 200.0, "cx": 80.0}))
  error = error_of(dataset_profiles.get_reader, "synthetic", tmp_path, "train")
  assert_names(error, path, "all")
  assert "width, height missing" in str(error)


def test_synthetic_layout_disagreeing_with_lines(tmp_path):
  dataset_fixtures.write_synthetic(tmp_path, 1, num_joints=16, layout="nyu")
  reader = dataset_profiles.get_reader("synthetic", tmp_path, "train")
  error = error_of(reader.read, 0)
  assert_names(error, tmp_path / "train" / "labels.txt", "depth/000000.png")
  assert "expected 42" in str(error)


# MSRA


def test_msra_reads_back_with_our_axes(tmp_path):
  expected = dataset_fixtures.write_msra(tmp_path, subjects=("P2", "P5"))
  reader = dataset_profiles.get_reader("msra", tmp_path, "all", subjects=["P2", "P5"])
  assert reader.skeleton is skeletons.MSRA
  assert reader.camera == dataset_profiles.MSRA.camera
  assert len(reader) == 2 * len(msra.GESTURES)
  assert reader.frame_ids[0] == "P2/1/000000"
  assert reader.frame_ids[-1] == "P5/Y/000000"
  assert reader.subject(0) == "P2" and reader.subject(len(reader) - 1) == "P5"
  assert_reads_back(reader, expected)
  frame = reader.read(len(msra.GESTURES) + 15)  # P5/TIP
  # joint.txt holds (x, -y, -z) of ours.
  lines = (tmp_path / "P5" / "TIP" / "joint.txt").read_text().splitlines()
  in_file = np.array(lines[1].split(), np.float32).reshape(21, 3)
  np.testing.assert_array_equal(frame.joints_xyz, in_file * [1, -1, -1])
  assert np.all(frame.joints_xyz[:, 2] > 0)
  # The joints project onto the hand: onto the front of their own sphere or
  # of one hiding it.
  u, v = np.round(frame.joints_uvd[:, :2]).astype(int).T
  surface = frame.depth_mm[v, u]
  assert np.all(surface > 0)
  assert np.all(surface <= frame.joints_uvd[:, 2] -
                dataset_fixtures.JOINT_RADIUS_MM + 1.0)
  assert_frames_equal(pickle.loads(pickle.dumps(reader)).read(3), expected[3])


def test_msra_bin_box_placement(tmp_path):
  depth = np.zeros((240, 320), np.float32)
  depth[100:103, 200:204] = np.arange(300, 312, dtype=np.float32).reshape(3, 4)
  path = tmp_path / "000000_depth.bin"
  dataset_fixtures.write_msra_bin(path, depth)
  header = np.fromfile(path, "<i4", count=6)
  np.testing.assert_array_equal(header, [320, 240, 200, 100, 204, 103])
  assert os.path.getsize(path) == 24 + 4 * 12
  np.testing.assert_array_equal(
      msra.read_depth_bin(path, "P0/1/000000", dataset_profiles.MSRA.camera), depth)


@pytest.mark.parametrize("how, expected", [
    ("short", "9812 bytes, expected 9816"),
    ("long", "9820 bytes, expected 9816"),
    ("header", "shorter than the 24-byte header"),
    ("width", "header says a 640×240 image, expected 320×240"),
    ("box", "outside the 320×240 image"),
    ("missing", "missing file"),
])
def test_msra_bad_bin(tmp_path, how, expected):
  path = tmp_path / "000007_depth.bin"
  depth = np.zeros((240, 320), np.float32)
  depth[10:58, 20:71] = 400.0  # 51 × 48 box: 24 + 4 · 2448 bytes
  dataset_fixtures.write_msra_bin(path, depth)
  data = bytearray(open(path, "rb").read())
  header = np.frombuffer(bytes(data[:24]), "<i4").copy()
  if how == "short":
    data = data[:-4]
  elif how == "long":
    data += bytes(4)
  elif how == "header":
    data = data[:20]
  elif how == "width":
    header[0] = 640
    data[:24] = header.tobytes()
  elif how == "box":
    header[4] = 400
    data[:24] = header.tobytes()
  open(path, "wb").write(bytes(data))
  if how == "missing":
    path.unlink()
  error = error_of(msra.read_depth_bin, path, "P1/IP/000007",
                   dataset_profiles.MSRA.camera)
  assert_names(error, path, "P1/IP/000007")
  assert expected in str(error)


def test_msra_bad_bin_through_reader(tmp_path):
  dataset_fixtures.write_msra(tmp_path, subjects=("P0",))
  path = tmp_path / "P0" / "MP" / "000000_depth.bin"
  open(path, "ab").write(bytes(8))
  reader = dataset_profiles.get_reader("msra", tmp_path, "all", subjects=["P0"])
  assert_names(error_of(reader.read, msra.GESTURES.index("MP")), path,
               "P0/MP/000000")


def test_msra_bad_joint_file(tmp_path):
  dataset_fixtures.write_msra(tmp_path, subjects=("P0",), frames_per_gesture=2)
  count_path = tmp_path / "P0" / "L" / "joint.txt"
  lines = count_path.read_text().splitlines()
  count_path.write_text("\n".join(["3"] + lines[1:]) + "\n")
  values_path = tmp_path / "P0" / "T" / "joint.txt"
  lines = values_path.read_text().splitlines()
  lines[2] = " ".join(lines[2].split()[:60])
  values_path.write_text("\n".join(lines) + "\n")
  reader = dataset_profiles.get_reader("msra", tmp_path, "all", subjects="P0")
  assert len(reader) == 2 * len(msra.GESTURES) + 1
  first_l = reader.frame_ids.index("P0/L/000000")
  for i in range(3):
    error = error_of(reader.read, first_l + i)
    assert_names(error, count_path, f"P0/L/{i:06d}")
    assert "announces 3 frames but 2 joint lines follow" in str(error)
  first_t = reader.frame_ids.index("P0/T/000000")
  reader.read(first_t)
  error = error_of(reader.read, first_t + 1)
  assert_names(error, values_path, "P0/T/000001")
  assert "line 3 has 60 values, expected 63" in str(error)


def test_msra_missing_gesture(tmp_path):
  dataset_fixtures.write_msra(tmp_path, subjects=("P0",))
  path = tmp_path / "P0" / "RP" / "joint.txt"
  path.unlink()
  error = error_of(dataset_profiles.get_reader, "msra", tmp_path, "all",
                   subjects=["P0"])
  assert_names(error, path, "all")
  with pytest.raises(ValueError, match="split"):
    dataset_profiles.get_reader("msra", tmp_path, "train")
  with pytest.raises(ValueError, match="P9"):
    dataset_profiles.get_reader("msra", tmp_path, "all", subjects=["P9"])


# Centres


def test_load_centre_file(tmp_path):
  path = tmp_path / "center_test_refined.txt"
  dataset_fixtures.write_centre_file(
      path, [(1.5, -2.25, 700.0), None, (0.0, 30.0, 655.5)])
  loaded = centres.load_centre_file(path, num_frames=3)
  assert loaded[1] is None
  np.testing.assert_array_equal(loaded[0], np.float32([1.5, -2.25, 700.0]))
  assert loaded[2].dtype == np.float32
  # V2V-PoseNet's MSRA centres have y up, ours y down.
  flipped = centres.load_centre_file(path, v2v_dataset="msra")
  np.testing.assert_array_equal(flipped[2], np.float32([0.0, -30.0, 655.5]))
  error = error_of(centres.load_centre_file, path, num_frames=4)
  assert_names(error, path, "all")
  assert "3 lines, expected one per frame: 4" in str(error)


def test_load_centre_file_bad_line(tmp_path):
  path = tmp_path / "centres.txt"
  path.write_text("1 2 3\n4 5\ninvalid\n")
  error = error_of(centres.load_centre_file, path)
  assert_names(error, path, "frame 1")
  assert "line 2" in str(error)
  assert_names(error_of(centres.load_centre_file, tmp_path / "no.txt"),
               tmp_path / "no.txt", "all")


def _sphere_scene(camera, centre_xyz, radius):
  """Depth of a sphere, an 'arm' box behind it and a far wall with a hole."""
  rows, cols = np.mgrid[:camera.height, :camera.width].astype(np.float64)
  # Ray through each pixel: (x, y) = ray · z.
  ray_x = (cols - camera.cx) / camera.fx
  ray_y = (rows - camera.cy) / camera.fy
  # Nearest intersection of the ray t·(ray_x, ray_y, 1) with the sphere.
  a = ray_x**2 + ray_y**2 + 1
  b = -2 * (ray_x * centre_xyz[0] + ray_y * centre_xyz[1] + centre_xyz[2])
  c = np.sum(np.square(centre_xyz)) - radius**2
  disc = b**2 - 4 * a * c
  hit = disc >= 0
  sphere = np.where(hit, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a), 0)
  depth = np.full(rows.shape, 1500.0)
  depth[:40, :40] = 0.0
  u_c, v_c, _ = geometry.xyz_to_uvd(np.asarray(centre_xyz), camera)
  arm = (np.abs(cols - u_c) < 15) & (rows > v_c) & (rows < v_c + 60)
  depth[arm] = centre_xyz[2] + 170.0
  depth[hit] = sphere[hit]
  points = geometry.uvd_to_xyz(
      np.stack([cols[hit], rows[hit], sphere[hit]], -1), camera)
  return depth.astype(np.float32), points.mean(axis=0)


@pytest.mark.parametrize("camera", [dataset_profiles.NYU.camera, dataset_profiles.ICVL.camera])
def test_compute_centre_on_sphere(camera):
  centre = np.array([25.0, -30.0, 600.0])
  depth, visible_mean = _sphere_scene(camera, centre, 45.0)
  found = centres.compute_centre(depth, camera, cube_mm=250.0)
  assert found.dtype == np.float32 and found.shape == (3,)
  # The centre of mass of the visible half of the sphere: on its axis, 2/3
  # of the radius in front of its centre; the arm and wall are left out.
  np.testing.assert_allclose(found, visible_mean, atol=1.0)
  np.testing.assert_allclose(found[:2], centre[:2], atol=3.0)
  assert abs(found[2] - (centre[2] - 30.0)) < 3.0


def test_compute_centre_without_depth():
  error = error_of(centres.compute_centre, np.zeros((240, 320), np.float32),
                   dataset_profiles.ICVL.camera, frame_id="f7")
  assert "frame f7" in str(error)


def test_ground_truth_centre_and_in_frame():
  joints = np.array([[0, 0, 500], [10, -20, 540], [-30, 40, 520]], np.float32)
  np.testing.assert_array_equal(centres.ground_truth_centre(joints),
                                np.float32([-10, 10, 520]))
  camera = dataset_profiles.ICVL.camera
  assert centres.centre_in_frame([0, 0, 400], camera)
  assert not centres.centre_in_frame([0, 0, -400], camera)
  assert not centres.centre_in_frame([400, 0, 400], camera)
  assert not centres.centre_in_frame([0, 0, np.nan], camera)
  # NYU's negative fy: y up, so y = 100 mm lies above the image centre.
  assert geometry.xyz_to_uvd(np.array([0.0, 100.0, 700.0]),
                             dataset_profiles.NYU.camera)[1] < dataset_profiles.NYU.camera.cy
  assert centres.centre_in_frame([0, 100, 700], dataset_profiles.NYU.camera)
