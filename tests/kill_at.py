r"""Runs a command that SIGKILLs itself at a named point (fault injection).

  python -m tests.kill_at [--pids_to=FILE] [--unavailable=MODULE:NAME] \
      [--eager] MODULE:NAME[@N][<CALLER] -- COMMAND_MODULE [ARGS...]

Just before the N-th call (default the first) of the function NAME of
MODULE, the process sends itself SIGKILL: no exception, no ``finally``, no
atexit, as when the machine loses power or the kernel's OOM killer strikes.
NAME may be dotted (``Class.method``); ``<CALLER`` counts only the calls made
from the module CALLER (``os:replace<jgr_p2o_tf.exporter``). A point is a
function call, not a moment in time, so a test kills at the same place on
every machine however fast it is, and knows from the exit status (-9) that
the point was reached.

``--pids_to`` writes the ids of the process's children (data_prep's workers)
to FILE, as JSON, just before the kill. ``--unavailable`` makes MODULE:NAME
raise OSError(ENOSYS), as on a system without it. ``--eager`` runs
TensorFlow's functions eagerly: for the few steps of a fault test that costs
less than tracing the train step.
"""

import errno
import functools
import importlib
import json
import multiprocessing
import os
import runpy
import signal
import sys


def _attribute(spec):
  """(object owning the attribute, attribute name) of ``MODULE:NAME``."""
  module_name, _, path = spec.partition(":")
  owner = importlib.import_module(module_name)
  *parents, name = path.split(".")
  for parent in parents:
    owner = getattr(owner, parent)
  return owner, name


def _kill_before_call(spec, pids_to):
  point, _, caller = spec.partition("<")
  point, _, count = point.partition("@")
  owner, name = _attribute(point)
  original = getattr(owner, name)
  calls = 0

  @functools.wraps(original)
  def wrapper(*args, **kwargs):
    nonlocal calls
    if not caller or sys._getframe(1).f_globals.get("__name__") == caller:  # pylint: disable=protected-access
      calls += 1
      if calls == int(count or 1):
        if pids_to:
          with open(pids_to, "w", encoding="utf-8") as f:
            json.dump([p.pid for p in multiprocessing.active_children()], f)
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)

  setattr(owner, name, wrapper)


def _make_unavailable(spec):
  owner, name = _attribute(spec)

  def unavailable(*args, **kwargs):
    del args, kwargs
    raise OSError(errno.ENOSYS, f"{spec} made unavailable by the test")

  setattr(owner, name, unavailable)


def main(argv):
  split = argv.index("--")
  options, (command, *arguments) = argv[:split], argv[split + 1:]
  values = dict((o[2:] + "=").split("=")[:2] for o in options
                if o.startswith("--"))
  if "eager" in values:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.run_functions_eagerly(True)
  if "unavailable" in values:
    _make_unavailable(values["unavailable"])
  for point in (o for o in options if not o.startswith("--")):
    _kill_before_call(point, values.get("pids_to"))
  sys.argv = [command, *arguments]
  runpy.run_module(command, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
  main(sys.argv[1:])
