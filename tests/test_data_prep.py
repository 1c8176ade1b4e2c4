"""Tests of data_prep: fixture datasets → TFRecord shards → read back."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from jgr_p2o_tf import data_preparation
from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import input_pipeline
from jgr_p2o_tf.datasets import centres as centres_lib
from jgr_p2o_tf.datasets import DatasetError
from tests import dataset_fixtures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _prepare(dataset, data_dir, split, out_dir, **kwargs):
  kwargs.setdefault("progress", False)
  return data_preparation.prepare(dataset, os.fspath(data_dir), split,
                         os.fspath(out_dir), **kwargs)


def _read_all(out_dir, **kwargs):
  """Every record of a prepared split, in frame order, as NumPy arrays."""
  batches = list(input_pipeline.make_dataset(
      os.fspath(out_dir), batch_size=4, training=False, **kwargs))
  return {k: np.concatenate([b[k].numpy() for b in batches])
          for k in batches[0]}


def _check_records(records, frames, cube):
  """Records hold the frames' joints, crops and metadata that map back."""
  assert [f.decode() for f in records["frame_id"]] == [
      f.frame_id for f in frames]
  for i, frame in enumerate(frames):
    np.testing.assert_array_equal(records["joints_uvd"][i], frame.joints_uvd)
    np.testing.assert_array_equal(records["joints_xyz"][i], frame.joints_xyz)
    np.testing.assert_array_equal(records["camera"][i],
                                  frame.camera.intrinsics)
    np.testing.assert_array_equal(records["cube"][i], cube)
    crop, affine = geometry.crop_depth(frame.depth_mm,
                                       records["centre_xyz"][i], cube,
                                       frame.camera)
    np.testing.assert_array_equal(records["depth"][i, ..., 0], crop)
    np.testing.assert_array_equal(records["affine"][i], affine)
  uvd = geometry.normalized_to_uvd(records["joints_uvz"], records["affine"],
                                   records["centre_xyz"][:, 2],
                                   records["cube"])
  np.testing.assert_allclose(uvd, records["joints_uvd"], rtol=0, atol=1e-3)
  assert np.all(np.any(records["depth"] < 1.0, axis=(1, 2, 3)))


def test_icvl_round_trip(tmp_path):
  frames = dataset_fixtures.write_icvl(tmp_path / "icvl", 5)
  manifest = _prepare("icvl", tmp_path / "icvl", "train", tmp_path / "out",
                      num_shards=2)
  assert manifest["complete"]
  assert manifest["counts"] == {"read": 5, "written": 5, "skipped": 0,
                                "skipped_by_kind": {}}
  assert [s["file"] for s in manifest["shards"]] == [
      "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
  assert [s["written"] for s in manifest["shards"]] == [2, 3]
  assert manifest["skeleton"] == "icvl" and manifest["num_joints"] == 16
  assert manifest["crop_size"] == 96
  assert manifest["cube_mm"] == [250.0] * 3
  assert manifest["camera"]["fx"] == dataset_profiles.ICVL.camera.fx
  assert sorted(os.listdir(tmp_path / "out")) == [
      "manifest.json", "train-00000-of-00002.tfrecord",
      "train-00001-of-00002.tfrecord"]
  # Shards as readable as the manifest: the umask's mode, not mkstemp's.
  modes = {os.stat(tmp_path / "out" / name).st_mode & 0o777
           for name in os.listdir(tmp_path / "out")}
  assert len(modes) == 1, modes
  records = _read_all(tmp_path / "out")
  _check_records(records, frames, np.full(3, 250.0, np.float32))
  for i, frame in enumerate(frames):
    np.testing.assert_array_equal(
        records["centre_xyz"][i],
        centres_lib.compute_centre(frame.depth_mm, frame.camera, cube_mm=250.0))


def test_msra_shards_per_subject(tmp_path):
  frames = dataset_fixtures.write_msra(tmp_path / "msra", subjects=("P0", "P3"))
  manifest = _prepare("msra", tmp_path / "msra", "all", tmp_path / "out",
                      num_shards=2, reader_kwargs={"subjects": ["P0", "P3"]})
  assert manifest["counts"]["written"] == len(frames) == 34
  assert [s["file"] for s in manifest["shards"]] == [
      "P0-00000-of-00002.tfrecord", "P0-00001-of-00002.tfrecord",
      "P3-00000-of-00002.tfrecord", "P3-00001-of-00002.tfrecord"]
  assert manifest["subjects"] == {
      "P0": {"shards": ["P0-00000-of-00002.tfrecord",
                        "P0-00001-of-00002.tfrecord"],
             "written": 17, "skipped": 0},
      "P3": {"shards": ["P3-00000-of-00002.tfrecord",
                        "P3-00001-of-00002.tfrecord"],
             "written": 17, "skipped": 0}}
  _check_records(_read_all(tmp_path / "out"), frames,
                 np.full(3, 200.0, np.float32))


def test_nyu_maps_back_to_xyz(tmp_path):
  frames = dataset_fixtures.write_nyu(tmp_path / "nyu", 2)
  manifest = _prepare("nyu", tmp_path / "nyu", "train", tmp_path / "out",
                      centres="ground_truth", cube_mm=[300, 300, 250])
  assert manifest["centres"] == "ground_truth"
  records = _read_all(tmp_path / "out")
  cube = np.array([300, 300, 250], np.float32)
  _check_records(records, frames, cube)
  for i, frame in enumerate(frames):
    np.testing.assert_array_equal(
        records["centre_xyz"][i],
        centres_lib.ground_truth_centre(frame.joints_xyz))
  # NYU's negative fy travels with the record and gives back NYU's y-up xyz.
  xyz = geometry.normalized_to_xyz(records["joints_uvz"], records["affine"],
                                   records["centre_xyz"][:, 2], cube,
                                   records["camera"][:, None, :])
  np.testing.assert_allclose(xyz, records["joints_xyz"], atol=0.05)


def test_rerun_writes_only_missing_shards(tmp_path):
  dataset_fixtures.write_icvl(tmp_path / "icvl", 6)
  out = tmp_path / "out"
  _prepare("icvl", tmp_path / "icvl", "train", out, num_shards=3)
  names = sorted(n for n in os.listdir(out) if n.endswith(".tfrecord"))
  contents = {n: (out / n).read_bytes() for n in names}
  # Back-date the shards so a rewrite shows in the mtime whatever the clock
  # resolution.
  for name in names:
    os.utime(out / name, (1e9, 1e9))
  os.remove(out / names[1])
  (out / (names[1] + ".tmp")).write_bytes(b"half a shard")
  manifest = _prepare("icvl", tmp_path / "icvl", "train", out, num_shards=3)
  assert manifest["complete"] and manifest["counts"]["written"] == 6
  assert sorted(os.listdir(out)) == ["manifest.json"] + names
  for name in names:
    assert (out / name).read_bytes() == contents[name]
    assert (os.path.getmtime(out / name) == 1e9) == (name != names[1]), name
  with pytest.raises(ValueError, match="other settings.*cube_mm"):
    _prepare("icvl", tmp_path / "icvl", "train", out, num_shards=3,
             cube_mm=200.0)
  with pytest.raises(ValueError, match="other settings.*num_shards"):
    _prepare("icvl", tmp_path / "icvl", "train", out, num_shards=2)


def test_two_workers_write_the_same_records(tmp_path):
  dataset_fixtures.write_icvl(tmp_path / "icvl", 6)
  one = _prepare("icvl", tmp_path / "icvl", "train", tmp_path / "one",
                 num_shards=3, workers=1)
  two = _prepare("icvl", tmp_path / "icvl", "train", tmp_path / "two",
                 num_shards=3, workers=2)
  assert one["shards"] == two["shards"]
  for shard in one["shards"]:
    assert ((tmp_path / "one" / shard["file"]).read_bytes() ==
            (tmp_path / "two" / shard["file"]).read_bytes())


def _label_line(root, index):
  path = root / "Training" / "labels.txt"
  return path, path.read_text().splitlines()[index]


def _png(root, frame):
  return root / "Training" / "Depth" / frame.frame_id


def _missing(root, frames, centres):
  os.remove(_png(root, frames[1]))
  return _png(root, frames[1])


def _truncated(root, frames, centres):
  path = _png(root, frames[1])
  path.write_bytes(path.read_bytes()[:100])
  return path


def _not_png(root, frames, centres):
  _png(root, frames[1]).write_bytes(b"P5 320 240 65535\n" + bytes(64))
  return _png(root, frames[1])


def _eight_bit(root, frames, centres):
  cv2.imwrite(str(_png(root, frames[1])),
              np.clip(frames[1].depth_mm, 0, 255).astype(np.uint8))
  return _png(root, frames[1])


def _short_label_line(root, frames, centres):
  path = root / "Training" / "labels.txt"
  lines = path.read_text().splitlines()
  lines[1] = " ".join(lines[1].split()[:-3])
  path.write_text("\n".join(lines) + "\n")
  return path


def _invalid_centre(root, frames, centres):
  centres[1] = None
  return root / "centres.txt"


def _centre_outside(root, frames, centres):
  centres[1] = np.array([5000.0, 0.0, 400.0])
  return root / "centres.txt"


def _empty_crop(root, frames, centres):
  # Far behind the wall: the cube around it holds no depth at all.
  centres[1] = centres[1] * (3000.0 / centres[1][2])
  return root


def _centre_off_the_hand(root, frames, centres):
  # On the hand's edge: hand pixels in the cube, the hand's centre not.
  centres[1] = centres[1] + np.array([160.0, 0.0, 0.0])
  return root / "centres.txt"


BAD_CASES = {
    "missing": (_missing, data_preparation.READ_ERROR, "missing file"),
    "truncated": (_truncated, data_preparation.READ_ERROR, "truncated or corrupt"),
    "not_png": (_not_png, data_preparation.READ_ERROR, "not a PNG"),
    "eight_bit": (_eight_bit, data_preparation.READ_ERROR, "8-bit"),
    "label_line": (_short_label_line, data_preparation.READ_ERROR, "line 2 has 45"),
    "invalid_centre": (_invalid_centre, data_preparation.INVALID_CENTRE, "invalid"),
    "centre_outside": (_centre_outside, data_preparation.CENTRE_OUTSIDE_FRAME,
                       "outside the 320×240 frame"),
    "empty_crop": (_empty_crop, data_preparation.EMPTY_CROP, "no hand pixels"),
    "centre_off_the_hand": (_centre_off_the_hand,
                            data_preparation.HAND_OUTSIDE_CUBE,
                            "outside the [250.0, 250.0, 250.0] mm cube"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_frame_stops_or_is_skipped(tmp_path, case):
  corrupt, kind, reason = BAD_CASES[case]
  root = tmp_path / "icvl"
  frames = dataset_fixtures.write_icvl(root, 3)
  centres = [centres_lib.ground_truth_centre(f.joints_xyz) for f in frames]
  path = corrupt(root, frames, centres)
  dataset_fixtures.write_centre_file(root / "centres.txt", centres)
  kwargs = dict(centres=os.fspath(root / "centres.txt"), num_shards=3)

  with pytest.raises(DatasetError) as error:
    _prepare("icvl", root, "train", tmp_path / "stop", **kwargs)
  message = str(error.value)
  assert "\n" not in message
  assert os.fspath(path) in message and frames[1].frame_id in message
  assert reason in message
  # The shard before the bad frame is kept, nothing is half-written.
  assert sorted(os.listdir(tmp_path / "stop")) == [
      "manifest.json", "train-00000-of-00003.tfrecord"]
  with open(tmp_path / "stop" / "manifest.json") as f:
    assert not json.load(f)["complete"]

  manifest = _prepare("icvl", root, "train", tmp_path / "skip",
                      skip_bad=True, **kwargs)
  assert manifest["complete"]
  assert manifest["counts"] == {"read": 3, "written": 2, "skipped": 1,
                                "skipped_by_kind": {kind: 1}}
  [skipped] = manifest["skipped"]
  assert skipped["index"] == 1 and skipped["kind"] == kind
  assert skipped["frame_id"] == frames[1].frame_id
  assert skipped["shard"] == "train-00001-of-00003.tfrecord"
  assert reason in skipped["reason"] and os.fspath(path) in skipped["reason"]
  assert [s["written"] for s in manifest["shards"]] == [1, 0, 1]
  records = _read_all(tmp_path / "skip")
  assert [f.decode() for f in records["frame_id"]] == [
      frames[0].frame_id, frames[2].frame_id]


def test_a_rerun_with_skip_bad_resumes_a_stopped_run(tmp_path):
  root = tmp_path / "icvl"
  frames = dataset_fixtures.write_icvl(root, 3)
  _missing(root, frames, None)
  out = tmp_path / "out"
  with pytest.raises(DatasetError):
    _prepare("icvl", root, "train", out, num_shards=3)
  os.utime(out / "train-00000-of-00003.tfrecord", (1e9, 1e9))
  manifest = _prepare("icvl", root, "train", out, num_shards=3, skip_bad=True)
  assert os.path.getmtime(out / "train-00000-of-00003.tfrecord") == 1e9
  assert manifest["counts"]["written"] == 2
  assert manifest["counts"]["skipped_by_kind"] == {data_preparation.READ_ERROR: 1}


def test_computed_centre_of_an_empty_frame_is_skipped(tmp_path):
  root = tmp_path / "icvl"
  frames = dataset_fixtures.write_icvl(root, 2)
  cv2.imwrite(str(_png(root, frames[0])), np.zeros((240, 320), np.uint16))
  manifest = _prepare("icvl", root, "train", tmp_path / "out", skip_bad=True)
  [skipped] = manifest["skipped"]
  assert skipped["kind"] == data_preparation.NO_CENTRE
  assert frames[0].frame_id in skipped["reason"]
  assert manifest["counts"]["written"] == 1


def test_msra_bin_of_the_wrong_size_is_skipped(tmp_path):
  root = tmp_path / "msra"
  frames = dataset_fixtures.write_msra(root, subjects=("P2",))
  path = root / (frames[4].frame_id + "_depth.bin")
  path.write_bytes(path.read_bytes()[:-4])
  manifest = _prepare("msra", root, "all", tmp_path / "out", skip_bad=True,
                      reader_kwargs={"subjects": ["P2"]})
  [skipped] = manifest["skipped"]
  assert skipped["kind"] == data_preparation.READ_ERROR
  assert os.fspath(path) in skipped["reason"] and "bytes" in skipped["reason"]
  assert manifest["subjects"]["P2"]["skipped"] == 1


def test_cli_reports_a_bad_frame_in_one_line(tmp_path):
  root = tmp_path / "icvl"
  frames = dataset_fixtures.write_icvl(root, 2)
  _missing(root, frames, None)
  result = subprocess.run(
      [sys.executable, "-m", "data_prep", "--dataset=icvl",
       f"--data_dir={root}", "--split=train", f"--out_dir={tmp_path / 'out'}",
       "--num_shards=2", "--workers=1"],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode != 0
  assert "Traceback" not in result.stderr
  [line] = [l for l in result.stderr.splitlines() if l.startswith("error:")]
  assert os.fspath(_png(root, frames[1])) in line
  assert frames[1].frame_id in line
  assert os.path.exists(tmp_path / "out" / "train-00000-of-00002.tfrecord")


def _v2v_centre(dataset, frame, joint):
  """Joint ``joint`` of a frame in the axes of V2V-PoseNet's centre files.

  As their loaders (src/data/*/data.lua) define them: NYU's joint_xyz
  (y up); ICVL's labels through pixel2world (y down, principal point
  (160, 120), f = 241.42); MSRA's joint.txt with z negated (y up, z > 0).
  """
  if dataset == "nyu":
    return frame.joints_xyz[joint]
  if dataset == "icvl":
    u, v, d = frame.joints_uvd[joint].astype(np.float64)
    return [(u - 160) * d / 241.42, (v - 120) * d / 241.42, d]
  joint_txt = frame.joints_xyz[joint] * np.float32([1, -1, -1])
  return joint_txt * np.float32([1, 1, -1])


@pytest.mark.parametrize("dataset", ["nyu", "icvl", "msra"])
def test_v2v_centres_put_the_crop_where_they_say(tmp_path, dataset):
  root = tmp_path / dataset
  if dataset == "nyu":
    frames, split, kwargs = dataset_fixtures.write_nyu(root, 2), "train", {}
  elif dataset == "icvl":
    frames, split, kwargs = dataset_fixtures.write_icvl(root, 3), "train", {}
  else:
    frames = dataset_fixtures.write_msra(root, subjects=("P0",))
    split, kwargs = "all", {"reader_kwargs": {"subjects": ["P0"]}}
  joint = 3
  dataset_fixtures.write_centre_file(
      tmp_path / "centres.txt",
      [_v2v_centre(dataset, f, joint) for f in frames])
  profile = dataset_profiles.get_profile(dataset)
  cubes = profile.authors_train_cubes_mm
  _prepare(dataset, root, split, tmp_path / "out",
           centres=os.fspath(tmp_path / "centres.txt"), v2v_centres=True,
           crop="authors", cube_choices_mm=cubes, **kwargs)
  records = _read_all(tmp_path / "out")
  np.testing.assert_allclose(
      records["centre_xyz"], [f.joints_xyz[joint] for f in frames], atol=2e-3)
  # The centre's joint lands in the middle of the crop, at the centre depth.
  np.testing.assert_allclose(records["joints_uvz"][:, joint, :2], 0.5,
                             atol=1.5 / 96)
  np.testing.assert_allclose(records["joints_uvz"][:, joint, 2], 0.0,
                             atol=1e-4)
  assert set(records["cube"].ravel()) <= set(cubes)
  if len(cubes) > 1:  # each frame draws its own
    assert len(set(records["cube"][:, 0])) > 1
  for i, frame in enumerate(frames):
    crop, affine = geometry.crop_depth_authors(
        frame.depth_mm, records["centre_xyz"][i], records["cube"][i],
        frame.camera)
    np.testing.assert_array_equal(records["depth"][i, ..., 0], crop)
    np.testing.assert_array_equal(records["affine"][i], affine)
