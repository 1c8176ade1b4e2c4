"""What every command-line entry point shares: one-line errors, saved flags.

Every command (``python -m jgr_p2o_tf.*``, ``python -m data_prep``,
``benchmarks/*.py``) defines absl flags, parses them in ``main`` and calls
library functions; ``run(main)`` is its entry point. A bad flag, or a user
error (missing file, malformed input) raised as one of ``USER_ERRORS``, ends
the command with one line ``error: ...`` on stderr and exit status 2, never a
traceback. ``numbers`` reads a list flag of numbers.
"""

import math
import os
import sys

from absl import app
from absl import flags
from absl import logging

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError,
               IsADirectoryError, PermissionError)
EXIT_USER_ERROR = 2


def _user_error(message):
  print(f"error: {message}", file=sys.stderr)
  sys.exit(EXIT_USER_ERROR)


def _parse_flags(argv):
  """absl's flag parsing, with a bad flag reported as one line."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    # Several missing required flags come as several lines.
    _user_error(" ".join(line for line in str(e).splitlines() if line))


def run(main):
  """``app.run(main)`` with bad flags and user errors as one line, exit 2.

  ``--help`` shows the command module's docstring and flags, also when
  another ``__main__`` runs it: a console script (``jgr-p2o-*``) or
  ``python -m data_prep``, where absl would show its own.
  """
  script = sys.modules["__main__"]
  if main.__module__ != "__main__":
    script.__doc__ = sys.modules[main.__module__].__doc__
    for flag in flags.FLAGS.flags_by_module_dict().get(main.__module__, []):
      flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)

  def guarded(argv):
    # TensorFlow logs every checkpoint write at INFO through absl.
    logging.set_verbosity(logging.WARNING)
    try:
      return main(argv)
    except USER_ERRORS as e:
      _user_error(e)
  app.run(guarded, flags_parser=_parse_flags)


def numbers(flag, counts=None, *, kind=float, positive=False):
  """The values of a list flag as numbers; ValueError names the flag.

  Args:
    flag: a list flag (its holder, or ``flags.FLAGS[name]``).
    counts: the numbers of values allowed, e.g. ``(1, 3)``; None: any but 0.
    kind: float or int.
    positive: every value must be > 0.

  Returns:
    list of ``kind``, finite.
  """
  try:
    values = [kind(v) for v in flag.value]
  except ValueError:
    values = []
  count_ok = len(values) in counts if counts else bool(values)
  if not count_ok or not all(math.isfinite(v) and (v > 0 or not positive)
                             for v in values):
    count = "" if not counts else " or ".join(map(str, counts)) + " "
    sign = "positive " if positive else ""
    noun = "integers" if kind is int else "numbers"
    raise ValueError(f"--{flag.name}={','.join(flag.value)} must be "
                     f"{count}{sign}{noun}")
  return values


def write_flags(directory, filename="flags.txt"):
  """Writes the project's resolved flags as a flagfile (``--flagfile=``).

  Flags that TensorFlow and absl define for themselves are left out.
  """
  os.makedirs(directory, exist_ok=True)
  lines = []
  for module, module_flags in flags.FLAGS.flags_by_module_dict().items():
    if "jgr_p2o_tf" in module:
      lines += [f.serialize() for f in module_flags]
  path = os.path.join(directory, filename)
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    f.write("\n".join(line for line in lines if line) + "\n")
  os.replace(path + ".tmp", path)
  return path
