"""Bad inputs a user gives the commands: each stops with one line naming it.

Records, model and --dataset that disagree, truncated models, malformed
prediction and label files, bad centres for infer. The models here are
one-stack, 8-feature networks: what is checked is what surrounds them.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from jgr_p2o_tf import evaluation
from jgr_p2o_tf import metrics
from jgr_p2o_tf import records_manifest
from jgr_p2o_tf import run_dir

REPO = pathlib.Path(__file__).resolve().parents[1]


def _command(module, *flags):
  return subprocess.run([sys.executable, "-m", module, *map(str, flags)],
                        cwd=REPO, capture_output=True, text=True, timeout=120,
                        check=False)


def _one_error_line(result):
  assert result.returncode == 2, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  [line] = [l for l in result.stderr.splitlines() if l.startswith("error:")]
  return line


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
  """.keras files of tiny untrained models: ICVL (16 joints), MSRA (21)."""
  from jgr_p2o_tf import model as model_lib  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("models")
  paths = {}
  for skeleton, joints in (("icvl", 16), ("msra", 21)):
    paths[skeleton] = root / f"{skeleton}.keras"
    model_lib.build_model(joints, num_stacks=1, num_features=8,
                          skeleton=skeleton).save(paths[skeleton])
  return paths


def test_evaluate_refuses_another_dataset_than_the_records(
    synthetic_records, tiny_models, tmp_path):
  # ICVL-layout synthetic records: --dataset=nyu would measure them with
  # NYU's intrinsics under the title "nyu".
  test_dir = os.path.join(synthetic_records, "test")
  line = _one_error_line(_command(
      "jgr_p2o_tf.evaluate", "--dataset=nyu",
      f"--model_dir={tiny_models['icvl']}", f"--data_dir={test_dir}",
      f"--output_json={tmp_path / 'report.json'}"))
  assert line == (f"error: --dataset=nyu but the records in {test_dir} were "
                  f"prepared from synthetic ({test_dir}/manifest.json)")
  assert not os.listdir(tmp_path)


def test_evaluate_refuses_a_model_of_another_layout(tiny_models):
  config = run_dir.read_model_config(tiny_models["msra"])
  # Both 21 joints: only the names tell them apart.
  synthetic_layout = {"dataset": "synthetic", "skeleton": "synthetic",
                      "num_joints": 21}
  with pytest.raises(ValueError) as error:
    evaluation.check_agreement("synthetic", "d", synthetic_layout, config,
                               "m.keras")
  assert str(error.value) == ("the model m.keras predicts 21 msra joints but "
                              "the records hold 21 synthetic joints")
  with pytest.raises(ValueError, match=r"^--dataset=msra but .*; the model "
                     r"m\.keras predicts 21 msra joints"):
    evaluation.check_agreement("msra", "d", synthetic_layout, config,
                               "m.keras")
  evaluation.check_agreement("msra", "d", {**synthetic_layout,
                                           "dataset": "msra",
                                           "skeleton": "msra"},
                             config, "m.keras")


def test_model_mode_files_are_read_by_the_file_mode(synthetic_records,
                                                    tiny_models, tmp_path):
  # The demo's records: synthetic frames in the ICVL layout (16 joints).
  test_dir = os.path.join(synthetic_records, "test")
  model = run_dir.load_keras_model(tiny_models["icvl"])
  predictions = evaluation.predict_records(model, test_dir)
  metrics.write_uvd_file(tmp_path / "m.txt", predictions["pred_uvd"])
  metrics.write_uvd_file(tmp_path / "gt.txt", predictions["gt_uvd"])
  report = evaluation.evaluate_predictions(
      predictions, "synthetic", "icvl", "m", model_path="m.keras",
      records_dir=test_dir, predictions_path=str(tmp_path / "m.txt"),
      labels_path=str(tmp_path / "gt.txt"))
  # Model mode names what it evaluated and the camera the records share.
  assert report["model"] == "m.keras" and report["records"] == test_dir
  assert report["labels"] == str(tmp_path / "gt.txt")
  assert report["methods"][0]["path"] == str(tmp_path / "m.txt")
  assert report["camera"] == dict(zip(
      ("fx", "fy", "cx", "cy"), map(float, predictions["intrinsics"][0])))
  worst = report["methods"][0]["worst_frames"][0]
  assert worst["frame_id"] == predictions["frame_id"][worst["index"]]
  from_files = evaluation.evaluate_prediction_files(
      "synthetic", str(tmp_path / "gt.txt"), [str(tmp_path / "m.txt")])
  assert from_files["layout"] == "icvl" and from_files["num_joints"] == 16
  # %.3f rounding of the files moves the error by well under 0.01 mm.
  assert from_files["methods"][0]["mean_error_mm"] == pytest.approx(
      report["methods"][0]["mean_error_mm"], abs=0.01)


def test_train_refuses_another_dataset_than_the_records(synthetic_records,
                                                        tmp_path):
  line = _one_error_line(_command(
      "jgr_p2o_tf.train", "--dataset=icvl", f"--data_dir={synthetic_records}",
      f"--model_dir={tmp_path / 'run'}"))
  train_dir = os.path.join(synthetic_records, "train")
  assert line == (f"error: --dataset=icvl but the records in {train_dir} "
                  f"were prepared from synthetic "
                  f"({records_manifest.manifest_path(train_dir)})")
  assert not (tmp_path / "run").exists()


def test_a_truncated_model_file_is_named_as_such(tiny_models, tmp_path):
  truncated = tmp_path / "truncated.keras"
  data = tiny_models["icvl"].read_bytes()
  truncated.write_bytes(data[:len(data) // 2])
  for read in (run_dir.read_model_config, run_dir.load_keras_model):
    with pytest.raises(ValueError, match=f"^{truncated}: truncated, corrupt "
                       "or not a .keras file"):
      read(str(truncated))
  corrupt = tmp_path / "corrupt.keras"
  flipped = bytearray(data)
  flipped[len(data) // 2] ^= 0xFF
  corrupt.write_bytes(bytes(flipped))
  with pytest.raises(ValueError, match=f"^{corrupt}: .*corrupt"):
    run_dir.read_model_config(str(corrupt))


# Records: missing, truncated and corrupt shards.


@pytest.fixture()
def icvl_split(tmp_path):
  """An ICVL split of 6 frames in 3 shards, and the raw frames' root."""
  from tests import dataset_fixtures  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import data_preparation  # pylint: disable=g-import-not-at-top
  dataset_fixtures.write_icvl(tmp_path / "icvl", 6)
  out = tmp_path / "records" / "train"
  data_preparation.prepare("icvl", str(tmp_path / "icvl"), "train", str(out),
                           num_shards=3, progress=False)
  return out, tmp_path / "icvl"


def _damage(path, how):
  data = path.read_bytes()
  if how == "missing":
    path.unlink()
  elif how == "truncated":
    path.write_bytes(data[:len(data) // 2])
  else:  # one flipped byte inside the second record: same size
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(flipped))


@pytest.mark.parametrize("how, problem", [
    ("missing", "missing"),
    ("truncated", r"\d+ bytes where the manifest records \d+"),
    ("corrupt", "corrupt: its SHA-256 differs from the manifest's"),
])
def test_a_damaged_shard_is_named_and_written_again(icvl_split, how, problem):
  from jgr_p2o_tf import data_preparation  # pylint: disable=g-import-not-at-top
  out, raw = icvl_split
  manifest = records_manifest.read_manifest(str(out))
  assert all(s["bytes"] > 0 and len(s["sha256"]) == 64
             for s in manifest["shards"])
  shard = out / manifest["shards"][1]["file"]
  whole = shard.read_bytes()
  records_manifest.verify_shards(str(out))
  _damage(shard, how)
  with pytest.raises(ValueError, match=f"^{shard}: {problem}; rerun data_prep "
                     "with the same flags to write this shard again$"):
    records_manifest.verify_shards(str(out))
  data_preparation.prepare("icvl", str(raw), "train", str(out), num_shards=3,
                           progress=False)
  assert shard.read_bytes() == whole


def test_a_shard_damaged_while_training_is_named(icvl_split):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import input_pipeline  # pylint: disable=g-import-not-at-top
  out, _ = icvl_split
  dataset = input_pipeline.make_dataset(str(out), batch_size=2,
                                        training=False)
  shard = out / records_manifest.read_manifest(str(out))["shards"][2]["file"]
  # Checked at the start, damaged since: TensorFlow names an offset only.
  _damage(shard, "corrupt")
  with pytest.raises(tf.errors.DataLossError, match="corrupted record at"):
    list(dataset)
  with pytest.raises(ValueError, match=f"^{shard}: corrupt"):
    list(input_pipeline.batches(dataset, str(out)))


def test_train_and_evaluate_check_the_shards_first(synthetic_records,
                                                   tiny_models, tmp_path):
  from jgr_p2o_tf import train_config  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import trainer  # pylint: disable=g-import-not-at-top
  records = tmp_path / "records"
  shutil.copytree(synthetic_records, records)
  test_dir = records / "test"
  shard = test_dir / records_manifest.read_manifest(
      str(test_dir))["shards"][0]["file"]
  _damage(shard, "truncated")
  message = f"{shard}: .* bytes where the manifest records"
  with pytest.raises(ValueError, match=message):
    trainer.train(train_config.TrainConfig(
        train_dir=str(records / "train"), validation_dir=str(test_dir),
        model_dir=str(tmp_path / "run"), epochs=1))
  assert not (tmp_path / "run").exists()
  line = _one_error_line(_command(
      "jgr_p2o_tf.evaluate", "--dataset=synthetic",
      f"--model_dir={tiny_models['icvl']}", f"--data_dir={test_dir}"))
  assert re.match(f"error: {message}", line)


# Smaller ones.


def test_a_malformed_first_label_line_is_one_bad_frame(tmp_path):
  from tests import dataset_fixtures  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import data_preparation  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf.datasets import DatasetError  # pylint: disable=g-import-not-at-top
  # camera.json names no layout: the label lines' joint count tells it.
  frames = dataset_fixtures.write_synthetic(tmp_path / "raw", 3)
  labels = tmp_path / "raw" / "train" / "labels.txt"
  lines = labels.read_text().splitlines()
  lines[0] = " ".join(lines[0].split()[:-3])
  labels.write_text("\n".join(lines) + "\n")
  manifest = data_preparation.prepare(
      "synthetic", str(tmp_path / "raw"), "train", str(tmp_path / "out"),
      centres="ground_truth", skip_bad=True, progress=False)
  assert manifest["skeleton"] == "synthetic"
  assert manifest["counts"]["written"] == 2
  [skipped] = manifest["skipped"]
  assert skipped["frame_id"] == frames[0].frame_id
  assert "line 1 has 60 values after the image path, expected 63" in (
      skipped["reason"])
  labels.write_text("\n".join(lines[:1]) + "\n")
  with pytest.raises(DatasetError, match="no label line has the values of 3 × "
                     r"one of \[14, 16, 21\] joints .*line 1 has 60"):
    data_preparation.prepare("synthetic", str(tmp_path / "raw"), "train",
                             str(tmp_path / "out2"), skip_bad=True,
                             progress=False)


def test_a_binary_prediction_file_is_named(tmp_path):
  metrics.write_uvd_file(tmp_path / "gt.txt", np.ones((2, 16, 3)))
  (tmp_path / "p.bin").write_bytes(bytes(range(256)))
  with pytest.raises(metrics.PredictionFileError,
                     match=f"^{tmp_path / 'p.bin'}: not a text file"):
    evaluation.evaluate_prediction_files(
        "icvl", str(tmp_path / "gt.txt"), [str(tmp_path / "p.bin")])


@pytest.mark.parametrize("damage, reason", [
    (lambda data: data[:len(data) // 2], "ends at byte"),
    (lambda data: data[:-12], "ends at byte"),
    (lambda data: data[:60] + bytes([data[60] ^ 0xFF]) + data[61:],
     "fails its CRC"),
])
def test_a_damaged_png_is_one_error_and_nothing_on_stderr(tmp_path, capfd,
                                                          damage, reason):
  import cv2  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import dataset_profiles  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf.datasets import frame as frame_lib  # pylint: disable=g-import-not-at-top
  camera = dataset_profiles.ICVL.camera
  depth = np.random.default_rng(0).integers(300, 900, (240, 320), np.uint16)
  path = tmp_path / "depth.png"
  cv2.imwrite(str(path), depth)
  np.testing.assert_array_equal(
      frame_lib.read_uint16_depth_png(path, "f", camera), depth)
  path.write_bytes(damage(path.read_bytes()))
  capfd.readouterr()
  with pytest.raises(frame_lib.DatasetError,
                     match=f"^{path}, frame f: truncated or corrupt PNG "
                     f"\\(.*{reason}"):
    frame_lib.read_uint16_depth_png(path, "f", camera)
  # libpng's own complaints (``libpng error: ...``) never reach stderr.
  assert capfd.readouterr().err == ""


# infer: what it is given, what it writes.


class _Predictor:
  """Stands for a SavedModel: joints where the centre is, or NaN."""
  cube_mm = np.full(3, 250.0, np.float32)
  metadata = {"cube_mm": [250.0] * 3, "format": "saved_model"}
  runtime = "tensorflow"

  def __init__(self, joints=0.0):
    from jgr_p2o_tf import skeletons  # pylint: disable=g-import-not-at-top
    self.skeleton = skeletons.ICVL
    self.model_dir = "model"
    self.joints = joints

  def predict(self, depth, centre, camera):
    del depth, camera
    return {"joints_xyz": np.full((16, 3), self.joints) + centre,
            "joints_uvd": np.full((16, 3), self.joints)}


@pytest.mark.parametrize("centre", [
    (np.nan, 0.0, 450.0), (0.0, np.inf, 450.0), (0.0, 0.0, -450.0),
    (5000.0, 0.0, 450.0)])
def test_infer_refuses_a_centre_off_the_image(tmp_path, centre):
  from jgr_p2o_tf import dataset_profiles  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import inference  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match=r"finite, with z > 0 and inside the "
                     r"320×240 image, got \[") as error:
    inference.predict_files(_Predictor(), [tmp_path / "a.png"],
                            dataset_profiles.ICVL.camera, centre_xyz=centre)
  if centre[0] == 5000.0:
    assert "(it projects to u=2842.4, v=120.0)" in str(error.value)


def test_infer_refuses_non_finite_depth_and_joints(tmp_path):
  from tests import dataset_fixtures  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import dataset_profiles  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import inference  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf.datasets import frame as frame_lib  # pylint: disable=g-import-not-at-top
  camera = dataset_profiles.MSRA.camera
  depth = np.zeros((camera.height, camera.width), np.float32)
  depth[100:140, 150:190] = 450.0
  path = tmp_path / "000000_depth.bin"
  dataset_fixtures.write_msra_bin(path, depth)
  centre = (0.0, 0.0, 450.0)
  [result] = inference.predict_files(_Predictor(), [path], camera,
                                     centre_xyz=centre)
  out = tmp_path / "predictions.json"
  inference.write_predictions(str(out), _Predictor(), camera, [result])
  written = out.read_text()
  assert json.loads(written)["frames"][0]["centre_xyz"] == list(centre)
  with pytest.raises(ValueError, match=f"^{path}: the model's joints are not "
                     "finite"):
    inference.predict_files(_Predictor(np.nan), [path], camera,
                            centre_xyz=centre)
  with pytest.raises(ValueError, match="Out of range float values"):
    inference.write_predictions(str(out), _Predictor(), camera, [
        {**result, "joints_xyz": [[np.nan] * 3]}])
  assert out.read_text() == written
  depth[120, 170] = np.nan
  dataset_fixtures.write_msra_bin(path, depth)
  with pytest.raises(frame_lib.DatasetError, match=f"^{path}: depth values "
                     "that are not finite"):
    inference.predict_files(_Predictor(), [path], camera, centre_xyz=centre)
