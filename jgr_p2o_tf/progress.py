"""Progress of long loops: a bar on a terminal, a few lines in a log file.

``progress(total, desc, unit)`` is a tqdm bar when stderr is a terminal.
When it is not (``make demo > demo.log``, CI), a bar's every redraw would
land in the file as a line of its own; there it is a ``LineProgress``
instead, which writes one line ``desc: done/total unit (percent), rate,
postfix`` at most every ``interval_s`` seconds and one when the loop ends,
so a log holds a few lines per loop however many steps it has.
"""

import sys
import time

import tqdm

# Seconds between two lines of a LineProgress.
LINE_INTERVAL_S = 30.0


class LineProgress:
  """tqdm's interface (update, set_postfix, close) as occasional lines."""

  def __init__(self, total, desc, unit, initial=0, disable=False,
               interval_s=LINE_INTERVAL_S, stream=None, clock=time.monotonic):
    self.total, self.desc, self.unit = total, desc, unit
    self.n = initial
    self.disable = disable
    self.interval_s = interval_s
    self._stream = stream or sys.stderr
    self._clock = clock
    self._start = self._last = clock()
    self._start_n = initial
    self._postfix = ""
    self._closed = False

  def update(self, n=1):
    self.n += n
    if self._clock() - self._last >= self.interval_s:
      self._write()

  def set_postfix(self, refresh=True, **values):
    del refresh  # Lines are written by update and close only.
    self._postfix = ", ".join(f"{k} {v}" for k, v in values.items())

  def close(self):
    if not self._closed and self.n > self._start_n:
      self._write()
    self._closed = True

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()

  def _write(self):
    now = self._clock()
    self._last = now
    if self.disable:
      return
    elapsed = now - self._start
    parts = [f"{self.desc}: {self.n}/{self.total} {self.unit}"]
    if self.total:
      parts[0] += f" ({100.0 * self.n / self.total:.0f}%)"
    if elapsed > 0:
      parts.append(f"{(self.n - self._start_n) / elapsed:.2f} {self.unit}/s")
    parts.append(f"{elapsed:.0f} s")
    if self._postfix:
      parts.append(self._postfix)
    print(", ".join(parts), file=self._stream, flush=True)


def progress(total, desc, unit, initial=0, disable=False):
  """A tqdm bar on a terminal, else a LineProgress; both close on exit."""
  if sys.stderr.isatty():
    return tqdm.tqdm(total=total, desc=desc, unit=unit, initial=initial,
                     disable=disable, dynamic_ncols=True)
  return LineProgress(total, desc, unit, initial=initial, disable=disable)
