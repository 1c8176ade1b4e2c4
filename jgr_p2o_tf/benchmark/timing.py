"""Timing helpers: wall times of repeated calls, and result rows with targets.

A result row holds the median and 90th percentile wall time of one call and
frames/s = batch size / median; a target (``Target``) is a figure the row
should reach, reported as information, never asserted.
"""

import dataclasses
import time

import keras
import numpy as np

TIMING_NOTE = ("median and p90 of the wall time of one call after warm-up; "
               "frames/s = batch / median; inputs are NumPy arrays handed to "
               "the backend at each call (training: batches in memory); "
               "targets are information, not assertions")


@dataclasses.dataclass(frozen=True)
class Target:
  """A figure a row should reach: ``row[metric]`` at most or at least limit."""
  metric: str  # "median_ms", "frames_per_s", "percent", "mm" or "ratio"
  bound: str  # "max" or "min"
  limit: float

  def text(self):
    unit = {"median_ms": " ms", "frames_per_s": " frames/s",
            "percent": "%", "mm": " mm", "ratio": "×"}[self.metric]
    return f"{'≤' if self.bound == 'max' else '≥'} {self.limit:g}{unit}"

  def met(self, value):
    return value <= self.limit if self.bound == "max" else value >= self.limit


def time_calls(call, runs, warmup_runs):
  """Wall times of ``runs`` calls after ``warmup_runs`` untimed ones.

  Args:
    call: a function of no arguments that returns when its work is done.
    runs: timed calls.
    warmup_runs: untimed calls first, at least 1; the first one, which
      traces and compiles, is timed on its own.

  Returns:
    (seconds of the first call, (runs,) float64 seconds of the timed calls).
  """
  start = time.perf_counter()
  call()
  first_call_s = time.perf_counter() - start
  for _ in range(warmup_runs - 1):
    call()
  seconds = np.empty(runs)
  for i in range(runs):
    start = time.perf_counter()
    call()
    seconds[i] = time.perf_counter() - start
  return first_call_s, seconds


def time_interleaved(calls, runs, warmup_runs):
  """Wall times of ``calls`` taken in turns, ``runs`` rounds after warm-up.

  For the ratio of two ways of doing the same work: in turns, both see the
  same machine, whose load and clock drift over the seconds of a run (two
  separate runs of ``time_calls`` on a 2-core VM differed by 30% at times).

  Returns:
    (len(calls), runs) float64 seconds.
  """
  for _ in range(max(warmup_runs, 1)):
    for call in calls:
      call()
  seconds = np.empty((len(calls), runs))
  for i in range(runs):
    for j, call in enumerate(calls):
      start = time.perf_counter()
      call()
      seconds[j, i] = time.perf_counter() - start
  return seconds


def finished(tensor):
  """Waits for ``tensor`` by copying it to the host."""
  keras.ops.convert_to_numpy(tensor)


def with_target(row, target, reference=None):
  """Adds a row's reference figure, its target and whether it meets it."""
  row["reference"] = reference
  row["target"] = None if target is None else target.text()
  row["target_met"] = None if target is None else bool(
      target.met(row[target.metric]))
  return row


def timing_row(part, measurement, batch_size, first_call_s, seconds,
               target=None, reference=None):
  """A result row from the wall times of calls on ``batch_size`` frames."""
  median = float(np.median(seconds))
  row = {"part": part, "measurement": measurement, "batch_size": batch_size,
         "runs": len(seconds), "median_ms": 1e3 * median,
         "p90_ms": 1e3 * float(np.percentile(seconds, 90)),
         "frames_per_s": batch_size / median,
         "first_call_s": first_call_s}
  return with_target(row, target, reference)
