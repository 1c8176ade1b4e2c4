"""Crops per second of data_prep and batches per second of the tf.data input.

Renders synthetic ICVL-layout frames and prepares them once as a warm-up
(``data_preparation.prepare_synthetic_split``), prepares them again with 1
and with ``--workers`` processes (wall time, so worker start-up counts: each
spawned worker imports TensorFlow), times each step of one crop, then times
``input_pipeline.make_dataset`` at ``--batch``.

  python -m benchmarks.bench_data [--frames=256] [--workers=2] [--batch=32]
"""

import os
import tempfile
import time

from absl import flags
import numpy as np
import tensorflow as tf

from jgr_p2o_tf import cli
from jgr_p2o_tf import data_preparation
from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import input_pipeline
from jgr_p2o_tf import tfrecords
from jgr_p2o_tf.datasets import centres

_FRAMES = flags.DEFINE_integer("frames", 256, "Synthetic frames to prepare.",
                               lower_bound=1)
_WORKERS = flags.DEFINE_integer("workers", 2, "Worker processes compared "
                                "with one.", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch", 32, "Batch size of the input pipeline.",
                              lower_bound=1)
_BATCHES = flags.DEFINE_integer("batches", 200, "Batches timed per row.",
                                lower_bound=1)


def _crops_per_second(dataset, data_dir, split, out_dir, workers, shards):
  start = time.perf_counter()
  manifest = data_preparation.prepare(dataset, data_dir, split, out_dir,
                                      num_shards=shards, workers=workers,
                                      progress=False)
  seconds = time.perf_counter() - start
  return manifest["counts"]["written"] / seconds, manifest


def _stage_milliseconds(dataset, data_dir, split, num_frames):
  """Median ms per frame of each step of one crop, in this process."""
  reader = dataset_profiles.get_reader(dataset, data_dir, split)
  cube = geometry.cube_vector(dataset_profiles.get_profile(dataset).cube_mm)
  times = {"read": [], "centre": [], "crop": [], "serialize": []}
  for index in range(min(num_frames, len(reader))):
    start = time.perf_counter()
    frame = reader.read(index)
    read = time.perf_counter()
    centre = centres.compute_centre(frame.depth_mm, frame.camera, cube_mm=cube)
    located = time.perf_counter()
    crop, affine = geometry.crop_depth(frame.depth_mm, centre, cube,
                                       frame.camera)
    cropped = time.perf_counter()
    tfrecords.serialize_example(
        depth=crop, joints_uvz=frame.joints_uvd, joints_xyz=frame.joints_xyz,
        joints_uvd=frame.joints_uvd, centre_xyz=centre, cube=cube,
        affine=affine, camera=frame.camera.intrinsics, frame_id=frame.frame_id)
    done = time.perf_counter()
    for name, seconds in (("read", read - start), ("centre", located - read),
                          ("crop", cropped - located),
                          ("serialize", done - cropped)):
      times[name].append(seconds)
  return {name: 1e3 * float(np.median(t)) for name, t in times.items()}


def _batches_per_second(out_dir, batch, num_batches, **kwargs):
  """Batches per second of ``num_batches`` after one warm-up epoch."""
  dataset = input_pipeline.make_dataset(out_dir, batch_size=batch, **kwargs)
  for _ in dataset:
    pass
  batches = iter(dataset.repeat())
  start = time.perf_counter()
  for _ in range(num_batches):
    # .numpy() waits for the batch to be materialized on the host.
    next(batches)["depth"].numpy()
  return num_batches / (time.perf_counter() - start)


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments {argv[1:]}")
  frames, workers, batch = _FRAMES.value, _WORKERS.value, _BATCH.value
  num_batches = _BATCHES.value
  with tempfile.TemporaryDirectory() as root:
    dataset, data_dir, split = "synthetic", os.path.join(root, "raw"), "train"
    data_preparation.prepare_synthetic_split(root, split, frames, seed=0,
                                             centres="computed",
                                             workers=workers)
    print(f"data_prep of {frames} synthetic ICVL-layout frames, "
          f"{os.cpu_count()} CPU cores (wall time including worker start-up)")
    shards = 2 * workers
    for count in sorted({1, workers}):
      out_dir = os.path.join(root, f"prepared_{count}")
      rate, manifest = _crops_per_second(dataset, data_dir, split, out_dir,
                                         count, shards)
      print(f"  {count} worker(s), {shards} shards: {rate:8.1f} crops/s")
    stages = _stage_milliseconds(dataset, data_dir, split, frames)
    print("  per frame, one process: " + ", ".join(
        f"{name} {ms:.2f} ms" for name, ms in stages.items()))
    print(f"input_pipeline at batch {batch}, {num_batches} batches "
          f"over {manifest['counts']['written']} crops "
          f"(tf {tf.__version__})")
    rows = [
        ("training, seeded", dict(training=True, seed=0)),
        ("training, unseeded", dict(training=True)),
        ("training, cached in memory", dict(training=True, seed=0,
                                            cache=True)),
        ("evaluation (frame order)", dict(training=False,
                                          drop_remainder=True)),
    ]
    for name, kwargs in rows:
      rate = _batches_per_second(out_dir, batch, num_batches, **kwargs)
      print(f"  {name:30s} {rate:8.1f} batches/s "
            f"({rate * batch:8.0f} crops/s)")


if __name__ == "__main__":
  cli.run(main)
