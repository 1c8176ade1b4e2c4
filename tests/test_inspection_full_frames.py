"""The notebook's full-frame section: raw frames of records, hands found."""

import dataclasses
import os

import numpy as np

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import inspection
from jgr_p2o_tf.datasets import centres


def test_full_frames_are_those_the_records_were_cut_from(synthetic_records):
  test_dir = os.path.join(synthetic_records, "test")
  frames, reference = inspection.full_frames_of_records(test_dir, 3)
  reader = dataset_profiles.get_reader(
      "synthetic", os.path.join(synthetic_records, os.pardir, "raw"), "test")
  assert [f.frame_id for f in frames] == reader.frame_ids[:3]
  np.testing.assert_array_equal(frames[1].depth_mm, reader.read(1).depth_mm)
  # The synthetic records are cut around the true hand centres.
  np.testing.assert_allclose(
      reference, [centres.ground_truth_centre(f.joints_xyz) for f in frames],
      atol=1e-3)


def test_find_hands_reports_the_exports_centres_and_errors(
    synthetic_records, refiner_export):
  export_dir, _ = refiner_export
  frames, reference = inspection.full_frames_of_records(
      os.path.join(synthetic_records, "test"), 3)
  frames[2] = dataclasses.replace(frames[2],
                                  depth_mm=np.zeros_like(frames[2].depth_mm))
  model, _ = inspection.load_model(export_dir)
  predictor = inspection.hand_finder(model)
  assert predictor is not None and predictor.finds_hand
  found = inspection.find_hands(predictor, frames, reference, batch_size=2)

  np.testing.assert_array_equal(found["hand_found"], [True, True, False])
  camera = frames[0].camera
  export = predictor.predict(np.stack([f.depth_mm for f in frames[:2]]), None,
                             camera)
  np.testing.assert_allclose(found["centre_xyz"][:2], export["centre_xyz"],
                             atol=1e-4)
  np.testing.assert_allclose(found["joints_xyz"][:2], export["joints_xyz"],
                             atol=1e-4)
  np.testing.assert_allclose(
      found["centre_uvd"][:2],
      [geometry.xyz_to_uvd(c, camera) for c in export["centre_xyz"]],
      atol=1e-3)
  np.testing.assert_array_equal(found["reference_centre_xyz"], reference)
  rough = [centres.compute_centre(f.depth_mm, camera, cube_mm=250.0,
                                  pixel_stride=centres.GRAPH_PIXEL_STRIDE)
           for f in frames[:2]]
  np.testing.assert_allclose(found["rough_centre_xyz"][:2], rough, atol=1e-4)
  np.testing.assert_allclose(
      found["centre_error_mm"][:2],
      np.linalg.norm(export["centre_xyz"] - reference[:2], axis=-1),
      atol=1e-3)
  np.testing.assert_allclose(
      found["rough_centre_error_mm"][:2],
      np.linalg.norm(np.asarray(rough) - reference[:2], axis=-1), atol=1e-3)
  np.testing.assert_allclose(
      found["joint_error_mm"][:2],
      [np.linalg.norm(export["joints_xyz"][i] - frames[i].joints_xyz,
                      axis=-1).mean() for i in range(2)], atol=1e-3)
  # The empty frame: no hand, no centre, no joints, no errors.
  for key in ("centre_xyz", "rough_centre_xyz", "joints_xyz", "centre_error_mm",
              "rough_centre_error_mm", "joint_error_mm"):
    assert np.all(np.isnan(found[key][2])), key

  lines = inspection.format_found_hands(found).splitlines()
  assert len(lines) == 5
  assert lines[3].startswith(frames[2].frame_id)
  assert lines[3].endswith("no hand found")
  assert f"{found['joint_error_mm'][1]:.1f}" in lines[2]
  assert lines[4].startswith("mean")
  assert "hand found in 2 of 3 frames" in lines[4]
  assert f"{np.mean(found['centre_error_mm'][:2]):.1f}" in lines[4]

