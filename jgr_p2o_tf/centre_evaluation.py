"""How well the full-frame path finds the hand, and what that costs the pose.

``centre_report``: the centre errors of raw frames before and after the
centre refiner (``centre_refiner.centre_errors``). ``full_frame_joint_errors``:
an export that bundles a refiner (``export --centre_refiner_dir``) run on
the same raw frames twice, finding the hand itself and given the reference
centres; the difference of the two mean joint errors is what finding the
hand costs. ``python -m jgr_p2o_tf.evaluate_centres`` prints both.
"""

import numpy as np

from jgr_p2o_tf import centre_refiner
from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf.datasets import centres


def read_frames(dataset, data_dir, split, num_frames=None):
  """The first ``num_frames`` frames (all when None) of a raw split."""
  reader = dataset_profiles.get_reader(dataset, data_dir, split)
  count = len(reader) if num_frames is None else min(num_frames, len(reader))
  return [reader.read(i) for i in range(count)]


def centre_report(refiners, frames, pose_cube_mm, reference_centres=None):
  """{"rough": summary, "steps": [summary, ...], "refined": summary} in mm.

  ``refiners``: the refinement steps (``centre_refiner.refined_centres``);
  empty for the rough centre only.
  """
  errors = centre_refiner.centre_errors(refiners, frames, pose_cube_mm,
                                        reference_centres)
  return {k: errors[k] for k in ("rough", "steps", "refined") if k in errors}


def full_frame_joint_errors(predictor, frames, reference_centres=None):
  """Mean joint errors of an export finding the hand vs given the centre.

  Args:
    predictor: an ``inference.Predictor`` whose export finds the hand
      (``finds_hand``).
    frames: ``datasets.frame.Frame`` s with their joints.
    reference_centres: (N, 3) centres the pose crops were trained around;
      default the annotation's (``ground_truth_centre``).

  Returns:
    dict: "refined_centre_mm" (mean joint error over the frames where a
    hand was found), "reference_centre_mm" (the same frames, cropped around
    the reference centres), "frames", "frames_without_hand".
  """
  if not predictor.finds_hand:
    raise ValueError(f"{predictor.model_dir}: an export without a centre "
                     f"refiner (export it with --centre_refiner_dir)")
  if reference_centres is None:
    reference_centres = [centres.ground_truth_centre(f.joints_xyz)
                         for f in frames]
  refined, reference, missing = [], [], 0
  for frame, centre in zip(frames, reference_centres):
    found = predictor.predict(frame.depth_mm, None, frame.camera)
    if not found["hand_found"]:
      missing += 1
      continue
    given = predictor.predict(frame.depth_mm, centre, frame.camera)
    truth = np.asarray(frame.joints_xyz, np.float32)
    refined.append(np.linalg.norm(found["joints_xyz"] - truth, axis=-1).mean())
    reference.append(np.linalg.norm(given["joints_xyz"] - truth,
                                    axis=-1).mean())
  return {"refined_centre_mm": float(np.mean(refined)) if refined else None,
          "reference_centre_mm": (float(np.mean(reference)) if reference
                                  else None),
          "frames": len(frames), "frames_without_hand": missing}


def format_report(report):
  """The centre report (and joint errors, if there) as printed lines."""
  lines = [f"{'centre':<12}{'median mm':>10}{'p90 mm':>9}{'> 20 mm':>9}"]
  rows = [("rough", report["rough"])] + [
      (f"step {i}", row) for i, row in enumerate(report.get("steps", []), 1)]
  for name, row in rows:
    lines.append(f"{name:<12}{row['median_mm']:>10.1f}{row['p90_mm']:>9.1f}"
                 f"{100 * row['share_over_20_mm']:>8.1f}%")
  lines.append(f"({report['rough']['frames']} frames, "
               f"{len(report.get('steps', []))} refinement steps)")
  joints = report.get("joint_errors")
  if joints:
    lines.append(
        f"mean joint error: {joints['refined_centre_mm']:.2f} mm finding the "
        f"hand, {joints['reference_centre_mm']:.2f} mm on the reference "
        f"centres ({joints['frames_without_hand']} of {joints['frames']} "
        f"frames without a hand found)")
  return "\n".join(lines)
