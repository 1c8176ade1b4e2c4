"""Tests of the centre refiner: model, crops and targets, training, voting."""

import dataclasses
import json
import os
import zipfile

import keras
import numpy as np
import pytest

from jgr_p2o_tf import centre_refiner
from jgr_p2o_tf import centre_training
from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import flops
from jgr_p2o_tf import geometry
from jgr_p2o_tf import records_manifest
from jgr_p2o_tf import run_dir
from jgr_p2o_tf.datasets import centres
from jgr_p2o_tf.layers.centre_voting import CentreVoting
from jgr_p2o_tf.layers.output_grid import pixel_uvz


def test_keras_round_trip(tmp_path):
  keras.utils.set_random_seed(1)
  refiner = centre_refiner.CentreRefiner(input_size=32, num_features=4,
                                         cube_mm=(300.0, 320.0, 340.0))
  crops = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)).astype(
      np.float32)
  path = str(tmp_path / "refiner.keras")
  refiner.save(path)
  loaded = keras.saving.load_model(path)
  assert isinstance(loaded, centre_refiner.CentreRefiner)
  assert loaded.get_config() == refiner.get_config()
  assert loaded.cube_mm == [300.0, 320.0, 340.0]
  np.testing.assert_allclose(loaded(crops), refiner(crops), atol=1e-6)


def test_flops_are_a_small_fraction_of_the_pose_network():
  # The pose network of the paper costs 0.72 GFLOP a frame; the demo's two
  # steps together stay under a sixth of it.
  total = sum(flops.count_flops(centre_refiner.CentreRefiner(
      input_size=stage.crop_size))["total"]
              for stage in records_manifest.REFINER_STAGES.values())
  assert total < 0.72e9 / 6


def test_voting_returns_the_chosen_pixels_vote():
  """All weight on one output pixel: its 3D point plus its offset."""
  rng = np.random.default_rng(0)
  depth = rng.uniform(-1, 1, (2, 16, 16, 1)).astype(np.float32)
  votes = np.zeros((2, 4, 4, 4), np.float32)
  votes[..., 1:] = rng.normal(size=(2, 4, 4, 3))
  votes[0, 1, 2, 0] = votes[1, 3, 0, 0] = 50.0  # the chosen pixels' weights
  offset = np.asarray(CentreVoting()(votes, depth))
  uvz = np.asarray(pixel_uvz(depth, stride=4))
  for sample, (i, j) in enumerate(((1, 2), (3, 0))):
    u, v, z = uvz[sample, i, j]
    expected = np.array([2 * u - 1, 2 * v - 1, z]) + votes[sample, i, j, 1:]
    np.testing.assert_allclose(offset[sample], expected, atol=1e-5)


def test_offsets_are_in_crop_axes_and_invert():
  """A camera with fy < 0 (NYU) flips y; apply_offset undoes the target."""
  rough = np.array([[10.0, -20.0, 500.0]], np.float32)
  target = np.array([[40.0, 0.0, 470.0]], np.float32)
  cube = geometry.refiner_cube(250.0, 1.6)
  for camera in (dataset_profiles.ICVL.camera, dataset_profiles.NYU.camera):
    intrinsics = camera.intrinsics[None]
    offset = geometry.normalized_offset(rough, target, cube, intrinsics)
    np.testing.assert_allclose(
        geometry.apply_offset(rough, offset, cube, intrinsics), target,
        atol=1e-4)
    # The target's crop pixel lies on the crop's side the offset points to.
    affine = geometry.crop_affine(geometry.xyz_to_uvd(rough[0], camera),
                                  cube, camera, 64)
    pixel = geometry.apply_affine(
        affine, geometry.xyz_to_uvd(target, camera)[:, :2])[0]
    assert np.all(np.sign(pixel - 31.5) == np.sign(offset[0, :2]))


def test_records_hold_the_refiner_crop_of_the_moved_centre(
    synthetic_records, refiner_records):
  """Each record's refiner crop is cut around its rough centre: the
  depth's centre or, for the drawn share, the example's own centre, moved by
  the frame's draw; the pose parts of the records are those of the
  pose-only preparation."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import input_pipeline  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import tfrecords  # pylint: disable=g-import-not-at-top
  manifest = records_manifest.read_manifest(refiner_records)
  settings = manifest["refiner"]
  reader = dataset_profiles.get_reader(
      "synthetic", os.path.join(os.path.dirname(synthetic_records), "raw"),
      "train")
  paths = records_manifest.shard_paths(refiner_records, manifest)
  serialized = next(iter(tf.data.TFRecordDataset(paths).batch(8)))
  parsed = tfrecords.parse_refiner_example(serialized, settings["crop_size"])
  coarse = dataclasses.asdict(records_manifest.REFINER_STAGES["coarse"])
  assert {k: settings[k] for k in coarse} == coarse
  cube = geometry.refiner_cube(manifest["cube_mm"], settings["cube_factor"])
  near_frames = 0
  for index in range(8):
    frame = reader.read(index)
    draws = np.random.default_rng((settings["seed"], index))
    if draws.random() < settings["near_share"]:
      near_frames += 1
      rough = centres.ground_truth_centre(frame.joints_xyz) + draws.normal(
          0.0, settings["near_jitter_mm"], 3)
    else:
      rough = centres.compute_centre(
          frame.depth_mm, frame.camera, cube_mm=manifest["cube_mm"]
      ) + draws.normal(0.0, settings["jitter_mm"], 3)
    np.testing.assert_allclose(parsed["rough_centre_xyz"][index], rough,
                               atol=1e-3)
    np.testing.assert_allclose(parsed["refiner_cube"][index], cube)
    np.testing.assert_allclose(
        parsed["refiner_depth"][index],
        geometry.refiner_crop(frame.depth_mm, rough, cube, frame.camera,
                                    settings["crop_size"]), atol=1e-6)
    np.testing.assert_allclose(parsed["centre_xyz"][index],
                               centres.ground_truth_centre(frame.joints_xyz))
  # Both kinds of crop are among the first frames (0.5 each).
  assert 0 < near_frames < 8
  pose = next(iter(input_pipeline.make_dataset(
      refiner_records, batch_size=3, training=False)))
  plain = next(iter(input_pipeline.make_dataset(
      os.path.join(synthetic_records, "train"), batch_size=3,
      training=False)))
  np.testing.assert_array_equal(pose["depth"], plain["depth"])


def test_trained_refiner_moves_a_displaced_centre_towards_the_hand(
    synthetic_records, trained_refiner):
  """On rendered test frames, a centre moved 60 mm off the hand's in a
  known direction is moved back towards it by one refinement step."""
  path = os.path.join(trained_refiner, run_dir.LAST_MODEL)
  # The refiner alone: no optimiser, whose schedule loading would need.
  with zipfile.ZipFile(path) as archive:
    saved = json.loads(archive.read("config.json"))
  assert not saved.get("compile_config")
  refiner = keras.saving.load_model(path)
  reader = dataset_profiles.get_reader(
      "synthetic", os.path.join(os.path.dirname(synthetic_records), "raw"),
      "test")
  frames = [reader.read(i) for i in range(16)]
  truth = np.stack([centres.ground_truth_centre(f.joints_xyz)
                    for f in frames])
  directions = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]] * 4,
                        np.float32)
  moved = truth + 60.0 * directions
  refined = centre_refiner.refine_centres(
      [refiner], [f.depth_mm for f in frames], [f.camera for f in frames],
      moved)
  correction = refined - moved
  # It moves back along the displacement, and ends nearer the hand.
  assert np.mean(np.sum(correction * -directions, axis=1) > 0) >= 0.9
  errors = np.linalg.norm(refined - truth, axis=1)
  assert np.median(errors) < 0.75 * 60.0


def test_a_rerun_of_the_same_refiner_run_is_accepted_and_another_refused(
    refiner_records, trained_refiner):
  """make demo reruns step 5 with the same flags: it must not be refused."""
  from jgr_p2o_tf import train_config  # pylint: disable=g-import-not-at-top
  skeleton = records_manifest.read_manifest(refiner_records)["skeleton"]
  assert skeleton
  assert run_dir.read_train_config(trained_refiner)["skeleton"] == skeleton
  # --jit_compile's default, resolved as the pose trainer resolves it.
  from jgr_p2o_tf import trainer  # pylint: disable=g-import-not-at-top
  assert run_dir.read_train_config(trained_refiner)["jit_compile"] is (
      trainer.resolve_jit_compile(None))
  same = train_config.TrainConfig(
      train_dir=refiner_records, model_dir=trained_refiner, task="centre",
      epochs=1, batch_size=32, refiner_features=4)
  run_dir.check_resumable(same)
  model_path = os.path.join(trained_refiner, run_dir.LAST_MODEL)
  saved_at = os.stat(model_path).st_mtime_ns
  history = centre_training.train(same, log=lambda _: None)
  # Finished: its history returned, its model not trained again.
  assert history[-1]["epoch"] == run_dir.read_train_config(
      trained_refiner)["epochs"]
  assert os.stat(model_path).st_mtime_ns == saved_at
  with pytest.raises(ValueError, match="--num_stacks=3 .the run's: 2."):
    run_dir.check_resumable(dataclasses.replace(same, num_stacks=3))


def test_training_refuses_records_without_refiner_crops(synthetic_records):
  with pytest.raises(ValueError, match="--refiner_crops"):
    centre_training.refiner_records(os.path.join(synthetic_records, "train"))


def _test_frames(synthetic_records, count):
  reader = dataset_profiles.get_reader(
      "synthetic", os.path.join(os.path.dirname(synthetic_records), "raw"),
      "test")
  return [reader.read(i) for i in range(count)]


def test_export_finds_the_hand_as_the_numpy_path_does(
    synthetic_records, refiner_steps, refiner_export):
  """serving_default's centre is compute_centre → the refinement steps, each
  in its own cube; given that centre, full_frame_with_centre gives the same
  joints; an empty frame has no hand and NaN joints."""
  from jgr_p2o_tf import inference  # pylint: disable=g-import-not-at-top
  export_dir, metadata = refiner_export
  assert [step["cube_mm"] for step in metadata["centre_refiner"]["steps"]] == [
      refiner.cube_mm for refiner, _ in refiner_steps]
  frames = _test_frames(synthetic_records, 2)
  depth = np.stack([f.depth_mm for f in frames] +
                   [np.zeros_like(frames[0].depth_mm)])
  camera = frames[0].camera
  predictor = inference.Predictor(export_dir)
  assert predictor.finds_hand
  found = predictor.predict(depth, None, camera)
  np.testing.assert_array_equal(found["hand_found"], [True, True, False])
  assert np.all(np.isnan(found["joints_xyz"][2]))
  rough = np.stack([centres.compute_centre(
      f.depth_mm, f.camera, cube_mm=250.0,
      pixel_stride=centres.GRAPH_PIXEL_STRIDE) for f in frames])
  steps = centre_refiner.refined_centres(
      [refiner for refiner, _ in refiner_steps], depth[:2], [camera] * 2,
      rough)
  # The second step moves the centre: the cascade is not one step.
  assert np.all(np.linalg.norm(steps[1] - steps[0], axis=-1) > 0.01)
  expected = steps[-1]
  np.testing.assert_allclose(found["centre_xyz"][:2], expected, atol=0.5)
  given = predictor.predict(depth[:2], found["centre_xyz"][:2], camera)
  np.testing.assert_allclose(given["joints_xyz"], found["joints_xyz"][:2],
                             atol=1e-3)


def test_infer_says_no_hand_found(synthetic_records, refiner_export,
                                  tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  import cv2  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import inference  # pylint: disable=g-import-not-at-top
  frame = _test_frames(synthetic_records, 1)[0]
  paths = [tmp_path / "hand.png", tmp_path / "empty.png"]
  cv2.imwrite(str(paths[0]), np.round(frame.depth_mm).astype(np.uint16))
  cv2.imwrite(str(paths[1]), np.zeros_like(frame.depth_mm, np.uint16))
  predictor = inference.Predictor(refiner_export[0])
  results = inference.predict_files(predictor, paths, frame.camera)
  inference.write_predictions(str(tmp_path / "predictions.json"), predictor,
                              frame.camera, results)
  with open(tmp_path / "predictions.json", encoding="utf-8") as f:
    hand, empty = json.load(f)["frames"]
  assert hand["hand_found"] and hand["centre_source"] == "refined"
  assert len(hand["joints_xyz"]) == 16
  assert empty == {"file": str(paths[1]), "hand_found": False,
                   "result": "no hand found"}
