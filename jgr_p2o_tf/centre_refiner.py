"""The centre refiner: a small CNN that moves a rough hand centre onto the hand.

The pose network is trained on crops cut around a reference centre (the
annotation's on synthetic data, V2V-PoseNet's on real data). On a full frame
with no centre given, the only centre there is the depth's
(``datasets.centres.compute_centre``), which the forearm pulls tens of mm
away. As in DeepPrior++ (Oberweger & Lepetit 2017, Sec. 3.1, "refining the
hand location"), a small network looks at a crop around the rough centre and
regresses the offset to the reference centre.

Refinement runs in steps, each a refiner (``refine_centres``; the export's
``find_hand``): by default a "coarse" refiner, whose cube is 1.6× the pose
cube so that the hand is inside even when the rough centre is ~100 mm off,
then a "fine" one in the pose cube itself, trained on what the coarse one
leaves (``records_manifest.REFINER_STAGES``; measured in ARCHITECTURE.md).
A refiner's crop is the pose crop's geometry (``geometry.crop_depth``) with
its own cube and a smaller image (``records_manifest.RefinerCrops``). Its output
is the offset normalized by its cube's half edges, ``(target − rough) /
(cube / 2)``, about [-1, 1] per axis, along the crop's axes
(``geometry.crop_axis_signs``, ``normalized_offset``, ``apply_offset``).

Network (input (B, S, S, 1) normalized depth, S = 64): 3×3 convolutions,
each with batch normalization and ReLU, of F and 2F channels each followed
by 2×2 max pooling, then ``VOTING_CONVS`` of 4F channels at S/4 × S/4, and a
1×1 convolution giving each of those pixels a vote for the centre
(``layers.centre_voting``: a weight and an offset from the pixel's own 3D
point, the pixel-to-offset idea of JGR-P2O for one point). With F = 16 it
costs ~58 MFLOP a frame (``flops.count_flops``), 8% of the pose network's
0.72 GFLOP.
"""

import keras
import numpy as np

from jgr_p2o_tf import geometry
from jgr_p2o_tf.layers import conv2d
from jgr_p2o_tf.layers import fused_batch_norm
from jgr_p2o_tf.layers.centre_voting import CentreVoting

# 3×3 convolutions at a quarter of the input size, before the votes.
VOTING_CONVS = 3


@keras.saving.register_keras_serializable(package="jgr_p2o_tf")
class CentreRefiner(keras.Model):
  """Rough-centre crop → normalized 3D offset to the reference centre.

  Inputs (B, S, S, 1) normalized depth cut around the rough centre with the
  cube ``cube_mm``; output (B, 3) offset ``(target − rough) / (cube_mm/2)``.
  ``get_config`` returns the constructor's arguments, so a saved refiner is
  its arguments plus its weights and carries its own crop geometry.

  Args:
    input_size: S.
    num_features: F, channels of the first convolution.
    cube_mm: (3,) edges in mm of the refiner's crop cube.
    name, trainable: base Model arguments.
  """

  def __init__(self, *, input_size, num_features=16,
               cube_mm=(400.0, 400.0, 400.0), name="centre_refiner",
               trainable=True):
    if input_size % 4:
      raise ValueError(f"input_size must be a multiple of 4, got "
                       f"{input_size}")
    depth_crop = keras.Input((input_size, input_size, 1), name="depth_crop")
    features = depth_crop
    widths = (num_features, 2 * num_features) + (4 * num_features,) * (
        VOTING_CONVS)
    for block, channels in enumerate(widths):
      features = conv2d.Conv2D(channels, 3, padding="same", use_bias=False,
                               name=f"conv{block + 1}")(features)
      # Momentum 0.9: a refiner trains in a few thousand steps, and its
      # moving statistics must have caught up with the batches' by then.
      features = fused_batch_norm.BatchNormalization(
          momentum=0.9, name=f"bn{block + 1}")(features)
      features = keras.layers.ReLU(name=f"relu{block + 1}")(features)
      if block < 2:
        features = keras.layers.MaxPooling2D(2, name=f"pool{block + 1}")(
            features)
    # Zeros: an untrained refiner's votes are the pixels' own points, equally
    # weighted (``CentreVoting``), so it starts at the crop's centre of mass.
    votes = conv2d.Conv2D(4, 1, kernel_initializer="zeros",
                          name="votes")(features)
    offset = CentreVoting(name="offset")(votes, depth_crop)
    super().__init__(depth_crop, offset, name=name, trainable=trainable)
    self.input_size = int(input_size)
    self.num_features = int(num_features)
    self.cube_mm = [float(c) for c in geometry.cube_vector(cube_mm)]

  def get_config(self):
    return {"name": self.name, "trainable": self.trainable,
            "input_size": self.input_size,
            "num_features": self.num_features, "cube_mm": self.cube_mm}

  @classmethod
  def from_config(cls, config):
    return cls(**config)


def refined_centres(refiners, depths_mm, cameras, rough_xyz, batch_size=64):
  """The centres of full frames after each refinement step (NumPy crops).

  Args:
    refiners: the steps in order, a CentreRefiner each (one refiner may be
      listed several times).
    depths_mm: sequence of (H, W) depth frames in mm.
    cameras: a Camera per frame.
    rough_xyz: (N, 3) rough centres in mm.
    batch_size: frames per model call.

  Returns:
    A list of (N, 3) float32 centres, one per step.
  """
  centres = np.array(rough_xyz, np.float32, copy=True)
  intrinsics = np.stack([c.intrinsics for c in cameras])
  steps = []
  for refiner in refiners:
    cube = np.asarray(refiner.cube_mm, np.float32)
    crops = np.stack([
        geometry.refiner_crop(d, c, cube, cam, refiner.input_size)
        for d, cam, c in zip(depths_mm, cameras, centres)])
    offsets = np.concatenate([
        keras.ops.convert_to_numpy(refiner(crops[i:i + batch_size],
                                           training=False))
        for i in range(0, len(crops), batch_size)])
    centres = geometry.apply_offset(centres, offsets, cube,
                                    intrinsics).astype(np.float32)
    steps.append(centres)
  return steps


def refine_centres(refiners, depths_mm, cameras, rough_xyz, batch_size=64):
  """(N, 3) float32 centres after the last step of ``refined_centres``."""
  return refined_centres(refiners, depths_mm, cameras, rough_xyz,
                         batch_size)[-1]


def error_summary(errors_mm, threshold_mm=20.0):
  """Median, 90th percentile and share over ``threshold_mm`` of errors."""
  errors = np.asarray(errors_mm, np.float64)
  return {"median_mm": float(np.median(errors)),
          "p90_mm": float(np.percentile(errors, 90)),
          f"share_over_{threshold_mm:g}_mm": float(np.mean(
              errors > threshold_mm)),
          "frames": int(errors.size)}


def centre_errors(refiners, frames, pose_cube_mm, reference_centres=None):
  """Centre errors in mm of full frames before and after each refinement step.

  The rough centre is ``datasets.centres.compute_centre`` (with the pose
  cube and the exported graph's pixel stride), the reference the centre the
  pose crops use: ``reference_centres`` if given (e.g. V2V-PoseNet's), else
  the annotation's (``ground_truth_centre``).

  Args:
    refiners: the refinement steps (``refined_centres``); empty to measure
      the rough centres only.
    frames: sequence of ``datasets.frame.Frame``.
    pose_cube_mm: the pose crops' cube, which ``compute_centre`` refines in.
    reference_centres: optional (N, 3) reference centres.

  Returns:
    dict: "rough" and, with refiners, "steps" (an ``error_summary`` each) and
    "refined" (the last step's), and the per-frame arrays
    "rough_errors_mm", "refined_errors_mm", "refined_xyz".
  """
  from jgr_p2o_tf.datasets import centres as centres_lib  # pylint: disable=g-import-not-at-top
  if reference_centres is None:
    reference_centres = [centres_lib.ground_truth_centre(f.joints_xyz)
                         for f in frames]
  reference = np.asarray(reference_centres, np.float32)
  rough = np.stack([
      centres_lib.compute_centre(f.depth_mm, f.camera, cube_mm=pose_cube_mm,
                                 pixel_stride=centres_lib.GRAPH_PIXEL_STRIDE,
                                 frame_id=f.frame_id) for f in frames])
  rough_errors = np.linalg.norm(rough - reference, axis=-1)
  result = {"rough": error_summary(rough_errors),
            "rough_errors_mm": rough_errors}
  if refiners:
    steps = refined_centres(refiners, [f.depth_mm for f in frames],
                            [f.camera for f in frames], rough)
    step_errors = [np.linalg.norm(c - reference, axis=-1) for c in steps]
    result.update(steps=[error_summary(e) for e in step_errors],
                  refined=error_summary(step_errors[-1]),
                  refined_errors_mm=step_errors[-1], refined_xyz=steps[-1])
  return result
