"""Frames per second of the synthetic generator.

Times rendering alone in this process (pose sampling, ray tracing, sensor
effects), then ``synthetic.generate`` end to end (PNG encoding and writing
included) with ``--workers`` processes, and extrapolates to 10,000 frames.
The CPU milliseconds per frame (all processes) tell the cost apart from the
load other programs put on the machine.

  python -m benchmarks.bench_synthetic [--frames=2000] [--workers=2] \\
      [--camera=icvl]
"""

import resource
import tempfile
import time

from absl import flags

from jgr_p2o_tf import cli
from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import synthetic
from jgr_p2o_tf.synthetic import writer

_FRAMES = flags.DEFINE_integer("frames", 2000, "Frames to generate.",
                               lower_bound=1)
_WORKERS = flags.DEFINE_integer("workers", 2, "Rendering processes.",
                                lower_bound=1)
_CAMERA = flags.DEFINE_enum("camera", "icvl", writer.CAMERAS,
                            "The dataset whose camera is imitated.")


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments {argv[1:]}")
  num_frames, workers = _FRAMES.value, _WORKERS.value
  camera = dataset_profiles.get_profile(_CAMERA.value).camera
  print(f"{_CAMERA.value} camera, {camera.width}×{camera.height}, "
        f"{num_frames} frames")

  options = synthetic.FrameOptions(camera=camera, layout="icvl")
  render_frames = max(num_frames // 4, 1)
  start = time.perf_counter()
  for index in range(render_frames):
    synthetic.render_frame(0, index, options)
  rate = render_frames / (time.perf_counter() - start)
  print(f"render only, 1 process: {rate:.1f} frames/s")

  with tempfile.TemporaryDirectory() as out_dir:
    cpu_start = _cpu_seconds()
    start = time.perf_counter()
    synthetic.generate(out_dir, num_frames, seed=0, layout="icvl",
                       camera=_CAMERA.value, workers=workers,
                       progress=False)
    seconds = time.perf_counter() - start
    cpu_ms = (_cpu_seconds() - cpu_start) * 1000 / num_frames
  rate = num_frames / seconds
  print(f"generate, {workers} workers: {rate:.1f} frames/s, "
        f"{10000 / rate:.1f} s for 10,000 frames, {cpu_ms:.2f} CPU ms/frame")


def _cpu_seconds():
  """User + system time of this process and its finished children."""
  total = 0.0
  for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
    usage = resource.getrusage(who)
    total += usage.ru_utime + usage.ru_stime
  return total


if __name__ == "__main__":
  cli.run(main)
