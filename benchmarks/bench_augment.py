"""Milliseconds per batch-32 call of augment.augment_batch on this machine.

Times the augmentation in a plain tf.function and compiled with XLA, and, for
reference, the image warp alone: the gather-based ``warp_nearest`` against
``tf.raw_ops.ImageProjectiveTransformV3`` (which XLA cannot compile).

  python -m benchmarks.bench_augment [--batch=32] [--iterations=50]
"""

import math
import os
import time

from absl import flags
import numpy as np
import tensorflow as tf

from jgr_p2o_tf import augment
from jgr_p2o_tf import cli

_BATCH = flags.DEFINE_integer("batch", 32, "Crops per call.", lower_bound=1)
_ITERATIONS = flags.DEFINE_integer("iterations", 50, "Timed calls per row.",
                                   lower_bound=1)

S = 96
JOINTS = 14


def _milliseconds_per_call(function, args, iterations):
  """Median wall time of one call, after a warm-up call that traces it."""
  tf.nest.map_structure(lambda t: t.numpy(), function(*args))
  times = []
  for _ in range(iterations):
    start = time.perf_counter()
    # .numpy() waits for the result, so the time covers the whole call.
    tf.nest.map_structure(lambda t: t.numpy(), function(*args))
    times.append(time.perf_counter() - start)
  return 1e3 * float(np.median(times))


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments {argv[1:]}")
  batch, iterations = _BATCH.value, _ITERATIONS.value
  rng = np.random.default_rng(0)
  depth = rng.uniform(-1, 1, (batch, S, S, 1)).astype(np.float32)
  depth[rng.random(depth.shape) < 0.7] = 1.0
  joints_uvz = rng.uniform(0, 1, (batch, JOINTS, 3)).astype(np.float32)
  cube = np.full((batch, 3), 250.0, np.float32)
  seed = tf.constant([1, 2])
  inputs = [tf.constant(a) for a in (depth, joints_uvz, cube)] + [seed]

  def step(d, j, c, s):
    return augment.augment_batch(d, j, c, augment.AugmentConfig(), s)

  theta = rng.uniform(-math.pi, math.pi, batch)
  inverse = np.zeros((batch, 2, 3), np.float32)
  inverse[:, 0, 0] = inverse[:, 1, 1] = np.cos(theta)
  inverse[:, 0, 1], inverse[:, 1, 0] = np.sin(theta), -np.sin(theta)
  transforms = tf.constant(np.concatenate(
      [inverse.reshape(-1, 6), np.zeros((batch, 2), np.float32)], 1))

  def op_warp(images, transforms):
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms,
        output_shape=tf.constant([S, S], tf.int32),
        fill_value=tf.constant(1.0, tf.float32), interpolation="NEAREST",
        fill_mode="CONSTANT")

  warp_args = (inputs[0], tf.constant(inverse), 1.0)
  rows = [
      ("augment_batch, tf.function", tf.function(step), inputs),
      ("augment_batch, tf.function(jit_compile=True)",
       tf.function(step, jit_compile=True), inputs),
      ("warp_nearest alone, tf.function", tf.function(augment.warp_nearest),
       warp_args),
      ("warp_nearest alone, XLA",
       tf.function(augment.warp_nearest, jit_compile=True), warp_args),
      ("ImageProjectiveTransformV3 alone, tf.function",
       tf.function(op_warp), (inputs[0], transforms)),
  ]
  print(f"batch {batch} of {S}x{S}x1, {JOINTS} joints, median of "
        f"{iterations} calls, {os.cpu_count()} CPU cores")
  for name, function, args in rows:
    milliseconds = _milliseconds_per_call(function, args, iterations)
    print(f"  {name:48s} {milliseconds:7.3f} ms")


if __name__ == "__main__":
  cli.run(main)
