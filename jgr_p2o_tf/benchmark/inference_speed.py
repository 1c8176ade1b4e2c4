"""Inference speed: the Keras model eager, compiled, and exported.

"model" times ``model(x, training=False)`` eagerly and, under TensorFlow, in
a ``tf.function`` without XLA; "xla" the same call compiled
(``tf.function(jit_compile=True)``, or under JAX ``jax.jit`` of
``model.stateless_call``); "saved_model" the exported signatures loaded back, and the full-frame
signature of an export bundling centre refiners (the demo's coarse and fine
steps, untrained: their cost does not depend on their weights), which finds
the hand itself.
Each gives one row per batch size.
"""

import os
import tempfile

import numpy as np

from jgr_p2o_tf import geometry
from jgr_p2o_tf import records_manifest
from jgr_p2o_tf import saved_model_contract
from jgr_p2o_tf.benchmark import timing
from jgr_p2o_tf.benchmark import workload

# The paper's figures on a GTX 1080 Ti: 7.0 ms for the network and 2.0 ms for
# reading and preprocessing a frame, 111.2 frames/s in all.
PAPER_NETWORK_MS = 7.0
PAPER_FRAMES_PER_S = 111.2
CROP_LATENCY_TARGET = timing.Target("median_ms", "max", 9.0)
FULL_FRAME_LATENCY_TARGET = timing.Target("median_ms", "max", 11.0)
INFERENCE_TARGET = timing.Target("frames_per_s", "min", 250.0)  # at batch 32
INFERENCE_TARGET_BATCH = 32
NETWORK_REFERENCE = f"paper {PAPER_NETWORK_MS:.1f} ms (1080 Ti)"
FULL_FRAME_REFERENCE = (f"paper {1e3 / PAPER_FRAMES_PER_S:.1f} ms = "
                        f"{PAPER_FRAMES_PER_S:g} fps (1080 Ti)")


# Finding the hand costs at most a quarter of the given-centre signature
# (issue 12).
FINDING_COST_TARGET = timing.Target("percent", "max", 25.0)


def _inference_rows(part, measurement, make_call, settings, log,
                    latency_target=None, reference=None):
  """Rows of one way of running the network, one per batch size.

  ``make_call(batch_size)`` returns the call to time: it runs the network on
  a batch and waits for the result.
  """
  rows = []
  for batch_size in settings.batch_sizes:
    log(f"{part}: {measurement}, batch {batch_size}")
    runs = (settings.latency_runs if batch_size == 1
            else settings.throughput_runs)
    first_call_s, seconds = timing.time_calls(make_call(batch_size), runs,
                                              settings.warmup_runs)
    target, row_reference = None, None
    if batch_size == 1:
      target, row_reference = latency_target, reference
    elif batch_size == INFERENCE_TARGET_BATCH:
      target = INFERENCE_TARGET
    rows.append(timing.timing_row(part, measurement, batch_size,
                                  first_call_s, seconds, target,
                                  row_reference))
  return rows


def benchmark_eager(model, settings, log):
  """"model": ``model(x, training=False)`` eagerly (op by op)."""
  def make_call(batch_size):
    crops = workload.random_crops(batch_size)
    return lambda: timing.finished(
        model(crops, training=False)[-1]["joints_uvz"])
  return _inference_rows("model", "eager model(x, training=False)", make_call,
                         settings, log, reference=NETWORK_REFERENCE)


def _tf_function_rows(model, part, measurement, jit_compile, settings, log):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def predict(depth_crop):
    outputs = model(depth_crop, training=False)[-1]
    return outputs["joints_uvz"], outputs["voting_maps"]

  function = tf.function(predict, jit_compile=jit_compile, autograph=False)

  def make_call(batch_size):
    crops = workload.random_crops(batch_size)
    return lambda: timing.finished(function(crops)[0])
  return _inference_rows(part, measurement, make_call, settings, log,
                         reference=NETWORK_REFERENCE)


def benchmark_tf_graph(model, settings, log):
  """"model": the call in a ``tf.function`` without XLA."""
  return _tf_function_rows(model, "model", "tf.function, no XLA", False,
                           settings, log)


def benchmark_tf_xla(model, settings, log):
  """"xla": the call in a ``tf.function(jit_compile=True)``."""
  return _tf_function_rows(model, "xla", "tf.function(jit_compile=True)",
                           True, settings, log)


def benchmark_jax_jit(model, settings, log):
  """"xla": ``jax.jit`` of the model's inference ``stateless_call``."""
  import jax  # pylint: disable=g-import-not-at-top
  trainable = [v.value for v in model.trainable_variables]
  non_trainable = [v.value for v in model.non_trainable_variables]

  @jax.jit
  def predict(trainable, non_trainable, depth_crop):
    outputs, _ = model.stateless_call(trainable, non_trainable, depth_crop,
                                      training=False)
    return outputs[-1]["joints_uvz"], outputs[-1]["voting_maps"]

  def make_call(batch_size):
    crops = workload.random_crops(batch_size)
    return lambda: timing.finished(predict(trainable, non_trainable, crops)[0])
  return _inference_rows("xla", "jax.jit(model.stateless_call)", make_call,
                         settings, log, reference=NETWORK_REFERENCE)


def benchmark_saved_model(model, settings, log):
  """"saved_model": the exported crop and full-frame signatures.

  The model is exported (BN folded, XLA, as ``export`` does) to a temporary
  folder and loaded back with ``tf.saved_model.load``.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import exporter  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as root:
    log("saved_model: exporting")
    export_dir = os.path.join(root, "saved_model")
    exporter.export_saved_model(model, export_dir, skeleton=workload.SKELETON,
                                cube_mm=workload.DATASET.cube_mm,
                                dataset=workload.DATASET.name)
    loaded = tf.saved_model.load(export_dir)
    crop = loaded.signatures[saved_model_contract.SIGNATURE_CROP]
    full_frame = loaded.signatures[saved_model_contract.SIGNATURE_FULL_FRAME]

    def make_crop_call(batch_size):
      crops = workload.random_crops(batch_size)
      return lambda: timing.finished(crop(depth_crop=crops)["joints_uvz"])

    def make_full_frame_call(batch_size):
      depth, centre, intrinsics = workload.full_frames(batch_size)
      return lambda: timing.finished(full_frame(
          depth=depth, centre_xyz=centre, intrinsics=intrinsics)["joints_xyz"])

    camera, size = workload.DATASET.camera, workload.CROP_SIZE
    crop_rows = _inference_rows(
        "saved_model", f"'{saved_model_contract.SIGNATURE_CROP}' "
        f"signature, {size}×{size} crop", make_crop_call, settings, log,
        CROP_LATENCY_TARGET, NETWORK_REFERENCE)
    full_frame_rows = _inference_rows(
        "saved_model", f"'{saved_model_contract.SIGNATURE_FULL_FRAME}', "
        f"{camera.width}×{camera.height} frame + crop", make_full_frame_call,
        settings, log, FULL_FRAME_LATENCY_TARGET, FULL_FRAME_REFERENCE)
    refined_rows = _refined_full_frame_rows(model, root, full_frame_rows,
                                            settings, log)
    # The signatures the ONNX graphs are compared with (onnx_speed); the
    # export finding the hand has no ONNX counterpart.
    for rows, signature in (
        (crop_rows, saved_model_contract.SIGNATURE_CROP),
        (full_frame_rows, saved_model_contract.SIGNATURE_FULL_FRAME)):
      for row in rows:
        row["signature"] = signature
    return crop_rows + full_frame_rows + refined_rows


def _refined_full_frame_rows(model, root, full_frame_rows, settings, log):
  """The full-frame signature finding the hand: rough centre → refiners."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import centre_refiner  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import exporter  # pylint: disable=g-import-not-at-top
  log("saved_model: exporting with centre refiners")
  export_dir = os.path.join(root, "saved_model_refiner")
  # The demo's steps: a refiner per stage of REFINER_STAGES, in order.
  stages = records_manifest.REFINER_STAGES
  refiners = [(centre_refiner.CentreRefiner(
      input_size=stage.crop_size, cube_mm=geometry.refiner_cube(
          workload.DATASET.cube_mm, stage.cube_factor)), None)
              for stage in stages.values()]
  exporter.export_saved_model(model, export_dir, skeleton=workload.SKELETON,
                              cube_mm=workload.DATASET.cube_mm,
                              dataset=workload.DATASET.name,
                              centre_refiners=refiners)
  signatures = tf.saved_model.load(export_dir).signatures
  find_and_pose = signatures[saved_model_contract.SIGNATURE_FULL_FRAME]
  with_centre = signatures[
      saved_model_contract.SIGNATURE_FULL_FRAME_WITH_CENTRE]

  def make_call(batch_size):
    depth, _, intrinsics = workload.full_frames(batch_size)
    return lambda: timing.finished(find_and_pose(
        depth=depth, intrinsics=intrinsics)["joints_xyz"])

  given = {row["batch_size"]: row["median_ms"] for row in full_frame_rows}
  camera = workload.DATASET.camera
  rows = _inference_rows(
      "saved_model", f"'{saved_model_contract.SIGNATURE_FULL_FRAME}' with "
      f"centre refiners ({' + '.join(stages)}), "
      f"{camera.width}×{camera.height} frame, no centre", make_call,
      settings, log)
  for row in rows:
    row["reference"] = (f"{row['median_ms'] / given[row['batch_size']]:.2f}× "
                        f"the given-centre signature")
  # Finding the hand should cost at most a quarter of the given-centre
  # signature (issue 12): both of the same export, timed in turns.
  log("saved_model: finding the hand vs the centre given, in turns, batch 1")
  depth, centre, intrinsics = workload.full_frames(1)
  seconds = timing.time_interleaved(
      [lambda: timing.finished(with_centre(
          depth=depth, centre_xyz=centre, intrinsics=intrinsics)[
              "joints_xyz"]), make_call(1)],
      settings.latency_runs, settings.warmup_runs)
  given_ms, finding_ms = 1e3 * np.median(seconds, axis=1)
  rows.append(timing.with_target(
      {"part": "saved_model",
       "measurement": "finding the hand over the centre given (same export, "
                      "calls in turns)",
       "batch_size": 1, "percent": 100.0 * (finding_ms / given_ms - 1.0),
       "finding_median_ms": finding_ms, "given_median_ms": given_ms},
      FINDING_COST_TARGET,
      f"{finding_ms:.2f} vs {given_ms:.2f} ms median"))
  return rows
